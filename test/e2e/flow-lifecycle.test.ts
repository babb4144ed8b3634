/**
 * A UDP flow's lifecycle through a real daemon (--conntrack-udp-timeout
 * 4s) in network namespaces: a client with a fixed source port keeps to
 * its backend after that backend is set draining, for as long as its
 * datagrams keep coming (each one moves the flow's expiry), and after a
 * pause longer than the timeout its next datagram is placed afresh, on
 * another backend: UDP draining finishes. `sluice conntrack list -o json`
 * shows the flow and its state; the collector deletes the dead flow and
 * says so in `sluice stats`.
 */
import test from 'ava';
import { lbInterfaceFlags } from '../../src/demo/topology.js';
import { startLab } from '../../src/demo/lab.js';
import { DEMO_UDP_PORT, DEMO_VIP } from '../../src/demo/services.js';
import { sluice } from '../helpers/cli.js';
import { testDaemon } from '../helpers/daemon.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const SRC_PORT = 40_053;

test('UDP draining finishes after the idle timeout; conntrack list shows the flow', async (t) => {
  const tag = `f${process.pid.toString(36)}`.slice(0, 8);
  const lab = await startLab(tag);
  t.teardown(() => lab.destroy());
  const { topo, client } = lab;
  const ifaces = lbInterfaceFlags(topo);
  const daemon = await testDaemon(t, 'lifecycle', [...ifaces, '--mode', 'xdp', '--conntrack-udp-timeout', '4s', '--conntrack-gc-interval', '1s']);
  await daemon.start();
  const api = daemon.client();
  t.teardown(() => api.close());
  await api.applyService({
    name: 'default/dns',
    addresses: [DEMO_VIP],
    ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: DEMO_UDP_PORT }],
    backends: topo.backends.map((b) => ({ address: b.address })),
  });

  const send = async (): Promise<string> => {
    const r = await client.udp(DEMO_VIP, 53, 1, 1, SRC_PORT);
    t.is(r.ok, 1, `datagram from port ${SRC_PORT}: ${r.errors.join('; ')}`);
    return Object.keys(r.byBackend)[0]!;
  };
  const first = await send();
  const firstAddr = topo.backends[Number(first.split('-')[1]) - 1]!.address;

  // The flow lives 4 s past its last datagram, and a CLI run on a loaded
  // machine can take longer: a datagram, then the listing, until it shows.
  type Listed = { clientPort: number; backendAddress: string; protocol: string; state: string; expiresInMs: string };
  let ct: { code: number | null; stdout: string; stderr: string } = { code: -1, stdout: '', stderr: '' };
  let mine: Listed | undefined;
  for (let i = 0; i < 5 && mine === undefined; i++) {
    if (i > 0) await send();
    ct = await sluice(['--server', daemon.address, '-o', 'json', 'conntrack', 'list', '--client', topo.client.address]);
    t.is(ct.code, 0, ct.stderr);
    mine = (JSON.parse(ct.stdout) as Listed[]).find((f) => f.clientPort === SRC_PORT);
  }
  t.like(mine, { backendAddress: firstAddr, protocol: 'UDP', state: 'ESTABLISHED' }, ct.stdout);
  t.true(Number(mine?.expiresInMs) > 0 && Number(mine?.expiresInMs) <= 4000, `expires in ${mine?.expiresInMs} ms: within the 4 s timeout`);

  await api.setBackendState('default/dns', firstAddr, 'DRAINING');
  // Datagrams every half second for twice the timeout: the flow stays.
  const during: string[] = [];
  for (let i = 0; i < 16; i++) {
    during.push(await send());
    await sleep(500);
  }
  t.deepEqual([...new Set(during)], [first], 'a live UDP flow keeps its draining backend');

  // A pause past the timeout (and the second the collector waits): the flow is dead.
  await sleep(6000);
  const after = await send();
  t.not(after, first, 'after the idle timeout the flow is placed afresh, off the draining backend');
  t.is(await send(), after, 'and keeps its new backend');
  const row = new RegExp(`${topo.client.address.replace(/\./g, '\\.')}:${SRC_PORT} .* udp .* established `);
  let table = await sluice(['--server', daemon.address, 'conntrack', 'list', '--state', 'established']);
  for (let i = 0; i < 4 && !row.test(table.stdout); i++) {
    t.is(await send(), after);
    table = await sluice(['--server', daemon.address, 'conntrack', 'list', '--state', 'established']);
  }
  t.regex(table.stdout, row, table.stdout);

  // The collector deleted the dead flow (its interval is 1 s here) and counts it.
  await sleep(2500);
  const stats = JSON.parse((await sluice(['--server', daemon.address, '-o', 'json', 'stats'])).stdout) as { conntrackGc: { passes: string; expiredEstablished: string; orphanedReplies: string; intervalSeconds: number } };
  const gc = stats.conntrackGc;
  t.true(Number(gc.passes) >= 2, JSON.stringify(gc));
  t.is(gc.intervalSeconds, 1);
  // Both entries together if a pass came during the pause; else the new
  // datagram took the forward key and the old reply entry went as an orphan.
  t.true(Number(gc.expiredEstablished) + Number(gc.orphanedReplies) >= 1, JSON.stringify(gc));
  t.is(await daemon.stop('SIGTERM'), 0, daemon.log());
});
