/**
 * The status page's HTTP routes, to mount on the daemon's metrics server:
 * the page (web/status/: index.html, status.js, status.css, favicon.svg), uPlot from its
 * npm package, `/api/status` (one NodeSnapshot as JSON) and `/events`
 * (server-sent events: a snapshot every second; the browser computes rates
 * from the deltas, as `sluice top` does). Every answer forbids anything
 * but this origin (Content-Security-Policy: default-src 'self'): no CDN,
 * no inline script.
 *
 * However many pages are open, one snapshot is read per interval and sent
 * to all of them; none is read while no page listens. A page that does not
 * read its stream skips snapshots, and is ended if it stays behind.
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { NodeSnapshot, SnapshotSource } from '../metrics/snapshot.js';
import { packageRoot } from '../package-root.js';

/** A route's handler, as node:http gives requests. */
export type StatusRoute = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Timers, passed in by tests. */
export interface StatusTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** Options of statusRoutes. */
export interface StatusOptions {
  /** Time between two snapshots on /events, ms (default 1000). */
  eventIntervalMs?: number;
  /** Ends every /events stream when aborted (the server is closing). */
  signal?: AbortSignal;
  timers?: StatusTimers;
  /** Called with a snapshot that failed, instead of the stream ending (default: nothing). */
  onError?: (err: unknown) => void;
  /**
   * Ticks in a row a stream may skip, because it still holds more than one
   * snapshot unsent, before it is ended (default 30). The browser's
   * EventSource reconnects by itself once it reads again.
   */
  maxTicksBehind?: number;
}

/** The headers every answer carries. */
export const STATUS_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': "default-src 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

/** Where the page's own files are. */
export function staticDir(): string {
  return path.join(packageRoot(), 'web', 'status');
}

/** A file served as is, read once on first use. */
function fileRoute(file: string, type: string): StatusRoute {
  let body: Buffer | undefined;
  return (req, res) => {
    if (!allowed(req, res)) return;
    try {
      body ??= readFileSync(file);
    } catch (err) {
      send(res, 500, 'text/plain; charset=utf-8', `status page: cannot read ${file}: ${(err as Error).message}\n`);
      return;
    }
    res.writeHead(200, { ...STATUS_HEADERS, 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

/** GET and HEAD only; anything else is answered 405. */
function allowed(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return true;
  res.writeHead(405, { ...STATUS_HEADERS, Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(`${req.method ?? ''} is not allowed here: GET or HEAD\n`);
  return false;
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { ...STATUS_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
}

/** One SSE message carrying a snapshot. */
function event(s: NodeSnapshot): string {
  return `event: snapshot\ndata: ${JSON.stringify(s)}\n\n`;
}

/**
 * The routes by path ("/", "/status.js", "/api/status", "/events", ...).
 * The server matches the request's path without its query string.
 */
export function statusRoutes(source: SnapshotSource, opts: StatusOptions = {}): Map<string, StatusRoute> {
  const intervalMs = opts.eventIntervalMs ?? 1000;
  const timers: StatusTimers = opts.timers ?? { setInterval: (fn, ms) => setInterval(fn, ms), clearInterval: (h) => clearInterval(h as NodeJS.Timeout) };
  const dir = staticDir();
  const require = createRequire(import.meta.url);

  const maxBehind = opts.maxTicksBehind ?? 30;

  // The /events streams share one ticker, running while any is open. Each
  // stream counts the ticks in a row it skipped.
  const streams = new Map<http.ServerResponse, { behind: number }>();
  let ticker: unknown;
  let reading = false;
  // A client that stops reading (a laptop asleep, a stalled proxy) would make
  // the daemon buffer a whole snapshot a second, tens of MB at 10,000
  // services: a stream that still holds more than one snapshot unsent skips
  // the tick, and one that stays behind is ended.
  const send1 = (res: http.ServerResponse, data: string, size: number): void => {
    const st = streams.get(res);
    if (!st) return;
    if (res.writableLength > size) {
      if (++st.behind >= maxBehind) {
        drop(res);
        res.destroy();
      }
      return;
    }
    st.behind = 0;
    res.write(data);
  };
  const write = async (to: () => Iterable<http.ServerResponse>): Promise<void> => {
    try {
      const data = event(await source.snapshot());
      const size = Buffer.byteLength(data);
      for (const res of [...to()]) send1(res, data, size);
    } catch (err) {
      opts.onError?.(err);
    }
  };
  // A read slower than the interval skips a beat rather than piling reads up.
  const tick = (): void => {
    if (reading) return;
    reading = true;
    void write(() => streams.keys()).finally(() => (reading = false));
  };
  const drop = (res: http.ServerResponse): void => {
    if (!streams.delete(res)) return;
    if (streams.size === 0 && ticker !== undefined) {
      timers.clearInterval(ticker);
      ticker = undefined;
    }
  };
  opts.signal?.addEventListener('abort', () => {
    for (const res of [...streams.keys()]) {
      drop(res);
      res.end();
    }
  }, { once: true });

  const routes = new Map<string, StatusRoute>([
    ['/', fileRoute(path.join(dir, 'index.html'), 'text/html; charset=utf-8')],
    ['/status.js', fileRoute(path.join(dir, 'status.js'), 'text/javascript; charset=utf-8')],
    ['/status.css', fileRoute(path.join(dir, 'status.css'), 'text/css; charset=utf-8')],
    ['/favicon.svg', fileRoute(path.join(dir, 'favicon.svg'), 'image/svg+xml')],
    ['/uPlot.iife.min.js', fileRoute(require.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8')],
    ['/uPlot.min.css', fileRoute(require.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8')],
    ['/api/status', (req, res) => {
      if (!allowed(req, res)) return;
      source.snapshot().then(
        (s) => send(res, 200, 'application/json; charset=utf-8', JSON.stringify(s)),
        (err: unknown) => send(res, 503, 'text/plain; charset=utf-8', `status: the node could not be read: ${(err as Error).message}\n`),
      );
    }],
    ['/events', (req, res) => {
      if (!allowed(req, res)) return;
      if (opts.signal?.aborted) return send(res, 503, 'text/plain; charset=utf-8', 'status: the server is closing\n');
      res.writeHead(200, { ...STATUS_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
      if (req.method === 'HEAD') return void res.end();
      // A browser reconnects after `retry` ms when the stream breaks (a daemon restart).
      res.write(`retry: ${Math.max(1000, intervalMs)}\n\n`);
      streams.set(res, { behind: 0 });
      req.socket.setNoDelay(true);
      res.on('close', () => drop(res));
      void write(() => [res]);
      ticker ??= timers.setInterval(tick, intervalMs);
    }],
  ]);
  return routes;
}
