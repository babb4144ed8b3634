/**
 * Health checks without root: the rise/fall table, the scheduler on a fake
 * clock (spread, deduplication by key, the in-flight cap), the config's
 * errors naming the field, and the checker over a real control plane on
 * the fake dataplane with a fake engine: overlay, API fields, HEALTH events;
 * the TCP probe against a server on 127.0.0.1.
 */
import test, { type ExecutionContext } from 'ava';
import * as net from 'node:net';
import * as https from 'node:https';
import { grpcReason, Prober } from '../../src/health/probes.js';
import * as http from 'node:http';
import * as readline from 'node:readline';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { ProbeWorkerError, RemoteProbeEngine } from '../../src/health/probe-host.js';
import type { ProbeResult } from '../../src/health/health.js';
import { checkNetns } from '../../src/daemon/daemon.js';
import { nextCheckState, INITIAL_CHECK_STATE, type CheckState } from '../../src/health/check-state.js';
import { Scheduler } from '../../src/health/scheduler.js';
import { normaliseDefinition } from '../../src/model/definition.js';
import { parseServiceFile } from '../../src/cli/service-file.js';
import type { EngineHandlers, ProbeEngine, TargetSpec } from '../../src/health/engine.js';
import { startHealthChecks } from '../../src/node/health-checks.js';
import { startApi } from '../helpers/api.js';
import type { WatchServicesResponse } from '../../src/api/messages.js';
import { until } from '../helpers/kube-node.js';
import { sluice } from '../helpers/cli.js';
import { makeCerts } from '../helpers/tls.js';

test('rise and fall: only a full run changes the verdict', (t) => {
  const rows: Array<[string, boolean[], CheckState['state']]> = [
    ['no result', [], 'unknown'],
    ['one success of rise 2', [true], 'unknown'],
    ['two successes', [true, true], 'healthy'],
    ['two failures of fall 3', [true, true, false, false], 'healthy'],
    ['three failures', [true, true, false, false, false], 'unhealthy'],
    ['a success between failures restarts the run', [false, false, true, false, false], 'unknown'],
    ['one success after unhealthy', [false, false, false, true], 'unhealthy'],
    ['rise successes after unhealthy', [false, false, false, true, true], 'healthy'],
  ];
  for (const [what, results, want] of rows) {
    const s = results.reduce((st, ok) => nextCheckState(st, ok, 2, 3), INITIAL_CHECK_STATE);
    t.is(s.state, want, what);
  }
});

function fakeTimers() {
  let now = 0;
  let fn: (() => void) | undefined;
  return {
    now: () => now,
    timers: { setInterval: (f: () => void) => ((fn = f), 1), clearInterval: () => (fn = undefined) },
    /** Let `ms` pass, a tick at a time, with finished probes settling between ticks as they would. */
    async advance(ms: number) {
      for (let i = 0; i < ms; i += 10) {
        now += 10;
        fn?.();
        await Promise.resolve();
      }
    },
    get armed() {
      return fn !== undefined;
    },
  };
}

test('scheduler: 1,000 targets spread over the interval, each probed once an interval', async (t) => {
  const clock = fakeTimers();
  const perTick = new Map<number, number>();
  const perKey = new Map<string, number>();
  const s = new Scheduler<string>({
    ...clock,
    rng: () => 0.5,
    run: async (key) => {
      perTick.set(clock.now(), (perTick.get(clock.now()) ?? 0) + 1);
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
    },
  });
  for (let i = 0; i < 1000; i++) s.add(`10.0.${i >> 8}.${i & 255}:80`, 1000, `t${i}`);
  await clock.advance(3000);
  // 100 ticks an interval: ⌈1000/100⌉ = 10 a tick if evenly spread; a hash gives some more.
  const max = Math.max(...perTick.values());
  t.true(max <= 30, `at most 30 probes in one 10 ms tick, got ${max}`);
  t.true([...perKey.values()].every((n) => n >= 2 && n <= 4), 'each target 2-4 times in 3 intervals');
  t.is(perKey.size, 1000);
  s.close();
  t.false(clock.armed, 'closed: no timer');
});

