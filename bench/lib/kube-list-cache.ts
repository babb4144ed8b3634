/**
 * A front for the test API server (src/demo/kube-apiserver.ts) that answers
 * the pages of a list from memory, as a real API server answers lists from
 * its watch cache, and passes every other request through unchanged
 * (watches stream through it).
 *
 * Why it is there: the test API server builds each page of a list from a
 * deep copy of every object of the resource (its store's list), so paging
 * N objects 500 at a time costs it O(N²): with 10,000 Services and 10,000
 * EndpointSlices, about 10 s of the benchmark process's CPU, which would
 * be counted as the agent's load time. The pages are read from the test
 * server itself beforehand (prime), kept byte for byte with their status
 * and headers, and answered from memory only to a request with the same
 * path and query and only while the server's revision is the one they
 * were read at: after any write, every request goes through.
 */
import https from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { stringify } from 'yaml';
import { makeServerCerts } from '../../src/demo/kube-apiserver/certs.js';
import type { KubeApiServer } from '../../src/demo/kube-apiserver.js';

/** One page as the test server answered it. */
interface Page {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Headers of one hop only, not passed on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP_BY_HOP.has(k)));
}

/** "path?a=1&b=2" with the query's parameters sorted: how two requests for one page compare. */
function pageKey(url: string): string {
  const u = new URL(url, 'https://127.0.0.1');
  const params = [...u.searchParams.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `${u.pathname}?${new URLSearchParams(params).toString()}`;
}

/** A request the front received. */
export interface FrontRequest {
  method: string;
  /** The path without the query. */
  path: string;
  /** A watch (query watch=true or 1). */
  watch: boolean;
  /** Answered from memory. */
  cached: boolean;
  /** performance.now() at arrival. */
  at: number;
  /** performance.now() when the answer was written (a watch: when it ended); NaN until then. */
  answered: number;
}

/** What prime() read. */
export interface PrimeResult {
  pages: number;
  bytes: number;
  /** Seconds the test server took to answer them all, one after another, to the benchmark alone. */
  seconds: number;
}

export class ListCacheFront {
  readonly #api: KubeApiServer;
  readonly #server: https.Server;
  readonly #upstream: https.Agent;
  readonly #pages = new Map<string, Page>();
  #revision = -1;
  /** The requests received since the last prime(), oldest first. */
  readonly requests: FrontRequest[] = [];

  private constructor(api: KubeApiServer, server: https.Server, readonly caPem: string) {
    this.#api = api;
    this.#server = server;
    this.#upstream = new https.Agent({ keepAlive: true, ca: api.caPem });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#handle(req, res));
  }

  /** Listen on 127.0.0.1 (a free port) in front of `api`. */
  static async start(api: KubeApiServer): Promise<ListCacheFront> {
    const certs = await makeServerCerts();
    const server = https.createServer({ cert: certs.cert, key: certs.key, noDelay: true });
    const front = new ListCacheFront(api, server, certs.ca);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return front;
  }

  get url(): string {
    return `https://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** A kubeconfig (YAML) for this front: its URL and CA, the test server's token. */
  kubeconfig(): string {
    const name = 'sluice-bench';
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name, cluster: { server: this.url, 'certificate-authority-data': Buffer.from(this.caPem).toString('base64') } }],
      users: [{ name, user: { token: this.#api.token } }],
      contexts: [{ name, context: { cluster: name, user: name } }],
      'current-context': name,
    });
  }

  /**
   * Read every page of each list (`paths`, with these query parameters and
   * `limit` items a page, as the agent asks for them) from the test server,
   * following the continue tokens, and keep them for requests made before
   * the next write.
   */
  async prime(paths: readonly string[], query: Record<string, string>, limit: number): Promise<PrimeResult> {
    this.#pages.clear();
    this.requests.length = 0;
    const revision = this.#api.revision;
    const t0 = performance.now();
    let bytes = 0;
    for (const path of paths) {
      let cont: string | undefined;
      do {
        const params = new URLSearchParams({ ...query, limit: String(limit), ...(cont !== undefined ? { continue: cont } : {}) });
        const url = `${path}?${params.toString()}`;
        const page = await this.#fetch(url);
        if (page.status !== 200) throw new Error(`list cache: ${url}: the test API server answered ${page.status}: ${page.body.toString().slice(0, 300)}`);
        this.#pages.set(pageKey(url), page);
        bytes += page.body.length;
        const meta = (JSON.parse(page.body.toString()) as { metadata?: { continue?: string } }).metadata;
        cont = meta?.continue !== undefined && meta.continue !== '' ? meta.continue : undefined;
      } while (cont !== undefined);
    }
    const seconds = (performance.now() - t0) / 1000;
    if (this.#api.revision !== revision) throw new Error('list cache: the test API server was written while its lists were read');
    this.#revision = revision;
    return { pages: this.#pages.size, bytes, seconds };
  }

  async close(): Promise<void> {
    this.#pages.clear();
    const closed = once(this.#server, 'close');
    this.#server.close();
    this.#server.closeAllConnections();
    await closed;
    this.#upstream.destroy();
  }

  #fetch(url: string): Promise<Page> {
    return new Promise((resolve, reject) => {
      const req = https.get(`${this.#api.url}${url}`, {
        agent: this.#upstream,
        headers: { authorization: `Bearer ${this.#api.token}`, accept: 'application/json' },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: endToEnd(res.headers), body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
  }

  /** Pages answered from memory since the last prime(). */
  get served(): number {
    return this.requests.filter((r) => r.cached).length;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const at = performance.now();
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const watch = ['true', '1'].includes(url.searchParams.get('watch') ?? '');
    const page = req.method === 'GET' && this.#api.revision === this.#revision && req.headers.authorization === `Bearer ${this.#api.token}` &&
      !/protobuf|as=Table/.test(req.headers.accept ?? '')
      ? this.#pages.get(pageKey(req.url ?? '/'))
      : undefined;
    const record: FrontRequest = { method: req.method ?? 'GET', path: url.pathname, watch, cached: page !== undefined, at, answered: NaN };
    this.requests.push(record);
    res.on('finish', () => void (record.answered = performance.now()));
    if (page) {
      res.writeHead(page.status, { ...page.headers, 'content-length': String(page.body.length) });
      res.end(page.body);
      return;
    }
    const up = https.request({
      host: '127.0.0.1',
      port: this.#api.port,
      method: req.method,
      path: req.url,
      headers: { ...endToEnd(req.headers), host: `127.0.0.1:${this.#api.port}` },
      agent: this.#upstream,
    }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, endToEnd(upRes.headers));
      // A watch's events are written as they come: nothing waits for more.
      upRes.on('data', (c: Buffer) => res.write(c));
      upRes.on('end', () => res.end());
      upRes.on('error', () => res.destroy());
      res.on('close', () => {
        if (!upRes.complete) upRes.destroy();
      });
    });
    up.on('socket', (s) => s.setNoDelay(true));
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.destroy();
    });
    req.pipe(up);
  }
}
