/**
 * The socket programs (bpf/sock_lb.bpf.c: connect, sendmsg, recvmsg and
 * getpeername, for IPv4 and IPv6 sockets), on real sockets: a process in a
 * cgroup of this test's own and in a namespace of its own connects to a VIP
 * of either family and reaches the backend, getpeername() and recvfrom()
 * report the VIP, a service without backends refuses at connect(), and a
 * dual-stack socket reaching an IPv4 VIP as ::ffff:a.b.c.d is balanced as
 * the IPv4 service.
 * The services are written into the maps directly (putService, putBackend,
 * writeTables), so the test needs nothing of the control plane's IPv6.
 */
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { createCgroup, removeCgroup } from '../../src/demo/cgroup.js';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { native } from '../../src/dataplane/native.js';
import { SOCKET_HOOKS } from '../../src/dataplane/native-dataplane.js';

const TAG = `slsk6-${process.pid}`;
const NS = TAG;
const NS_PATH = `/var/run/netns/${NS}`;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** What the client script saw, by case. */
interface Seen {
  tcp6?: { peer: string; server: string; error?: string };
  udp6?: { from: string; server: string; error?: string };
  mapped?: { peer: string; server: string; error?: string };
  refused?: { error?: string; peer?: string };
  direct?: { peer: string; server: string; error?: string };
  tcp4?: { peer: string; server: string; error?: string };
  udp4?: { from: string; server: string; error?: string };
  refused4?: { error?: string; peer?: string };
}

/*
 * Servers on the backends' addresses (on lo), and clients of the VIPs: each
 * server answers with the address and port it was reached at, each client
 * says what getpeername() / recvfrom() gave it.
 */
const SCRIPT = String.raw`
const net = require('node:net');
const dgram = require('node:dgram');
const listen = (host) => new Promise((r) => {
  const s = net.createServer((c) => c.end(c.localAddress + '|' + c.localPort));
  s.listen(8080, host, () => r(s));
});
const tcp = (host, port) => new Promise((r) => {
  const c = net.connect({ host, port });
  let peer = '';
  let data = '';
  c.on('connect', () => { peer = c.remoteAddress + '|' + c.remotePort; });
  c.on('data', (d) => { data += d; });
  c.on('end', () => r({ peer, server: data }));
  c.on('error', (e) => r({ error: e.code, peer }));
});
(async () => {
  const servers = [await listen('fd44::5'), await listen('10.244.9.5')];
  const echo = dgram.createSocket('udp6');
  echo.on('message', (m, ri) => echo.send(ri.address + '|' + ri.port + '>' + 'fd44::5|5353', ri.port, ri.address));
  await new Promise((r) => echo.bind(5353, 'fd44::5', r));
  const echo4 = dgram.createSocket('udp4');
  echo4.on('message', (m, ri) => echo4.send(ri.address + '|' + ri.port + '>' + '10.244.9.5|5353', ri.port, ri.address));
  await new Promise((r) => echo4.bind(5353, '10.244.9.5', r));
  const udp = (type, host) => new Promise((r) => {
    const c = dgram.createSocket(type);
    c.on('message', (m, ri) => { c.close(); r({ from: ri.address + '|' + ri.port, server: String(m) }); });
    c.on('error', (e) => r({ error: e.code }));
    c.send('hi', 53, host);
  });
  const out = {};
  out.tcp6 = await tcp('fd96::a', 80);
  out.mapped = await tcp('::ffff:10.96.0.10', 80);
  out.refused = await tcp('fd96::b', 80);
  out.direct = await tcp('fd44::5', 8080);
  out.udp6 = await udp('udp6', 'fd96::a');
  out.tcp4 = await tcp('10.96.0.10', 80);
  out.refused4 = await tcp('10.96.0.11', 80);
  out.udp4 = await udp('udp4', '10.96.0.10');
  echo.close();
  echo4.close();
  for (const s of servers) s.close();
  process.stdout.write(JSON.stringify(out));
})();
`;