test('scheduler: one key is one target (re-adding replaces), removal stops it', async (t) => {
  const clock = fakeTimers();
  const seen: string[] = [];
  const s = new Scheduler<string>({ ...clock, run: async (_k, item) => void seen.push(item) });
  s.add('a', 100, 'first');
  s.add('a', 100, 'second');
  t.is(s.size, 1);
  await clock.advance(250);
  t.true(seen.length >= 2 && seen.every((x) => x === 'second'), seen.join());
  s.remove('a');
  const n = seen.length;
  await clock.advance(500);
  t.is(seen.length, n);
  t.false(clock.armed);
});

test('scheduler: emptied and filled again, it leaves no slots behind', async (t) => {
  const clock = fakeTimers();
  const s = new Scheduler<number>({ ...clock, run: async () => undefined });
  for (let round = 0; round < 50; round++) {
    s.add('a', 1000, round);
    s.add('b', 1000, round);
    await clock.advance(30);
    s.remove('a');
    s.remove('b');
    // Time passes with nothing to probe: the wheel is stopped.
    await clock.advance(5000);
  }
  t.is(s.slotCount, 0, 'nothing scheduled: no slot kept');
  s.add('a', 1000, 0);
  t.true(s.slotCount <= 1, `one target: one slot, got ${s.slotCount}`);
  s.close();
});

test('scheduler: no more than maxInFlight probes at once; the rest wait and run', async (t) => {
  const clock = fakeTimers();
  const release: Array<() => void> = [];
  let peak = 0;
  const s = new Scheduler<number>({
    ...clock,
    maxInFlight: 5,
    run: () => new Promise<void>((r) => release.push(r)),
  });
  for (let i = 0; i < 20; i++) s.add(`k${i}`, 100, i);
  await clock.advance(100);
  peak = Math.max(peak, s.inFlight);
  t.is(s.inFlight, 5);
  t.is(s.waiting, 15);
  while (release.length > 0) {
    release.shift()!();
    await new Promise((r) => setImmediate(r));
    peak = Math.max(peak, s.inFlight);
  }
  t.is(peak, 5);
  t.is(s.started, 20, 'every due probe ran');
  s.close();
});

const base = { name: 'default/web', addresses: ['10.96.0.10'], ports: [{ port: 80, protocol: 'tcp', targetPort: 8080 }], backends: [{ address: '10.0.0.1' }] };

