/**
 * `sluice daemon`: the long-running control plane. It takes its state
 * directory and its pin directory for itself (one daemon each), adopts (or
 * creates) the pinned dataplane, restores desired state from the store,
 * converges the maps to it without touching conntrack, attaches to the
 * configured interfaces and serves the gRPC API.
 *
 * Starting is all or nothing: a start that fails removes what it made (the
 * pins it created, a database it created, its attachments, its
 * directories) and leaves what it found as it was. An empty store in front
 * of a populated dataplane is refused (starting would delete the live
 * services) unless `dataplaneStart` says to adopt or to reset it.
 *
 * stop() ends the API and releases everything in this process; the programs
 * stay attached and the pinned maps stay, so forwarding goes on while no
 * daemon runs (unless `detachOnExit` is set).
 */
import { existsSync, mkdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { readFile, statfs } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { FLOOD_RATE_DEFAULT, FLOW_TIMEOUT_DEFAULTS, NativeDataplane, type DataplaneCapacity, type FlowTimeouts, type SocketTarget } from '../dataplane/native-dataplane.js';
import { CONNTRACK_LIMITS, ConntrackGc, GC_INTERVAL_DEFAULT_S } from '../node/conntrack-gc.js';
import { pinnedCapacity, pinnedMismatches } from '../dataplane/pinned.js';
import { native } from '../dataplane/native.js';
import type { AttachMode, AttachTarget } from '../dataplane/dataplane.js';
import { SqliteKvStore } from '../store/sqlite-kv.js';
import { parseEtcdUrl } from '../store/etcd-url.js';
import type { KvStore } from '../store/kv.js';
import { Catalog } from '../catalog/catalog.js';
import { CatalogKeys } from '../catalog/keys.js';
import { legacyRowsToCatalog } from '../catalog/legacy.js';
import { buildControlPlane, type ControlPlane } from '../node/control-plane.js';
import { startHealthChecks } from '../node/health-checks.js';
import { ProbeWorkerError } from '../health/probe-host.js';
import type { ServiceDefinition } from '../model/definition.js';
import type { RegistrationValue } from '../catalog/keys.js';
import { checkListen, checkSocketFree, startApiServer } from '../api/server.js';
import { DEFAULT_DNS_ZONE, DNS_TTL_DEFAULT_S, DNS_TTL_MAX_S, zoneProblem } from '../dns/names.js';
import { startDnsServer } from '../dns/server.js';
import { SluiceError } from '../errors.js';
import { parseBindAddress, startHttpServer, type HttpServer } from '../metrics/http.js';
import { DaemonMetrics, metricsRoute } from '../metrics/daemon-metrics.js';
import { NodeSnapshotter } from '../metrics/node-snapshot.js';
import { statusRoutes } from '../status/routes.js';
import { adoptDataplane } from './adopt.js';
import { CAPACITY_FLAG, CAPACITY_RANGE, pinMismatchMessage } from './capacity.js';
import { lockDirectory } from './lock.js';
import { LinkFollower, type FollowedLink } from './link-follower.js';
import { addressProblem, isAddressProblem, parseAddress } from '../model/address.js';
import { clearPins, preparePinDir, undoPinDir, type PinDirState } from './pin-dir.js';

/** What to do with a pinned dataplane the store does not describe. */
export type DataplaneStart = 'refuse-unknown' | 'adopt' | 'reset';

/** Options of the daemon, with defaults resolved by resolveDaemonOptions. */
export interface DaemonOptions {
  /** Interfaces to attach to: "eth0" or "eth0@/var/run/netns/lb" (an interface inside a namespace). */
  interfaces: string[];
  /** xdp (native), xdp-generic or tc. */
  mode: AttachMode;
  /**
   * Links to follow: "PATTERN" or "PATTERN@/var/run/netns/NAME", a glob of
   * interface names (`veth*`; kube-proxy mode's pods' links): every
   * matching link, now and as it appears, gets the tc program at ingress
   * and egress (whatever `mode` is), and is forgotten when it goes
   * (LinkFollower).
   */
  followInterfaces: string[];
  /**
   * The hairpin SNAT address set at start (bpf/include/hairpin.h): an IPv4
   * address of the node, or null for none; absent, the pinned dataplane's
   * is kept (none for new maps). RunningDaemon.setHairpinAddress changes it.
   */
  hairpinSnatAddress?: string | null;
  /**
   * Balance the node's own processes at their sockets: "CGROUP" or
   * "CGROUP@/var/run/netns/NAME", a cgroup v2 directory whose processes'
   * connect()/sendmsg() to a VIP go to a backend, for sockets of that
   * namespace only (default the daemon's).
   */
  socketLb?: string;
  /** "unix:///path" (default unix:///run/sluice/sluice.sock, mode 0600) or "host:port". */
  listen: string;
  /**
   * HOST:PORT of the HTTP server of /metrics (and the pages mounted on it),
   * or "" for none; default DEFAULT_METRICS_BIND_ADDRESS.
   */
  metricsBindAddress: string;
  /** TLS for a TCP listener: PEM file paths; with `ca` and requireClientCert, mutual TLS. */
  tls?: { cert: string; key: string; ca?: string; requireClientCert?: boolean };
  /** The node's own directory: SQLite's sluice.db (without `store`), and its lock. */
  stateDir: string;
  /**
   * Where desired state lives: absent, SQLite in stateDir (one node);
   * "etcd://HOST:PORT[,HOST:PORT...]", an etcd cluster that several nodes
   * share.
   */
  store?: string;
  /** TLS to etcd: PEM file paths; cert and key go together. */
  storeTls?: { ca?: string; cert?: string; key?: string };
  /** The catalog's key prefix in the store (default /sluice). */
  storePrefix: string;
  /**
   * Restore replies of flows without an entry by their backend endpoint
   * (default true, false with followInterfaces: on pods' links a pod's
   * direct connection to another pod's service port would be rewritten).
   */
  statelessReplies: boolean;
  /** bpffs directory of the pinned maps. */
  pinDir: string;
  /** Detach the programs when the daemon exits (default: keep forwarding). */
  detachOnExit: boolean;
  /** Map capacities; an unset one is the pinned map's (when adopting pins) or the default. */
  capacity: Partial<DataplaneCapacity>;
  /** Idle timeouts of flows by state, whole seconds; an unset one is the dataplane's default (FLOW_TIMEOUT_DEFAULTS). */
  flowTimeouts: Partial<FlowTimeouts>;
  /** New flows a CPU tracks in one second (the flood guard; 0: no limit); unset: the dataplane's default. */
  floodRate?: number;
  /** Seconds between two passes of the conntrack collector (src/node/conntrack-gc.ts). */
  conntrackGcInterval: number;
  /**
   * The network namespace health probes go out from (a path); default: the
   * namespace of the interfaces when they all name the same one, else the
   * daemon's own.
   */
  healthNetns?: string;
  /**
   * When the health probe worker starts: at-start (a worker that cannot
   * start refuses the start; the default with healthNetns given) or
   * on-demand, at the first health check (the default otherwise, and the
   * kube-proxy mode's, whose services have none).
   */
  probeWorker?: 'at-start' | 'on-demand';
  /** Replace a program of someone else's on an interface's hook. */
  force: boolean;
  /**
   * An empty store with a populated pinned dataplane: refuse (default),
   * `adopt` (rebuild the store from the maps), or `reset` (start from empty
   * maps, dropping every connection). `reset` also rebuilds maps whose size
   * differs from the capacity asked for.
   */
  dataplaneStart: DataplaneStart;
  /** pino log level. */
  logLevel: string;
  /** Where the DNS server for the services answers, UDP and TCP ("HOST:PORT"; "", the default: no DNS server). */
  dnsBindAddress: string;
  /** The zone of the services' names: service default/web is web.default.<zone> (src/dns/names.ts). */
  dnsZone: string;
  /** TTL of DNS answers, negative ones included, seconds. */
  dnsTtl: number;
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

/** Where the daemon serves /metrics unless told otherwise (the port is sluice's own, next to node_exporter's 9100 range). */
export const DEFAULT_METRICS_BIND_ADDRESS = '127.0.0.1:9469';

/** Fill in defaults and check; INVALID_ARGUMENT naming the option (a DaemonOptions field, or capacity.<name>). */
export function resolveDaemonOptions(o: Partial<DaemonOptions>): DaemonOptions {
  const followInterfaces = o.followInterfaces ?? [];
  const out: DaemonOptions = {
    interfaces: o.interfaces ?? [],
    followInterfaces,
    mode: o.mode ?? 'xdp',
    listen: o.listen ?? 'unix:///run/sluice/sluice.sock',
    metricsBindAddress: o.metricsBindAddress ?? DEFAULT_METRICS_BIND_ADDRESS,
    stateDir: o.stateDir ?? '/var/lib/sluice',
    storePrefix: o.storePrefix ?? DEFAULT_STORE_PREFIX,
    statelessReplies: o.statelessReplies ?? followInterfaces.length === 0,
    pinDir: o.pinDir ?? '/sys/fs/bpf/sluice',
    detachOnExit: o.detachOnExit ?? false,
    capacity: { ...o.capacity },
    flowTimeouts: { ...o.flowTimeouts },
    conntrackGcInterval: o.conntrackGcInterval ?? GC_INTERVAL_DEFAULT_S,
    force: o.force ?? false,
    dataplaneStart: o.dataplaneStart ?? 'refuse-unknown',
    logLevel: o.logLevel ?? 'info',
    dnsBindAddress: o.dnsBindAddress ?? '',
    dnsZone: o.dnsZone ?? DEFAULT_DNS_ZONE,
    dnsTtl: o.dnsTtl ?? DNS_TTL_DEFAULT_S,
    heapGrowingPercent: o.heapGrowingPercent ?? DEFAULT_HEAP_GROWING_PERCENT,
  };
  if (o.tls) out.tls = o.tls;
  parseBindAddress(out.metricsBindAddress, 'metricsBindAddress', '127.0.0.1:9469');
  if (o.floodRate !== undefined) out.floodRate = o.floodRate;
  // A worker for a namespace the user named is started (and so checked) at
  // once; otherwise at the first health check: a daemon whose services have
  // none runs no probe process.
  out.probeWorker = o.probeWorker ?? (o.healthNetns !== undefined ? 'at-start' : 'on-demand');
  if (o.healthNetns !== undefined) {
    if (!path.isAbsolute(o.healthNetns)) throw new SluiceError('INVALID_ARGUMENT', `must be the absolute path of a network namespace (e.g. /var/run/netns/lb), got ${JSON.stringify(o.healthNetns)}`, { field: 'healthNetns' });
    out.healthNetns = o.healthNetns;
  } else {
    const spaces = new Set(out.interfaces.map((i) => parseInterface(i, out.mode).netns));
    const only = spaces.size === 1 ? [...spaces][0] : undefined;
    if (only !== undefined) out.healthNetns = only;
  }
  for (const [name, v] of Object.entries(out.flowTimeouts)) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 1 && v <= CONNTRACK_LIMITS.timeoutMaxS)) {
      throw new SluiceError('INVALID_ARGUMENT', `must be whole seconds in 1..${CONNTRACK_LIMITS.timeoutMaxS}, got ${v}`, { field: `flowTimeouts.${name}` });
    }
  }
  if (out.floodRate !== undefined && !(Number.isInteger(out.floodRate) && out.floodRate >= 0 && out.floodRate <= CONNTRACK_LIMITS.floodRateMax)) {
    throw new SluiceError('INVALID_ARGUMENT', `must be an integer in 0..${CONNTRACK_LIMITS.floodRateMax}, got ${out.floodRate}`, { field: 'floodRate' });
  }
  if (!(Number.isInteger(out.conntrackGcInterval) && out.conntrackGcInterval >= 1 && out.conntrackGcInterval <= CONNTRACK_LIMITS.gcIntervalMaxS)) {
    throw new SluiceError('INVALID_ARGUMENT', `must be whole seconds in 1..${CONNTRACK_LIMITS.gcIntervalMaxS}, got ${out.conntrackGcInterval}`, { field: 'conntrackGcInterval' });
  }
  if (o.hairpinSnatAddress !== undefined) out.hairpinSnatAddress = checkHairpinAddress(o.hairpinSnatAddress, 'hairpinSnatAddress');
  if (o.socketLb !== undefined) {
    out.socketLb = o.socketLb;
    const t = parseSocketLb(o.socketLb);
    if (!path.isAbsolute(t.cgroup) || (t.netns !== undefined && !path.isAbsolute(t.netns))) {
      throw new SluiceError('INVALID_ARGUMENT', `must be an absolute cgroup v2 directory, optionally @ an absolute namespace path (e.g. /sys/fs/cgroup or /sys/fs/cgroup/node@/var/run/netns/node), got ${o.socketLb}`, { field: 'socketLb' });
    }
  }
  const seenFollow = new Set<string>();
  for (const spec of followInterfaces) {
    const f = parseFollow(spec);
    if (!/^[^\s/@]{1,15}$/.test(f.pattern)) throw new SluiceError('INVALID_ARGUMENT', `not a pattern of interface names: ${JSON.stringify(f.pattern)} (in ${spec}); e.g. veth* or veth*@/var/run/netns/node`, { field: 'followInterfaces' });
    if (f.netns !== undefined && !path.isAbsolute(f.netns)) {
      throw new SluiceError('INVALID_ARGUMENT', `the namespace after @ must be an absolute path (e.g. /var/run/netns/node), got ${spec}`, { field: 'followInterfaces' });
    }
    if (seenFollow.has(spec)) throw new SluiceError('INVALID_ARGUMENT', `${spec} is given twice`, { field: 'followInterfaces' });
    seenFollow.add(spec);
  }
  if (o.store !== undefined) {
    out.store = o.store;
    parseEtcdUrl(o.store);
  }
  if (o.storeTls !== undefined) {
    out.storeTls = { ...o.storeTls };
    const given = (['ca', 'cert', 'key'] as const).find((k) => o.storeTls?.[k] !== undefined);
    if (given && out.store === undefined) {
      throw new SluiceError('INVALID_ARGUMENT', 'applies to an etcd store: give --store etcd://HOST:PORT too', { field: `storeTls.${given}` });
    }
    if ((out.storeTls.cert === undefined) !== (out.storeTls.key === undefined)) {
      throw new SluiceError('INVALID_ARGUMENT', 'a client certificate and its key go together: give --store-cert and --store-key', { field: out.storeTls.cert === undefined ? 'storeTls.cert' : 'storeTls.key' });
    }
  }
  if (!/^\/[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(out.storePrefix)) {
    throw new SluiceError('INVALID_ARGUMENT', `must be a path of [A-Za-z0-9._-] parts such as /sluice or /prod/lb, without a trailing slash, got ${JSON.stringify(out.storePrefix)}`, { field: 'storePrefix' });
  }
  if (o.storePrefix !== undefined && out.store === undefined && o.storePrefix !== DEFAULT_STORE_PREFIX) {
    throw new SluiceError('INVALID_ARGUMENT', 'applies to an etcd store (SQLite in --state-dir holds one node\'s state): give --store etcd://HOST:PORT too', { field: 'storePrefix' });
  }
  parseBindAddress(out.dnsBindAddress, 'dnsBindAddress', '127.0.0.1:5353');
  const zone = zoneProblem(out.dnsZone);
  if (zone !== undefined) throw new SluiceError('INVALID_ARGUMENT', zone, { field: 'dnsZone' });
  if (!(Number.isInteger(out.dnsTtl) && out.dnsTtl >= 0 && out.dnsTtl <= DNS_TTL_MAX_S)) {
    throw new SluiceError('INVALID_ARGUMENT', `must be whole seconds in 0..${DNS_TTL_MAX_S}, got ${out.dnsTtl}`, { field: 'dnsTtl' });
  }
  for (const [field, given] of [['dnsZone', o.dnsZone], ['dnsTtl', o.dnsTtl]] as const) {
    if (given !== undefined && out.dnsBindAddress === '') {
      throw new SluiceError('INVALID_ARGUMENT', 'applies to the DNS server, which is off: give --dns-bind-address HOST:PORT too', { field });
    }
  }
  if (!['xdp', 'xdp-generic', 'tc'].includes(out.mode)) {
    throw new SluiceError('INVALID_ARGUMENT', `must be xdp, xdp-generic or tc, got ${out.mode}`, { field: 'mode' });
  }
  if (!['refuse-unknown', 'adopt', 'reset'].includes(out.dataplaneStart)) {
    throw new SluiceError('INVALID_ARGUMENT', `must be refuse-unknown, adopt or reset, got ${out.dataplaneStart}`, { field: 'dataplaneStart' });
  }
  if (!Number.isInteger(out.heapGrowingPercent) || out.heapGrowingPercent < 0 || out.heapGrowingPercent > 1000) {
    throw new SluiceError('INVALID_ARGUMENT', `must be an integer in 0..1000, got ${out.heapGrowingPercent}`, { field: 'heapGrowingPercent' });
  }
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(out.logLevel)) {
    throw new SluiceError('INVALID_ARGUMENT', `must be fatal, error, warn, info, debug, trace or silent, got ${out.logLevel}`, { field: 'logLevel' });
  }
  for (const [name, r] of Object.entries(CAPACITY_RANGE) as Array<[keyof DataplaneCapacity, { min: number; max: number }]>) {
    const v = out.capacity[name];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < r.min || v > r.max || (name === 'maglevSlots' && v % 2 !== 0)) {
      const even = name === 'maglevSlots' ? 'an even integer' : 'an integer';
      throw new SluiceError('INVALID_ARGUMENT', `must be ${even} in ${r.min}..${r.max}, got ${v}`, { field: `capacity.${name}` });
    }
  }
  for (const [field, dir] of [['stateDir', out.stateDir], ['pinDir', out.pinDir]] as const) {
    if (!path.isAbsolute(dir)) throw new SluiceError('INVALID_ARGUMENT', `must be an absolute path, got ${dir}`, { field });
  }
  if (out.tls?.requireClientCert && !out.tls.ca) {
    throw new SluiceError('INVALID_ARGUMENT', 'needs the CA that signs client certificates (--tls-ca): without it every client would be refused', { field: 'tls.requireClientCert' });
  }
  const seen = new Set<string>();
  for (const spec of out.interfaces) {
    const t = parseInterface(spec, out.mode);
    if (!/^[^\s/:]{1,15}$/.test(t.ifname)) throw new SluiceError('INVALID_ARGUMENT', `not an interface name: ${JSON.stringify(t.ifname)} (in ${spec})`, { field: 'interfaces' });
    if (t.netns !== undefined && !path.isAbsolute(t.netns)) {
      throw new SluiceError('INVALID_ARGUMENT', `the namespace after @ must be an absolute path (e.g. /var/run/netns/lb), got ${spec}`, { field: 'interfaces' });
    }
    if (seen.has(spec)) throw new SluiceError('INVALID_ARGUMENT', `${spec} is given twice`, { field: 'interfaces' });
    seen.add(spec);
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

/**
 * glibc malloc, set for a long-lived daemon whose bulk loads are followed by
 * long quiet times: at most two arenas (rather than 8 per core: V8's and
 * libuv's threads each kept one, with what they once held), and freed memory
 * at the top of the heap, or in large blocks, handed back to the kernel at
 * 128 KiB rather than kept up to glibc's dynamic thresholds (up to 64 MiB).
 * A MALLOC_* variable in the environment (glibc's own tunables) wins.
 */
function applyMallocTuning(log: Logger): void {
  const set: Array<['ARENA_MAX' | 'TRIM_THRESHOLD' | 'MMAP_THRESHOLD', string, number]> = [
    ['ARENA_MAX', 'MALLOC_ARENA_MAX', 2],
    ['TRIM_THRESHOLD', 'MALLOC_TRIM_THRESHOLD_', 128 * 1024],
    ['MMAP_THRESHOLD', 'MALLOC_MMAP_THRESHOLD_', 128 * 1024],
  ];
  const tunables = process.env['GLIBC_TUNABLES'] ?? '';
  for (const [param, env, value] of set) {
    if (process.env[env] !== undefined || tunables.includes(`glibc.malloc.${param.toLowerCase()}=`)) continue;
    native().mallopt(param, value);
  }
  log.debug('malloc tuned');
}

/** An IPv4 address a packet can come back to, or null (off); INVALID_ARGUMENT naming `field` otherwise. */
export function checkHairpinAddress(address: string | null, field: string): string | null {
  if (address === null) return null;
  const p = addressProblem(address);
  if (p) throw new SluiceError('INVALID_ARGUMENT', p.kind === 'syntax' ? `not an IPv4 address: ${JSON.stringify(address)}` : `${address} is in ${p.why}`, { field });
  return address;
}

/**
 * An IPv6 address a packet can come back to, in RFC 5952 text, or null
 * (off); INVALID_ARGUMENT naming `field` otherwise. The ranges refused are
 * the model's for a VIP or a backend (src/model/address.ts).
 */
export function checkHairpinAddress6(address: string | null, field: string): string | null {
  if (address === null) return null;
  const p = parseAddress(address);
  if (isAddressProblem(p)) {
    throw new SluiceError('INVALID_ARGUMENT', p.kind === 'syntax' ? `not an IPv6 address: ${JSON.stringify(address)}` : `${address} is in ${p.why}`, { field });
  }
  if (p.family !== 6) throw new SluiceError('INVALID_ARGUMENT', `not an IPv6 address: ${JSON.stringify(address)}`, { field });
  return p.text;
}

/** Parse "veth*" or "veth*@/var/run/netns/node" (--follow-interfaces). */
export function parseFollow(spec: string): { pattern: string; netns?: string } {
  const at = spec.indexOf('@');
  return at < 0 ? { pattern: spec } : { pattern: spec.slice(0, at), netns: spec.slice(at + 1) };
}

/** Parse "/sys/fs/cgroup" or "/sys/fs/cgroup/x@/var/run/netns/node" (--socket-lb). */
export function parseSocketLb(spec: string): SocketTarget {
  const at = spec.indexOf('@');
  return at < 0 ? { cgroup: spec } : { cgroup: spec.slice(0, at), netns: spec.slice(at + 1) };
}

/** Parse "eth0" or "eth0@/var/run/netns/lb". */
export function parseInterface(spec: string, mode: AttachMode): AttachTarget {
  const at = spec.indexOf('@');
  if (at < 0) return { ifname: spec, mode };
  return { ifname: spec.slice(0, at), netns: spec.slice(at + 1), mode };
}

/**
 * Read the TLS files and check that they make a usable context (PEM that
 * parses, a key that matches its certificate) before anything else starts.
 * INVALID_ARGUMENT naming tls.cert, tls.key or tls.ca.
 */
async function checkTls(tls: NonNullable<DaemonOptions['tls']>): Promise<void> {
  const read = async (file: string, field: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
      throw new SluiceError('INVALID_ARGUMENT', `${file}: ${why}`, { field, cause: err });
    }
  };
  const cert = await read(tls.cert, 'tls.cert');
  const key = await read(tls.key, 'tls.key');
  const ca = tls.ca === undefined ? undefined : await read(tls.ca, 'tls.ca');
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new SluiceError('INVALID_ARGUMENT', `${tls.cert} and ${tls.key} do not make a certificate and its key: ${(err as Error).message}`, { field: 'tls.cert', cause: err });
  }
  if (ca !== undefined) {
    try {
      // A CA file must hold a certificate: TLS would take a key or an empty file and trust nothing.
      if (!ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw new Error('no certificate in it');
      new X509Certificate(ca);
      createSecureContext({ ca });
    } catch (err) {
      throw new SluiceError('INVALID_ARGUMENT', `${tls.ca}: not a PEM certificate: ${(err as Error).message}`, { field: 'tls.ca', cause: err });
    }
  }
}

