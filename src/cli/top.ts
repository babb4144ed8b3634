/**
 * `sluice top`: a live view of the node's services and backends in a
 * terminal, from the API (GetStats for the counters, ListServices for
 * weights, states and health). Plain ANSI so it works over SSH: the
 * alternate screen, the whole frame redrawn each interval and on resize,
 * stdin in raw mode for the keys; the terminal is restored on every way
 * out. With --once it prints one frame (two samples an interval apart, so
 * rates exist) and needs no terminal. What is shown is top-view.ts's.
 */
import { performance } from 'node:perf_hooks';
import type { SluiceClient } from '../api/client.js';
import type { GetStatsResponse, ServiceMessage } from '../api/messages.js';
import { SluiceError } from '../errors.js';
import { emit, type OutputFormat } from './output.js';
import {
  dropRates,
  onKey,
  parseKeys,
  renderFrame,
  serviceRows,
  sortBackends,
  sortRows,
  type TopBackend,
  type TopCounters,
  type TopSample,
  type ViewState,
} from './top-view.js';

/** What `sluice top` runs with. */
export interface TopOptions {
  client: SluiceClient;
  /** The daemon's address, for the title. */
  server: string;
  intervalMs: number;
  once: boolean;
  output: OutputFormat;
  /** Start in this service's backends. */
  service?: string;
  stdin?: NodeJS.ReadStream;
  stdout?: NodeJS.WriteStream;
}

const counters = (c: { packets: string; bytes: string; newConnections: string } | null | undefined): TopCounters => ({
  packets: Number(c?.packets ?? 0),
  bytes: Number(c?.bytes ?? 0),
  newConnections: Number(c?.newConnections ?? 0),
});

/** An enum name as top shows it: lower case, without the enum's own prefix; undefined for the unset value or a missing field. */
function enumName(v: unknown, prefix: RegExp): string | undefined {
  if (typeof v !== 'string' || v === '' || /UNSPECIFIED$/.test(v)) return undefined;
  return v.replace(prefix, '').toLowerCase();
}

const sum = (o: object | null | undefined): number => Object.values(o ?? {}).reduce((a: number, v) => a + (typeof v === 'string' || typeof v === 'number' ? Number(v) : 0), 0);

/** The last probe as a cell: "ok 0.4ms" or its error; undefined before the first (or without the field). */
function lastProbe(v: unknown): string | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const p = v as { ok?: unknown; latencyUs?: unknown; error?: unknown };
  if (p.ok === true) return `ok ${(Number(p.latencyUs ?? 0) / 1000).toFixed(1)}ms`;
  return typeof p.error === 'string' && p.error !== '' ? p.error : 'failed';
}

/**
 * One sample from the two answers: the services and counters of GetStats,
 * with each backend's weight, admin state and health from ListServices
 * (a backend in maintenance is in the definition but not in the
 * dataplane, so it has no counters). Health fields are read by name, and
 * shown as "-" where the API has none.
 */
export function toSample(stats: GetStatsResponse, services: readonly ServiceMessage[], atMs: number): TopSample {
  const defined = new Map(services.map((s) => [s.name, s]));
  const names = new Set([...stats.services.map((s) => s.name), ...services.map((s) => s.name)]);
  const byName = new Map(stats.services.map((s) => [s.name, s]));
  const out: TopSample = { atMs, services: [], drops: sum(stats.globalStats?.drops), rejects: sum(stats.globalStats?.rejects) };
  for (const name of [...names].sort()) {
    const st = byName.get(name);
    const def = defined.get(name);
    const live = new Map(st?.backends.map((b) => [b.address, b]));
    const addresses = def ? def.backends.map((b) => b.address) : [...live.keys()];
    const backends = addresses.map((address): TopBackend => {
      const b = def?.backends.find((x) => x.address === address);
      const l = live.get(address);
      const state = enumName(b?.state ?? l?.state, /^STATE_/) ?? 'active';
      const extra = b as unknown as Record<string, unknown> | undefined;
      const effective = enumName(extra?.['effectiveState'], /^STATE_/) ?? enumName(l?.state, /^STATE_/);
      // HEALTH_UNSPECIFIED is "not checked", as `service get` says; a message without the field says nothing of health.
      const rawHealth = extra?.['health'];
      const health = rawHealth === 'HEALTH_UNSPECIFIED' ? 'not checked' : enumName(rawHealth, /^HEALTH_/);
      const probe = lastProbe(extra?.['lastProbe']);
      return {
        address,
        weight: b?.weight ?? 1,
        state,
        ...(effective !== undefined && effective !== state ? { effectiveState: effective } : {}),
        ...(health !== undefined ? { health } : {}),
        ...(probe !== undefined ? { lastProbe: probe } : {}),
        ...(l ? { counters: counters(l.counters) } : {}),
      };
    });
    out.services.push({ name, ...(def ? { vips: def.addresses } : {}), counters: counters(st?.counters), backends });
  }
  return out;
}