test('config: defaults, and each bad field named', (t) => {
  const d = normaliseDefinition({ ...base, healthCheck: { type: 'http' } });
  t.deepEqual(d.healthCheck, { type: 'http', intervalMs: 5000, timeoutMs: 1000, rise: 2, fall: 3, onUnhealthy: 'keep-connections', path: '/', expectedStatus: { min: 200, max: 399 } });
  t.is(normaliseDefinition({ ...base, healthCheck: { type: 'tcp', intervalMs: 200 } }).healthCheck?.timeoutMs, 100, 'timeout defaults to half a short interval');
  const bad: Array<[unknown, RegExp]> = [
    [{ type: 'tcp', intervalMs: 1000, timeoutMs: 1000 }, /^healthCheck\.timeoutMs: must be less than intervalMs/],
    [{ type: 'tcp', intervalms: 1000 }, /^healthCheck\.intervalms: unknown field; did you mean intervalMs\?/],
    [{ type: 'ping' }, /^healthCheck\.type: must be tcp, http, https or grpc/],
    [{}, /^healthCheck\.type: required/],
    [{ type: 'tcp', path: '/x' }, /^healthCheck\.path: only for http and https checks/],
    [{ type: 'http', path: 'x' }, /^healthCheck\.path: must be a path starting with "\/"/],
    [{ type: 'http', expectedStatus: { min: 300, max: 200 } }, /^healthCheck\.expectedStatus\.max: must be at least min/],
    [{ type: 'tcp', port: 'metrics' }, /^healthCheck\.port: no port of this service is named "metrics"/],
    [{ type: 'tcp', rise: 0.5 }, /^healthCheck\.rise: must be an integer/],
    [{ type: 'tcp', onUnhealthy: 'rest' }, /^healthCheck\.onUnhealthy: must be keep-connections or reset.*did you mean reset\?/],
    // A 0 in a file is a value out of range, not "the default" (proto3's zeros are dropped before the schema).
    [{ type: 'tcp', rise: 0 }, /^healthCheck\.rise: must be an integer in 1\.\.100, got 0 \(leave it out for the default: 2\)$/],
    [{ type: 'tcp', fall: 0 }, /^healthCheck\.fall: must be an integer in 1\.\.100, got 0 \(leave it out for the default: 3\)$/],
    [{ type: 'tcp', intervalMs: 0 }, /^healthCheck\.intervalMs: must be an integer in 100\.\.3600000, got 0 \(leave it out for the default: 5000\)$/],
    [{ type: 'tcp', timeoutMs: 0 }, /^healthCheck\.timeoutMs: must be an integer in 10\.\.3599999, got 0 \(leave it out/],
    [{ type: 'tcp', port: 0 }, /^healthCheck\.port: must be an integer in 1\.\.65535, got 0 \(leave it out/],
    [{ type: 'tcp', port: '8080' }, /^healthCheck\.port: no port of this service is named "8080" .*; a port number\? write 8080 without quotes$/],
    // The host's forms (model/http-host.ts): each refused one names them.
    ...['[web.example]', '[fd88:1::2', 'fd88:1::2]', '[fd88:1::2]:0', 'web.example:', 'web.example:65536', 'web..example', '-web.example', 'a:b:c.example', '[fe80::1%eth0]', 'web.example:080'].map(
      (host): [unknown, RegExp] => [{ type: 'http', host }, new RegExp(`^healthCheck\\.host: must be a host name, an IPv4 address or an IPv6 literal, each optionally with :PORT \\(an IPv6 literal in brackets then: \\[2001:db8::5\\]:8080\\), got ${JSON.stringify(host).replace(/[[\].]/g, '\\$&')}$`)],
    ),
  ];
  for (const [h, re] of bad) {
    const err = t.throws(() => normaliseDefinition({ ...base, healthCheck: h }));
    const field = (err as { field?: string }).field ?? '';
    t.regex(err!.message.startsWith(`${field}: `) ? err!.message : `${field}: ${err!.message}`, re, JSON.stringify(h));
  }
  const udp = { ...base, ports: [{ port: 53, protocol: 'udp' }] };
  const err = t.throws(() => normaliseDefinition({ ...udp, healthCheck: { type: 'tcp' } }));
  t.is((err as { field?: string }).field, 'healthCheck.port', 'a UDP-only service must name a port');
  t.is(normaliseDefinition({ ...udp, healthCheck: { type: 'tcp', port: 9000 } }).healthCheck?.port, 9000);
  // Every check connects over TCP: naming a UDP-only port is refused, its number is the way to mean it.
  const dns = { ...base, ports: [{ name: 'http', port: 80, protocol: 'tcp' }, { name: 'dns', port: 53, protocol: 'udp', targetPort: 5353 }] };
  for (const [type, field, hc] of [['tcp', 'port', { port: 'dns' }], ['https', 'port', { port: 'dns' }], ['grpc', 'portName', { portName: 'dns' }]] as const) {
    const e = t.throws(() => normaliseDefinition({ ...dns, healthCheck: { type, ...hc } }));
    t.is((e as { field?: string }).field, `healthCheck.${field}`, type);
    t.regex(e!.message, new RegExp(`port "dns" is UDP \\(53/udp\\), and a ${type} check connects over TCP: name a TCP port, or give port: 5353`));
  }
  t.is(normaliseDefinition({ ...dns, healthCheck: { type: 'tcp', port: 5353 } }).healthCheck?.port, 5353, 'the number is taken');
  t.is(normaliseDefinition({ ...dns, healthCheck: { type: 'tcp', port: 'http' } }).healthCheck?.port, 'http');
  for (const host of ['web.example', 'web.example.', 'web_1.example:8080', 'localhost', '10.0.0.1', '10.0.0.1:8080', 'fd88:1::2', '[fd88:1::2]', '[fd88:1::2]:8080', '::ffff:10.0.0.1']) {
    t.is(normaliseDefinition({ ...base, healthCheck: { type: 'https', host } }).healthCheck?.host, host, `host ${host} is taken as written`);
  }
});

/** An HTTP or HTTPS server on ::1 that records the Host header (and TLS server name) of each request. */
async function hostRecorder(t: ExecutionContext, tls: boolean): Promise<{ port: number; seen: Array<{ host: string | undefined; servername: string | false | undefined }> }> {
  const seen: Array<{ host: string | undefined; servername: string | false | undefined }> = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    seen.push({ host: req.headers.host, servername: (req.socket as { servername?: string | false }).servername });
    res.end('ok');
  };
  let server: http.Server | https.Server;
  if (tls) {
    const certs = makeCerts(t);
    server = https.createServer({ cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey) }, handler);
  } else {
    server = http.createServer(handler);
  }
  await new Promise<void>((r) => server.listen(0, '::1', r));
  t.teardown(() => void server.close());
  return { port: (server.address() as net.AddressInfo).port, seen };
}