/** Remove `dir` and its parents up to `top` (the first one mkdir made), each only if empty. */
function rmEmptyDirs(dir: string, top: string): void {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
    if (d === top || d === path.dirname(d)) return;
  }
}

/** The catalog's key prefix in the store, unless --store-prefix says otherwise. */
export const DEFAULT_STORE_PREFIX = '/sluice';

/**
 * What the catalog asks of the maps: services, frontends, and backend
 * entries (one per backend, static or registered, of each frontend; those
 * in maintenance are not in the maps).
 */
async function catalogDemand(store: KvStore, keys: CatalogKeys): Promise<{ services: number; frontends: number; backendEntries: number }> {
  const [services, regs] = await Promise.all([store.range(keys.services), store.range(keys.registrations)]);
  const registered = new Map<string, number>();
  for (const kv of regs.kvs) {
    const p = keys.parse(kv.key);
    if (p?.kind === 'registration' && (JSON.parse(kv.value) as RegistrationValue).state !== 'maintenance') {
      registered.set(p.name, (registered.get(p.name) ?? 0) + 1);
    }
  }
  let frontends = 0;
  let backendEntries = 0;
  for (const kv of services.kvs) {
    const d = JSON.parse(kv.value) as ServiceDefinition;
    const n = d.addresses.length * d.ports.length;
    frontends += n;
    backendEntries += n * (d.backends.filter((b) => b.state !== 'maintenance').length + (registered.get(d.name) ?? 0));
  }
  return { services: services.kvs.length, frontends, backendEntries };
}

