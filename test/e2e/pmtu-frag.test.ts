/**
 * End to end in network namespaces, at XDP and at tc: path MTU discovery
 * through a VIP, and fragmented UDP both ways.
 *
 *   client (192.168.77.2) ── lb (sluice) ── be1 (10.77.1.2)
 *
 * Fragments: a 4,000-byte UDP request to the VIP leaves the client in
 * three fragments, and the backend's 4,000-byte answer comes back in
 * three; both reassemble. Path MTU: with a link's MTU lowered on one side
 * (both ends of the veth) and the endpoint on that side advertising an MSS
 * for 1,500 bytes anyway (advmss, as a host behind a smaller link
 * elsewhere on its path would), the other side's full-size DF segments
 * are too long for sluice's next hop: sluice answers fragmentation needed,
 * the sender lowers its path MTU, and 100 KB go through both ways.
 *
 * The same for IPv6, on addresses the test adds to the links (fd77:c::/64
 * to the client, fd77:1::/64 to the backend): the client's kernel
 * fragments the request (a fragment header, RFC 8200 §4.5), sluice
 * balances the first fragment and rewrites the later ones alike, both
 * ways; over a narrower link sluice answers packet too big (IPv6 has no
 * DF: every packet too long is answered), and the sender lowers its path
 * MTU.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import type { AttachMode } from '../../src/dataplane/dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import { createTopology, ipIn, listNamespaces, nsExec, type Topology } from '../../src/demo/topology.js';

const VIP = '10.96.77.60';
const VIP6 = 'fd96::77:60';
const SIZE = 100 * 1024;
const DGRAM = 4000;

/* The backend: TCP on 8080 reads SIZE bytes and answers SIZE bytes; UDP on
 * 5353 answers every datagram with DGRAM bytes, the first four the
 * request's length. */
const SERVER = `
const net = require('net'), dgram = require('dgram');
const size = ${SIZE};
const tcp = (s) => {
  let got = 0;
  s.on('error', () => {});
  s.on('data', (d) => { got += d.length; if (got === size) s.end(Buffer.alloc(size, 0x62)); });
};
const udp = (u) => u.on('message', (m, r) => { const b = Buffer.alloc(${DGRAM}, 0x63); b.writeUInt32BE(m.length, 0); u.send(b, r.port, r.address); });
let waiting = 4;
const up = () => { if (--waiting === 0) console.log('ready'); };
net.createServer(tcp).listen(8080, '0.0.0.0', up);
net.createServer(tcp).listen({ port: 8080, host: '::', ipv6Only: true }, up);
const u4 = dgram.createSocket('udp4');
udp(u4);
u4.bind(5353, '0.0.0.0', up);
const u6 = dgram.createSocket({ type: 'udp6', ipv6Only: true });
udp(u6);
u6.bind(5353, '::', up);`;

/* The client: 'tcp' sends SIZE bytes to VIP:80 and reads the answer to its
 * end; 'udp' sends DGRAM bytes to VIP:53 (up to three tries) and reads one
 * answer. Prints what it got as JSON. */
const CLIENT = `
const net = require('net'), dgram = require('dgram');
const [mode, vip] = process.argv.slice(1);
const fail = (e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(0); };
setTimeout(() => fail('timeout'), 20000).unref();
if (mode === 'tcp') {
  const start = Date.now();
  let got = 0;
  const s = net.connect(80, vip, () => s.end(Buffer.alloc(${SIZE}, 0x61)));
  s.on('data', (d) => { got += d.length; });
  s.on('end', () => console.log(JSON.stringify({ got, ms: Date.now() - start })));
  s.on('error', fail);
} else {
  const s = dgram.createSocket(vip.includes(':') ? 'udp6' : 'udp4');
  let tries = 0;
  const send = () => { tries++; s.send(Buffer.alloc(${DGRAM}, 0x64), 53, vip); };
  const retry = setInterval(() => (tries < 3 ? send() : fail('no answer')), 2000);
  s.on('message', (m) => { clearInterval(retry); console.log(JSON.stringify({ got: m.length, echoed: m.readUInt32BE(0), tries })); s.close(); });
  s.on('error', fail);
  send();
}`;

interface Env {
  topo: Topology;
  dp: NativeDataplane;
  lb: LoadBalancer;
}

