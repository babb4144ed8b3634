/**
 * The rise/fall counter of one probed target, as a pure function: a target
 * starts unknown (which counts as up), becomes unhealthy after `fall`
 * failures in a row and healthy after `rise` successes in a row. Only a
 * full run of one kind changes the verdict, so one lost probe does not
 * flap a backend.
 */
import type { HealthState } from './health.js';

/** A target's verdict and the current run of equal results. */
export interface CheckState {
  state: Exclude<HealthState, 'unchecked'>;
  /** Successes in a row (0 after a failure). */
  successes: number;
  /** Failures in a row (0 after a success). */
  failures: number;
}

/** A target never probed. */
export const INITIAL_CHECK_STATE: CheckState = Object.freeze({ state: 'unknown', successes: 0, failures: 0 });

/** The state after one more result. */
export function nextCheckState(s: CheckState, ok: boolean, rise: number, fall: number): CheckState {
  const successes = ok ? s.successes + 1 : 0;
  const failures = ok ? 0 : s.failures + 1;
  let state = s.state;
  if (ok && successes >= rise) state = 'healthy';
  else if (!ok && failures >= fall) state = 'unhealthy';
  return { state, successes, failures };
}
