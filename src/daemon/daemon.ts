/**
 * `sluice daemon`: the long-running control plane. It adopts (or creates)
 * the pinned dataplane, restores desired state from the store in the state
 * directory, converges the maps to it without touching conntrack, attaches
 * to the configured interfaces and serves the gRPC API.
 *
 * SIGTERM/SIGINT stop the API and release everything in this process; the
 * programs stay attached and the pinned maps stay, so forwarding goes on
 * while no daemon runs (unless `detachOnExit` is set).
 */
import { mkdir } from 'node:fs/promises';
import { setFlagsFromString } from 'node:v8';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { NativeDataplane } from '../dataplane/native-dataplane.js';
import type { AttachMode, AttachTarget } from '../dataplane/dataplane.js';
import { LoadBalancer } from '../lb/load-balancer.js';
import { SqliteStore } from '../store/sqlite-store.js';
import { Registry } from '../registry/registry.js';
import { checkListen, startApiServer } from '../api/server.js';
import { SluiceError } from '../errors.js';

/** Options of the daemon, with defaults resolved by resolveDaemonOptions. */
export interface DaemonOptions {
  /** Interfaces to attach to: "eth0" or "eth0@/var/run/netns/lb" (an interface inside a namespace). */
  interfaces: string[];
  /** xdp (native), xdp-generic or tc. */
  mode: AttachMode;
  /** "unix:///path" (default unix:///run/sluice/sluice.sock, mode 0600) or "host:port". */
  listen: string;
  /** TLS for a TCP listener: PEM file paths; with `ca` and requireClientCert, mutual TLS. */
  tls?: { cert: string; key: string; ca?: string; requireClientCert?: boolean };
  /** Directory of the store (sluice.db). */
  stateDir: string;
  /** bpffs directory of the pinned maps. */
  pinDir: string;
  /** Detach the programs when the daemon exits (default: keep forwarding). */
  detachOnExit: boolean;
  /** Conntrack capacity (entries; two per flow). */
  conntrackSize?: number;
  /** pino log level. */
  logLevel: string;
  /**
   * How far V8 lets the old generation grow past what survived the last
   * full GC, in percent (V8's --heap-growing-percent); 0 leaves V8's own
   * factor. A node command line that sets the flag itself wins.
   */
  heapGrowingPercent: number;
}

/**
 * The daemon's default heap growth. V8's own factor lets the old
 * generation reach 2-4 × what survived the last full GC, sized for
 * throughput: after applying 10,000 services × 10 backends in batches of
 * 1,000 the daemon held ~53 MB live in a 124-139 MB heap, RSS 225-241 MB.
 * With 50 % it runs more full GCs during such a load (daemon CPU +2-8 %)
 * and stays at RSS 187-199 MB; a backend change allocates too little to
 * notice either way. (Measured before the young generation was capped,
 * see src/cli/main.ts; with both, RSS 171-183 MB.)
 */
export const DEFAULT_HEAP_GROWING_PERCENT = 50;

/** Fill in defaults. */
export function resolveDaemonOptions(o: Partial<DaemonOptions>): DaemonOptions {
  const out: DaemonOptions = {
    interfaces: o.interfaces ?? [],
    mode: o.mode ?? 'xdp',
    listen: o.listen ?? 'unix:///run/sluice/sluice.sock',
    stateDir: o.stateDir ?? '/var/lib/sluice',
    pinDir: o.pinDir ?? '/sys/fs/bpf/sluice',
    detachOnExit: o.detachOnExit ?? false,
    logLevel: o.logLevel ?? 'info',
    heapGrowingPercent: o.heapGrowingPercent ?? DEFAULT_HEAP_GROWING_PERCENT,
  };
  if (o.tls) out.tls = o.tls;
  if (o.conntrackSize !== undefined) out.conntrackSize = o.conntrackSize;
  if (!['xdp', 'xdp-generic', 'tc'].includes(out.mode)) {
    throw new SluiceError('INVALID_ARGUMENT', `must be xdp, xdp-generic or tc, got ${out.mode}`, { field: 'mode' });
  }
  if (!Number.isInteger(out.heapGrowingPercent) || out.heapGrowingPercent < 0 || out.heapGrowingPercent > 1000) {
    throw new SluiceError('INVALID_ARGUMENT', `must be an integer in 0..1000, got ${out.heapGrowingPercent}`, { field: 'heapGrowingPercent' });
  }
  checkListen(out.listen, out.tls !== undefined);
  return out;
}