test.serial('IPv4 and IPv6 sockets: connect/getpeername and sendmsg/recvmsg go to the backend and report the VIP; ::ffff: IPv4 VIPs too', async (t) => {
  t.teardown(() => {
    try {
      ip('netns', 'del', NS);
    } catch {
      /* never made */
    }
  });
  ip('netns', 'add', NS);
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  ip('-n', NS, '-6', 'addr', 'add', 'fd44::5/128', 'dev', 'lo', 'nodad');
  ip('-n', NS, 'addr', 'add', '10.244.9.5/32', 'dev', 'lo');
  const cgroup = await createCgroup(TAG);
  t.teardown(() => removeCgroup(cgroup));

  const dp = await NativeDataplane.open({ fibRedirect: false, capacity: { conntrack: 4096, affinity: 1024, maglevSlots: 65_536 } });
  t.teardown(() => dp.close());
  const table = (id: number, size: number): Uint32Array => new Uint32Array(size).fill(id);
  // fd96::a:80/tcp and :53/udp -> fd44::5:8080 and :5353; fd96::b:80 has no backend;
  // 10.96.0.10:80/tcp -> 10.244.9.5:8080 (also reached as ::ffff:10.96.0.10) and :53/udp -> :5353;
  // 10.96.0.11:80 has no backend.
  dp.putService({ address: 'fd96::a', port: 80, protocol: 'tcp' }, { id: 1, flags: 0, affinityTimeoutSec: 0, tableSize: 7, tableBase: 0 });
  dp.putService({ address: 'fd96::a', port: 53, protocol: 'udp' }, { id: 2, flags: 0, affinityTimeoutSec: 0, tableSize: 7, tableBase: 7 });
  dp.putService({ address: '10.96.0.10', port: 80, protocol: 'tcp' }, { id: 3, flags: 0, affinityTimeoutSec: 0, tableSize: 7, tableBase: 14 });
  dp.putService({ address: 'fd96::b', port: 80, protocol: 'tcp' }, { id: 4, flags: 0, affinityTimeoutSec: 0, tableSize: 0, tableBase: 0 });
  dp.putService({ address: '10.96.0.10', port: 53, protocol: 'udp' }, { id: 5, flags: 0, affinityTimeoutSec: 0, tableSize: 7, tableBase: 21 });
  dp.putService({ address: '10.96.0.11', port: 80, protocol: 'tcp' }, { id: 6, flags: 0, affinityTimeoutSec: 0, tableSize: 0, tableBase: 0 });
  dp.putBackend(1, { address: 'fd44::5', port: 8080, flags: 0, serviceId: 1 });
  dp.putBackend(2, { address: 'fd44::5', port: 5353, flags: 0, serviceId: 2 });
  dp.putBackend(3, { address: '10.244.9.5', port: 8080, flags: 0, serviceId: 3 });
  dp.putBackend(5, { address: '10.244.9.5', port: 5353, flags: 0, serviceId: 5 });
  dp.writeTables([{ base: 0, table: table(1, 7) }, { base: 7, table: table(2, 7) }, { base: 14, table: table(3, 7) }, { base: 21, table: table(5, 7) }]);
  const target = { cgroup, netns: NS_PATH };
  dp.attachSockets(target);
  t.true(dp.socketsAttached(target), 'every socket hook of the cgroup runs the dataplane\'s program');
  for (const hook of ['connect4', 'sendmsg4', 'recvmsg4', 'getpeername4', 'connect6', 'sendmsg6', 'recvmsg6', 'getpeername6'] as const) {
    t.true(SOCKET_HOOKS.includes(hook));
    t.is(native().cgroupQuery(cgroup, hook).length, 1, `${hook} holds one program`);
  }
  const before = dp.globalStats().sock_translated;

  // The client joins the cgroup, then enters the namespace (`ip netns exec` remounts /sys, where the cgroup is).
  const child = spawn('sh', ['-c', `echo $$ > ${cgroup}/cgroup.procs && exec ip netns exec ${NS} "$0" -e "$1"`, process.execPath, SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  t.is(code, 0, stderr);
  const seen = JSON.parse(stdout) as Seen;

  t.deepEqual(seen.tcp6, { peer: 'fd96::a|80', server: 'fd44::5|8080' }, 'connect6 sent the socket to the backend; getpeername6 reports the VIP');
  // Only the backend's server, bound to fd44::5:5353, can answer: an answer is the datagram reaching it.
  t.is(seen.udp6?.from, 'fd96::a|53', 'sendmsg6 sent the datagram to the backend, which answered; recvmsg6 reports the VIP as its source');
  t.regex(seen.udp6?.server ?? '', /^fd44::5\|\d+>/, 'the backend saw the client\'s own address');
  t.deepEqual(seen.mapped, { peer: '::ffff:10.96.0.10|80', server: '10.244.9.5|8080' }, 'a dual-stack socket reaches the IPv4 service and sees its VIP');
  t.is(seen.refused?.error, 'ECONNREFUSED', 'a service without backends refuses at connect()');
  t.deepEqual(seen.direct, { peer: 'fd44::5|8080', server: 'fd44::5|8080' }, 'an address no service holds is left as it is');

  t.deepEqual(seen.tcp4, { peer: '10.96.0.10|80', server: '10.244.9.5|8080' }, 'connect4 sent the socket to the backend; getpeername4 reports the VIP');
  t.is(seen.udp4?.from, '10.96.0.10|53', 'sendmsg4 sent the datagram to the backend (bound to 10.244.9.5:5353), which answered; recvmsg4 reports the VIP as its source');
  t.regex(seen.udp4?.server ?? '', /^10\.244\.9\.5\|\d+>/, 'the backend saw the client\'s own address');
  t.is(seen.refused4?.error, 'ECONNREFUSED', 'an IPv4 service without backends refuses at connect()');

  t.is(dp.globalStats().sock_translated - before, 5n, 'five sockets translated: tcp6, udp6, mapped, tcp4, udp4');
  t.is(dp.serviceStats(1).newConnections, 1n);
  t.is(dp.serviceStats(2).newConnections, 1n);
  t.is(dp.serviceStats(3).newConnections, 2n, 'the mapped socket and the IPv4 one');
  t.is(dp.serviceStats(5).newConnections, 1n);
  t.is(dp.raw.mapDump('sock_rnat6').count, 2, 'sock_rnat6 holds the IPv6 sockets');
  t.is(dp.raw.mapDump('sock_rnat').count, 3, 'sock_rnat holds the IPv4 sockets and the mapped one');
  dp.detachSockets(target);
  for (const hook of SOCKET_HOOKS) t.deepEqual(native().cgroupQuery(cgroup, hook), [], `${hook} detached`);
});

test.serial('the IPv6 hairpin address is node_config6\'s, read back in RFC 5952 text; node_config keeps the IPv4 one', async (t) => {
  const dp = await NativeDataplane.open({ fibRedirect: false, capacity: { conntrack: 4096, affinity: 1024, maglevSlots: 65_536 } });
  t.teardown(() => dp.close());
  t.is(dp.hairpinAddress(6), null, 'off in a new dataplane');
  dp.setHairpinAddress('192.168.7.2');
  dp.setHairpinAddress('fd00:7::2');
  t.is(dp.hairpinAddress(6), 'fd00:7::2');
  t.is(dp.hairpinAddress(), '192.168.7.2');
  t.deepEqual([...dp.raw.mapLookup('node_config6', Buffer.alloc(4))!], [0xfd, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 'network order');
  dp.setHairpinAddress(null, 6);
  t.is(dp.hairpinAddress(6), null);
  t.is(dp.hairpinAddress(), '192.168.7.2', 'the IPv4 address is left as it is');
});
