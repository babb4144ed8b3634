/**
 * The daemon's Prometheus metrics (README "Metrics" lists every family).
 *
 * Two writers, one exposition: the families of services and backends (one
 * series per service or backend, hundreds of thousands on a large node)
 * and everything else read from the node at scrape time are written by
 * exposition.ts from one read of the node (series-plan.ts); the daemon's
 * own timings (API calls, reconcile batches, scrapes) are prom-client
 * metrics on a registry of its own (no default Node.js metrics: promtool
 * refuses their *_total gauges), appended after. Nothing is kept between
 * scrapes but each service's plan (its label sets and ids), dropped when
 * the service goes, so a backend that goes takes its series with it.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import type { Dataplane, MapOccupancy } from '../dataplane/dataplane.js';
import { PROBE_DURATION_BUCKETS_S } from '../health/health.js';
import type { AppliedBatch } from '../node/syncer.js';
import type { RouteHandler } from './http.js';
import { ChunkPool, ExpositionWriter, labelBytes, labelSet, nameBytes } from './exposition.js';
import { SeriesPlan, type PlanPlane, type ScrapeValues } from './series-plan.js';

/** The exposition format's content type. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** One scrape's text: its buffers in order, valid until release(). */
export interface RenderedText {
  buffers: Buffer[];
  /** The buffers are sent: their memory goes to the next scrape. */
  release(): void;
}

/** How long map occupancy is reused between scrapes, ms: counting the hash maps walks them. */
const MAP_OCCUPANCY_MAX_AGE_MS = 30_000;

/** The counters of ScrapeValues.service and .backend, in their order there. */
const COUNTER_FIELDS: ReadonlyArray<readonly [string, string]> = [
  ['packets', 'Packets the dataplane sent to'],
  ['bytes', 'Bytes of the packets the dataplane sent to'],
  ['new_connections', 'Flows the dataplane placed on'],
  ['reply_packets', 'Reply packets the dataplane translated back from'],
];

/** What DaemonMetrics reads. */
export interface DaemonMetricsOptions {
  dataplane: Dataplane;
  /** Read at each scrape (a checker or collector set on it after this is made counts). */
  plane: PlanPlane;
  /** Milliseconds, any origin (default performance.now). */
  clockMs?: () => number;
}