/** The store as messages name it. */
function storeName(opts: DaemonOptions): string {
  return opts.store === undefined ? path.join(opts.stateDir, 'sluice.db') : `${opts.store} under ${opts.storePrefix}`;
}

/**
 * Open the store the options name: SQLite in the state directory (made if
 * need be, and removed again by `undo` if this start made it), or the etcd
 * cluster (UNAVAILABLE if no member answers).
 */
async function openStore(opts: DaemonOptions, undo: Array<() => void | Promise<void>>, log: Logger): Promise<KvStore> {
  if (opts.store !== undefined) {
    const endpoints = parseEtcdUrl(opts.store);
    const tls = opts.storeTls && Object.keys(opts.storeTls).length > 0 ? await readStoreTls(opts.storeTls) : undefined;
    // Loaded here: a daemon on SQLite need not hold etcd3 and its protocol definitions.
    const { EtcdKvStore } = await import('../store/etcd-kv.js');
    let store: KvStore;
    try {
      store = await EtcdKvStore.connect({ endpoints, ...(tls ? { tls } : {}), logger: log.child({ component: 'etcd' }) });
    } catch (err) {
      if (err instanceof SluiceError && err.field === undefined) {
        throw new SluiceError(err.code, `--store ${opts.store}: ${err.message}`, { cause: err });
      }
      throw err;
    }
    undo.push(() => store.close());
    log.info({ store: opts.store, prefix: opts.storePrefix, tls: tls !== undefined }, 'connected to etcd');
    return store;
  }
  const dbPath = path.join(opts.stateDir, 'sluice.db');
  const dbExisted = existsSync(dbPath);
  let store: KvStore;
  try {
    // A file of an older sluice (schema 1) has its services moved into the catalog's keys.
    const keys = new CatalogKeys(opts.storePrefix);
    store = SqliteKvStore.open(dbPath, { migrateSchema1: (rows) => legacyRowsToCatalog(rows, keys) });
  } catch (err) {
    if (!(err instanceof SluiceError)) throw err;
    throw new SluiceError(
      err.code,
      `${err.message}; restore it from a backup, or move it away and start again (with --adopt-dataplane, the store is rebuilt from the pinned dataplane)`,
      { cause: err },
    );
  }
  undo.push(async () => {
    await store.close();
    if (!dbExisted) for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) rmSync(f, { force: true });
  });
  return store;
}

