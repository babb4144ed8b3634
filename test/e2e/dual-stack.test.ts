/**
 * One dual-stack service end to end, as a person runs it: `sluice daemon`
 * attached to the lab's load balancer (XDP, then tc), the service applied
 * with `sluice service apply -f` from a YAML file naming an IPv4 and an
 * IPv6 VIP and both families' backends, then real clients in the client
 * namespace: `curl -4` and `curl -6 -g` (each request a process and a
 * connection of its own) and UDP datagrams over both families. Each family
 * is balanced over its own backends only: the backends' agents report
 * which of their addresses each connection reached and from which client
 * address, and sluice's per-backend counters agree. `sluice service get -o
 * yaml` shows the VIPs in RFC 5952 form and applies back unchanged, and
 * `sluice conntrack list --family 6 -o json | jq` shows the IPv6 flows.
 */
import test, { type ExecutionContext } from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import type { AttachMode } from '../../src/dataplane/dataplane.js';
import type { GetStatsResponse } from '../../src/api/messages.js';
import { httpUrl } from '../../src/demo/agent-client.js';
import { startLab } from '../../src/demo/lab.js';
import { DEMO_HTTP_PORT, DEMO_UDP_PORT } from '../../src/demo/services.js';
import { lbInterfaceFlags, nsExec, sh } from '../../src/demo/topology.js';
import { sluice, sluiceCommand } from '../helpers/cli.js';
import { testDaemon } from '../helpers/daemon.js';

const VIP4 = '10.96.0.20';
const VIP6 = 'fd96::20';
/** Requests (and datagrams) per family: with 3 backends, one left out by chance happens 3 × (2/3)^30 ≈ 1.5e-5 of runs. */
const N = 30;

/** How much each key grew between two snapshots of a counter map (keys that did not grow left out). */
function grew(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) out[k] = v - (before[k] ?? 0);
  return out;
}

/** Only the entries that are not 0. */
function nonZero(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => v !== 0));
}

/** `n` runs of curl with `args` in namespace `ns`, one after the other; the bodies (backend names) counted, failures as "FAILED". */
async function curlEach(ns: string, args: string, n: number): Promise<Record<string, number>> {
  const out = await nsExec(ns, 'sh', '-c', `for i in $(seq ${n}); do curl ${args} -sS --max-time 5 || echo FAILED; done`);
  const by: Record<string, number> = {};
  for (const l of out.split('\n').filter(Boolean)) by[l] = (by[l] ?? 0) + 1;
  return by;
}

