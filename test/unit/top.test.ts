/**
 * `sluice top` as a command, against a real gRPC server over the fake
 * dataplane: --once prints one frame (a table, or JSON with the exact
 * counters and rates from deltas), and every mistake on its command line is
 * named by its flag. The interactive view runs under tmux in
 * test/e2e/top.test.ts.
 */
import test from 'ava';
import type { GetStatsResponse, ServiceMessage } from '../../src/api/messages.js';
import { toSample } from '../../src/cli/top.js';
import { startApi, webService, type ApiFixture } from '../helpers/api.js';
import { sluice } from '../helpers/cli.js';

const fe = (service: string, vip: string): string => `${service}|${vip}:80/tcp`;

async function fixture(t: Parameters<typeof startApi>[0], tag: string): Promise<ApiFixture> {
  const f = await startApi(t, { tag });
  await f.client.applyService(webService('default/web', '10.96.0.10', ['10.1.0.1', '10.1.0.2']));
  await f.client.applyService({ ...webService('default/api', '10.96.0.20', ['10.1.0.3']), backends: [{ address: '10.1.0.3', weight: 5 }, { address: '10.1.0.4', state: 'MAINTENANCE' }] });
  const stat = (n: number) => ({ packets: BigInt(n), bytes: BigInt(n * 100), newConnections: BigInt(n % 7), replyPackets: BigInt(n * 2) });
  const web = f.lb.ids(fe('default/web', '10.96.0.10'));
  f.dp.svcStats.set(web.service, stat(10));
  f.dp.beStats.set(web.backends.get('10.1.0.1:8080')!, stat(6));
  f.dp.beStats.set(web.backends.get('10.1.0.2:8080')!, stat(4));
  return f;
}

interface OnceJson {
  intervalMs: number;
  services: Array<{
    name: string; packetsPerSecond: number; bytesPerSecond: number; packets: number; bytes: number; newConnections: number; backendsUp: number;
    backends: Array<{ address: string; state: string; effectiveState: string; weight: number; health: string | null; packets: number | null; packetsPerSecond: number | null }>;
  }>;
}

test('top --once -o json: exact totals, zero rates when nothing moves, backends with weight and state', async (t) => {
  const f = await fixture(t, 'top-json');
  const r = await sluice(['--server', f.server.address, '-o', 'json', 'top', '--once', '--interval', '200ms']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as OnceJson;
  t.is(out.intervalMs, 200);
  t.deepEqual(out.services.map((s) => s.name), ['default/api', 'default/web'], 'equal rates: by name');
  const web = out.services.find((s) => s.name === 'default/web')!;
  t.like(web, { packets: 10, bytes: 1000, newConnections: 3, packetsPerSecond: 0, bytesPerSecond: 0, backendsUp: 2 });
  t.deepEqual(web.backends.map((b) => [b.address, b.packets, b.packetsPerSecond]), [['10.1.0.1', 6, 0], ['10.1.0.2', 4, 0]]);
  const api = out.services.find((s) => s.name === 'default/api')!;
  t.deepEqual(api.backends.map((b) => [b.address, b.state, b.weight, b.packets]), [['10.1.0.3', 'active', 5, 0], ['10.1.0.4', 'maintenance', 1, null]],
    'a backend in maintenance is listed, without counters (it is not in the dataplane)');
  t.deepEqual(api.backends.map((b) => [b.effectiveState, b.health]), [['active', 'not checked'], ['maintenance', 'not checked']],
    'the applied state always; health in the words of service get');
});

test('top --once: rates come from the counters moving between the two samples', async (t) => {
  const f = await fixture(t, 'top-rates');
  const web = f.lb.ids(fe('default/web', '10.96.0.10'));
  const be1 = web.backends.get('10.1.0.1:8080')!;
  let n = 10;
  const bump = setInterval(() => {
    n += 100;
    f.dp.svcStats.set(web.service, { packets: BigInt(n), bytes: BigInt(n * 100), newConnections: 0n, replyPackets: 0n });
    f.dp.beStats.set(be1, { packets: BigInt(n), bytes: BigInt(n * 100), newConnections: 0n, replyPackets: 0n });
  }, 20);
  t.teardown(() => clearInterval(bump));
  const r = await sluice(['--server', f.server.address, '-o', 'json', 'top', '--once', '--interval', '500ms']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as OnceJson;
  t.is(out.services[0]!.name, 'default/web', 'the busiest service first');
  t.true(out.services[0]!.packetsPerSecond > 0, r.stdout);
  t.is(Math.round(out.services[0]!.bytesPerSecond / out.services[0]!.packetsPerSecond), 100, 'bytes/s and packets/s from the same deltas');
  t.true(out.services[0]!.backends[0]!.packetsPerSecond! > 0, 'the busy backend first, with its rate');
});

test('top --once prints a table; with a service, its backends', async (t) => {
  const f = await fixture(t, 'top-table');
  const r = await sluice(['--server', f.server.address, 'top', '--once', '--interval', '100ms']);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^sluice top  unix:\/\/.*  every 100ms  sort: packets\/s$/);
  t.regex(r.stdout, /^SERVICE +PKT\/S +BYTES\/S +CONN\/S +BACKENDS +PACKETS +BYTES +CONNS$/m);
  t.regex(r.stdout, /^default\/web +0 +0 +0 +2\/2 +10 +1.00k +3$/m);
  t.notRegex(r.stdout, /q quit/, 'no keys without a terminal');
  const one = await sluice(['--server', f.server.address, 'top', '--once', '--interval', '100ms', 'default/api']);
  t.is(one.code, 0, one.stderr);
  t.regex(one.stdout, /^10\.1\.0\.3 +active +5 +not checked +0 +0 +0 +0 +0 +0 +-$/m);
  t.regex(one.stdout, /^10\.1\.0\.4 +maintenance +1 +not checked +- +- +- +- +- +- +-$/m);
  const missing = await sluice(['--server', f.server.address, 'top', '--once', '--interval', '100ms', 'default/nope']);
  t.is(missing.code, 1);
  t.is(missing.stderr.trim(), 'sluice: NOT_FOUND: service "default/nope" not found');
});

test('top: mistakes are named by their flag', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['top'], /^sluice: top needs a terminal \(standard output is not one\): use --once to print one frame/],
    [['top', '--interval', '10ms', '--once'], /^sluice: --interval: must be between 100ms and 1h, got 10ms$/],
    [['top', '--interval', '2h', '--once'], /^sluice: --interval: must be between 100ms and 1h, got 2h$/],
    [['top', '--interval', 'soon', '--once'], /^sluice: --interval: must be a duration like 1s, 250ms or 1m30s, got soon$/],
    [['top', '--interval', '1000', '--once'], /^sluice: --interval: give a duration with a unit, e.g. 1s or 500ms, got 1000$/],
    [['top', '--interval', '0', '--once'], /^sluice: --interval: give a duration with a unit, e.g. 1s or 500ms, got 0$/],
    [['-o', 'json', 'top'], /^sluice: -o json: top prints json only with --once$/],
  ];
  for (const [args, want] of cases) {
    const r = await sluice(['--server', 'unix:///nonexistent.sock', ...args]);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr.trim(), want, args.join(' '));
  }
  const help = await sluice(['top', '--help']);
  const interval = /--interval <duration>[^]*?(?=\n {2}-)/.exec(help.stdout)?.[0] ?? '';
  t.is(interval.replace(/\s+/g, ' '), '--interval <duration> time between two samples, 100ms..1h (default 1s)', 'one default in --help, as a duration');
});

