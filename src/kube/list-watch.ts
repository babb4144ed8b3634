/**
 * One resource kept in step with the API server, as client-go's reflector
 * does it: list (in pages), then watch from the list's resourceVersion with
 * bookmarks and a server-side timeout, resume a watch that ends from the
 * last resourceVersion seen, list again on "410 Gone", and back off and
 * retry on any other failure while keeping what it holds: the dataplane
 * goes on forwarding by the last state known.
 *
 * Built on client-node's Watch and list calls rather than its informer: the
 * 1.4 informer sends neither allowWatchBookmarks nor timeoutSeconds, and
 * stops for good on any error but 410. Its Watch has no client-side timeout
 * (it replaces its 30 s timeout signal with the abort signal), so a watch
 * that goes silent (a peer that vanished without a FIN) is aborted here.
 */
import type { Logger } from 'pino';

/** One page of a list. */
export interface ListPage<T> {
  items: T[];
  metadata?: { resourceVersion?: string; _continue?: string; continue?: string };
}

/** The watch part of client-node's Watch. */
export interface Watcher {
  watch(
    path: string,
    query: Record<string, unknown>,
    callback: (phase: string, obj: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController>;
}

export interface ListWatchOptions<T> {
  /** For logs and metrics: "services". */
  resource: string;
  /** One page: client-node's list call with these parameters. */
  list: (params: { labelSelector?: string; fieldSelector?: string; limit: number; _continue?: string }) => Promise<ListPage<T>>;
  /** The watch path, e.g. /api/v1/services. */
  path: string;
  watcher: Watcher;
  labelSelector?: string;
  fieldSelector?: string;
  /** A full list: everything there is (replaces what was held). */
  onList: (items: T[]) => void;
  onEvent: (type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: T) => void;
  logger: Logger;
  /** Items per list page (default 500, as client-go). */
  pageSize?: number;
  /** Server-side watch timeout in s; client-go picks 5-10 min at random (the default here too). */
  timeoutSeconds?: () => number;
  /** A watch silent for this long past its timeout is aborted, ms (default 30,000). */
  silenceSlackMs?: number;
  /** Backoff after a failure: first and largest, ms (default 500 and 30,000). */
  backoffMs?: { initial: number; max: number };
}

type Outcome = 'ended' | 'gone' | 'failed';

/** The HTTP status of a client-node error (ApiException.code, Watch's statusCode). */
function statusOf(err: unknown): number | undefined {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; statusCode?: unknown };
    if (typeof e.statusCode === 'number') return e.statusCode;
    if (typeof e.code === 'number') return e.code;
  }
  return undefined;
}

export class ListWatch<T extends { metadata?: { resourceVersion?: string } }> {
  private readonly o: ListWatchOptions<T>;
  private readonly log: Logger;
  private rv: string | undefined;
  private stopped = false;
  private controller: AbortController | undefined;
  private endWatch: (() => void) | undefined;
  private wake: (() => void) | undefined;
  private backoff: number;
  private loop: Promise<void> | undefined;
  /** Lists done (the first and every relist). */
  lists = 0;
  /** Watches started. */
  watches = 0;
  /** True once the first list has been delivered. */
  synced = false;
  /** False while the API server cannot be reached or refuses. */
  healthy = true;

  constructor(o: ListWatchOptions<T>) {
    this.o = o;
    this.log = o.logger.child({ resource: o.resource });
    this.backoff = o.backoffMs?.initial ?? 500;
  }

  /** Start listing and watching (in the background). */
  start(): void {
    this.loop ??= this.run();
  }