/** The etcd TLS files, read; INVALID_ARGUMENT naming storeTls.<which> for one that cannot be read. */
async function readStoreTls(t: NonNullable<DaemonOptions['storeTls']>): Promise<{ ca?: Buffer; cert?: Buffer; key?: Buffer }> {
  const out: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  for (const k of ['ca', 'cert', 'key'] as const) {
    const file = t[k];
    if (file === undefined) continue;
    try {
      out[k] = await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
      throw new SluiceError('INVALID_ARGUMENT', `${file}: ${why}`, { field: `storeTls.${k}`, cause: err });
    }
  }
  return out;
}

/** INVALID_ARGUMENT (field interfaces) unless the target's namespace and interface exist. */
function checkInterface(t: AttachTarget): void {
  try {
    native().ifIndex(t.ifname, ...(t.netns === undefined ? [] : [t.netns]));
  } catch (err) {
    const e = err as { code?: string; syscall?: string };
    const spec = t.netns === undefined ? t.ifname : `${t.ifname}@${t.netns}`;
    if (e.code === 'ENOENT' && e.syscall !== 'if_nametoindex') {
      throw new SluiceError('INVALID_ARGUMENT', `${spec}: no network namespace at ${t.netns}`, { field: 'interfaces', cause: err });
    }
    if (e.code === 'ENODEV' || e.code === 'ENXIO') {
      throw new SluiceError('INVALID_ARGUMENT', `${spec}: no such network interface${t.netns === undefined ? '' : ` in ${t.netns}`}`, { field: 'interfaces', cause: err });
    }
    throw err;
  }
}

