/**
 * The node's small HTTP servers (the daemon's /metrics, the status page,
 * the kube-proxy mode's /healthz): a bind address given as HOST:PORT, and a
 * server that answers GET/HEAD by an exact path from a route table. The
 * table is live, so a module started later (the status page) mounts its
 * paths on a server already bound: `server.routes.set('/', handler)`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SluiceError } from '../errors.js';
import { unbracketedIPv6 } from '../model/address.js';

/** Where to listen. */
export interface BindAddress {
  host: string;
  port: number;
}

/**
 * "host:port" → where to listen; "" means off. INVALID_ARGUMENT naming
 * `field` otherwise, with `example` (the caller's own, e.g. "127.0.0.1:9469"
 * for metrics) as what to write.
 */
export function parseBindAddress(value: string, field: string, example: string): BindAddress | undefined {
  if (value === '') return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  const unbracketed = unbracketedIPv6(value);
  if (unbracketed) throw new SluiceError('INVALID_ARGUMENT', unbracketed, { field });
  if (!m || port > 65535) throw new SluiceError('INVALID_ARGUMENT', `must be host:port or [v6]:port (e.g. ${example} or [::1]:${example.replace(/^.*:/, '')}), or "" to turn it off, got ${JSON.stringify(value)}`, { field });
  return { host: m[1] ?? m[2]!, port };
}

/**
 * Bind `server`; resolves with the address bound ("127.0.0.1:9469",
 * "[::1]:9469"). A port that is taken (or an address not on the host) is
 * FAILED_PRECONDITION naming `field`, with `hint` after EADDRINUSE.
 */
export function listen(server: http.Server, at: BindAddress, field: string, hint = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new SluiceError('FAILED_PRECONDITION', `cannot listen on ${at.host}:${at.port}: ${err.code ?? err.message}${err.code === 'EADDRINUSE' && hint ? ` (${hint})` : ''}`, { field, cause: err })),
    );
    server.listen(at.port, at.host, () => {
      const a = server.address() as AddressInfo;
      resolve(a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
    });
  });
}

/**
 * Answers one path. It may be async; a rejection it does not handle is
 * answered with 500 (if nothing was sent yet).
 */
export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

/** Options of startHttpServer. */
export interface HttpServerOptions {
  bind: BindAddress;
  /** The option or flag errors name ("metricsBindAddress"). */
  field: string;
  /** Said after EADDRINUSE ("is another sluice daemon running?"). */
  hint?: string;
  /** Paths served from the start (the table stays the caller's to change: see HttpServer.routes). */
  routes?: Map<string, RouteHandler>;
}

/** A running server. */
export interface HttpServer {
  /** The address bound, "host:port". */
  address: string;
  /** Path (without the query) → handler; changes take effect at the next request. */
  routes: Map<string, RouteHandler>;
  /** Stop listening and drop open connections (an SSE stream, a keep-alive). Idempotent. */
  close(): Promise<void>;
}

/** Bind a server that answers by exact path from a route table, 404 otherwise. */
export async function startHttpServer(o: HttpServerOptions): Promise<HttpServer> {
  const routes = o.routes ?? new Map<string, RouteHandler>();
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0]!;
    const route = routes.get(url);
    if (!route) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    const fail = (err: unknown): void => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`${err instanceof Error ? err.message : String(err)}\n`);
    };
    try {
      const r = route(req, res);
      if (r) r.catch(fail);
    } catch (err) {
      fail(err);
    }
  });
  const address = await listen(server, o.bind, o.field, o.hint);
  let closing: Promise<void> | undefined;
  return {
    address,
    routes,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      })),
  };
}