async function dualStack(t: ExecutionContext, mode: AttachMode, prefix: string): Promise<void> {
  // Not "d…": the demo removes namespaces "sl-d<pid>-…" whose pid is gone (src/demo/demo.ts).
  const tag = `${prefix}${process.pid.toString(36)}`.slice(0, 8);
  const lab = await startLab(tag);
  t.teardown(() => lab.destroy());
  const { topo, client, servers } = lab;
  const daemon = await testDaemon(t, `dual-${mode}`, [...lbInterfaceFlags(topo), '--mode', mode]);
  await daemon.start();
  const env = { SLUICE_SERVER: daemon.address };
  const cli = async (...args: string[]): Promise<string> => {
    const r = await sluice(args, { env, timeoutMs: 60_000 });
    t.is(r.code, 0, `sluice ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  // The IPv6 VIP is written in a long form on purpose: sluice keeps its RFC 5952 text.
  const file = path.join(daemon.dir, 'web.yaml');
  await writeFile(file, [
    '- name: default/web',
    `  addresses: [${VIP4}, "FD96:0:0:0::20"]`,
    '  ports:',
    `    - {name: http, port: 80, protocol: tcp, targetPort: ${DEMO_HTTP_PORT}}`,
    `    - {name: dns, port: 53, protocol: udp, targetPort: ${DEMO_UDP_PORT}}`,
    '  backends:',
    ...topo.backends.flatMap((b) => [`    - {address: ${b.address}}`, `    - {address: "${b.address6}"}`]),
    '',
  ].join('\n'));
  t.regex(await cli('service', 'apply', '-f', file), /^service default\/web applied \(revision \d+\)$/m);

  // The file as `service get -o yaml` writes it: both VIPs, IPv6 in RFC 5952 form; applied back, nothing changes.
  const got = await cli('service', 'get', 'default/web', '-o', 'yaml');
  const svc = parse(got) as { addresses: string[]; backends: Array<{ address: string }>; revision: string };
  t.deepEqual(svc.addresses, [VIP4, VIP6], 'both VIPs, the IPv6 one in RFC 5952 form');
  t.deepEqual(svc.backends.map((b) => b.address).sort(), topo.backends.flatMap((b) => [b.address, b.address6]).sort());
  const again = path.join(daemon.dir, 'web-got.yaml');
  await writeFile(again, got);
  t.is((await cli('service', 'apply', '-f', again)).trim(), `service default/web unchanged (revision ${svc.revision})`);

  const before = await Promise.all(servers.map((s) => s.stats()));
  // curl: each run is a new process, so a new connection from a new port.
  const web4 = await curlEach(topo.client.ns, `-4 http://${VIP4}/`, N);
  const web6 = await curlEach(topo.client.ns, `-6 -g http://[${VIP6}]/`, N);
  t.is(web4['FAILED'], undefined, `curl -4: ${JSON.stringify(web4)}`);
  t.is(web6['FAILED'], undefined, `curl -6: ${JSON.stringify(web6)}`);
  const udp4 = await client.udp(VIP4, 53, N, 8, 21000);
  const udp6 = await client.udp(VIP6, 53, N, 8, 22000);
  t.is(udp4.failed + udp6.failed, 0, `UDP: ${[...udp4.errors, ...udp6.errors].join('; ')}`);
  t.deepEqual(udp4.replyFrom, { [`${VIP4}:53`]: N }, 'IPv4 UDP answers come from the IPv4 VIP');
  t.deepEqual(udp6.replyFrom, { [`[${VIP6}]:53`]: N }, 'IPv6 UDP answers come from the IPv6 VIP');
  const after = await Promise.all(servers.map((s) => s.stats()));

  // Each family reaches only its own backends' addresses, and every backend of it.
  const stats = JSON.parse(await cli('stats', '-o', 'json')) as GetStatsResponse;
  const web = stats.services.find((s) => s.name === 'default/web');
  const flows = (address: string): number => Number(web?.backends.find((b) => b.address === address)?.counters?.newConnections ?? -1);
  topo.backends.forEach((b, i) => {
    const name = `backend-${i + 1}`;
    for (const [family, by] of [['IPv4', web4], ['IPv6', web6], ['IPv4 UDP', udp4.byBackend], ['IPv6 UDP', udp6.byBackend]] as const) {
      t.true((by[name] ?? 0) > 0, `${name} answered no ${family} request: ${JSON.stringify(by)}`);
    }
    t.deepEqual(grew(before[i]!.httpLocals, after[i]!.httpLocals), nonZero({ [b.address]: web4[name] ?? 0, [b.address6]: web6[name] ?? 0 }),
      `${name}: IPv4 connections reached ${b.address}, IPv6 ones ${b.address6}, as many as curl was answered`);
    t.deepEqual(grew(before[i]!.httpPeers, after[i]!.httpPeers), nonZero({ [topo.client.address]: web4[name] ?? 0, [topo.client.address6]: web6[name] ?? 0 }),
      `${name}: connections from the client's address of their family`);
    t.deepEqual(grew(before[i]!.udpPeers, after[i]!.udpPeers), nonZero({ [topo.client.address]: udp4.byBackend[name] ?? 0, [topo.client.address6]: udp6.byBackend[name] ?? 0 }),
      `${name}: datagrams from the client's address of their family`);
    t.is(flows(b.address), (web4[name] ?? 0) + (udp4.byBackend[name] ?? 0), `sluice's new flows to ${b.address}`);
    t.is(flows(b.address6), (web6[name] ?? 0) + (udp6.byBackend[name] ?? 0), `sluice's new flows to ${b.address6}`);
  });

  // The IPv6 flows in conntrack6, as jq reads the CLI's JSON; a persistent connection keeps one established.
  const kept = await client.open(httpUrl(VIP6, 80));
  const jq = `${sluiceCommand()} conntrack list --family 6 -o json | jq -r '.[] | [.clientAddress, .address, .port, .protocol, .backendAddress, .state] | @tsv'`;
  const rows = (await sh('sh', ['-c', `SLUICE_SERVER='${daemon.address}' ${jq}`])).trim().split('\n').map((l) => l.split('\t'));
  const backends6 = new Set(topo.backends.map((b) => b.address6));
  t.true(rows.length >= N, `conntrack6 lists the IPv6 flows: ${rows.length} rows`);
  t.deepEqual([...new Set(rows.map((r) => `${r[0]} -> ${r[1]}`))], [`${topo.client.address6} -> ${VIP6}`], 'every row is from the client\'s IPv6 address to the IPv6 VIP');
  t.true(rows.every((r) => backends6.has(r[4]!)), 'every row goes to an IPv6 backend');
  t.is(rows.filter((r) => r[2] === '53' && r[3] === 'UDP').length, N, 'one row per IPv6 datagram (each from its own port)');
  const keptBackend = topo.backends[Number(kept.backend.split('-')[1]) - 1]!.address6;
  t.true(rows.some((r) => r[2] === '80' && r[3] === 'TCP' && r[4] === keptBackend && r[5] === 'ESTABLISHED'), 'the persistent IPv6 connection is established');
  const v4 = JSON.parse(await cli('conntrack', 'list', '--family', '4', '-o', 'json')) as Array<{ clientAddress: string; address: string }>;
  t.true(v4.length >= N && v4.every((c) => c.clientAddress === topo.client.address && c.address === VIP4), '--family 4 lists only the IPv4 flows');
  t.is((await client.request(kept.conn)).backend, kept.backend);
}

test.serial('dual stack at XDP: curl -4 and -6 and UDP through one service, each family to its own backends', (t) => dualStack(t, 'xdp', 'ux'));
test.serial('dual stack at tc: curl -4 and -6 and UDP through one service, each family to its own backends', (t) => dualStack(t, 'tc', 'ut'));