/** A running daemon. */
export interface RunningDaemon {
  /** The address the API listens on. */
  address: string;
  /** The node's control plane. */
  plane: ControlPlane;
  /** Snapshots of the node (services, counters, health), for pages that show it. */
  snapshots: NodeSnapshotter;
  /** The daemon's metrics (the kube-proxy mode serves their text with its own). */
  metrics: DaemonMetrics;
  /**
   * The HTTP server of --metrics-bind-address (undefined when off): /metrics,
   * and whatever else mounts a path on it (`httpServer.routes.set(path, handler)`).
   */
  httpServer?: HttpServer;
  /**
   * Set the hairpin SNAT address (an IPv4 address of the node, as the
   * kube-proxy agent learns it from the Node object), or turn hairpin SNAT
   * off (null); INVALID_ARGUMENT for an address no packet can come back to.
   */
  setHairpinAddress(address: string | null): void;
  /** setHairpinAddress for IPv6 flows (node_config6): an IPv6 address of the node, or null (off). */
  setHairpinAddress6(address: string | null): void;
  /** The links followed now (followInterfaces), with their namespace. */
  followedLinks(): Array<FollowedLink & { netns?: string }>;
  /** Stop serving and release this process's resources (idempotent). */
  stop(): Promise<void>;
}

/** Start the daemon; resolves once the API serves. On failure, everything it made is undone. */
/** What a caller (the kube-proxy agent) runs inside the daemon's start. */
export interface DaemonStartHooks {
  /**
   * Awaited once the maps hold the store and the API is bound, before
   * anything is attached; a failure undoes the start like any other.
   */
  beforeAttach?: () => Promise<void>;
}

/** statfs(2)'s f_type of nsfs, where namespaces are (linux/magic.h NSFS_MAGIC). */
const NSFS_MAGIC = 0x6e736673;

/** Refuse a --health-netns that is not a network namespace, as nsenter would, before anything starts. */
export async function checkNetns(p: string): Promise<void> {
  let type: number;
  try {
    type = Number((await statfs(p)).type);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SluiceError('INVALID_ARGUMENT', code === 'ENOENT' ? `${p}: no such network namespace` : `${p}: ${(err as Error).message}`, { field: 'healthNetns', cause: err });
  }
  if (type !== NSFS_MAGIC) {
    throw new SluiceError('INVALID_ARGUMENT', `${p}: not a network namespace (give one such as /var/run/netns/NAME, as ip netns add makes, or /proc/PID/ns/net)`, { field: 'healthNetns' });
  }
}