test('HTTP(S) probe of an IPv6 backend: an IPv6 literal in Host is bracketed, a port kept; SNI is a DNS name or nothing', async (t) => {
  const prober = new Prober();
  t.teardown(() => prober.close());
  const rows: Array<[string | undefined, string, string | false]> = [
    [undefined, '[::1]', false],
    ['fd88:1::2', '[fd88:1::2]', false],
    ['[fd88:1::2]', '[fd88:1::2]', false],
    ['[fd88:1::2]:8080', '[fd88:1::2]:8080', false],
    ['10.0.0.1:8080', '10.0.0.1:8080', false],
    ['web.example', 'web.example', 'web.example'],
    ['web.example:8443', 'web.example:8443', 'web.example'],
  ];
  for (const tls of [false, true]) {
    const server = await hostRecorder(t, tls);
    for (const [host, header, sni] of rows) {
      const type = tls ? 'https' : 'http';
      const r = await prober.probe(`${type}-${host}`, { type, address: '::1', port: server.port, ...(host === undefined ? {} : { host }), timeoutMs: 5000 });
      t.true(r.ok, `${type} probe with host ${host}: ${r.error}`);
      const got = server.seen.pop();
      t.is(got?.host, header, `${type} probe with host ${host}: Host header`);
      if (tls) t.is(got?.servername, sni, `https probe with host ${host}: TLS server name`);
    }
  }
});

test('config: through the API a 0 is proto3\'s "unset" and gets the default; get -o yaml is a file that applies back', async (t) => {
  const f = await startApi(t);
  await f.client.applyService({
    name: 'default/z',
    addresses: ['10.96.0.9'],
    ports: [{ port: 80, protocol: 'TCP', targetPort: 8080 }],
    backends: [{ address: '10.0.0.1' }],
    healthCheck: { type: 'TCP', port: 0, intervalMs: 0, timeoutMs: 0, rise: 0, fall: 0 },
  });
  const got = await f.client.getService('default/z');
  t.like(got.healthCheck, { port: 0, portName: '', intervalMs: 5000, timeoutMs: 1000, rise: 2, fall: 3 });
  const yaml = await sluice(['--server', f.server.address, '-o', 'yaml', 'service', 'get', 'default/z']);
  t.notRegex(yaml.stdout, /port: 0|portName: ""/, 'the unset port is left out');
  const [back] = parseServiceFile(yaml.stdout, 'z.yaml');
  t.deepEqual(back!.definition.healthCheck, normaliseDefinition({ ...base, healthCheck: { type: 'tcp' } }).healthCheck);
});

test('config: YAML files take it, and refuse a typo with the place in the file', (t) => {
  const ok = parseServiceFile(
    'name: default/web\naddresses: [10.96.0.10]\nports: [{name: http, port: 80, protocol: tcp}]\nhealthCheck: {type: http, port: http, path: /healthz, onUnhealthy: reset}\n',
    'web.yaml',
  );
  t.like(ok[0]!.definition.healthCheck, { type: 'http', port: 'http', path: '/healthz', onUnhealthy: 'reset' });
  t.throws(() => parseServiceFile('name: a\naddresses: [10.96.0.10]\nports: [{port: 80, protocol: tcp}]\nhealthCheck: {type: tcp, fal: 2}\n', 'web.yaml'), {
    message: /^web\.yaml: healthCheck\.fal: unknown field; did you mean fall\?/,
  });
});

/** An engine whose verdicts the test gives. */
class FakeEngine implements ProbeEngine {
  readonly targets = new Map<number, TargetSpec>();
  constructor(readonly h: EngineHandlers) {}
  set(id: number, spec: TargetSpec): void {
    this.targets.set(id, spec);
  }
  remove(id: number): void {
    this.targets.delete(id);
  }
  tallies() {
    return [];
  }
  close(): void {}
  idOf(address: string): number {
    return [...this.targets].find(([, s]) => s.address === address)![0];
  }
  say(address: string, state: 'healthy' | 'unhealthy', error?: string): void {
    const last = { atMs: 1_700_000_000_000, ok: state === 'healthy', latencyMs: 1.5, ...(error ? { error } : {}) };
    this.h.transition(this.idOf(address), state, state === 'healthy' ? 0 : 3, last);
    this.h.probe(this.idOf(address), last);
  }
}