/** Every page of ListServices. */
async function listAll(c: SluiceClient): Promise<ServiceMessage[]> {
  const all: ServiceMessage[] = [];
  let pageToken = '';
  do {
    const page = await c.listServices({ pageSize: 1000, pageToken });
    all.push(...page.services);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return all;
}

/** Read one sample; its time is when the reads were sent (a monotonic clock). */
export async function readSample(c: SluiceClient): Promise<TopSample> {
  const atMs = performance.now();
  const [stats, services] = await Promise.all([c.getStats(), listAll(c)]);
  return toSample(stats, services, atMs);
}

/** The rows of two samples as -o json/yaml prints them. */
export function onceData(previous: TopSample, sample: TopSample, state: ViewState, intervalMs: number): unknown {
  const rows = sortRows(serviceRows(previous, sample), state.sort).filter((r) => state.mode === 'services' || r.name === state.service);
  const d = dropRates(previous, sample);
  const r3 = (n: number | undefined): number => Math.round((n ?? 0) * 1000) / 1000;
  return {
    intervalMs,
    dropsPerSecond: r3(d?.drops),
    rejectsPerSecond: r3(d?.rejects),
    services: rows.map((r) => ({
      name: r.name,
      packetsPerSecond: r3(r.rates?.packets),
      bytesPerSecond: r3(r.rates?.bytes),
      newConnectionsPerSecond: r3(r.rates?.newConnections),
      packets: r.counters.packets,
      bytes: r.counters.bytes,
      newConnections: r.counters.newConnections,
      backendsUp: r.up,
      backends: sortBackends(r.backends, state.sort).map((b) => ({
        address: b.address,
        state: b.state,
        effectiveState: b.effectiveState ?? b.state,
        weight: b.weight,
        health: b.health ?? null,
        lastProbe: b.lastProbe ?? null,
        packetsPerSecond: b.rates ? r3(b.rates.packets) : null,
        bytesPerSecond: b.rates ? r3(b.rates.bytes) : null,
        newConnectionsPerSecond: b.rates ? r3(b.rates.newConnections) : null,
        packets: b.counters?.packets ?? null,
        bytes: b.counters?.bytes ?? null,
        newConnections: b.counters?.newConnections ?? null,
      })),
    })),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** "12:34:56", local time. */
function clock(): string {
  const d = new Date();
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((x) => String(x).padStart(2, '0')).join(':');
}

function message(err: unknown): string {
  const e = err as { codeName?: string; message?: string };
  const text = (e.message ?? String(err)).replace(/\s*\n\s*/g, ' ').trim();
  return e.codeName ? `${e.codeName}: ${text}` : text;
}

/** Run top until `q` (or, with --once, print one frame). */
export async function runTop(opts: TopOptions): Promise<void> {
  const stdout = opts.stdout ?? process.stdout;
  const stdin = opts.stdin ?? process.stdin;
  let state: ViewState = opts.service !== undefined ? { mode: 'backends', sort: 'packets', service: opts.service } : { mode: 'services', sort: 'packets' };

  if (opts.once) {
    const previous = await readSample(opts.client);
    await sleep(opts.intervalMs);
    const sample = await readSample(opts.client);
    if (opts.service !== undefined && !sample.services.some((s) => s.name === opts.service)) {
      throw new SluiceError('NOT_FOUND', `service ${JSON.stringify(opts.service)} not found`);
    }
    const frame = () => renderFrame({
      server: opts.server, sample, previous, state, intervalMs: opts.intervalMs,
      width: stdout.isTTY ? stdout.columns : Infinity, height: Infinity, keys: false,
    }).lines.join('\n');
    stdout.write(`${emit(opts.output, onceData(previous, sample, state, opts.intervalMs), frame)}\n`);
    return;
  }

  let sample: TopSample | undefined;
  let previous: TopSample | undefined;
  let error: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));

  const size = (): { width: number; height: number } => ({ width: stdout.columns || 80, height: stdout.rows || 24 });
  const rowsShown = () => (sample ? sortRows(serviceRows(previous, sample), state.sort) : []);
  const draw = (): void => {
    if (stopped) return;
    const { width, height } = size();
    const f = renderFrame({ server: opts.server, sample, previous, state, intervalMs: opts.intervalMs, width, height, keys: true, clock: clock(), ...(error !== undefined ? { error } : {}) });
    // Home, each line then erase to its end, erase below: no flicker, nothing left of a longer frame.
    const body = f.lines.map((l, i) => (i === f.selected ? `\x1b[7m${l.padEnd(width)}\x1b[m` : `${l}\x1b[K`)).join('\r\n');
    stdout.write(`\x1b[H${body}\x1b[J`);
  };
  const poll = async (): Promise<void> => {
    const started = performance.now();
    try {
      const s = await readSample(opts.client);
      previous = sample;
      sample = s;
      error = undefined;
    } catch (err) {
      error = message(err);
    }
    if (stopped) return;
    draw();
    timer = setTimeout(() => void poll(), Math.max(0, opts.intervalMs - (performance.now() - started)));
  };

  const restore = (): void => {
    if (stopped) return;
    stopped = true;
    if (timer) clearTimeout(timer);
    stdin.off('data', onData);
    stdout.off('resize', draw);
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
    // Show the cursor, leave the alternate screen: the shell's screen comes back as it was.
    stdout.write('\x1b[?25h\x1b[?1049l');
    process.off('exit', restore);
    for (const s of SIGNALS) process.off(s, onSignal);
    finish();
  };
  const onData = (chunk: string): void => {
    for (const key of parseKeys(chunk)) {
      const page = Math.max(1, size().height - 6);
      const next = onKey(state, key, rowsShown(), page);
      if (next === 'quit') return restore();
      state = next;
    }
    draw();
  };
  const onSignal = (): void => restore();
  const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGINT'];

  stdout.write('\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J');
  process.on('exit', restore);
  for (const s of SIGNALS) process.on(s, onSignal);
  try {
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.on('data', onData);
    stdin.resume();
    stdout.on('resize', draw);
    draw();
    await poll();
  } catch (err) {
    restore();
    throw err;
  }
  await done;
}