async function setup(t: ExecutionContext, mode: AttachMode, tagPrefix = 'm'): Promise<Env> {
  const tag = `${tagPrefix}${mode[0]}${process.pid.toString(36)}`.slice(0, 8);
  let topo: Topology | undefined;
  let dp: NativeDataplane | undefined;
  let server: ChildProcess | undefined;
  t.teardown(async () => {
    server?.kill();
    dp?.close();
    await topo?.destroy();
    const left = await listNamespaces(`sl-${tag}-`);
    if (left.length) throw new Error(`namespaces left behind: ${left.join(', ')}`);
  });
  topo = await createTopology({ tag, backends: 1 });
  const be = topo.backends[0]!;
  server = spawn('ip', ['netns', 'exec', be.ns, 'node', '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    server!.once('exit', (code) => reject(new Error(`server exited (${code})`)));
    server!.stdout!.once('data', () => resolve());
  });
  dp = await NativeDataplane.open({ capacity: { conntrack: 65536 } });
  for (const ifname of topo.lb.ifnames) dp.attach({ ifname, netns: topo.lb.nsPath, mode });
  const lb = new LoadBalancer(dp);
  await lb.applyMany([
    { name: 'bulk', address: VIP, port: 80, protocol: 'tcp', backends: [{ address: be.address, port: 8080 }] },
    { name: 'big-dns', address: VIP, port: 53, protocol: 'udp', backends: [{ address: be.address, port: 5353 }] },
  ]);
  return { topo, dp, lb };
}

async function client(env: Env, mode: 'tcp' | 'udp', vip = VIP): Promise<{ got?: number; echoed?: number; ms?: number; error?: string }> {
  return JSON.parse(await nsExec(env.topo.client.ns, 'node', '-e', CLIENT, mode, vip)) as { got?: number };
}

/* The lab is dual-stack (src/demo/topology.ts): each host's IPv6 side is
 * host.address6, the load balancer's host.lbAddress6. */
const address6 = (_env: Env, host: Topology['client']): string => host.address6;
const lbAddress6 = (_env: Env, host: Topology['client']): string => host.lbAddress6;

/* The hosts' IPv6 default routes with an MSS for 1,500-byte packets. */
async function addIPv6(env: Env): Promise<void> {
  for (const host of [env.topo.client, ...env.topo.backends]) await setAdvmss6(env, host, undefined);
}

/* setAdvmss() for IPv6 (an MSS for 1,500-byte packets is 1,440). */
async function setAdvmss6(env: Env, host: Topology['client'], advmss: number | undefined): Promise<void> {
  await ipIn(host.ns, '-6', 'route', 'replace', 'default', 'via', lbAddress6(env, host), 'dev', host.ifname,
    ...(advmss ? ['advmss', String(advmss)] : []));
}

/* Both ends of a host's veth to the load balancer. */
async function setMtu(env: Env, host: Topology['client'], mtu: number): Promise<void> {
  await ipIn(env.topo.lb.ns, 'link', 'set', host.lbIfname, 'mtu', String(mtu));
  await ipIn(host.ns, 'link', 'set', host.ifname, 'mtu', String(mtu));
}

/* A host's default route, advertising an MSS for 1,500-byte packets (or the link's). */
async function setAdvmss(host: Topology['client'], advmss: number | undefined): Promise<void> {
  await ipIn(host.ns, 'route', 'replace', 'default', 'via', host.lbAddress, 'dev', host.ifname,
    ...(advmss ? ['advmss', String(advmss)] : []));
}

