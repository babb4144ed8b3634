/**
 * Where desired state and leases live, behind one interface so that the
 * embedded SQLite store can later give way to a distributed one (etcd, the
 * Kubernetes API). Semantics follow etcd: one store-wide revision that every
 * change increments; each service remembers the revision of its creation
 * and of its last change; deletes are events too; a watcher resumes from a
 * revision as long as the event log still holds it.
 *
 * Every method is synchronous: the embedded store answers from the same
 * thread (better-sqlite3), and callers serialise their writes.
 */
import type { ServiceDefinition, StoredService } from '../model/definition.js';

/** One change. */
export interface StoreEvent {
  type: 'PUT' | 'DELETE';
  /** Service name. */
  name: string;
  /** The store revision this change created. */
  revision: number;
  /** The service after a PUT; before a DELETE (its last state). */
  service: StoredService;
}

/** A lease: something registered with a TTL that must be kept alive. */
export interface Lease {
  id: string;
  ttlSeconds: number;
  /** Wall-clock milliseconds (the caller's clock) after which it has expired. */
  expiresAtMs: number;
}

/** Dataplane ids of one frontend, persisted so a restart maps to the same maps. */
export interface FrontendIds {
  serviceId: number;
  /** backend identity ("address:port") -> backend id */
  backends: Map<string, number>;
}

/** Options of Store.list. */
export interface ListOptions {
  /** Only names starting with this. */
  prefix?: string;
  /** Only names strictly after this one (paging cursor). */
  startAfter?: string;
  /** At most this many (default: all). */
  limit?: number;
}

/** Desired state and leases. */
export interface Store {
  /** The current store revision (0 for a new store). */
  revision(): number;

  /** One service, or undefined. */
  get(name: string): StoredService | undefined;

  /** Services ordered by name. */
  list(opts?: ListOptions): StoredService[];

  /** How many services there are (with the prefix, if given). */
  count(prefix?: string): number;

  /**
   * Create or replace services, all in one transaction. For each item,
   * `expectedRevision` undefined writes unconditionally; 0 requires that the
   * service does not exist (else SluiceError ALREADY_EXISTS); n requires its
   * current revision to be n (else FAILED_PRECONDITION, or NOT_FOUND if it
   * does not exist). On any error nothing is written. Every item gets its
   * own revision, in order. The services returned (and published to
   * subscribers) hold the definition objects given: the store keeps its own
   * copy, so changing them afterwards changes nothing stored, but callers
   * and subscribers must not modify them.
   */
  put(items: Array<{ definition: ServiceDefinition; expectedRevision?: number }>): StoredService[];

  /**
   * Delete a service (NOT_FOUND if absent; FAILED_PRECONDITION if
   * expectedRevision is given and differs). Returns the new store revision.
   */
  delete(name: string, expectedRevision?: number): number;

  /**
   * Events with revision > `since`, oldest first. Throws SluiceError
   * FAILED_PRECONDITION if the log no longer reaches back that far (the
   * watcher must take a new snapshot).
   */
  eventsSince(since: number): StoreEvent[];

  /** Oldest revision eventsSince can still start from. */
  compactedRevision(): number;

  /** Call `fn` for every new event, after its transaction committed. Returns an unsubscribe function. */
  subscribe(fn: (e: StoreEvent) => void): () => void;

  /** Persisted dataplane ids of every frontend. */
  loadIds(): Map<string, FrontendIds>;
  /** Persist (replace) the ids of some frontends and forget others, in one transaction. */
  saveIds(set: Map<string, FrontendIds>, forget: Iterable<string>): void;

  /** Grant a lease of `ttlSeconds` (1..86400) starting now. */
  grantLease(ttlSeconds: number, nowMs: number): Lease;
  /** Extend a live lease by its TTL from now. NOT_FOUND if unknown or already expired. */
  keepAlive(id: string, nowMs: number): Lease;
  /** A lease, or undefined. */
  getLease(id: string): Lease | undefined;
  /** Remove a lease; false if it did not exist. */
  revokeLease(id: string): boolean;
  /** Leases whose expiry is at or before `nowMs`. */
  expiredLeases(nowMs: number): Lease[];

  /** Release the store (close the database). Idempotent. */
  close(): void;
}
