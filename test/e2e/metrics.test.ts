/**
 * /metrics of a real daemon attached in the lab: exactly N UDP datagrams
 * through a VIP (the agents echo them) show as N packets and N replies of
 * the service, and per backend as many as each agent counted and as
 * GetStats says; the text passes `promtool check metrics`; a backend that
 * is deleted takes its series with it; a wrong or taken
 * --metrics-bind-address refuses the start, naming the flag.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { startLab } from '../../src/demo/lab.js';
import { DEMO_UDP_PORT, DEMO_VIP } from '../../src/demo/services.js';
import { freePort, lbInterfaceFlags } from '../../src/demo/topology.js';
import { sluice } from '../helpers/cli.js';
import { testDaemon } from '../helpers/daemon.js';

const N = 300;

async function scrape(port: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return r.text();
}

/** The value of the sample `series` (name and labels, as written), or undefined. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('UDP datagrams through a VIP show in /metrics as the agents and GetStats count them; promtool passes', async (t) => {
  const tag = `m${process.pid.toString(36)}`.slice(0, 8);
  const lab = await startLab(tag);
  t.teardown(() => lab.destroy());
  const { topo, client, servers } = lab;
  const port = await freePort();
  const ifaces = lbInterfaceFlags(topo);
  const daemon = await testDaemon(t, 'metrics', [...ifaces, '--mode', 'xdp', '--metrics-bind-address', `127.0.0.1:${port}`]);
  await daemon.start();
  const api = daemon.client();
  t.teardown(() => api.close());
  await api.applyService({
    name: 'default/dns',
    addresses: [DEMO_VIP],
    ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: DEMO_UDP_PORT }],
    backends: topo.backends.map((b) => ({ address: b.address })),
  });

  const before = await scrape(port);
  t.is(value(before, 'sluice_service_packets_total{service="default/dns"}'), 0, 'nothing yet');

  const r = await client.udp(DEMO_VIP, 53, N, 8);
  t.is(r.ok, N, `every datagram answered: ${r.errors.join('; ')}`);
  const text = await scrape(port);
  t.is(value(text, 'sluice_service_packets_total{service="default/dns"}'), N);
  t.is(value(text, 'sluice_service_reply_packets_total{service="default/dns"}'), N);
  const flows = value(text, 'sluice_service_new_connections_total{service="default/dns"}') ?? 0;
  t.true(flows > 0 && flows <= N, `${flows} flows: one per source port, and a port may come again`);

  const stats = await api.getStats('default/dns');
  const apiBackends = stats.services[0]!.backends;
  let sum = 0;
  for (const [i, b] of topo.backends.entries()) {
    const got = value(text, `sluice_backend_packets_total{service="default/dns",backend="${b.address}"}`);
    const agent = (await servers[i]!.stats()).udpDatagrams;
    t.is(got, agent, `backend ${b.address}: as its agent counted`);
    t.is(got, Number(apiBackends.find((x) => x.address === b.address)!.counters!.packets), `backend ${b.address}: as GetStats says`);
    t.is(value(text, `sluice_backend_up{service="default/dns",backend="${b.address}"}`), 1);
    sum += got ?? 0;
  }
  t.is(sum, N, 'the backends share the N datagrams');
  t.is(execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' }).trim(), '', 'promtool check metrics has nothing to say');
  t.regex(text, /^sluice_api_requests_total\{method="sluice\.v1\.ServiceRegistry\/ApplyService",code="OK"\} 1$/m, 'the API call was counted');

  // One backend deleted: its series go, the others stay.
  const gone = topo.backends[2]!.address;
  await api.applyService({
    name: 'default/dns',
    addresses: [DEMO_VIP],
    ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: DEMO_UDP_PORT }],
    backends: topo.backends.slice(0, 2).map((b) => ({ address: b.address })),
  });
  const after = await scrape(port);
  t.false(after.includes(`backend="${gone}"`), `no series of ${gone} left`);
  t.truthy(value(after, `sluice_backend_packets_total{service="default/dns",backend="${topo.backends[0]!.address}"}`) !== undefined);
  t.is(execFileSync('promtool', ['check', 'metrics'], { input: after, encoding: 'utf8' }).trim(), '');

  // A second daemon on the same metrics port is refused before it attaches anything.
  const second = await testDaemon(t, 'metrics2', ['--metrics-bind-address', `127.0.0.1:${port}`]);
  const e = await t.throwsAsync(second.start());
  t.regex(e?.message ?? '', new RegExp(`--metrics-bind-address: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
});

test('a malformed --metrics-bind-address exits 2 naming the flag', async (t) => {
  const r = await sluice(['daemon', '--metrics-bind-address', '127.0.0.1', '--exit-with-parent'], { timeoutMs: 30_000 });
  t.is(r.code, 2, r.stderr);
  t.is(r.stderr.trim(), 'sluice: --metrics-bind-address: must be host:port or [v6]:port (e.g. 127.0.0.1:9469 or [::1]:9469), or "" to turn it off, got "127.0.0.1"');
});