test('checker: verdicts reach the overlay, the maps, the API fields and HEALTH events; shared targets are probed once', async (t) => {
  const f = await startApi(t);
  let engine!: FakeEngine;
  const checker = await startHealthChecks(f.plane, { engine: (h) => (engine = new FakeEngine(h)) });
  t.teardown(() => checker.close());
  const svc = (name: string, address: string, onUnhealthy?: string) => ({
    name,
    addresses: [address],
    ports: [{ port: 80, protocol: 'TCP' as const, targetPort: 8080 }],
    backends: [{ address: '10.0.0.1' }, { address: '10.0.0.2' }, { address: '10.0.0.3', state: 'MAINTENANCE' as const }],
    healthCheck: { type: 'TCP' as const, intervalMs: 1000, ...(onUnhealthy ? { onUnhealthy: onUnhealthy as 'RESET' } : {}) },
  });
  await f.client.applyService(svc('default/a', '10.96.0.1'));
  await f.client.applyService(svc('default/b', '10.96.0.2', 'RESET'));
  // Same check on the same backend in a and b, but b's verdict means another overlay: a target per check kind.
  t.is(engine.targets.size, 2, 'a backend in admin maintenance is not probed; identical checks share a target');
  const events: WatchServicesResponse[] = [];
  const watch = f.client.watchServices();
  watch.on('data', (e: WatchServicesResponse) => events.push(e));
  watch.on('error', () => undefined);
  t.teardown(() => watch.cancel());
  await until('synced', () => events.some((e) => e.type === 'SYNCED'));

  engine.say('10.0.0.1', 'healthy');
  engine.say('10.0.0.2', 'unhealthy', 'ECONNREFUSED');
  t.like(f.plane.overlay.get('default/a', '10.0.0.2'), { state: 'draining', reason: 'health: 3 checks failed: ECONNREFUSED' });
  t.like(f.plane.overlay.get('default/b', '10.0.0.2'), { state: 'maintenance' });
  const a = await f.client.getService('default/a');
  t.deepEqual(a.backends.map((b) => [b.address, b.health, b.effectiveState]), [
    ['10.0.0.1', 'HEALTHY', 'ACTIVE'],
    ['10.0.0.2', 'UNHEALTHY', 'DRAINING'],
    ['10.0.0.3', 'HEALTH_UNSPECIFIED', 'MAINTENANCE'],
  ]);
  t.like(a.backends[1]!.lastProbe, { ok: false, error: 'ECONNREFUSED', latencyUs: 1500, timeMs: '1700000000000' });
  const shown = await sluice(['--server', f.server.address, 'service', 'get', 'default/a']);
  t.regex(shown.stdout, /^health check: tcp connect on first TCP port; every 1000 ms/m, 'service get: the label and its value apart, aligned with the others');
  t.regex(shown.stdout, /^owner: {8}api$/m);
  await until('HEALTH events of both services', () => ['default/a', 'default/b'].every((n) => events.some((e) => e.type === 'HEALTH' && e.name === n && e.service?.backends[1]?.health === 'UNHEALTHY')));
  const stats = await f.client.getStats('default/b');
  t.deepEqual(stats.services[0]!.backends.map((b) => b.address), ['10.0.0.1'], 'reset: the unhealthy backend is out of the dataplane, as in maintenance');

  engine.say('10.0.0.2', 'healthy');
  t.is(f.plane.overlay.get('default/a', '10.0.0.2'), undefined, 'healthy again: the overlay is gone');
  // Dropping the check stops the probes and forgets the verdicts.
  const { healthCheck: _h, ...plain } = svc('default/a', '10.96.0.1');
  await f.client.applyService(plain);
  t.is((await f.client.getService('default/a')).backends[0]!.health, 'HEALTH_UNSPECIFIED');
  await f.client.deleteService('default/b');
  t.is(engine.targets.size, 0, 'no service checks a backend: no target');
});

