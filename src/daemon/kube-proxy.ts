/**
 * `sluice kube-proxy`: the node agent that replaces kube-proxy. It is the
 * daemon (one dataplane per node: pins, locks, adoption, the API on a
 * local socket for `sluice stats`, `flow lookup`, `conntrack list`) with
 * Kubernetes as the writer of its services: a KubeSource (src/kube/)
 * lists and watches the API server and writes, as owner "kubernetes",
 * into the node's own SQLite store, which the node's reconciler follows.
 * Health and metrics are served where the process runs; with --netns the
 * dataplane is attached inside that namespace (the node) while the API
 * server is reached from here, so one machine can host several simulated
 * nodes.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ipaddr from 'ipaddr.js';
import { pino, type Logger } from 'pino';
import { Catalog } from '../catalog/catalog.js';
import { SluiceError } from '../errors.js';
import { connectKube } from '../kube/client.js';
import type { DaemonMetrics } from '../metrics/daemon-metrics.js';
import { statusRoutes } from '../status/routes.js';
import { KubeMetrics, parseBindAddress, startHealthServers, type HealthServers } from '../kube/health.js';
import { KubeSource, type KubeApi } from '../kube/source.js';
import { KUBE_OWNER } from '../kube/translate.js';
import type { DataplaneCapacity } from '../dataplane/native-dataplane.js';
import { cgroup2Root } from './cgroup-root.js';
import type { FlowTimeouts } from '../dataplane/native-dataplane.js';
import { resolveDaemonOptions, startDaemon, type DaemonOptions, type RunningDaemon } from './daemon.js';

const run = promisify(execFile);

/** Examples for a bad bind address: kube-proxy's own defaults. */
const HEALTHZ_EXAMPLE = '0.0.0.0:10256';
const METRICS_EXAMPLE = '127.0.0.1:10249';

/** Options of the agent, with kube-proxy's names where it has the option. */
export interface KubeProxyOptions {
  /** kubeconfig file; absent: the in-cluster configuration. */
  kubeconfig?: string;
  /** This node's name in the API (default: the host name). */
  hostnameOverride: string;
  /** HOST:PORT of /healthz and /livez ("" turns them off). */
  healthzBindAddress: string;
  /** HOST:PORT of /metrics ("" turns it off). */
  metricsBindAddress: string;
  /** CIDRs selecting the node addresses that carry node ports (empty: all). */
  nodePortAddresses: string[];
  /** The pods' CIDRs (kube-proxy's --cluster-cidr): checked and logged; see README. */
  clusterCidr: string[];
  /** The hook on the node's external interfaces: xdp (native) or tc. Pod interfaces always use tc. */
  mode: 'xdp' | 'tc';
  pinDir: string;
  stateDir: string;
  /** The node's network namespace (a path), if not this process's. */
  netns?: string;
  /** External interfaces; default: those that carry a default route in the node's namespace. */
  interfaces: string[];
  /** Name patterns of the pods' host-side links, followed as they come and go (tc). */
  podInterfaces: string[];
  /** The cgroup v2 directory whose processes' sockets are balanced at connect()/sendmsg() ("" off; default the cgroup v2 root). */
  socketLb: string;
  /** Map capacities (the daemon's flags); an unset one is the pinned map's or the default. */
  capacity?: Partial<DataplaneCapacity>;
  /** The API for sluice's CLI (stats, flow lookup, conntrack). */
  listen: string;
  /** Idle timeouts of flows by state, whole seconds (kube-proxy's --conntrack-tcp-timeout-established, --conntrack-udp-timeout; sluice's for the others); unset: the dataplane's. */
  flowTimeouts?: Partial<FlowTimeouts>;
  /** The flood guard: new flows a CPU tracks in one second (0: no limit); unset: the dataplane's. */
  floodRate?: number;
  /** Seconds between conntrack collector passes; unset: the daemon's. */
  conntrackGcInterval?: number;
  /** kube-proxy's --min-sync-period, ms. */
  minSyncMs: number;
  /** How long a change may wait before /healthz says 503, ms (kube-proxy: 2 × its 30 s sync period). */
  healthTimeoutMs: number;
  /** How long an endpoint that left keeps its TCP connections, ms. */
  drainGraceMs: number;
  logLevel: string;
}

