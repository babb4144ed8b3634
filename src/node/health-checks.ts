/**
 * Health checks on a node: the checker (health/checker.ts) over the node's
 * view, writing its verdicts to the node's runtime overlay, probing from a
 * child process (health/probe-host.ts), inside a network namespace when one
 * is given, so that the daemon's own event loop never times a probe. The
 * node's plane then reads health through `plane.health`.
 */
import type { Logger } from 'pino';
import { HealthChecker } from '../health/checker.js';
import type { EngineHandlers, ProbeEngine } from '../health/engine.js';
import { RemoteProbeEngine } from '../health/probe-host.js';
import type { ControlPlane } from './control-plane.js';

/** Options of startHealthChecks. */
export interface HealthChecksOptions {
  /** Probe from inside this network namespace (a path such as /var/run/netns/lb); absent: from this process's. */
  netns?: string;
  logger?: Logger;
  /** Probes in flight at once at most (default 2,048). */
  maxInFlight?: number;
  /**
   * at-start (default): start the probe worker now and fail if it does not
   * become ready (a namespace nsenter cannot enter, no nsenter);
   * on-demand: at the first health check (a node whose services never have
   * one runs no worker).
   */
  worker?: 'at-start' | 'on-demand';
  /** The engine (tests pass one with fake probes); default: a probe worker, in `netns` if given. */
  engine?: (handlers: EngineHandlers) => ProbeEngine;
}

/**
 * Start checking the plane's services' backends; sets `plane.health`. Close
 * the checker to stop. Rejects with a ProbeWorkerError when the worker does
 * not start (at-start).
 */
export async function startHealthChecks(plane: ControlPlane, o: HealthChecksOptions = {}): Promise<HealthChecker> {
  const logger = o.logger;
  let worker: RemoteProbeEngine | undefined;
  const engine =
    o.engine ??
    ((handlers: EngineHandlers): ProbeEngine =>
      (worker = new RemoteProbeEngine({
        handlers,
        ...(o.netns !== undefined ? { netns: o.netns } : {}),
        ...(logger ? { logger } : {}),
        ...(o.maxInFlight !== undefined ? { maxInFlight: o.maxInFlight } : {}),
      })));
  const checker = new HealthChecker({ view: plane.view, overlay: plane.overlay, engine, ...(logger ? { logger } : {}) });
  if (worker && o.worker !== 'on-demand') {
    try {
      await worker.start();
    } catch (err) {
      checker.close();
      throw err;
    }
  }
  plane.health = checker;
  checker.start();
  return checker;
}
