/**
 * The kube-proxy mode's HTTP endpoints, served where the agent runs (not
 * inside --netns): /healthz and /livez on the healthz address, answered as
 * kube-proxy answers them (pkg/proxy/healthcheck/proxy_health.go), and
 * Prometheus metrics at /metrics on the metrics address (prom-client, on a
 * registry of its own: prom-client's default Node.js metrics include
 * gauges named *_total, which `promtool check metrics` refuses).
 *
 * Healthy means: the first sync is done (for /healthz), and no change has
 * waited longer than the health timeout to be written (kube-proxy: twice
 * its sync period, 60 s). /healthz also says 503 while the node is being
 * deleted ("nodeEligible": false).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { parseBindAddress, startHttpServer, type HttpServer, type RouteHandler } from '../metrics/http.js';

/** What the health endpoints read. */
export interface HealthState {
  /** ms since epoch of the last successful sync, or undefined before the first. */
  lastSynced(): number | undefined;
  /** ms since epoch of the oldest change not yet written, or undefined. */
  oldestPending(): number | undefined;
  nodeEligible(): boolean;
}

/** The agent's metrics. */
export class KubeMetrics {
  readonly registry = new Registry();
  readonly syncDuration = new Histogram({
    name: 'sluice_kube_sync_duration_seconds',
    help: 'Time one sync of Kubernetes services into the store took.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly lastSync = new Gauge({ name: 'sluice_kube_last_sync_timestamp_seconds', help: 'When the last successful sync ended (Unix time).', registers: [this.registry] });
  readonly syncErrors = new Counter({ name: 'sluice_kube_sync_errors_total', help: 'Syncs that failed (each is tried again).', registers: [this.registry] });
  readonly services = new Gauge({ name: 'sluice_kube_programmed_services', help: 'Sluice services written for Kubernetes service ports (node ports included).', registers: [this.registry] });
  readonly endpoints = new Gauge({ name: 'sluice_kube_programmed_endpoints', help: 'Backends of those services, draining ones included.', registers: [this.registry] });
  readonly apiReachable = new Gauge({ name: 'sluice_kube_api_reachable', help: '1 while every list and watch reaches the API server.', registers: [this.registry] });
  readonly healthz = new Counter({ name: 'sluice_kube_healthz_requests_total', help: 'Requests to /healthz by the status answered.', labelNames: ['code'], registers: [this.registry] });
}

export { parseBindAddress };

export interface HealthServersOptions {
  healthz?: { host: string; port: number };
  metrics?: { host: string; port: number };
  state: HealthState;
  metricsRegistry: KubeMetrics;
  /** How long a change may wait to be written before the agent is unhealthy, ms. */
  healthTimeoutMs: number;
  /** Called before a scrape to refresh gauges. */
  beforeScrape?: () => void;
  /** More exposition text, appended to the agent's own (the daemon's metrics). */
  moreMetrics?: () => Promise<string>;
}

export interface HealthServers {
  /** The addresses bound ("127.0.0.1:10256"), by endpoint. */
  healthzAddress?: string;
  metricsAddress?: string;
  /** The live route table of the server that answers /metrics: more pages mount there (the status page). */
  metricsRoutes?: Map<string, RouteHandler>;
  close(): Promise<void>;
}

function isHealthy(s: HealthState, timeoutMs: number, now: number): boolean {
  const pending = s.oldestPending();
  return pending === undefined || now - pending < timeoutMs;
}

const HINT = 'is kube-proxy, or another sluice kube-proxy, running?';

/** Start the healthz and metrics servers (one server if both addresses are the same). */
export async function startHealthServers(o: HealthServersOptions): Promise<HealthServers> {
  const health: RouteHandler = (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const now = Date.now();
    const synced = o.state.lastSynced();
    const eligible = o.state.nodeEligible();
    let healthy = isHealthy(o.state, o.healthTimeoutMs, now);
    if (url === '/healthz') healthy = healthy && synced !== undefined && eligible;
    const lastUpdated = new Date(healthy ? now : (synced ?? 0)).toISOString();
    const body: Record<string, unknown> = { lastUpdated, currentTime: new Date(now).toISOString() };
    if (url === '/healthz') {
      body['nodeEligible'] = eligible;
      o.metricsRegistry.healthz.inc({ code: healthy ? '200' : '503' });
    }
    res.writeHead(healthy ? 200 : 503, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' });
    res.end(JSON.stringify(body));
  };
  const metrics: RouteHandler = async (_req, res) => {
    o.beforeScrape?.();
    // The daemon's families follow the agent's own: distinct names, one exposition.
    const [own, more] = await Promise.all([o.metricsRegistry.registry.metrics(), o.moreMetrics?.() ?? '']);
    res.writeHead(200, { 'Content-Type': o.metricsRegistry.registry.contentType });
    res.end(own + more);
  };
  const healthRoutes = (): Map<string, RouteHandler> => new Map([['/healthz', health], ['/livez', health]]);
  const servers: HttpServer[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.close()));
  };
  const out: HealthServers = { close };
  try {
    const same = o.healthz && o.metrics && o.healthz.host === o.metrics.host && o.healthz.port === o.metrics.port && o.healthz.port !== 0;
    if (o.healthz) {
      const routes = healthRoutes();
      if (same) routes.set('/metrics', metrics);
      const s = await startHttpServer({ bind: o.healthz, field: 'healthzBindAddress', hint: HINT, routes });
      servers.push(s);
      out.healthzAddress = s.address;
      if (same) {
        out.metricsAddress = s.address;
        out.metricsRoutes = s.routes;
      }
    }
    if (o.metrics && !same) {
      const s = await startHttpServer({ bind: o.metrics, field: 'metricsBindAddress', hint: HINT, routes: new Map([['/metrics', metrics]]) });
      servers.push(s);
      out.metricsAddress = s.address;
      out.metricsRoutes = s.routes;
    }
  } catch (err) {
    await close();
    throw err;
  }
  return out;
}
