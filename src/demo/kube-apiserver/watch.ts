/**
 * One watch request, answered as the real API server's watch cache does
 * (k8s.io/apiserver pkg/storage/cacher): HTTP 200, then newline-delimited
 * JSON events `{"type":...,"object":...}` over chunked transfer.
 *
 * - resourceVersion absent or "0": synthetic ADDED events for the current
 *   state first, then changes.
 * - resourceVersion N: the changes after N from the history; N older than the
 *   history's start gets one ERROR event with the 410 Expired Status
 *   ("too old resource version: N (M)", watch_cache.go) and the stream ends.
 * - Selectors apply to each event with the object before and after it: an
 *   object that starts to match arrives as ADDED, one that stops matching as
 *   DELETED (its previous state with the event's resourceVersion).
 * - allowWatchBookmarks=true: a BOOKMARK every `bookmarkIntervalMs` carrying
 *   only kind, apiVersion and metadata.resourceVersion. Never otherwise.
 * - sendInitialEvents=true: after the synthetic ADDED events, a BOOKMARK
 *   annotated `k8s.io/initial-events-end: "true"` (the watch-list protocol).
 * - timeoutSeconds: the stream ends cleanly (terminating chunk) after that.
 */
import type { ServerResponse } from 'node:http';
import type { Registry } from './registry.js';
import type { ResourceDef } from './resources.js';
import type { Selector } from './selectors.js';
import { expired, type JsonObject } from './status.js';
import { withResourceVersion, type StoreEvent } from './store.js';

/** What a watch request asks for. */
export interface WatchRequest {
  def: ResourceDef;
  namespace: string | undefined;
  labelSelector: Selector;
  fieldSelector: Selector;
  /** Absent, "0", or a revision. */
  resourceVersion: number | undefined;
  allowBookmarks: boolean;
  sendInitialEvents: boolean;
  timeoutSeconds: number | undefined;
  /** How objects of ADDED, MODIFIED and DELETED events are sent (a Table for kubectl get -w); as they are by default. */
  transform?: (obj: JsonObject) => JsonObject;
}

/** An open watch stream. */
export class WatchStream {
  readonly #registry: Registry;
  readonly #req: WatchRequest;
  readonly #res: ServerResponse;
  readonly #onClose: (w: WatchStream) => void;
  #unsubscribe: (() => void) | undefined;
  #timers: NodeJS.Timeout[] = [];
  #lastRevision = 0;
  #closed = false;
  /** Events written (bookmarks and errors included). */
  events = 0;

  constructor(registry: Registry, req: WatchRequest, res: ServerResponse, opts: { bookmarkIntervalMs: number; onClose: (w: WatchStream) => void }) {
    this.#registry = registry;
    this.#req = req;
    this.#res = res;
    this.#onClose = opts.onClose;
    res.on('close', () => this.#cleanup());
    this.#start(opts.bookmarkIntervalMs);
  }

  /** What this watch is on (for request inspection). */
  get request(): WatchRequest {
    return this.#req;
  }

  #write(type: string, object: JsonObject): void {
    if (this.#closed) return;
    this.events++;
    const sent = this.#req.transform && type !== 'BOOKMARK' && type !== 'ERROR' ? this.#req.transform(object) : object;
    this.#res.write(`${JSON.stringify({ type, object: sent })}\n`);
  }

  #bookmark(annotations?: Record<string, string>): void {
    const rv = Math.max(this.#registry.store.revision, this.#lastRevision);
    const { def } = this.#req;
    this.#write('BOOKMARK', { kind: def.kind, apiVersion: def.apiVersion, metadata: { resourceVersion: String(rv), ...(annotations ? { annotations } : {}) } });
  }

  #start(bookmarkIntervalMs: number): void {
    const { def, namespace, resourceVersion, labelSelector, fieldSelector } = this.#req;
    const registry = this.#registry;
    const store = registry.store;
    this.#res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    this.#res.flushHeaders();
    if (resourceVersion !== undefined && resourceVersion !== 0 && resourceVersion < store.historyStart) {
      const status = expired(`too old resource version: ${resourceVersion} (${store.historyStart})`).status();
      this.#write('ERROR', status);
      this.close();
      return;
    }
    const prefix = registry.prefix(def, namespace);
    let from: number;
    if (resourceVersion === undefined || resourceVersion === 0 || this.#req.sendInitialEvents) {
      from = store.revision;
      for (const [, obj] of store.list(prefix)) if (registry.matches(def, obj, labelSelector, fieldSelector)) this.#write('ADDED', obj);
      this.#lastRevision = from;
      if (this.#req.sendInitialEvents && this.#req.allowBookmarks) this.#bookmark({ 'k8s.io/initial-events-end': 'true' });
    } else {
      from = resourceVersion;
      for (const e of store.eventsAfter(from)) this.#deliver(e, prefix);
    }
    this.#unsubscribe = store.subscribe((e) => this.#deliver(e, prefix));
    if (this.#req.allowBookmarks) {
      const t = setInterval(() => this.#bookmark(), bookmarkIntervalMs);
      this.#timers.push(t);
    }
    if (this.#req.timeoutSeconds !== undefined && this.#req.timeoutSeconds > 0) {
      this.#timers.push(setTimeout(() => this.close(), this.#req.timeoutSeconds * 1000));
    }
  }

  #deliver(e: StoreEvent, prefix: string): void {
    const { def, labelSelector, fieldSelector } = this.#req;
    if (e.resource !== def.plural || !e.key.startsWith(prefix)) return;
    const match = (o: JsonObject | undefined): boolean => o !== undefined && this.#registry.matches(def, o, labelSelector, fieldSelector);
    const now = e.type === 'DELETED' ? false : match(e.object);
    const before = e.type === 'ADDED' ? false : match(e.previous);
    this.#lastRevision = e.revision;
    if (e.type === 'DELETED') {
      if (before) this.#write('DELETED', e.object);
    } else if (now && before) this.#write('MODIFIED', e.object);
    else if (now) this.#write('ADDED', e.object);
    else if (before) this.#write('DELETED', withResourceVersion(e.previous!, e.revision));
  }

  #cleanup(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    for (const t of this.#timers) clearTimeout(t);
    this.#onClose(this);
  }

  /** End the stream cleanly (the terminating chunk). */
  close(): void {
    this.#cleanup();
    this.#res.end();
  }

  /** Cut the connection without ending the response (a crashed server, a broken network). */
  abort(): void {
    this.#cleanup();
    this.#res.socket?.destroy();
  }
}
