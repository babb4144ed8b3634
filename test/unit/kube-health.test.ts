/**
 * /healthz and /livez as kube-proxy answers them, and metrics that
 * promtool accepts.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { KubeMetrics, parseBindAddress, startHealthServers } from '../../src/kube/health.js';
import { SluiceError } from '../../src/errors.js';

function state(s: { synced?: number | undefined; pending?: number | undefined; eligible?: boolean }) {
  return { lastSynced: () => s.synced, oldestPending: () => s.pending, nodeEligible: () => s.eligible ?? true };
}

async function get(address: string, path: string): Promise<{ status: number; body: string; type: string | null }> {
  const r = await fetch(`http://${address}${path}`);
  return { status: r.status, body: await r.text(), type: r.headers.get('content-type') };
}

test('healthz: 503 before the first sync, 200 with lastUpdated and currentTime once synced, 503 when a change waits too long', async (t) => {
  const s: { synced?: number | undefined; pending?: number | undefined; eligible?: boolean } = { pending: Date.now() };
  const metrics = new KubeMetrics();
  const h = await startHealthServers({ healthz: { host: '127.0.0.1', port: 0 }, metrics: { host: '127.0.0.1', port: 0 }, state: state(s), metricsRegistry: metrics, healthTimeoutMs: 60_000 });
  t.teardown(() => h.close());
  const addr = h.healthzAddress!;
  t.is((await get(addr, '/healthz')).status, 503);
  t.is((await get(addr, '/livez')).status, 200, 'livez: starting up is alive while no change is late');
  s.synced = Date.now();
  s.pending = undefined;
  const ok = await get(addr, '/healthz');
  t.is(ok.status, 200);
  t.is(ok.type, 'application/json');
  const body = JSON.parse(ok.body) as Record<string, unknown>;
  t.deepEqual(Object.keys(body).sort(), ['currentTime', 'lastUpdated', 'nodeEligible']);
  t.false(Number.isNaN(Date.parse(body['currentTime'] as string)));
  t.true(body['nodeEligible']);
  s.pending = Date.now() - 120_000;
  t.is((await get(addr, '/healthz')).status, 503);
  t.is((await get(addr, '/livez')).status, 503);
  s.pending = undefined;
  s.eligible = false;
  const ineligible = await get(addr, '/healthz');
  t.is(ineligible.status, 503);
  t.false((JSON.parse(ineligible.body) as { nodeEligible: boolean }).nodeEligible);
  t.is((await get(addr, '/livez')).status, 200, 'livez ignores the node');
  t.is((await get(addr, '/nope')).status, 404);
  t.is((await get(h.metricsAddress!, '/healthz')).status, 404, 'the metrics address serves /metrics only');
});

test('metrics pass promtool check metrics', async (t) => {
  const metrics = new KubeMetrics();
  metrics.syncDuration.observe(0.004);
  metrics.lastSync.set(Date.now() / 1000);
  metrics.services.set(3);
  const h = await startHealthServers({ metrics: { host: '127.0.0.1', port: 0 }, state: state({}), metricsRegistry: metrics, healthTimeoutMs: 1000 });
  t.teardown(() => h.close());
  const r = await get(h.metricsAddress!, '/metrics');
  t.is(r.status, 200);
  t.regex(r.body, /^sluice_kube_programmed_services 3$/m);
  t.regex(r.body, /^sluice_kube_sync_duration_seconds_count 1$/m);
  const out = execFileSync('promtool', ['check', 'metrics'], { input: r.body, encoding: 'utf8' });
  t.is(out.trim(), '');
});

test('bind addresses: HOST:PORT or "" (off); anything else names the field and gives the caller\'s example', (t) => {
  t.deepEqual(parseBindAddress('0.0.0.0:10256', 'f', '0.0.0.0:10256'), { host: '0.0.0.0', port: 10256 });
  t.deepEqual(parseBindAddress('[::1]:9', 'f', '0.0.0.0:10256'), { host: '::1', port: 9 });
  t.is(parseBindAddress('', 'f', '0.0.0.0:10256'), undefined);
  for (const bad of ['10256', ':10256', '1.2.3.4:70000', 'host:port']) {
    const e = t.throws(() => parseBindAddress(bad, 'healthzBindAddress', '0.0.0.0:10256'), { instanceOf: SluiceError });
    t.is(e?.field, 'healthzBindAddress');
    t.is(e?.message, `healthzBindAddress: must be host:port or [v6]:port (e.g. 0.0.0.0:10256 or [::1]:10256), or "" to turn it off, got ${JSON.stringify(bad)}`);
  }
});