export async function startDaemon(opts: DaemonOptions, logger: Logger = pino({ level: opts.logLevel }), hooks: DaemonStartHooks = {}): Promise<RunningDaemon> {
  const log = logger.child({ component: 'daemon' });
  applyHeapGrowth(opts.heapGrowingPercent, log);
  applyMallocTuning(log);
  if (opts.healthNetns !== undefined) await checkNetns(opts.healthNetns);
  if (opts.tls) await checkTls(opts.tls);
  else if (!opts.listen.startsWith('unix://')) {
    log.warn({ listen: opts.listen }, 'the API listens on TCP without TLS: anyone who reaches it controls the load balancer; give --tls-cert and --tls-key (with --tls-ca and --require-client-cert for mutual TLS), or listen on a unix socket');
  }

  // Undo steps, run in reverse if the start fails.
  const undo: Array<() => void | Promise<void>> = [];
  const rollback = async (): Promise<void> => {
    for (const u of undo.reverse()) {
      try {
        await u();
      } catch (err) {
        log.warn({ err }, 'cleanup after a failed start');
      }
    }
  };

  try {
    // Every interface must exist before anything is made, and every namespace and cgroup named.
    for (const t of opts.interfaces.map((i) => parseInterface(i, opts.mode))) checkInterface(t);
    for (const f of opts.followInterfaces.map(parseFollow)) {
      if (f.netns !== undefined && !existsSync(f.netns)) {
        throw new SluiceError('INVALID_ARGUMENT', `${f.pattern}@${f.netns}: no network namespace at ${f.netns}`, { field: 'followInterfaces' });
      }
    }
    const socketLb = opts.socketLb === undefined ? undefined : parseSocketLb(opts.socketLb);
    if (socketLb && !existsSync(path.join(socketLb.cgroup, 'cgroup.procs'))) {
      throw new SluiceError('INVALID_ARGUMENT', `${socketLb.cgroup}: not a cgroup directory`, { field: 'socketLb' });
    }
    if (socketLb?.netns !== undefined && !existsSync(socketLb.netns)) {
      throw new SluiceError('INVALID_ARGUMENT', `${opts.socketLb}: no network namespace at ${socketLb.netns}`, { field: 'socketLb' });
    }
    // And no other server on the API socket (bound later, after the maps).
    await checkSocketFree(opts.listen);

    // The state directory, locked: one daemon per store.
    if (existsSync(opts.stateDir) && !statSync(opts.stateDir).isDirectory()) {
      throw new SluiceError('INVALID_ARGUMENT', `${opts.stateDir} is not a directory`, { field: 'stateDir' });
    }
    const madeState = mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    if (madeState !== undefined) undo.push(() => rmEmptyDirs(opts.stateDir, madeState));
    const stateLock = lockDirectory(opts.stateDir, 'state directory', '--state-dir');
    undo.push(() => stateLock.release());

    // The pin directory: on bpffs, checked before it is made, and locked: one daemon per dataplane.
    const pins: PinDirState = preparePinDir(opts.pinDir);
    undo.push(() => undoPinDir(pins));
    const pinLock = lockDirectory(opts.pinDir, 'pin directory', '--pin-dir');
    undo.push(() => pinLock.release());

    // The unix socket's directory (/run/sluice by default) is made if need be.
    if (opts.listen.startsWith('unix://')) {
      const socketDir = path.dirname(opts.listen.slice('unix://'.length));
      if (!existsSync(socketDir)) {
        const made = mkdirSync(socketDir, { recursive: true, mode: 0o755 });
        if (made !== undefined) undo.push(() => rmEmptyDirs(socketDir, made));
      }
    }

    const store = await openStore(opts, undo, log);
    const keys = new CatalogKeys(opts.storePrefix);
    const demand = await catalogDemand(store, keys);
    const freshStore = demand.services === 0;

    // Capacity: what was asked, else what the pins have, else the defaults.
    const pinned = pinnedCapacity(opts.pinDir);
    const capacity: Partial<DataplaneCapacity> = {};
    const reset = opts.dataplaneStart === 'reset';
    for (const name of Object.keys(CAPACITY_RANGE) as Array<keyof DataplaneCapacity>) {
      const asked = opts.capacity[name];
      const has = pinned[name];
      if (asked !== undefined && has !== undefined && asked !== has && !reset) {
        throw new SluiceError(
          'FAILED_PRECONDITION',
          `${CAPACITY_FLAG[name]} ${asked} differs from the pinned dataplane in ${opts.pinDir} (${has}): ` +
            `give ${CAPACITY_FLAG[name]} ${has}, or --reset-dataplane to rebuild the maps at the new size (every connection is dropped)`,
        );
      }
      capacity[name] = asked ?? (reset ? undefined : has) ?? CAPACITY_RANGE[name].default;
    }

    // Every pinned map of a capacity has the size that capacity gives it
    // (pins of a build that sized some at compile time may not): libbpf
    // would refuse the pin with a bare EINVAL.
    const odd = reset ? [] : pinnedMismatches(opts.pinDir, capacity);
    if (odd.length > 0) throw new SluiceError('FAILED_PRECONDITION', pinMismatchMessage(opts.pinDir, odd, capacity));

    // The store must fit the maps: checked before any pin is touched.
    for (const [name, need] of [['frontends', demand.frontends], ['backends', demand.backendEntries]] as const) {
      if (need > capacity[name]!) {
        throw new SluiceError(
          'RESOURCE_EXHAUSTED',
          `the store holds ${need} ${name === 'frontends' ? 'frontends (VIP x port x protocol)' : 'backend entries'}, more than ${CAPACITY_FLAG[name]} ${capacity[name]}: give ${CAPACITY_FLAG[name]} ${need} or more`,
        );
      }
    }

    // A reset takes the old maps' programs over: they are this daemon's to replace.
    const formerMapIds: number[] = [];
    if (reset && pins.before.size > 0) {
      for (const map of ['conntrack', 'services']) {
        const file = path.join(opts.pinDir, map);
        if (existsSync(file)) formerMapIds.push(native().pinnedMapInfo(file).id);
      }
      const removed = clearPins(opts.pinDir);
      log.warn({ pinDir: opts.pinDir, removed }, 'reset: the pinned dataplane is replaced by empty maps');
    }

    const dp = await NativeDataplane.open({
      pinDir: opts.pinDir,
      capacity,
      statelessReplies: opts.statelessReplies,
      flowTimeouts: opts.flowTimeouts,
      ...(opts.floodRate !== undefined ? { floodRate: opts.floodRate } : {}),
    });
    undo.push(() => void dp.close());
    for (const id of formerMapIds) dp.formerMapIds.add(id);
    log.info({ pinDir: opts.pinDir, adopted: dp.reused }, dp.reused.length ? 'adopted the pinned dataplane' : 'created the dataplane');
    if (opts.hairpinSnatAddress !== undefined) dp.setHairpinAddress(opts.hairpinSnatAddress);
    log.info({ hairpinSnatAddress: dp.hairpinAddress(), given: opts.hairpinSnatAddress !== undefined }, dp.hairpinAddress() === null ? 'hairpin SNAT off' : 'hairpin SNAT on');
    if (opts.statelessReplies && opts.followInterfaces.length > 0) {
      log.warn('stateless replies are on while following pods\' links: a pod\'s direct connection to another pod\'s service port has its replies rewritten to the VIP');
    }
    const usage = dp.mapUsage();
    const mib = (b: number): number => Math.round((b / 1048576) * 10) / 10;
    log.info(
      { capacity, maps: Object.fromEntries(usage.map((u) => [u.map, { entries: u.entries, MiB: mib(u.bytes) }])), totalMiB: mib(usage.reduce((a, u) => a + u.bytes, 0)) },
      'dataplane maps (kernel memory)',
    );

    // An empty store in front of a live dataplane: converging would delete every service.
    const live = dp.listServices().length;
    if (opts.dataplaneStart === 'adopt' && !(freshStore && live > 0)) {
      log.warn({ freshStore, liveServices: live }, 'adopt: nothing adopted: --adopt-dataplane rebuilds an empty store from a dataplane that holds services, and this store is not empty or the dataplane is');
    }
    if (freshStore && live > 0) {
      if (opts.dataplaneStart !== 'adopt') {
        throw new SluiceError(
          'FAILED_PRECONDITION',
          `the store (${storeName(opts)}) is empty, but the pinned dataplane in ${opts.pinDir} holds ${live} service ${live === 1 ? 'entry' : 'entries'} (VIP:port:protocol) that would be deleted: ` +
            'give --adopt-dataplane to rebuild the store from them (services named adopted/<vip>-<port>-<protocol>), ' +
            'or --reset-dataplane to start from empty maps (every connection is dropped)',
        );
      }
      const adopted = adoptDataplane(dp);
      for (const line of adopted.skipped) log.warn({ skipped: line }, 'adopt: left out');
      // The load balancer finds the adopted frontends' ids in the maps by their keys.
      if (adopted.definitions.length > 0) {
        await new Catalog({ store, keys }).apply(adopted.definitions.map((definition) => ({ definition, expectedRevision: 0 })));
      }
      log.warn({ services: adopted.definitions.length, skipped: adopted.skipped.length }, 'adopt: the store was rebuilt from the pinned dataplane');
    }

    const plane = await buildControlPlane({ store, dataplane: dp, prefix: opts.storePrefix, logger });
    undo.push(() => plane.close());
    const gc = new ConntrackGc({ dataplane: dp, intervalMs: opts.conntrackGcInterval * 1000, tableSize: capacity.conntrack! + capacity.conntrack6!, logger: logger.child({ component: 'conntrack-gc' }) });
    plane.conntrackGc = gc;
    gc.start();
    undo.push(() => gc.stop());
    const checker = await startHealthChecks(plane, {
      ...(opts.healthNetns !== undefined ? { netns: opts.healthNetns } : {}),
      worker: opts.probeWorker ?? 'at-start',
      logger: logger.child({ component: 'health' }),
    }).catch((err: unknown) => {
      if (!(err instanceof ProbeWorkerError)) throw err;
      if (opts.healthNetns === undefined) throw new SluiceError('FAILED_PRECONDITION', `the health probe worker could not start: ${err.message}`, { cause: err });
      throw new SluiceError('INVALID_ARGUMENT', `${opts.healthNetns}: the health probe worker could not start in it: ${err.message}`, { field: 'healthNetns', cause: err });
    });
    undo.push(() => checker.close());
    // The values in force, defaults filled in: what a reader of the log needs.
    log.info({
      flowTimeouts: { ...FLOW_TIMEOUT_DEFAULTS, ...opts.flowTimeouts },
      floodRate: opts.floodRate ?? FLOOD_RATE_DEFAULT,
      conntrackGcInterval: opts.conntrackGcInterval,
    }, 'flow lifecycle (seconds; flood rate in new flows a second per CPU)');
    const targets = opts.interfaces.map((i) => parseInterface(i, opts.mode));
    log.info({ services: plane.view.size, revision: plane.view.revision, staleRemoved: plane.removed }, 'desired state restored');

    // The API is bound before anything is attached (a listen address that
    // fails must not cost the interfaces their programs), and reports
    // NOT_SERVING until they are attached.
    const snapshots = new NodeSnapshotter({ plane, dataplane: dp });
    const metrics = new DaemonMetrics({ dataplane: dp, plane });
    const unobserve = plane.syncer.onApplied(metrics.observeApplied);
    undo.push(unobserve);
    const server = await startApiServer({
      plane,
      listen: opts.listen,
      ...(opts.tls ? { tls: opts.tls } : {}),
      logger: logger.child({ component: 'api' }),
      notServingYet: true,
      observe: metrics.observeApi,
    });
    undo.push(() => server.close());
    // Bound before anything is attached, as the API is: a taken port refuses the start.
    const metricsAt = parseBindAddress(opts.metricsBindAddress, 'metricsBindAddress', '127.0.0.1:9469');
    let httpServer: HttpServer | undefined;
    if (metricsAt) {
      // The status page shares the address: its streams end when the server closes.
      const statusLog = logger.child({ component: 'status' });
      const routes = statusRoutes(snapshots, { onError: (err) => statusLog.warn({ err }, 'status page: cannot read the node') });
      routes.set('/metrics', metricsRoute(metrics));
      const http = await startHttpServer({ bind: metricsAt, field: 'metricsBindAddress', hint: 'is another sluice daemon running? give each its own --metrics-bind-address, or "" for none', routes });
      httpServer = http;
      undo.push(() => http.close());
      log.info({ address: http.address }, `serving /metrics and the status page at http://${http.address}/`);
    }

    // DNS, bound before anything is attached too: a taken port refuses the start.
    const dnsAt = parseBindAddress(opts.dnsBindAddress, 'dnsBindAddress', '127.0.0.1:5353');
    const dns = dnsAt && (await startDnsServer({ view: plane.view, zone: opts.dnsZone, ...dnsAt, ttl: opts.dnsTtl, logger: logger.child({ component: 'dns' }) }));
    if (dns) {
      undo.push(() => dns.close());
      log.info({ address: dns.address, zone: opts.dnsZone, ttl: opts.dnsTtl, names: dns.zone.services }, 'DNS answering for the services (UDP and TCP)');
    }

    await hooks.beforeAttach?.();

    // Every interface is checked before any is attached: a refusal on the last leaves the first untouched.
    const plans = targets.map((t) => dp.planAttach(t, { force: opts.force }));
    for (const plan of plans) {
      const t = plan.target;
      dp.attach(t, { force: opts.force });
      // Taken back if the start fails: only an attachment to an empty hook.
      // This dataplane's earlier program (same maps) would have forwarded on.
      if (plan.current.owner === 'none') undo.push(() => dp.detach(t));
      for (const h of plan.detach) {
        log.warn({ ifname: t.ifname, netns: t.netns, hook: h.hook, program: h.id, owner: h.owner }, h.owner === 'own' ? 'detached this dataplane\'s program from the hook of an earlier --mode' : 'detached another program (--force)');
      }
      if (plan.current.owner === 'sluice' || plan.current.owner === 'other') {
        log.warn({ ifname: t.ifname, netns: t.netns, hook: plan.current.hook, program: plan.current.id }, 'replaced another program (--force)');
      }
      log.info({ ifname: t.ifname, netns: t.netns, mode: t.mode }, 'attached');
    }
    if (socketLb) {
      const was = dp.socketsAttached(socketLb);
      dp.attachSockets(socketLb);
      if (!was) undo.push(() => dp.detachSockets(socketLb));
      log.info({ cgroup: socketLb.cgroup, netns: socketLb.netns }, 'balancing the node\'s own sockets (connect, sendmsg, recvmsg, getpeername; IPv4 and IPv6)');
    }

    // Native XDP redirects only to the XDP interfaces attached now.
    dp.keepXdpPorts(plans.filter((p) => p.target.mode !== 'tc').map((p) => p.ifindex));

    // Followed links last: each follower attaches as links come, for as long as it runs.
    const followers: LinkFollower[] = [];
    const byNetns = new Map<string | undefined, string[]>();
    for (const f of opts.followInterfaces.map(parseFollow)) byNetns.set(f.netns, [...(byNetns.get(f.netns) ?? []), f.pattern]);
    for (const [netns, patterns] of byNetns) {
      const follower = await LinkFollower.start({
        patterns,
        ...(netns === undefined ? {} : { netns }),
        dataplane: dp,
        force: opts.force,
        logger,
      });
      followers.push(follower);
      undo.push(() => follower.stop());
      log.info({ patterns, netns, links: follower.links().map((l) => l.ifname) }, 'following links');
    }

    server.setServing(true);
    log.info({ address: server.address }, 'serving');
    const watchdog = watchAttachments(dp, targets, log);

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        watchdog.stop();
        await Promise.all(followers.map((f) => f.stop()));
        await server.close();
        await dns?.close();
        await httpServer?.close();
        unobserve();
        await gc.stop();
        checker.close();
        plane.close();
        if (opts.detachOnExit) {
          for (const t of targets) {
            try {
              dp.detach(t);
            } catch (err) {
              log.warn({ err, ifname: t.ifname }, 'detach failed');
            }
          }
          for (const f of followers) f.detachAll();
          if (socketLb) {
            try {
              dp.detachSockets(socketLb);
            } catch (err) {
              log.warn({ err, cgroup: socketLb.cgroup }, 'detach failed');
            }
          }
        }
        await store.close();
        dp.close();
        pinLock.release();
        stateLock.release();
        log.info({ detached: opts.detachOnExit }, opts.detachOnExit ? 'stopped and detached' : 'stopped; the dataplane keeps forwarding');
      })());
    const setHairpinAddress = (address: string | null): void => {
      dp.setHairpinAddress(checkHairpinAddress(address, 'hairpinAddress'));
      log.info({ hairpinSnatAddress: address }, address === null ? 'hairpin SNAT off' : 'hairpin SNAT address set');
    };
    const setHairpinAddress6 = (address: string | null): void => {
      dp.setHairpinAddress(checkHairpinAddress6(address, 'hairpinAddress6'), 6);
      log.info({ hairpinSnatAddress6: address }, address === null ? 'IPv6 hairpin SNAT off' : 'IPv6 hairpin SNAT address set');
    };
    const followedLinks = (): Array<FollowedLink & { netns?: string }> =>
      followers.flatMap((f, i) => {
        const netns = [...byNetns.keys()][i];
        return f.links().map((l) => (netns === undefined ? l : { ...l, netns }));
      });
    return { address: server.address, plane, snapshots, metrics, ...(httpServer ? { httpServer } : {}), stop, setHairpinAddress, setHairpinAddress6, followedLinks };
  } catch (err) {
    await rollback();
    throw err;
  }
}

