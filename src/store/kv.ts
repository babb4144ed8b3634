/**
 * The store of desired state, shaped like etcd's key-value API, so that
 * the one domain layer above it (catalog/) runs unchanged on the embedded
 * SQLite file of a single node, on memory in unit tests, and on an etcd
 * cluster shared by several nodes:
 *
 * - one store-wide revision, incremented by every committed transaction
 *   (a transaction's writes share its revision, as in etcd); each key
 *   remembers the revision of its creation and of its last change;
 * - reads of one key or of a range of keys under a prefix, with the
 *   revision they were read at;
 * - transactions: compares on keys' modification revisions (0: the key
 *   does not exist) or values, then puts and deletes, all or nothing;
 * - watches of a prefix from a revision: every change after it, in
 *   revision order, a transaction's changes together; a revision the store
 *   has compacted away fails the watch with a COMPACTED error, and the
 *   watcher reads the range again;
 * - leases held by the store: a key put with a lease is deleted, as a
 *   change every watcher sees, when the lease expires or is revoked.
 *
 * Keys and values are strings (JSON for values). Every method is
 * asynchronous: the embedded stores answer at once, etcd over the network.
 */
import { SluiceError } from '../errors.js';

/** One key, as read. */
export interface KeyValue {
  key: string;
  value: string;
  /** Revision of the transaction that created the key (since its last deletion). */
  createRevision: number;
  /** Revision of the transaction that last changed it. */
  modRevision: number;
  /** The lease it is attached to (hex id), if any. */
  lease?: string;
}

/** A condition of a transaction. */
export type Compare =
  /** The key's modification revision is this; 0 means the key does not exist. */
  | { key: string; modRevision: number }
  /** The key exists and holds exactly this value. */
  | { key: string; value: string };

/** A write of a transaction. */
export type Operation =
  /** Create or replace a key, attached to `lease` if given (else detached). */
  | { put: string; value: string; lease?: string }
  /** Delete a key (nothing if absent). */
  | { delete: string }
  /** Delete every key under a prefix. */
  | { deletePrefix: string };

/** The outcome of a transaction. */
export interface TxnResult {
  /** Whether every compare held (and so every operation was applied). */
  succeeded: boolean;
  /**
   * The store revision after the transaction: its own revision if it wrote
   * something, else the revision it was evaluated at.
   */
  revision: number;
}

/** One change seen by a watch. */
export interface KvEvent {
  type: 'PUT' | 'DELETE';
  /** After a PUT; for a DELETE, the key with value "" and modRevision = the deletion's revision. */
  kv: KeyValue;
  /** The key before the change, if it existed. */
  prev?: KeyValue;
}

/** A batch of changes: one transaction's (or, after a reconnect, several transactions' up to `revision`). */
export interface KvChanges {
  events: KvEvent[];
  /** The store revision these events bring the watcher to. */
  revision: number;
}

/** A running watch. */
export interface KvWatch {
  /** Stop it; no callback is made afterwards. Idempotent. */
  cancel(): void;
}

/** Options of range. */
export interface RangeOptions {
  /** Only keys strictly after this one (a paging cursor). */
  startAfter?: string;
  /** At most this many keys (default: all). */
  limit?: number;
}

/** A lease as the store holds it. */
export interface LeaseInfo {
  /** Hex id. */
  id: string;
  /** Its TTL, in seconds, as granted. */
  ttlSeconds: number;
  /** Seconds until it expires, from now (at most ttlSeconds). */
  remainingSeconds: number;
}

/** The store. Errors are SluiceErrors: UNAVAILABLE when it cannot be reached, FAILED_PRECONDITION once closed. */
export interface KvStore {
  /** The current store revision (0 for an empty new store). */
  revision(): Promise<number>;

  /** One key, or undefined. */
  get(key: string): Promise<KeyValue | undefined>;

  /** Keys under `prefix` in byte order, and the revision they were read at; `more` if `limit` cut the list. */
  range(prefix: string, opts?: RangeOptions): Promise<{ kvs: KeyValue[]; revision: number; more: boolean }>;

  /** If every compare holds, apply every operation at one new revision. */
  txn(compares: readonly Compare[], operations: readonly Operation[]): Promise<TxnResult>;

  /**
   * Watch `prefix` for changes after `afterRevision`: `onChanges` gets them
   * in revision order. A revision already compacted (or, for the embedded
   * stores, one ahead of the store) fails the watch at once: `onError` gets
   * a CompactedError. A store
   * that becomes unreachable delivers no error: the watch resumes where it
   * was when the store is back (etcd3 retries); `onError` is for what the
   * watcher must act on.
   */
  watch(prefix: string, afterRevision: number, onChanges: (c: KvChanges) => void, onError: (err: Error) => void): KvWatch;

  /** Grant a lease of `ttlSeconds` (1..86400). */
  grantLease(ttlSeconds: number): Promise<LeaseInfo>;
  /** Renew a live lease to its full TTL; NOT_FOUND if it expired or was revoked. */
  keepAlive(id: string): Promise<LeaseInfo>;
  /** A live lease, or undefined. */
  lease(id: string): Promise<LeaseInfo | undefined>;
  /** The keys attached to a live lease (none if it is gone). */
  leaseKeys(id: string): Promise<string[]>;
  /** Revoke a lease, deleting its keys; false if it did not exist. */
  revokeLease(id: string): Promise<boolean>;

  /** Forget the history up to `revision` (watches from before it fail with COMPACTED). */
  compact(revision: number): Promise<void>;

  /** Release the store (and its timers and connections). Idempotent. */
  close(): Promise<void>;
}

/** The error of a watch that asked for history the store no longer has: read the range again. */
export class CompactedError extends SluiceError {
  readonly compacted = true;
  constructor(message: string) {
    super('FAILED_PRECONDITION', message);
    this.name = 'CompactedError';
  }
}