/** Fill in defaults and check every value; INVALID_ARGUMENT naming the option otherwise. */
export function resolveKubeProxyOptions(o: Partial<KubeProxyOptions>): KubeProxyOptions {
  const out: KubeProxyOptions = {
    hostnameOverride: o.hostnameOverride ?? hostname(),
    healthzBindAddress: o.healthzBindAddress ?? '0.0.0.0:10256',
    metricsBindAddress: o.metricsBindAddress ?? '127.0.0.1:10249',
    nodePortAddresses: o.nodePortAddresses ?? [],
    clusterCidr: o.clusterCidr ?? [],
    mode: o.mode ?? 'xdp',
    pinDir: o.pinDir ?? '/sys/fs/bpf/sluice',
    stateDir: o.stateDir ?? '/var/lib/sluice',
    interfaces: o.interfaces ?? [],
    podInterfaces: o.podInterfaces ?? ['veth*'],
    // The cgroup v2 root: every process of the node (only sockets of its namespace are translated).
    socketLb: o.socketLb ?? cgroup2Root() ?? '',
    listen: o.listen ?? 'unix:///run/sluice/sluice.sock',
    minSyncMs: o.minSyncMs ?? 100,
    healthTimeoutMs: o.healthTimeoutMs ?? 60_000,
    drainGraceMs: o.drainGraceMs ?? 3_600_000,
    logLevel: o.logLevel ?? 'info',
  };
  if (o.kubeconfig !== undefined) out.kubeconfig = o.kubeconfig;
  if (o.capacity !== undefined) out.capacity = { ...o.capacity };
  if (o.flowTimeouts !== undefined) out.flowTimeouts = o.flowTimeouts;
  if (o.floodRate !== undefined) out.floodRate = o.floodRate;
  if (o.conntrackGcInterval !== undefined) out.conntrackGcInterval = o.conntrackGcInterval;
  if (o.netns !== undefined) {
    if (!path.isAbsolute(o.netns)) throw new SluiceError('INVALID_ARGUMENT', `must be an absolute path (e.g. /var/run/netns/node1), got ${o.netns}`, { field: 'netns' });
    if (!existsSync(o.netns)) throw new SluiceError('INVALID_ARGUMENT', `no network namespace at ${o.netns}`, { field: 'netns' });
    out.netns = o.netns;
  }
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(out.hostnameOverride)) {
    throw new SluiceError('INVALID_ARGUMENT', `must be a node name (lower-case letters, digits, "-" and "."), got ${JSON.stringify(out.hostnameOverride)}`, { field: 'hostnameOverride' });
  }
  parseBindAddress(out.healthzBindAddress, 'healthzBindAddress', HEALTHZ_EXAMPLE);
  parseBindAddress(out.metricsBindAddress, 'metricsBindAddress', METRICS_EXAMPLE);
  if (out.nodePortAddresses.includes('primary') && out.nodePortAddresses.length > 1) {
    throw new SluiceError('INVALID_ARGUMENT', 'primary stands alone (the node\'s primary address); give it or CIDRs, not both', { field: 'nodePortAddresses' });
  }
  for (const [field, list] of [['nodePortAddresses', out.nodePortAddresses.filter((c) => c !== 'primary')], ['clusterCidr', out.clusterCidr]] as const) {
    for (const c of list) {
      if (!ipaddr.IPv4.isValidCIDR(c) && !(ipaddr.IPv6.isValidCIDR(c) && !c.includes('%'))) {
        throw new SluiceError('INVALID_ARGUMENT', `must be CIDRs like 10.0.0.0/8 or fd00::/64, comma-separated, got ${JSON.stringify(c)}`, { field });
      }
    }
  }
  if (out.mode !== 'xdp' && out.mode !== 'tc') throw new SluiceError('INVALID_ARGUMENT', `must be xdp or tc, got ${out.mode as string}`, { field: 'mode' });
  return out;
}