for (const mode of ['xdp', 'tc'] as const) {
  test(`${mode}: fragmented UDP both ways, and path MTU discovery through a VIP both ways`, async (t) => {
    const env = await setup(t, mode);
    const be = env.topo.backends[0]!;
    const cl = env.topo.client;

    // Fragments, at MTU 1,500 everywhere: a 4,000-byte request and answer.
    let before = env.dp.globalStats();
    for (let i = 0; i < 3; i++) {
      const r = await client(env, 'udp');
      t.deepEqual([r.got, r.echoed], [DGRAM, DGRAM], `UDP exchange ${i}: ${JSON.stringify(r)}`);
    }
    let g = env.dp.globalStats();
    // Three exchanges of three fragments each way: two later ones each.
    t.true(g.frag_translated - before.frag_translated >= 12n,
      `later fragments translated: ${g.frag_translated - before.frag_translated}`);
    t.is(g.drop_fragment, 0n, 'no fragment dropped');

    // The backend's link narrowed: the client's segments are too long.
    await setMtu(env, be, 1300);
    await setAdvmss(be, 1460);
    before = env.dp.globalStats();
    let r = await client(env, 'tcp');
    t.is(r.got, SIZE, `100 KB each way with the backend's link at 1,300: ${JSON.stringify(r)}`);
    t.log(`backend's link at 1,300: ${r.ms} ms`);
    g = env.dp.globalStats();
    t.true(g.icmp_frag_needed > before.icmp_frag_needed, 'the client was told fragmentation needed');
    t.regex(await ipIn(cl.ns, 'route', 'get', VIP), /mtu 1300/, 'the client learned the path MTU to the VIP');

    // The client's link narrowed instead: the backend's segments are too long.
    await setMtu(env, be, 1500);
    await setAdvmss(be, undefined);
    await setMtu(env, cl, 1200);
    await setAdvmss(cl, 1460);
    before = env.dp.globalStats();
    r = await client(env, 'tcp');
    t.is(r.got, SIZE, `100 KB each way with the client's link at 1,200: ${JSON.stringify(r)}`);
    t.log(`client's link at 1,200: ${r.ms} ms`);
    g = env.dp.globalStats();
    t.true(g.icmp_frag_needed > before.icmp_frag_needed, 'the backend was told fragmentation needed');
    t.regex(await ipIn(be.ns, 'route', 'get', cl.address), /mtu 1200/, 'the backend learned the path MTU to the client');
    t.is(g.reject_rate_limited, 0n, 'no answer held back by the rate limit');
    t.is(g.drop_malformed, 0n, 'nothing dropped as malformed');

    for (const ifname of env.topo.lb.ifnames) env.dp.detach({ ifname, netns: env.topo.lb.nsPath, mode });
  });
}

for (const mode of ['xdp', 'tc'] as const) {
  test(`${mode}: IPv6: fragmented UDP both ways, and packet too big through a VIP both ways`, async (t) => {
    const env = await setup(t, mode, 'n');
    const be = env.topo.backends[0]!;
    const cl = env.topo.client;
    await addIPv6(env);
    await env.lb.applyMany([
      { name: 'bulk6', address: VIP6, port: 80, protocol: 'tcp', backends: [{ address: address6(env, be), port: 8080 }] },
      { name: 'big-dns6', address: VIP6, port: 53, protocol: 'udp', backends: [{ address: address6(env, be), port: 5353 }] },
    ]);

    // Fragments, at MTU 1,500 everywhere: a 4,000-byte request and answer.
    let before = env.dp.globalStats();
    for (let i = 0; i < 3; i++) {
      const r = await client(env, 'udp', VIP6);
      t.deepEqual([r.got, r.echoed], [DGRAM, DGRAM], `UDP exchange ${i}: ${JSON.stringify(r)}`);
    }
    let g = env.dp.globalStats();
    t.true(g.frag_translated - before.frag_translated >= 12n,
      `later fragments translated: ${g.frag_translated - before.frag_translated}`);
    t.is(g.drop_fragment, 0n, 'no fragment dropped');

    // The backend's link narrowed: the client's segments are too long.
    await setMtu(env, be, 1300);
    await setAdvmss6(env, be, 1440);
    before = env.dp.globalStats();
    let r = await client(env, 'tcp', VIP6);
    t.is(r.got, SIZE, `100 KB each way with the backend's link at 1,300: ${JSON.stringify(r)}`);
    t.log(`IPv6, backend's link at 1,300: ${r.ms} ms`);
    g = env.dp.globalStats();
    t.true(g.icmp_frag_needed > before.icmp_frag_needed, 'the client was told packet too big');
    t.regex(await ipIn(cl.ns, '-6', 'route', 'get', VIP6), /mtu 1300/, 'the client learned the path MTU to the VIP');

    // The client's link narrowed instead: the backend's segments are too long.
    await setMtu(env, be, 1500);
    await setAdvmss6(env, be, undefined);
    await setMtu(env, cl, 1280);
    await setAdvmss6(env, cl, 1440);
    before = env.dp.globalStats();
    r = await client(env, 'tcp', VIP6);
    t.is(r.got, SIZE, `100 KB each way with the client's link at 1,280: ${JSON.stringify(r)}`);
    t.log(`IPv6, client's link at 1,280: ${r.ms} ms`);
    g = env.dp.globalStats();
    t.true(g.icmp_frag_needed > before.icmp_frag_needed, 'the backend was told packet too big');
    t.regex(await ipIn(be.ns, '-6', 'route', 'get', address6(env, cl)), /mtu 1280/, 'the backend learned the path MTU to the client');
    t.is(g.reject_rate_limited, 0n, 'no answer held back by the rate limit');
    t.is(g.drop_malformed, 0n, 'nothing dropped as malformed');

    for (const ifname of env.topo.lb.ifnames) env.dp.detach({ ifname, netns: env.topo.lb.nsPath, mode });
  });
}
