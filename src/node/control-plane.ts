/**
 * One node's control plane, assembled: the catalog (writes to the store),
 * the view (the node's copy of desired state, from the store's watch), the
 * runtime overlay (what the node learns of its backends, not persisted), the
 * syncer (the view, overlaid, into the load balancer and its maps) and the
 * inspector (questions about this node's dataplane). The gRPC API serves it; the
 * daemon and the tests build it the same way (buildControlPlane).
 *
 * A write returns once the node that took it has applied its own change:
 * committed, seen by the view, programmed by the syncer. Reads are of the
 * view, after it has caught up with the store's revision at the time of the
 * read, so a client reads what it (or anyone) wrote before.
 */
import { pino, type Logger } from 'pino';
import { SluiceError } from '../errors.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { LoadBalancer } from '../lb/load-balancer.js';
import type { StoredService } from '../model/definition.js';
import { Catalog } from '../catalog/catalog.js';
import { CatalogKeys } from '../catalog/keys.js';
import { CatalogView } from '../catalog/view.js';
import type { KvStore } from '../store/kv.js';
import { Inspector } from '../inspect/inspector.js';
import { Syncer } from './syncer.js';
import { RuntimeOverlay } from './overlay.js';
import { capacityCheck } from './capacity.js';
import type { ConntrackGcStats } from './conntrack-gc.js';
import type { HealthReader } from '../health/health.js';

/** A node's control plane. */
export interface ControlPlane {
  store: KvStore;
  catalog: Catalog;
  view: CatalogView;
  syncer: Syncer;
  inspector: Inspector;
  lb: LoadBalancer;
  /** What this node lays over the catalog (health, next); never persisted. */
  overlay: RuntimeOverlay;
  /**
   * Wait until this node has applied everything up to `revision`; then, if
   * it could not program one of `names`, throw that service's error (the
   * change stays committed: the API says so).
   */
  settle(revision: number, names: readonly string[]): Promise<void>;
  /**
   * Wait until the view holds everything the store held when called (a
   * read after a write sees it); with the store unreachable, at once (the
   * read is of what this node holds).
   */
  fresh(): Promise<void>;
  /** The table size the node uses for a service. */
  tableSizeOf(s: StoredService): number;
  /** Stop the view and the syncer (the store, load balancer and dataplane belong to the caller). */
  close(): void;
  /** The conntrack collector, where the process runs one (the daemon does). */
  conntrackGc?: { stats(): ConntrackGcStats; activeByBackend?(): ReadonlyMap<number, number> | undefined };
  /** Backend health, where the process runs health checks (the standalone daemon does). */
  health?: HealthReader;
}

/** Options of buildControlPlane. */
export interface ControlPlaneOptions {
  store: KvStore;
  dataplane: Dataplane;
  /** The catalog's key prefix (default "/sluice"). */
  prefix?: string;
  /** A load balancer over `dataplane` (default: a new one). */
  lb?: LoadBalancer;
  logger?: Logger;
  /** TTL of a lease when a registration gives none, seconds (default 10). */
  defaultLeaseTtlSeconds?: number;
  /** CLOCK_MONOTONIC in ns (default process.hrtime.bigint). */
  monotonicNs?: () => bigint;
  /** How often services the dataplane refused are tried again, ms (default 5000). */
  retryMs?: number;
  /** How many changes the view keeps for watchers that resume (default 10,000). */
  viewLog?: number;
}

/**
 * Build and start a node's control plane: read the catalog, program the
 * maps (adopting what an earlier run left, removing what nothing claims),
 * follow the store. Returns once the maps hold the catalog.
 */
export async function buildControlPlane(o: ControlPlaneOptions): Promise<ControlPlane & { removed: number }> {
  const log = o.logger ?? pino({ level: 'silent' });
  const keys = new CatalogKeys(o.prefix ?? '/sluice');
  const lb = o.lb ?? new LoadBalancer(o.dataplane);
  const view = new CatalogView({ store: o.store, keys, logger: log.child({ component: 'view' }), ...(o.viewLog !== undefined ? { maxLog: o.viewLog } : {}) });
  const catalog = new Catalog({
    store: o.store,
    keys,
    precheck: capacityCheck(lb),
    view,
    ...(o.defaultLeaseTtlSeconds !== undefined ? { defaultLeaseTtlSeconds: o.defaultLeaseTtlSeconds } : {}),
  });
  const overlay = new RuntimeOverlay();
  const syncer = new Syncer({ view, lb, overlay, logger: log.child({ component: 'syncer' }), ...(o.retryMs !== undefined ? { retryMs: o.retryMs } : {}) });
  const inspector = new Inspector({ view, lb, dataplane: o.dataplane, effective: (d) => overlay.apply(d), ...(o.monotonicNs ? { monotonicNs: o.monotonicNs } : {}) });
  await view.start();
  let removed: number;
  try {
    removed = await syncer.start();
  } catch (err) {
    view.close();
    throw err;
  }
  return {
    store: o.store,
    catalog,
    view,
    syncer,
    inspector,
    lb,
    overlay,
    removed,
    async settle(revision, names) {
      await syncer.waitFor(revision);
      for (const name of names) {
        const st = syncer.statusOf(name);
        if (st?.error && st.revision <= revision) {
          throw new SluiceError(st.error.code, `committed at revision ${revision}, but this node's dataplane could not program ${name}: ${st.error.message}`, { cause: st.error });
        }
      }
    },
    async fresh() {
      let revision: number;
      try {
        revision = await o.store.revision();
      } catch (err) {
        // The store is away (every etcd member down): the view is what this
        // node forwards with, and no write can have been committed since
        // through it; answer from it rather than not at all.
        if (err instanceof SluiceError && err.code === 'UNAVAILABLE') return;
        throw err;
      }
      await view.waitFor(revision);
    },
    tableSizeOf: (s) => syncer.tableSizeOf(s.definition),
    close() {
      syncer.close();
      view.close();
    },
  };
}
