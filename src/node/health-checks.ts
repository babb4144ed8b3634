/**
 * Health checks on a node: the checker (health/checker.ts) over the node's
 * view, writing its verdicts to the node's runtime overlay, probing from
 * this process or, given a network namespace, from a child process inside
 * it (health/probe-host.ts). The node's plane then reads health through
 * `plane.health`.
 */
import type { Logger } from 'pino';
import { HealthChecker } from '../health/checker.js';
import { LocalProbeEngine, type EngineHandlers, type ProbeEngine } from '../health/engine.js';
import { RemoteProbeEngine } from '../health/probe-host.js';
import type { ControlPlane } from './control-plane.js';

/** Options of startHealthChecks. */
export interface HealthChecksOptions {
  /** Probe from inside this network namespace (a path such as /var/run/netns/lb); absent: from this process's. */
  netns?: string;
  logger?: Logger;
  /** Probes in flight at once at most (default 2,048). */
  maxInFlight?: number;
  /** The engine (tests pass one with fake probes); default: local or in `netns`. */
  engine?: (handlers: EngineHandlers) => ProbeEngine;
}

/** Start checking the plane's services' backends; sets `plane.health`. Close the checker to stop. */
export function startHealthChecks(plane: ControlPlane, o: HealthChecksOptions = {}): HealthChecker {
  const logger = o.logger;
  const engine =
    o.engine ??
    ((handlers: EngineHandlers): ProbeEngine =>
      o.netns !== undefined
        ? new RemoteProbeEngine({ handlers, netns: o.netns, ...(logger ? { logger } : {}), ...(o.maxInFlight !== undefined ? { maxInFlight: o.maxInFlight } : {}) })
        : new LocalProbeEngine({ handlers, ...(o.maxInFlight !== undefined ? { scheduler: { maxInFlight: o.maxInFlight } } : {}) }));
  const checker = new HealthChecker({ view: plane.view, overlay: plane.overlay, engine, ...(logger ? { logger } : {}) });
  plane.health = checker;
  checker.start();
  return checker;
}