test('checker: an edit of interval, timeout, rise, fall or onUnhealthy keeps the verdicts; another probe starts over', async (t) => {
  const f = await startApi(t);
  let engine!: FakeEngine;
  const checker = await startHealthChecks(f.plane, { engine: (h) => (engine = new FakeEngine(h)) });
  t.teardown(() => checker.close());
  const svc = (hc: Record<string, unknown>) => ({
    name: 'default/a',
    addresses: ['10.96.0.1'],
    ports: [{ port: 80, protocol: 'TCP' as const, targetPort: 8080 }],
    backends: [{ address: '10.0.0.1' }, { address: '10.0.0.2' }],
    healthCheck: { type: 'HTTP' as const, path: '/healthz', intervalMs: 200, ...hc },
  });
  await f.client.applyService(svc({}));
  const dead = engine.idOf('10.0.0.2');
  engine.say('10.0.0.1', 'healthy');
  engine.say('10.0.0.2', 'unhealthy', 'ECONNREFUSED');
  const tableHas = async (address: string) => (await f.client.getStats('default/a')).services[0]!.backends.some((b) => b.address === address);
  t.like(f.plane.overlay.get('default/a', '10.0.0.2'), { state: 'draining' });

  await f.client.applyService(svc({ intervalMs: 300, timeoutMs: 150, rise: 3, fall: 4 }));
  t.is(engine.idOf('10.0.0.2'), dead, 'the same target');
  t.like(engine.targets.get(dead), { intervalMs: 300, timeoutMs: 150, rise: 3, fall: 4 }, 'its settings changed in place');
  t.like(f.plane.overlay.get('default/a', '10.0.0.2'), { state: 'draining' }, 'still out of new flows');
  t.deepEqual((await f.client.getService('default/a')).backends.map((b) => b.health), ['HEALTHY', 'UNHEALTHY']);

  await f.client.applyService(svc({ intervalMs: 300, timeoutMs: 150, rise: 3, fall: 4, onUnhealthy: 'RESET' }));
  t.like(f.plane.overlay.get('default/a', '10.0.0.2'), { state: 'maintenance', reason: 'health: 3 checks failed: ECONNREFUSED' }, 'reset: its flows move too');
  t.false(await tableHas('10.0.0.2'), 'reset: out of the dataplane');
  await f.client.applyService(svc({ intervalMs: 300, timeoutMs: 150, rise: 3, fall: 4, onUnhealthy: 'KEEP_CONNECTIONS' }));
  t.like(f.plane.overlay.get('default/a', '10.0.0.2'), { state: 'draining' }, 'back to keep-connections');
  t.is(engine.idOf('10.0.0.2'), dead);

  await f.client.applyService(svc({ path: '/ready' }));
  t.not(engine.idOf('10.0.0.2'), dead, 'another path is another probe');
  t.is(f.plane.overlay.get('default/a', '10.0.0.2'), undefined, 'whose verdict is not known yet');
  t.is(engine.targets.size, 2);

  // Another service probing the same way shares the target, and the settings of the first by name.
  await f.client.applyService({ ...svc({ path: '/ready', intervalMs: 1000, rise: 5 }), name: 'default/b', addresses: ['10.96.0.2'] });
  t.is(engine.targets.size, 2, 'shared');
  t.like(engine.targets.get(engine.idOf('10.0.0.2')), { intervalMs: 200, rise: 2 }, "default/a's settings");
  const shared = engine.idOf('10.0.0.2');
  await f.client.deleteService('default/a');
  t.is(engine.idOf('10.0.0.2'), shared, 'the target stays with its other user');
  t.like(engine.targets.get(shared), { intervalMs: 1000, rise: 5 }, "now default/b's");
});