/** The daemon's metrics: observers to wire in, and render() for /metrics. */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly #o: DaemonMetricsOptions;
  readonly #plan: SeriesPlan;
  readonly #chunks = new ChunkPool();
  readonly #clock: () => number;
  #maps: { at: number; maps: MapOccupancy[] } | undefined;
  #mapsRefresh: Promise<void> | undefined;

  readonly #apiRequests = new Counter({ name: 'sluice_api_requests_total', help: 'Unary calls of the gRPC API answered, by method and status code.', labelNames: ['method', 'code'], registers: [this.registry] });
  readonly #apiDuration = new Histogram({
    name: 'sluice_api_request_duration_seconds',
    help: 'Time from a unary call of the gRPC API to its answer, by method.',
    labelNames: ['method'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly #reconcileDuration = new Histogram({
    name: 'sluice_reconcile_duration_seconds',
    help: 'Time the node took to apply one batch of service changes to its dataplane.',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly #reconcileServices = new Counter({ name: 'sluice_reconcile_services_total', help: 'Service changes the node applied (or tried to).', registers: [this.registry] });
  readonly #reconcileErrors = new Counter({ name: 'sluice_reconcile_errors_total', help: 'Service changes the dataplane refused (each is tried again).', registers: [this.registry] });
  readonly #scrapeDuration = new Histogram({
    name: 'sluice_metrics_scrape_duration_seconds',
    help: 'Time the daemon took to read the node and write the families of a scrape of /metrics (this family and the API and reconcile families excluded).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  constructor(o: DaemonMetricsOptions) {
    this.#o = o;
    this.#plan = new SeriesPlan(o.plane);
    this.#clock = o.clockMs ?? (() => performance.now());
  }

  /** An ApiObserver (api/call.ts) that counts and times calls. */
  readonly observeApi = (method: string, code: string, seconds: number): void => {
    this.#apiRequests.inc({ method, code });
    this.#apiDuration.observe({ method }, seconds);
  };

  /** A Syncer.onApplied subscriber. */
  readonly observeApplied = (b: AppliedBatch): void => {
    this.#reconcileDuration.observe(b.ms / 1000);
    this.#reconcileServices.inc(b.services);
    if (b.errors > 0) this.#reconcileErrors.inc(b.errors);
  };

  /**
   * The exposition text of one scrape, in buffers (a large node's is tens
   * of MB: written out as is, never joined). release() once they are sent
   * gives their memory to the next scrape; not calling it (an aborted
   * response) leaves them to the collector.
   */
  async render(): Promise<RenderedText> {
    const maps = await this.#mapOccupancy();
    const began = this.#clock();
    const dp = this.#o.dataplane;
    const v = this.#plan.read(dp.allStats('service'), dp.allStats('backend'));
    const w = new ExpositionWriter(this.#chunks);
    this.#writeServices(w, v);
    this.#writeNode(w, v, maps);
    this.#scrapeDuration.observe((this.#clock() - began) / 1000);
    w.raw(await this.registry.metrics());
    return { buffers: w.buffers(), release: () => w.release() };
  }

  /** render() as one string (the kube-proxy mode appends it to its own). */
  async text(): Promise<string> {
    const r = await this.render();
    try {
      return Buffer.concat(r.buffers).toString('utf8');
    } finally {
      r.release();
    }
  }

  /** Occupancy of the maps: counted now if never, or again in the background once it is older than MAP_OCCUPANCY_MAX_AGE_MS. */
  async #mapOccupancy(): Promise<MapOccupancy[]> {
    const now = this.#clock();
    if (!this.#maps || now - this.#maps.at > MAP_OCCUPANCY_MAX_AGE_MS) {
      this.#mapsRefresh ??= this.#o.dataplane.mapOccupancy().then(
        (maps) => {
          this.#maps = { at: this.#clock(), maps };
        },
        () => undefined,
      ).finally(() => {
        this.#mapsRefresh = undefined;
      });
      if (!this.#maps) await this.#mapsRefresh;
    }
    return this.#maps?.maps ?? [];
  }

  #writeServices(w: ExpositionWriter, v: ScrapeValues): void {
    const { services } = v;
    COUNTER_FIELDS.forEach(([suffix, help], f) => {
      const name = `sluice_service_${suffix}_total`;
      w.family(name, 'counter', `${help} a service's backends, summed over its frontends (VIP x port).`);
      const nb = nameBytes(name);
      for (let si = 0; si < services.length; si++) w.sample(nb, services[si]!.labels, v.service[si * 4 + f]!);
    });
    w.family('sluice_service_active_connections', 'gauge', "Live flows of a service (conntrack forward entries), as the conntrack collector's last pass counted them.");
    const activeName = nameBytes('sluice_service_active_connections');
    if (v.serviceActive) for (let si = 0; si < services.length; si++) w.sample(activeName, services[si]!.labels, v.serviceActive[si]!);
    /** A backend family: values[bi × stride + offset] of each backend by its index in ScrapeValues (NaN: no series; no values: none). */
    const backendFamily = (name: string, type: 'counter' | 'gauge', help: string, values: Float64Array | undefined, stride = 1, offset = 0): void => {
      w.family(name, type, help);
      if (!values) return;
      const nb = nameBytes(name);
      let at = offset;
      for (const s of services) {
        for (const labels of s.backendLabels) {
          const x = values[at]!;
          if (!Number.isNaN(x)) w.sample(nb, labels, x);
          at += stride;
        }
      }
    };
    COUNTER_FIELDS.forEach(([suffix, help], f) => {
      backendFamily(`sluice_backend_${suffix}_total`, 'counter', `${help} one backend of a service, summed over the service's frontends.`, v.backend, 4, f);
    });
    backendFamily('sluice_backend_active_connections', 'gauge', "Live flows to a backend of a service (conntrack forward entries), as the conntrack collector's last pass counted them.", v.backendActive);
    backendFamily('sluice_backend_up', 'gauge', 'Whether a backend takes new flows on this node: 1 when its effective state (the stricter of its admin state and its health) is active and its weight above 0, else 0.', v.up);
    backendFamily('sluice_backend_health', 'gauge', "A checked backend's health on this node: 1 healthy or not yet known (counts as up), 0 unhealthy; absent for a backend that is not checked.", v.health);
    backendFamily('sluice_backend_last_probe_duration_seconds', 'gauge', "How long a checked backend's last health probe took.", v.lastProbe);
  }

  #writeNode(w: ExpositionWriter, v: ScrapeValues, maps: MapOccupancy[]): void {
    const simple = (name: string, type: 'counter' | 'gauge', help: string, rows: ReadonlyArray<readonly [ReadonlyArray<readonly [string, string]>, number]>): void => {
      w.family(name, type, help);
      const nb = nameBytes(name);
      for (const [labels, x] of rows) w.sample(nb, labelBytes(labels), x);
    };
    simple('sluice_services', 'gauge', 'Services the node holds.', [[[], v.services.length]]);
    simple('sluice_backends', 'gauge', 'Backends of those services (one per service and address).', [[[], v.backends]]);
    const drops: Array<readonly [ReadonlyArray<readonly [string, string]>, number]> = [];
    const rejects: typeof drops = [];
    for (const [k, x] of Object.entries(this.#o.dataplane.globalStats())) {
      if (k.startsWith('drop_')) drops.push([[['reason', k.slice(5)]], Number(x)]);
      else if (k.startsWith('reject_')) rejects.push([[['reason', k.slice(7)]], Number(x)]);
    }
    simple('sluice_drops_total', 'counter', 'Packets the dataplane dropped, by reason.', drops);
    simple('sluice_rejects_total', 'counter', 'Packets the dataplane answered with a reject (TCP RST, ICMP unreachable) or did not answer because of the reject rate limit, by reason.', rejects);
    simple('sluice_map_entries', 'gauge', 'Entries in use in each BPF map (hash maps counted, estimated past a budget; arrays by the ids or slots in use); refreshed at most every 30 s.', maps.map((m) => [[['map', m.map]], m.entries] as const));
    simple('sluice_map_max_entries', 'gauge', 'Entries each BPF map holds (maglev_slots: slots).', maps.map((m) => [[['map', m.map]], m.maxEntries] as const));
    simple('sluice_map_memory_bytes', 'gauge', 'Kernel memory of each BPF map (memlock).', maps.map((m) => [[['map', m.map]], m.bytes] as const));
    const gc = this.#o.plane.conntrackGc?.stats();
    if (gc) {
      simple('sluice_conntrack_gc_passes_total', 'counter', 'Passes of the conntrack collector over the whole table.', [[[], gc.passes]]);
      simple('sluice_conntrack_gc_expired_flows_total', 'counter', 'Dead flows the collector deleted, by the state they died in.', Object.entries(gc.expired).map(([state, v]) => [[['state', state]], v] as const));
      simple('sluice_conntrack_gc_orphaned_replies_total', 'counter', 'Dead reply entries the collector deleted whose forward entry was gone.', [[[], gc.orphanedReplies]]);
      simple('sluice_conntrack_gc_deleted_entries_total', 'counter', 'Conntrack entries the collector deleted.', [[[], gc.entriesDeleted]]);
      simple('sluice_conntrack_gc_raced_total', 'counter', 'Entries found dead whose flow had a packet meanwhile (left).', [[[], gc.raced]]);
      if (gc.lastPass) {
        simple('sluice_conntrack_gc_last_pass_entries', 'gauge', 'Entries the last pass read.', [[[], gc.lastPass.entries]]);
        simple('sluice_conntrack_gc_last_pass_duration_seconds', 'gauge', 'Wall time of the last pass (paced over the interval).', [[[], gc.lastPass.wallMs / 1000]]);
        simple('sluice_conntrack_gc_last_pass_cpu_seconds', 'gauge', 'CPU time of the last pass.', [[[], gc.lastPass.cpuMs / 1000]]);
      }
    }
    const worker = this.#o.plane.health?.probeWorker?.();
    if (worker) {
      simple('sluice_health_probe_worker_up', 'gauge', 'Whether the health probe worker process runs (0 while it waits to be started again: no backend is probed, verdicts stay).', [[[], worker.up ? 1 : 0]]);
      simple('sluice_health_probe_worker_restarts_total', 'counter', 'Times the health probe worker was started again after it ended.', [[[], worker.restarts]]);
    }
    const tallies = this.#o.plane.health?.probeTallies() ?? [];
    simple('sluice_health_probes_total', 'counter', 'Health probes, by check type and result.', tallies.map((t) => [[['type', t.type], ['result', t.result]], t.count] as const));
    w.family('sluice_health_probe_duration_seconds', 'histogram', 'Time health probes took, by check type and result.');
    for (const t of tallies) {
      const base: Array<[string, string]> = [['type', t.type], ['result', t.result]];
      PROBE_DURATION_BUCKETS_S.forEach((le, i) => w.raw(`sluice_health_probe_duration_seconds_bucket${labelSet([...base, ['le', String(le)]])} ${t.buckets[i] ?? t.count}\n`));
      w.raw(`sluice_health_probe_duration_seconds_bucket${labelSet([...base, ['le', '+Inf']])} ${t.count}\n`);
      w.raw(`sluice_health_probe_duration_seconds_sum${labelSet(base)} ${t.sumSeconds}\n`);
      w.raw(`sluice_health_probe_duration_seconds_count${labelSet(base)} ${t.count}\n`);
    }
  }
}

/** The /metrics route of an HttpServer (http.ts). */
export function metricsRoute(m: DaemonMetrics): RouteHandler {
  return async (_req, res) => {
    const r = await m.render();
    // 'finish': the socket has written the last buffer (and all before it). A response that is aborted never finishes: its buffers are not reused.
    res.once('finish', r.release);
    res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': r.buffers.reduce((a, b) => a + b.length, 0) });
    for (const b of r.buffers) res.write(b);
    res.end();
  };
}
