/**
 * The daemon in a real topology, restarted under traffic: long-lived TCP
 * connections and a steady stream of new ones go through the VIP while the
 * daemon is killed with SIGKILL and started again. No established
 * connection breaks, new connections keep being served (the dataplane does
 * not need the daemon), and the desired state comes back from the store.
 * The service is dual-stack: a persistent IPv6 connection and an IPv6 UDP
 * flow (one client port) keep their backends too, through the pinned
 * conntrack6 the restarted daemon adopts.
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { lbInterfaceFlags } from '../../src/demo/topology.js';
import { startLab } from '../../src/demo/lab.js';
import { httpUrl } from '../../src/demo/agent-client.js';
import { DEMO_HTTP_PORT, DEMO_UDP_PORT, DEMO_VIP, DEMO_VIP6 as VIP6 } from '../../src/demo/services.js';
import { testDaemon } from '../helpers/daemon.js';

/** The IPv6 UDP flow's client port. */
const UDP6_PORT = 23456;

test('SIGKILL and restart under traffic: no connection breaks, state comes back', async (t) => {
  const tag = `r${process.pid.toString(36)}`.slice(0, 8);
  const lab = await startLab(tag);
  t.teardown(() => lab.destroy());
  const { topo, client } = lab;

  const ifaces = lbInterfaceFlags(topo);
  const daemon = await testDaemon(t, 'restart', [...ifaces, '--mode', 'xdp']);
  await daemon.start();
  // The daemon runs with the launcher's heap flags (src/cli/main.ts's #! line).
  const cmdline = readFileSync(`/proc/${daemon.pid()}/cmdline`, 'utf8').split('\0');
  t.true(cmdline.includes('--max-semi-space-size=8'), `daemon command line: ${cmdline.join(' ')}`);
  const api = daemon.client();
  const applied = await api.applyService({
    name: 'default/web',
    addresses: [DEMO_VIP, VIP6],
    ports: [
      { name: 'http', port: 80, protocol: 'TCP', targetPort: DEMO_HTTP_PORT },
      { name: 'dns', port: 53, protocol: 'UDP', targetPort: DEMO_UDP_PORT },
    ],
    backends: topo.backends.flatMap((b) => [{ address: b.address }, { address: b.address6 }]),
  });
  api.close();

  const url = `http://${DEMO_VIP}:80/`;
  // Six long-lived connections, and more until they are served by at least
  // two backends (six alone all land on one backend 0.4% of the time).
  const conns = await Promise.all(Array.from({ length: 6 }, () => client.open(url)));
  while (new Set(conns.map((c) => c.backend)).size < 2 && conns.length < 30) conns.push(await client.open(url));
  t.true(new Set(conns.map((c) => c.backend)).size >= 2, `long-lived connections spread over backends: ${conns.map((c) => c.backend).join(', ')}`);
  // IPv6: a persistent connection, and a UDP flow (datagrams from one client port, each answered by the flow's backend).
  const url6 = httpUrl(VIP6, 80);
  const conn6 = await client.open(url6);
  const udp6 = async (): Promise<string> => {
    const r = await client.udp(VIP6, 53, 1, 1, UDP6_PORT);
    t.deepEqual(r.replyFrom, { [`[${VIP6}]:53`]: 1 }, `the IPv6 datagram is answered from the VIP: ${r.errors.join('; ')}`);
    return Object.keys(r.byBackend)[0] ?? 'none';
  };
  const udp6Backend = await udp6();

  // A steady stream of new connections while the daemon dies and comes back.
  const stream = client.http(url, 600, 2);
  await new Promise((r) => setTimeout(r, 150));
  await daemon.stop('SIGKILL');
  for (const c of conns) {
    const r = await client.request(c.conn);
    t.is(r.backend, c.backend, 'a long-lived connection changed backend while no daemon ran');
  }
  const whileDown = await client.http(url, 60, 4);
  t.is(whileDown.failed, 0, `new connections failed with no daemon: ${whileDown.errors.join('; ')}`);
  t.is((await client.request(conn6.conn)).backend, conn6.backend, 'the IPv6 connection changed backend while no daemon ran');
  t.is(await udp6(), udp6Backend, 'the IPv6 UDP flow changed backend while no daemon ran');
  const whileDown6 = await client.http(url6, 30, 4);
  t.is(whileDown6.failed, 0, `new IPv6 connections failed with no daemon: ${whileDown6.errors.join('; ')}`);

  // At info level the daemon says which pinned maps it adopted.
  await daemon.start(['--log-level', 'info']);
  const adopted = daemon.log().split('\n').flatMap((l) => {
    try {
      const m = JSON.parse(l) as { msg?: string; adopted?: string[] };
      return m.msg === 'adopted the pinned dataplane' ? (m.adopted ?? []) : [];
    } catch {
      return [];
    }
  });
  t.true(adopted.includes('conntrack') && adopted.includes('conntrack6'), `the restarted daemon adopts both conntrack tables: ${adopted.join(', ')}`);
  const api2 = daemon.client();
  const back = await api2.getService('default/web');
  t.is(back.revision, applied.revision, 'the desired state comes back from the store');
  t.deepEqual(back.backends.map((b) => b.address), applied.backends.map((b) => b.address));
  for (const c of conns) {
    const r = await client.request(c.conn);
    t.is(r.backend, c.backend, 'a long-lived connection broke across the restart');
  }
  t.is((await client.request(conn6.conn)).backend, conn6.backend, 'the IPv6 connection broke across the restart');
  t.is(await udp6(), udp6Backend, 'the IPv6 UDP flow changed backend across the restart');
  const flow6 = (await api2.listConnections({ family: 'IPV6', clientAddress: topo.client.address6, pageSize: 1000, pageToken: '' })).connections
    .filter((c) => c.clientPort === UDP6_PORT);
  const udp6Address = topo.backends[Number(udp6Backend.split('-')[1]) - 1]?.address6;
  t.deepEqual(flow6.map((c) => [c.address, c.protocol, c.backendAddress]), [[VIP6, 'UDP', udp6Address]], 'the IPv6 UDP flow is one conntrack6 entry, to its backend');
  const result = await stream;
  t.is(result.failed, 0, `new connections failed during the restart: ${result.errors.join('; ')}`);
  t.is(result.ok, 600);

  // The restarted daemon still steers: drain a backend, new connections avoid it.
  const victim = conns[0]!;
  const victimAddr = topo.backends[Number(victim.backend.split('-')[1]) - 1]!.address;
  await api2.setBackendState('default/web', victimAddr, 'DRAINING');
  const after = await client.http(url, 90, 4);
  t.is(after.failed, 0);
  t.is(after.byBackend[victim.backend], undefined, 'drained backend got new connections');
  t.is((await client.request(victim.conn)).backend, victim.backend, 'drained backend keeps its connection');
  api2.close();
  t.is(await daemon.stop('SIGTERM'), 0, `daemon exit on SIGTERM: ${daemon.log()}`);
});