/** Set V8's heap growth (read at each full GC, so setting it now applies). */
function applyHeapGrowth(percent: number, log: Logger): void {
  const given = [...process.execArgv, ...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/)]
    .some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a));
  if (given || percent === 0) return;
  setFlagsFromString(`--heap-growing-percent=${percent}`);
  log.debug({ heapGrowingPercent: percent }, 'heap growth set');
}

/** Parse "eth0" or "eth0@/var/run/netns/lb". */
export function parseInterface(spec: string, mode: AttachMode): AttachTarget {
  const at = spec.indexOf('@');
  if (at < 0) return { ifname: spec, mode };
  return { ifname: spec.slice(0, at), netns: spec.slice(at + 1), mode };
}

/** A running daemon. */
export interface RunningDaemon {
  /** The address the API listens on. */
  address: string;
  registry: Registry;
  /** Stop serving and release this process's resources (idempotent). */
  stop(): Promise<void>;
}

/** Start the daemon; resolves once the API serves. */
export async function startDaemon(opts: DaemonOptions, logger: Logger = pino({ level: opts.logLevel })): Promise<RunningDaemon> {
  const log = logger.child({ component: 'daemon' });
  applyHeapGrowth(opts.heapGrowingPercent, log);
  await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
  if (opts.listen.startsWith('unix://')) {
    await mkdir(path.dirname(opts.listen.slice('unix://'.length)), { recursive: true, mode: 0o755 });
  }

  const dp = await NativeDataplane.open({
    pinDir: opts.pinDir,
    ...(opts.conntrackSize !== undefined ? { conntrackSize: opts.conntrackSize } : {}),
  });
  log.info({ pinDir: opts.pinDir, adopted: dp.reused }, dp.reused.length ? 'adopted the pinned dataplane' : 'created the dataplane');
  const store = SqliteStore.open(path.join(opts.stateDir, 'sluice.db'));
  const lb = new LoadBalancer(dp, { ids: store.loadIds() });
  const registry = new Registry({ store, lb, dataplane: dp, logger: logger.child({ component: 'registry' }) });
  const targets = opts.interfaces.map((i) => parseInterface(i, opts.mode));
  let server: { address: string; close(): Promise<void> } | undefined;
  try {
    await registry.start();
    const removed = await lb.converge();
    log.info({ services: store.count(), revision: store.revision(), staleRemoved: removed }, 'desired state restored');
    for (const t of targets) {
      dp.attach(t);
      log.info({ ifname: t.ifname, netns: t.netns, mode: t.mode }, 'attached');
    }
    server = await startApiServer({
      registry,
      listen: opts.listen,
      ...(opts.tls ? { tls: opts.tls } : {}),
      logger: logger.child({ component: 'api' }),
    });
    log.info({ address: server.address }, 'serving');
  } catch (err) {
    registry.close();
    store.close();
    dp.close();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await server?.close();
      registry.close();
      if (opts.detachOnExit) {
        for (const t of targets) {
          try {
            dp.detach(t);
          } catch (err) {
            log.warn({ err, ifname: t.ifname }, 'detach failed');
          }
        }
      }
      store.close();
      dp.close();
      log.info({ detached: opts.detachOnExit }, opts.detachOnExit ? 'stopped and detached' : 'stopped; the dataplane keeps forwarding');
    })());
  return { address: server.address, registry, stop };
}
