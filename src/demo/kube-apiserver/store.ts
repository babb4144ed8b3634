/**
 * Storage with etcd's revision model: one counter for the whole store, each
 * write gets the next revision and is the object's metadata.resourceVersion.
 * Every key keeps its versions back to the compaction revision, so a list can
 * be read at an older revision (what a paged list's continue token asks
 * for), and a bounded history of events (the API server's watch cache) lets
 * a watch start from an older resourceVersion.
 *
 * Two horizons, as in a real cluster:
 * - `compactedRevision` (etcd's compaction): reads at an older revision are
 *   gone (410 for a list at that revision or a continue token from before);
 * - `historyStart` (the watch cache's window): a watch can start at any
 *   revision >= historyStart; events after it are all kept. It moves when
 *   the history is full, on compaction, and on a restart (the real watch
 *   cache is rebuilt from a fresh list).
 */
import type { JsonObject } from './status.js';

/** One change, as watchers see it. */
export interface StoreEvent {
  revision: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** The resource's plural (`services`). */
  resource: string;
  key: string;
  /** The object after the change; for DELETED, the last state with the deletion's resourceVersion. */
  object: JsonObject;
  /** The object before the change (MODIFIED, DELETED). */
  previous: JsonObject | undefined;
}

interface Version {
  revision: number;
  /** null: deleted at this revision (a tombstone). */
  object: JsonObject | null;
}

/** Set metadata.resourceVersion on a copy. */
export function withResourceVersion(obj: JsonObject, revision: number): JsonObject {
  const copy = structuredClone(obj);
  const meta = (copy['metadata'] ?? {}) as JsonObject;
  meta['resourceVersion'] = String(revision);
  copy['metadata'] = meta;
  return copy;
}

/** An etcd-like revisioned key space with an event history. */
export class RevisionStore {
  #revision: number;
  #compacted = 0;
  #historyStart: number;
  readonly #historySize: number;
  readonly #versions = new Map<string, Version[]>();
  #history: StoreEvent[] = [];
  readonly #listeners = new Set<(e: StoreEvent) => void>();

  constructor(opts: { historySize: number }) {
    this.#historySize = opts.historySize;
    // etcd's first revision is 1 (the empty store).
    this.#revision = 1;
    this.#historyStart = 1;
  }

  /** The current revision (the resourceVersion of a consistent read now). */
  get revision(): number {
    return this.#revision;
  }

  /** Reads at a revision below this one are gone. */
  get compactedRevision(): number {
    return this.#compacted;
  }

  /** A watch may start at this revision or later. */
  get historyStart(): number {
    return this.#historyStart;
  }

  /** The object at `key` now, or at `revision`. */
  get(key: string, revision = this.#revision): JsonObject | undefined {
    const versions = this.#versions.get(key);
    if (!versions) return undefined;
    for (let i = versions.length - 1; i >= 0; i--) {
      const v = versions[i]!;
      if (v.revision <= revision) return v.object === null ? undefined : structuredClone(v.object);
    }
    return undefined;
  }

  /**
   * The current objects under `prefix`, not copied and in no order: for
   * reads that only look (the allocators, which look at every Service on
   * each create: copying them all made loading 10,000 Services quadratic in
   * copies).
   */
  peekCurrent(prefix: string, except?: string): JsonObject[] {
    const out: JsonObject[] = [];
    for (const [k, versions] of this.#versions) {
      if (k === except || !k.startsWith(prefix)) continue;
      const v = versions[versions.length - 1];
      if (v && v.object !== null) out.push(v.object);
    }
    return out;
  }

  /** Keys under `prefix` in key order with their objects at `revision`. */
  list(prefix: string, revision = this.#revision): Array<[string, JsonObject]> {
    const keys = [...this.#versions.keys()].filter((k) => k.startsWith(prefix)).sort();
    const out: Array<[string, JsonObject]> = [];
    for (const k of keys) {
      const obj = this.get(k, revision);
      if (obj) out.push([k, obj]);
    }
    return out;
  }

  /** Write `object` at `key`; returns it with its new resourceVersion. */
  put(resource: string, key: string, object: JsonObject): JsonObject {
    const previous = this.get(key);
    const revision = ++this.#revision;
    const stored = withResourceVersion(object, revision);
    this.#push(key, { revision, object: stored });
    this.#emit({ revision, type: previous ? 'MODIFIED' : 'ADDED', resource, key, object: stored, previous });
    return structuredClone(stored);
  }

  /** Delete `key`; returns the last state with the deletion's resourceVersion. */
  remove(resource: string, key: string): JsonObject | undefined {
    const previous = this.get(key);
    if (!previous) return undefined;
    const revision = ++this.#revision;
    this.#push(key, { revision, object: null });
    const object = withResourceVersion(previous, revision);
    this.#emit({ revision, type: 'DELETED', resource, key, object, previous });
    return structuredClone(object);
  }

  /** Events after `revision` (the caller checked it against historyStart). */
  eventsAfter(revision: number): StoreEvent[] {
    return this.#history.filter((e) => e.revision > revision);
  }

  /** Call `fn` for every change from now on; returns the unsubscribe function. */
  subscribe(fn: (e: StoreEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Compact at the current revision: older versions and all event history are dropped. */
  compact(): number {
    const at = this.#revision;
    for (const [key, versions] of this.#versions) {
      // Everything is at or below `at`: each key keeps its latest version, a deleted key goes.
      const last = versions[versions.length - 1];
      if (!last || last.object === null) this.#versions.delete(key);
      else this.#versions.set(key, [last]);
    }
    this.#compacted = at;
    this.dropHistory();
    return at;
  }

  /** Forget the event history (a restarted API server's watch cache starts at the current revision). */
  dropHistory(): void {
    this.#history = [];
    this.#historyStart = this.#revision;
  }

  #push(key: string, v: Version): void {
    const versions = this.#versions.get(key) ?? [];
    versions.push(v);
    this.#versions.set(key, versions);
  }

  #emit(e: StoreEvent): void {
    this.#history.push(e);
    while (this.#history.length > this.#historySize) this.#historyStart = this.#history.shift()!.revision;
    for (const fn of this.#listeners) fn(e);
  }
}
