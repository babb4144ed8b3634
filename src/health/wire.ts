/**
 * The JSON lines between the checker's process and a probe worker
 * (probe-host.ts ↔ probe-worker.ts). Down: targets set and removed. Up:
 * each state change at once, the probes' last results and the tallies in
 * batches every `flushMs`, so a probe costs the parent a share of one
 * parse a batch rather than a message.
 */
import type { HealthState, ProbeTally } from './health.js';
import type { TargetSpec } from './engine.js';

/** Parent → worker. */
export type DownMessage =
  /** `state`: the verdict the target had in an earlier worker (absent: unknown). */
  | { op: 'set'; id: number; spec: TargetSpec; state?: 'healthy' | 'unhealthy' }
  | { op: 'remove'; id: number };

/** A probe's result packed: [id, atMs, ok (1/0), latencyMs, error?]. */
export type PackedProbe = [number, number, 0 | 1, number, string?];

/** Worker → parent. */
export type UpMessage =
  | { t: 'ready' }
  | { t: 'transition'; id: number; state: Exclude<HealthState, 'unchecked'>; failures: number; last: PackedProbe }
  | { t: 'batch'; probes: PackedProbe[]; tallies: ProbeTally[]; inFlight: number; waiting: number };