test('TCP probe: a connected probe closes with RST (no TIME_WAIT on the prober); a closed port is ECONNREFUSED', async (t) => {
  const resets: string[] = [];
  const server = net.createServer((s) => s.on('error', (err: NodeJS.ErrnoException) => resets.push(err.code ?? err.message)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => void server.close());
  const port = (server.address() as net.AddressInfo).port;
  const prober = new Prober();
  const ok = await prober.probe('a', { type: 'tcp', address: '127.0.0.1', port, timeoutMs: 2000 });
  t.true(ok.ok, `probe of a listening port failed: ${ok.error}`);
  t.true(ok.latencyMs >= 0);
  await until(() => `the server saw no reset: ${JSON.stringify(resets)}`, () => resets.includes('ECONNRESET'));
  await new Promise((r) => server.close(r));
  const refused = await prober.probe('a', { type: 'tcp', address: '127.0.0.1', port, timeoutMs: 2000 });
  t.false(refused.ok);
  t.is(refused.error, 'ECONNREFUSED');
});

test('gRPC probe: a failure reads as the status name and the cause, without grpc-js\'s frame and timestamps', async (t) => {
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as net.AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const http1 = http.createServer((_req, res) => res.end('not grpc'));
  await new Promise<void>((r) => http1.listen(0, '127.0.0.1', r));
  t.teardown(() => void http1.close());
  const prober = new Prober();
  t.teardown(() => prober.close());
  const refused = await prober.probe('a', { type: 'grpc', address: '127.0.0.1', port: closedPort, timeoutMs: 5000 });
  t.is(refused.error, `UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:${closedPort}`);
  const notGrpc = await prober.probe('b', { type: 'grpc', address: '127.0.0.1', port: (http1.address() as net.AddressInfo).port, timeoutMs: 5000 });
  t.is(notGrpc.error, 'UNAVAILABLE: Protocol error');
  const rows: Array<[number, string, string]> = [
    [14, 'No connection established. Last error: Failed to connect (2026-12-05T18:41:39.401Z). Resolution note: ', 'UNAVAILABLE: Failed to connect'],
    [12, 'The server does not implement the method /grpc.health.v1.Health/Check', 'UNIMPLEMENTED: The server does not implement the method /grpc.health.v1.Health/Check'],
    [5, 'unknown service\nsecond line', 'NOT_FOUND: unknown service'],
    [14, '', 'UNAVAILABLE'],
  ];
  for (const [code, details, want] of rows) t.is(grpcReason(code, details), want, details);
});

/** Process ids of this process's children whose command line holds every one of `words`. */
function childrenWith(...words: string[]): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (ppid === process.pid && words.every((w) => cmd.includes(w))) out.push(Number(d));
    } catch {
      // It ended while being read.
    }
  }
  return out;
}

/** A logger that keeps what is said at warn. */
function warnings(): { logger: Logger; said: Array<Record<string, unknown>> } {
  const said: Array<Record<string, unknown>> = [];
  const logger = { warn: (o: Record<string, unknown>) => void said.push(o), info: () => undefined, error: () => undefined, debug: () => undefined, child: () => logger } as unknown as Logger;
  return { logger, said };
}

