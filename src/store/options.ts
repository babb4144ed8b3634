/**
 * Options shared by every Store implementation, with their defaults
 * resolved in one place.
 */
import { invalid } from '../errors.js';
import type { StoreEvent } from './store.js';

/** How many events the log keeps by default before compacting the oldest. */
export const DEFAULT_MAX_EVENTS = 10_000;

/** Options of a store. */
export interface StoreOptions {
  /**
   * How many events the log keeps (default 10000, at least 1). Older ones
   * are compacted: compactedRevision() rises, and eventsSince() before it
   * throws FAILED_PRECONDITION.
   */
  maxEvents?: number;
  /**
   * Called when a subscriber throws; the store goes on delivering to the
   * others. Default: a process warning (code SLUICE_STORE_LISTENER).
   */
  onListenerError?: (err: unknown, event: StoreEvent) => void;
}

/** StoreOptions with every default filled in. */
export interface ResolvedStoreOptions {
  /** See StoreOptions.maxEvents. */
  maxEvents: number;
  /** See StoreOptions.onListenerError. */
  onListenerError: (err: unknown, event: StoreEvent) => void;
}

/** Fill the defaults; INVALID_ARGUMENT naming `maxEvents` if it is not a positive integer. */
export function resolveStoreOptions(opts: StoreOptions = {}): ResolvedStoreOptions {
  const maxEvents = opts.maxEvents ?? DEFAULT_MAX_EVENTS;
  if (!Number.isSafeInteger(maxEvents) || maxEvents < 1) {
    throw invalid('maxEvents', `must be a positive integer, got ${String(opts.maxEvents)}`);
  }
  return { maxEvents, onListenerError: opts.onListenerError ?? warnListenerError };
}

function warnListenerError(err: unknown, event: StoreEvent): void {
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.emitWarning(`a store subscriber threw on event ${event.revision} (${event.type} ${event.name})`, {
    code: 'SLUICE_STORE_LISTENER',
    detail,
  });
}