  /** Stop: the open watch is aborted; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.controller?.abort();
    this.endWatch?.();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.rv === undefined) {
        try {
          await this.relist();
        } catch (err) {
          if (this.stopped) return;
          this.fail(err, 'list');
          await this.sleep(this.nextBackoff());
          continue;
        }
      }
      const started = Date.now();
      const outcome = await this.watchOnce();
      if (this.stopped) return;
      if (outcome === 'gone') {
        this.log.info({ resourceVersion: this.rv }, 'watch: resourceVersion too old (410): listing again');
        this.rv = undefined;
      } else if (outcome === 'failed') {
        await this.sleep(this.nextBackoff());
      } else if (Date.now() - started < 1000) {
        // A watch the server ends at once, again and again, is a failure too.
        await this.sleep(this.nextBackoff());
      }
    }
  }

  private fail(err: unknown, what: string): void {
    const status = statusOf(err);
    if (this.healthy) {
      if (status === 401 || status === 403) {
        this.log.warn({ status }, `${what}: the API server refused the credentials of the kubeconfig (${status === 401 ? 'not authenticated' : `not allowed to list and watch ${this.o.resource}`}): retrying with backoff; the dataplane keeps the last state`);
      } else {
        this.log.warn({ err: String((err as Error)?.message ?? err).split('\n')[0], status }, `${what} failed: retrying with backoff; the dataplane keeps the last state`);
      }
    }
    this.healthy = false;
  }

  private nextBackoff(): number {
    const max = this.o.backoffMs?.max ?? 30_000;
    const b = this.backoff;
    this.backoff = Math.min(max, this.backoff * 2);
    return b * (0.8 + Math.random() * 0.4);
  }

  private recovered(): void {
    this.backoff = this.o.backoffMs?.initial ?? 500;
    if (!this.healthy) this.log.info('the API server answers again');
    this.healthy = true;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** List everything, page by page; a continue token that expired (410) starts over. */
  private async relist(): Promise<void> {
    const limit = this.o.pageSize ?? 500;
    for (let attempt = 0; ; attempt++) {
      const items: T[] = [];
      let token: string | undefined;
      let rv: string | undefined;
      try {
        do {
          const page = await this.o.list({
            ...(this.o.labelSelector ? { labelSelector: this.o.labelSelector } : {}),
            ...(this.o.fieldSelector ? { fieldSelector: this.o.fieldSelector } : {}),
            limit,
            ...(token ? { _continue: token } : {}),
          });
          for (const it of page.items) items.push(it);
          token = page.metadata?._continue ?? page.metadata?.continue ?? undefined;
          if (token === '') token = undefined;
          rv = page.metadata?.resourceVersion ?? rv;
        } while (token !== undefined && !this.stopped);
      } catch (err) {
        if (statusOf(err) === 410 && attempt < 3) continue;
        throw err;
      }
      if (this.stopped) return;
      this.lists++;
      this.rv = rv;
      this.recovered();
      this.synced = true;
      this.o.onList(items);
      return;
    }
  }

  private watchOnce(): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      let outcome: Outcome | undefined;
      let timer: NodeJS.Timeout | undefined;
      const timeout = this.o.timeoutSeconds?.() ?? 300 + Math.floor(Math.random() * 300);
      const silence = timeout * 1000 + (this.o.silenceSlackMs ?? 30_000);
      const finish = (o: Outcome): void => {
        if (outcome !== undefined) return;
        outcome = o;
        this.endWatch = undefined;
        clearTimeout(timer);
        this.controller?.abort();
        this.controller = undefined;
        resolve(o);
      };
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          this.log.warn({ silentMs: silence }, 'watch: nothing from the API server past the watch timeout: starting it again');
          finish('failed');
        }, silence);
      };
      arm();
      this.endWatch = () => finish('failed');
      this.watches++;
      const query: Record<string, unknown> = {
        resourceVersion: this.rv,
        allowWatchBookmarks: true,
        timeoutSeconds: timeout,
        labelSelector: this.o.labelSelector,
        fieldSelector: this.o.fieldSelector,
      };
      const onEvent = (phase: string, obj: unknown): void => {
        if (outcome !== undefined) return;
        arm();
        const o = obj as { metadata?: { resourceVersion?: string }; code?: number; message?: string };
        switch (phase) {
          case 'ADDED':
          case 'MODIFIED':
          case 'DELETED':
            this.recovered();
            if (o?.metadata?.resourceVersion) this.rv = o.metadata.resourceVersion;
            this.o.onEvent(phase, obj as T);
            return;
          case 'BOOKMARK':
            if (o?.metadata?.resourceVersion) this.rv = o.metadata.resourceVersion;
            return;
          case 'ERROR':
            if (o?.code === 410) finish('gone');
            else {
              this.fail(new Error(o?.message ?? 'watch error event'), 'watch');
              finish('failed');
            }
            return;
          default:
            return;
        }
      };
      const onDone = (err: unknown): void => {
        if (outcome !== undefined) return;
        if (err === null || err === undefined) finish('ended');
        else if (statusOf(err) === 410) finish('gone');
        else {
          if (!this.stopped) this.fail(err, 'watch');
          finish('failed');
        }
      };
      this.o.watcher.watch(this.o.path, query, onEvent, onDone).then(
        (c) => {
          if (outcome !== undefined || this.stopped) c.abort();
          else {
            // The server answered 200: the watch is open.
            this.controller = c;
            this.recovered();
          }
        },
        (err: unknown) => onDone(err ?? new Error('watch failed')),
      );
    });
  }
}