test('probe worker: probes always run in a child, so a blocked daemon loop fails none; kube-proxy mode starts none until a check', async (t) => {
  // A server in another process that says when a probe arrives and answers 50 ms later.
  const server = spawn(process.execPath, ['-e', `
    require('http').createServer((q, r) => { process.stdout.write('req\\n'); setTimeout(() => r.end('ok'), 50); })
      .listen(0, '127.0.0.1', function () { process.stdout.write('port ' + this.address().port + '\\n'); });`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void server.kill());
  const lines = readline.createInterface({ input: server.stdout! });
  const port = await new Promise<number>((resolve) => lines.on('line', (l) => l.startsWith('port ') && resolve(Number(l.slice(5)))));
  const results: ProbeResult[] = [];
  const engine = new RemoteProbeEngine({ handlers: { transition: () => undefined, probe: (_id, r) => void results.push(r) }, flushMs: 100 });
  t.teardown(() => engine.close());
  let blocks = 0;
  // While each of two probes waits for its answer, this process is busy for longer than the probe's timeout (a long scrape).
  lines.on('line', (l) => {
    if (l !== 'req' || blocks >= 2) return;
    blocks++;
    const end = Date.now() + 1200;
    while (Date.now() < end);
  });
  engine.set(1, { type: 'http', address: '127.0.0.1', port, path: '/', timeoutMs: 1000, intervalMs: 1500, rise: 1, fall: 1 });
  await until('two probes answered while this process was blocked', () => blocks >= 2 && results.length >= 3);
  t.deepEqual(results.filter((r) => !r.ok), [], 'no probe failed');

  // The node's checks: a child at start, or (kube-proxy mode) at the first check only.
  const f = await startApi(t);
  const eager = await startHealthChecks(f.plane, { maxInFlight: 2047 });
  t.teardown(() => eager.close());
  t.is(childrenWith('--max-in-flight', '2047').length, 1, 'a probe worker at start');
  t.is(childrenWith('nsenter').length, 0, 'no namespace: no nsenter');
  eager.close();
  await until('the worker ends with the checker', () => childrenWith('--max-in-flight', '2047').length === 0);
  const g = await startApi(t);
  const lazy = await startHealthChecks(g.plane, { maxInFlight: 2046, worker: 'on-demand' });
  t.teardown(() => lazy.close());
  await new Promise((r) => setTimeout(r, 300));
  t.is(childrenWith('--max-in-flight', '2046').length, 0, 'on-demand: no worker without a check');
  await g.client.applyService({ name: 'default/c', addresses: ['10.96.0.3'], ports: [{ port: 80, protocol: 'TCP', targetPort: 8080 }], backends: [{ address: '10.0.0.1' }], healthCheck: { type: 'TCP' } });
  await until('a worker at the first check', () => childrenWith('--max-in-flight', '2046').length === 1);
});

test('probe worker: a path that is not a network namespace, or no nsenter, refuses the start with what was said', async (t) => {
  await t.throwsAsync(checkNetns('/tmp'), { message: /^healthNetns: \/tmp: not a network namespace/ });
  await t.throwsAsync(checkNetns('/nonexistent/ns'), { message: 'healthNetns: /nonexistent/ns: no such network namespace' });
  await t.notThrowsAsync(checkNetns('/proc/self/ns/net'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-hfix-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await sluice(['daemon', '--health-netns', '/tmp', '--listen', `unix://${dir}/a.sock`, '--state-dir', `${dir}/state`, '--pin-dir', `/sys/fs/bpf/sluice-hfix-${process.pid}`, '--metrics-bind-address', '']);
  t.is(r.code, 2);
  t.regex(r.stderr, /^sluice: --health-netns: \/tmp: not a network namespace/);
  t.false(existsSync(`${dir}/state`), 'refused before anything is made');
  const handlers = { transition: () => undefined, probe: () => undefined };
  const notNs = new RemoteProbeEngine({ handlers, netns: '/etc/hostname' });
  t.teardown(() => notNs.close());
  const e1 = await t.throwsAsync(notNs.start());
  t.true(e1 instanceof ProbeWorkerError);
  t.regex(e1!.message, /^nsenter: reassociate to namespace 'ns\/net' failed/);
  const noNsenter = new RemoteProbeEngine({ handlers, netns: '/proc/self/ns/net', nsenter: '/nonexistent/nsenter' });
  t.teardown(() => noNsenter.close());
  await t.throwsAsync(noNsenter.start(), { message: '/nonexistent/nsenter could not be started: /nonexistent/nsenter: not found' });
  const f = await startApi(t);
  await t.throwsAsync(startHealthChecks(f.plane, { netns: '/etc/hostname' }), { instanceOf: ProbeWorkerError });
  t.is(f.plane.health, undefined, 'no checker left behind');
});

test('probe worker: one that dies is started again with backoff, with its targets and their verdicts', async (t) => {
  const server = net.createServer((s) => s.on('error', () => undefined));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => void server.close());
  const { logger, said } = warnings();
  const transitions: string[] = [];
  let probes = 0;
  const engine = new RemoteProbeEngine({
    handlers: { transition: (_id, state) => void transitions.push(state), probe: () => void probes++ },
    netns: '/proc/self/ns/net',
    logger,
    flushMs: 50,
    restartMs: { initial: 50, max: 200 },
  });
  t.teardown(() => engine.close());
  t.is(engine.worker(), undefined, 'no worker yet');
  await engine.start();
  t.deepEqual(engine.worker(), { up: true, restarts: 0 });
  engine.set(1, { type: 'tcp', address: '127.0.0.1', port: (server.address() as net.AddressInfo).port, timeoutMs: 500, intervalMs: 100, rise: 1, fall: 1 });
  await until('healthy', () => transitions.length === 1);
  for (let i = 0; i < 4; i++) {
    const pid = engine.pid!;
    process.kill(pid, 'SIGKILL');
    await until(`worker ${i + 2} running`, () => engine.pid !== undefined && engine.pid !== pid);
  }
  t.deepEqual(engine.worker(), { up: true, restarts: 4 }, 'as the metrics show it');
  t.deepEqual(said.map((o) => o['restartInMs']), [50, 100, 200, 200], 'the wait doubles up to its bound');
  t.regex(String(said[0]!['error']), /the probe worker ended \(SIGKILL\)/);
  const seen = probes;
  await until('probed by the last worker', () => probes > seen + 2);
  t.deepEqual(transitions, ['healthy'], 'the verdict went over to each new worker: no new transition');
  t.is(engine.restarts, 4);
});
