/**
 * What a node knows of its backends' health, as the readers of it (the API,
 * the metrics, the status page, `sluice top`) see it. The checker that
 * writes it lives beside this module; readers depend on this interface
 * only, so a node without checks passes nothing.
 */
import type { HealthCheckKind } from '../model/definition.js';

/**
 * A backend's health on this node.
 * - unchecked: its service has no health check (or the backend is in admin
 *   maintenance, which is not probed);
 * - unknown: checked, but fewer than `rise` or `fall` results so far; counts
 *   as up, so a restart does not empty the tables;
 * - healthy, unhealthy: after `rise` successes or `fall` failures in a row.
 */
export type HealthState = 'unchecked' | 'unknown' | 'healthy' | 'unhealthy';

/** The kinds of check a service may ask for (the model's). */
export type HealthCheckType = HealthCheckKind;

/** One probe's outcome. */
export interface ProbeResult {
  /** When it finished, milliseconds since the Unix epoch. */
  atMs: number;
  ok: boolean;
  /** How long it took, in milliseconds (fractional). */
  latencyMs: number;
  /** Why it failed ("ECONNREFUSED", "status 503", "timeout after 1000 ms"); absent when ok. */
  error?: string;
}

/** One backend's health as readers see it. */
export interface BackendHealth {
  state: HealthState;
  /** The last probe, once there was one. */
  lastProbe?: ProbeResult;
}

/** Upper bounds (seconds) of the probe duration histogram's buckets; +Inf is implied. */
export const PROBE_DURATION_BUCKETS_S: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Probe counts and durations of one (type, result) pair since the checker started. */
export interface ProbeTally {
  type: HealthCheckType;
  result: 'success' | 'failure';
  count: number;
  /** Sum of durations, seconds. */
  sumSeconds: number;
  /** Cumulative counts per bucket of PROBE_DURATION_BUCKETS_S (same length); `count` is the +Inf bucket. */
  buckets: number[];
}

/** What readers of health get from the node. */
export interface HealthReader {
  /** One backend's health in one service (by the backend's address as the definition names it); undefined if the node does not know the pair. */
  get(service: string, address: string): BackendHealth | undefined;
  /** Called with a service's name whenever one of its backends changes health state (not on every probe). Returns an unsubscribe function. */
  subscribe(fn: (service: string) => void): () => void;
  /** Probe counts and durations by type and result, for the metrics. */
  probeTallies(): ProbeTally[];
  /** The probe worker process, once one was started: whether it runs now, and how often it was started again. */
  probeWorker?(): ProbeWorkerState | undefined;
}

/** The probe worker process as the metrics show it. */
export interface ProbeWorkerState {
  up: boolean;
  restarts: number;
}
