/**
 * Argument checks and precondition errors shared by the stores, so that
 * both answer a bad call with the same code, field and message.
 */
import { randomBytes } from 'node:crypto';
import { SluiceError, invalid } from '../errors.js';
import type { ServiceDefinition } from '../model/definition.js';
import type { FrontendIds, ListOptions } from './store.js';

/** Shortest lease TTL, in seconds. */
export const MIN_LEASE_TTL_SECONDS = 1;
/** Longest lease TTL, in seconds (one day). */
export const MAX_LEASE_TTL_SECONDS = 86_400;

/** The revision of a service as the precondition checks need it. */
export interface CurrentRevision {
  /** Store revision of the service's last change. */
  revision: number;
}

/** The error every method of a closed store throws. */
export function closedError(): SluiceError {
  return new SluiceError('FAILED_PRECONDITION', 'the store is closed');
}

/** Check the items of Store.put: an array of objects whose definition has a string name. */
export function checkPutItems(
  items: ReadonlyArray<{ definition: ServiceDefinition; expectedRevision?: number }>,
): void {
  if (!Array.isArray(items)) throw invalid('items', 'must be an array');
  items.forEach((item, i) => {
    if (typeof item !== 'object' || item === null) throw invalid(`items[${i}]`, 'must be an object');
    const d: unknown = item.definition;
    if (typeof d !== 'object' || d === null || typeof (d as { name?: unknown }).name !== 'string') {
      throw invalid(`items[${i}].definition.name`, 'must be a string');
    }
    checkExpectedRevision(item.expectedRevision, `items[${i}].expectedRevision`);
  });
}

/** expectedRevision is undefined or a non-negative integer. */
export function checkExpectedRevision(v: number | undefined, field: string): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) {
    throw invalid(field, `must be a non-negative integer, got ${String(v)}`);
  }
}

/** The etcd-like precondition of one put item (see Store.put). */
export function checkPutPrecondition(name: string, current: CurrentRevision | undefined, expected: number | undefined): void {
  if (expected === undefined) return;
  if (expected === 0) {
    if (current !== undefined) {
      throw new SluiceError('ALREADY_EXISTS', `service ${name} already exists (at revision ${current.revision})`);
    }
    return;
  }
  if (current === undefined) {
    throw new SluiceError('NOT_FOUND', `service ${name} does not exist (expected it at revision ${expected})`);
  }
  if (current.revision !== expected) {
    throw new SluiceError('FAILED_PRECONDITION', `service ${name} is at revision ${current.revision}, not ${expected}`);
  }
}

/** The precondition of Store.delete. */
export function checkDeletePrecondition(name: string, current: CurrentRevision | undefined, expected: number | undefined): void {
  checkExpectedRevision(expected, 'expectedRevision');
  if (current === undefined) throw new SluiceError('NOT_FOUND', `service ${name} does not exist`);
  if (expected !== undefined && current.revision !== expected) {
    throw new SluiceError('FAILED_PRECONDITION', `service ${name} is at revision ${current.revision}, not ${expected}`);
  }
}

/** Check ListOptions; returns the limit (undefined for all). */
export function checkListOptions(opts: ListOptions): number | undefined {
  if (opts.prefix !== undefined && typeof opts.prefix !== 'string') throw invalid('prefix', 'must be a string');
  if (opts.startAfter !== undefined && typeof opts.startAfter !== 'string') throw invalid('startAfter', 'must be a string');
  const { limit } = opts;
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
    throw invalid('limit', `must be a non-negative integer, got ${String(limit)}`);
  }
  return limit;
}

/** Check the `since` of eventsSince against the log, which holds (compacted, revision]. */
export function checkSince(since: number, compacted: number, revision: number): void {
  if (!Number.isSafeInteger(since) || since < 0) throw invalid('since', `must be a non-negative integer, got ${String(since)}`);
  if (since < compacted) {
    throw new SluiceError(
      'FAILED_PRECONDITION',
      `events before revision ${compacted} were compacted (asked for those after ${since}); take a new snapshot`,
    );
  }
  if (since > revision) {
    // Only a caller bug or a store that lost its last writes (a restore, a power
    // loss) gets here; resuming would skip the events that reuse these revisions.
    throw new SluiceError('FAILED_PRECONDITION', `revision ${since} is ahead of the store (at ${revision}); take a new snapshot`);
  }
}

/** A lease TTL is an integer in 1..86400 seconds. */
export function checkTtl(ttlSeconds: number): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < MIN_LEASE_TTL_SECONDS || ttlSeconds > MAX_LEASE_TTL_SECONDS) {
    throw invalid('ttlSeconds', `must be an integer in ${MIN_LEASE_TTL_SECONDS}..${MAX_LEASE_TTL_SECONDS}, got ${String(ttlSeconds)}`);
  }
}

/** A wall-clock time in integer milliseconds. */
export function checkNow(nowMs: number): void {
  if (!Number.isSafeInteger(nowMs)) throw invalid('nowMs', `must be an integer number of milliseconds, got ${String(nowMs)}`);
}

/** The error of keepAlive on a lease that is unknown or expired. */
export function leaseNotFound(id: string, expiredAtMs?: number): SluiceError {
  return new SluiceError(
    'NOT_FOUND',
    expiredAtMs === undefined ? `lease ${id} does not exist` : `lease ${id} expired at ${expiredAtMs}`,
  );
}

/** A new lease id: 16 random hex characters. */
export function newLeaseId(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Check the arguments of Store.saveIds; returns `forget` as an array.
 * A frontend both saved and forgotten is a caller bug: INVALID_ARGUMENT.
 */
export function checkSaveIds(set: ReadonlyMap<string, FrontendIds>, forget: Iterable<string>): string[] {
  for (const [frontend, ids] of set) {
    if (!Number.isSafeInteger(ids.serviceId)) throw invalid(`ids[${frontend}].serviceId`, 'must be an integer');
    if (!(ids.backends instanceof Map)) throw invalid(`ids[${frontend}].backends`, 'must be a Map');
  }
  const out = [...forget];
  for (const f of out) {
    if (set.has(f)) throw invalid('forget', `frontend ${f} is both saved and forgotten`);
  }
  return out;
}

/**
 * The JSON of a StoredService from its definition's JSON, without
 * serialising the definition twice.
 */
export function storedServiceJson(definitionJson: string, revision: number, createRevision: number): string {
  return `{"definition":${definitionJson},"revision":${revision},"createRevision":${createRevision}}`;
}