/** The interfaces with a default route of either family in the namespace (the node's way out: its external interfaces). */
async function defaultRouteInterfaces(netns: string | undefined): Promise<string[]> {
  const devs = new Set<string>();
  for (const family of ['-4', '-6']) {
    const ip = ['ip', '-j', family, 'route', 'show', 'default'];
    const [cmd, args] = netns === undefined ? [ip[0]!, ip.slice(1)] : ['nsenter', [`--net=${netns}`, ...ip]];
    const { stdout } = await run(cmd, args);
    const routes = JSON.parse(stdout || '[]') as Array<{ dev?: string; nexthops?: Array<{ dev?: string }> }>;
    for (const r of routes) {
      if (r.dev) devs.add(r.dev);
      for (const n of r.nexthops ?? []) if (n.dev) devs.add(n.dev);
    }
  }
  return [...devs];
}

/** A running agent. */
export interface RunningKubeProxy {
  daemon: RunningDaemon;
  source: KubeSource;
  health: HealthServers;
  /** The interfaces attached at start (external). */
  interfaces: string[];
  stop(): Promise<void>;
}

/** Start the agent; on failure, everything it made is undone. `api` replaces the kubeconfig's (tests). */
export async function startKubeProxy(opts: KubeProxyOptions, logger: Logger = pino({ level: opts.logLevel }), api?: KubeApi): Promise<RunningKubeProxy> {
  const log = logger.child({ component: 'kube-proxy' });
  // The kubeconfig is read (and client-node, about 0.8 s of module loading,
  // loaded) while the daemon loads its BPF object off the main thread; the
  // daemon waits for it before it attaches anything, so a bad kubeconfig
  // still leaves the node untouched.
  const kubeP = api ? Promise.resolve({ api, server: 'given' }) : connectKube(opts.kubeconfig);
  kubeP.catch(() => undefined);
  const external = opts.interfaces.length > 0 ? opts.interfaces : await defaultRouteInterfaces(opts.netns);
  if (external.length === 0) log.warn({ netns: opts.netns }, 'no external interface (no default route, and no --interface): node ports and load balancer IPs are served only to pods');
  if (opts.podInterfaces.length === 0) log.warn('pod interfaces: off (--pod-interfaces ""): pods\' links are not followed, their traffic to services is not balanced');
  if (opts.clusterCidr.length > 0) log.info({ clusterCidr: opts.clusterCidr }, 'cluster CIDR noted: pod traffic keeps its source address; it will select what is masqueraded once traffic crosses nodes');
  const at = (x: string): string => (opts.netns === undefined ? x : `${x}@${opts.netns}`);
  const daemonOpts: DaemonOptions = resolveDaemonOptions({
    interfaces: external.map(at),
    followInterfaces: opts.podInterfaces.map(at),
    ...(opts.socketLb !== '' ? { socketLb: at(opts.socketLb) } : {}),
    ...(opts.capacity !== undefined ? { capacity: opts.capacity } : {}),
    mode: opts.mode,
    listen: opts.listen,
    // The daemon's families are served on the agent's own --metrics-bind-address, after its own.
    metricsBindAddress: '',
    // Kubernetes readiness is the source of truth here: no service has a health check.
    probeWorker: 'on-demand',
    stateDir: opts.stateDir,
    pinDir: opts.pinDir,
    logLevel: opts.logLevel,
    ...(opts.flowTimeouts !== undefined ? { flowTimeouts: opts.flowTimeouts } : {}),
    ...(opts.floodRate !== undefined ? { floodRate: opts.floodRate } : {}),
    ...(opts.conntrackGcInterval !== undefined ? { conntrackGcInterval: opts.conntrackGcInterval } : {}),
  });
  // The health and metrics ports first: one that is taken (kube-proxy still
  // running) must refuse the start before anything is attached.
  const metrics = new KubeMetrics();
  let src: KubeSource | undefined;
  let daemonMetrics: DaemonMetrics | undefined;
  const healthz = parseBindAddress(opts.healthzBindAddress, 'healthzBindAddress', HEALTHZ_EXAMPLE);
  const metricsAt = parseBindAddress(opts.metricsBindAddress, 'metricsBindAddress', METRICS_EXAMPLE);
  const startedAt = Date.now();
  const health = await startHealthServers({
    ...(healthz ? { healthz } : {}),
    ...(metricsAt ? { metrics: metricsAt } : {}),
    state: {
      lastSynced: () => src?.lastSynced,
      oldestPending: () => (src ? src.oldestPending : startedAt),
      nodeEligible: () => src?.nodeEligible ?? true,
    },
    metricsRegistry: metrics,
    moreMetrics: async () => (daemonMetrics ? daemonMetrics.text() : ''),
    healthTimeoutMs: opts.healthTimeoutMs,
    beforeScrape: () => {
      if (!src) return;
      const c = src.counts();
      metrics.services.set(c.services);
      metrics.endpoints.set(c.endpoints);
      metrics.apiReachable.set(src.apiReachable ? 1 : 0);
    },
  });
  let daemon: RunningDaemon;
  let kube!: { api: KubeApi; server: string };
  try {
    daemon = await startDaemon(daemonOpts, logger, {
      beforeAttach: async () => {
        kube = await kubeP;
      },
    });
  } catch (err) {
    await health.close();
    throw err;
  }
  daemonMetrics = daemon.metrics;
  // The status page beside the metrics, as the standalone daemon serves it.
  if (health.metricsRoutes) for (const [path, route] of statusRoutes(daemon.snapshots)) health.metricsRoutes.set(path, route);
  // The hairpin SNAT address set per family: undefined until the Node is read.
  const hairpin: { 4?: string | null; 6?: string | null } = {};
  try {
    const plane = daemon.plane;
    const catalog = new Catalog({ store: plane.store, keys: plane.catalog.keys, owner: KUBE_OWNER, view: plane.view });
    src = new KubeSource({
      api: kube.api,
      catalog,
      view: plane.view,
      nodeName: opts.hostnameOverride,
      nodePortCidrs: opts.nodePortAddresses,
      logger,
      minSyncMs: opts.minSyncMs,
      drainGraceMs: opts.drainGraceMs,
      onSync: (r) => {
        metrics.syncDuration.observe(r.ms / 1000);
        metrics.lastSync.set(Date.now() / 1000);
      },
      onSyncError: () => metrics.syncErrors.inc(),
      // Hairpin traffic leaves with the node's first address of its family, as kube-proxy masquerades it.
      onNodeAddresses: (addresses) => {
        for (const family of [4, 6] as const) {
          const want = addresses.find((a) => a.includes(':') === (family === 6)) ?? null;
          if (want === hairpin[family]) continue;
          try {
            if (family === 4) daemon.setHairpinAddress(want);
            else daemon.setHairpinAddress6(want);
            hairpin[family] = want;
            if (family === 4) log.info({ hairpinSnatAddress: want }, want === null ? 'hairpin SNAT off: the Node has no IPv4 address' : 'hairpin SNAT to the node\'s address');
            else log.info({ hairpinSnatAddress6: want }, want === null ? 'hairpin SNAT of IPv6 flows off: the Node has no IPv6 address' : 'hairpin SNAT of IPv6 flows to the node\'s IPv6 address');
          } catch (err) {
            log.warn({ err: (err as Error).message, address: want }, 'hairpin SNAT address refused');
          }
        }
      },
      onUdpBackendsRemoved: async (removed) => {
        let flushed = 0;
        for (const r of removed) {
          try {
            flushed += await plane.inspector.flushConnections({ service: r.service, backendAddress: r.address });
          } catch (err) {
            if (!(err instanceof SluiceError && err.code === 'NOT_FOUND')) throw err;
          }
        }
        if (flushed > 0) log.info({ endpoints: removed.length, flushed }, 'UDP flows to endpoints that left were flushed');
      },
    });
    src.start();
    log.info({ node: opts.hostnameOverride, apiServer: kube.server, external, netns: opts.netns, healthz: health.healthzAddress, metrics: health.metricsAddress }, 'kube-proxy started');
  } catch (err) {
    await src?.stop();
    await health.close();
    await daemon.stop();
    throw err;
  }
  const source = src;
  let stopping: Promise<void> | undefined;
  return {
    daemon,
    source,
    health,
    interfaces: external,
    stop: () =>
      (stopping ??= (async () => {
        await source.stop();
        await health.close();
        await daemon.stop();
      })()),
  };
}