/** How often the daemon checks that its programs are still attached, in ms. */
const ATTACH_CHECK_MS = 5000;

/**
 * Check now and then that each interface's hook still runs this
 * dataplane's program. An interface that was removed and made again (a
 * veth recreated, a NIC re-bound) has an empty hook: the program is
 * attached again. A hook someone else took (another tool, a daemon with
 * --force) is left to them and reported: this daemon would otherwise go on
 * answering for traffic it no longer sees. Each loss and each return is
 * logged once.
 */
function watchAttachments(dp: NativeDataplane, targets: AttachTarget[], log: Logger): { stop(): void } {
  const lost = new Set<string>();
  const timer = setInterval(() => {
    for (const t of targets) {
      const key = `${t.netns ?? ''}/${t.ifname}`;
      let ok = false;
      let why = 'the interface is gone';
      try {
        ok = dp.isAttached(t);
        if (!ok) {
          const plan = dp.planAttach(t);
          if (plan.current.owner === 'none') {
            dp.attach(t);
            ok = true;
            log.warn({ ifname: t.ifname, netns: t.netns, mode: t.mode }, 'the hook was empty (the interface was made again?): attached again');
          }
        }
      } catch (err) {
        why = (err as Error).message;
      }
      if (!ok && !lost.has(key)) {
        lost.add(key);
        log.error({ ifname: t.ifname, netns: t.netns, mode: t.mode, why }, 'this dataplane\'s program is no longer attached here (replaced or removed): traffic on it is not balanced; it is attached again when the hook is free, or restart the daemon (with --force to take it back)');
      } else if (ok && lost.delete(key)) {
        log.info({ ifname: t.ifname, netns: t.netns }, 'attached again');
      }
    }
  }, ATTACH_CHECK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