test('a sample takes health, the last probe and the applied state from the API (Backend.health, last_probe, effective_state) when it has them', (t) => {
  const counters = (n: number) => ({ packets: String(n), bytes: String(n * 10), newConnections: '1', replyPackets: '0' });
  const stats = {
    services: [{ name: 'default/web', counters: counters(9), frontends: [], backends: [{ address: '10.1.0.1', state: 'ACTIVE', counters: counters(5) }, { address: '10.1.0.2', state: 'DRAINING', counters: counters(4) }] }],
    globalStats: { drops: { noService: '3', malformed: '4' }, rejects: { tcpRst: '2' } },
    maps: [],
  } as unknown as GetStatsResponse;
  const services = [{
    name: 'default/web',
    backends: [
      { address: '10.1.0.1', weight: 3, state: 'ACTIVE', leaseId: '', health: 'HEALTHY', effectiveState: 'ACTIVE', lastProbe: { timeMs: '1', ok: true, latencyUs: 420, error: '' } },
      { address: '10.1.0.2', weight: 1, state: 'ACTIVE', leaseId: '', health: 'UNHEALTHY', effectiveState: 'DRAINING', lastProbe: { timeMs: '1', ok: false, latencyUs: 900, error: 'ECONNREFUSED' } },
      { address: '10.1.0.3', weight: 1, state: 'MAINTENANCE', leaseId: '', health: 'HEALTH_UNSPECIFIED', effectiveState: 'MAINTENANCE', lastProbe: null },
    ],
  }] as unknown as ServiceMessage[];
  const s = toSample(stats, services, 1000);
  t.is(s.drops, 7);
  t.is(s.rejects, 2);
  t.deepEqual(s.services[0]!.backends, [
    { address: '10.1.0.1', weight: 3, state: 'active', health: 'healthy', lastProbe: 'ok 0.4ms', counters: { packets: 5, bytes: 50, newConnections: 1 } },
    { address: '10.1.0.2', weight: 1, state: 'active', effectiveState: 'draining', health: 'unhealthy', lastProbe: 'ECONNREFUSED', counters: { packets: 4, bytes: 40, newConnections: 1 } },
    { address: '10.1.0.3', weight: 1, state: 'maintenance', health: 'not checked' },
  ]);
  const bare = toSample(stats, [{ name: 'default/web', backends: [{ address: '10.1.0.1', state: 'ACTIVE', leaseId: '' }] }] as unknown as ServiceMessage[], 1000);
  t.is(bare.services[0]!.backends[0]!.health, undefined, 'no health field: none shown');
  t.is(bare.services[0]!.backends[0]!.weight, 1, 'an unset weight is 1');
});
