/**
 * A Kubernetes API server for tests, in TypeScript, that speaks the real
 * protocol well enough for kubectl 1.32 and @kubernetes/client-node: HTTPS on
 * 127.0.0.1 with a CA made for the run, bearer-token authentication, the
 * core/v1 Service, Node and Namespace and discovery.k8s.io/v1 EndpointSlice
 * resources with the real server's defaulting, validation messages, etcd-like
 * resourceVersions, paged lists, watches (replay, bookmarks, timeouts, 410
 * Expired), and the patch types kubectl sends. Free of ava, so a demo can use
 * it too.
 *
 *   const api = await KubeApiServer.start();
 *   t.teardown(() => api.close());
 *   api.writeKubeconfig(file);                  // for kubectl and KubeConfig.loadFromFile
 *   api.applyObjects(loadManifests('test/fixtures/kube'));
 *
 * What a test can do to it that a cluster does on its own: compact() (etcd's
 * compaction: old resourceVersions answer 410), closeWatches() (connections
 * cut, or ended), stop()/restart() (an API server restart on the same port,
 * state and revisions kept, watch history gone as the real watch cache is
 * rebuilt), and `requests` to see what clients asked (a relist, a watch's
 * resourceVersion).
 *
 * The parts are in src/demo/kube-apiserver/: store (revisions, history),
 * registry (the generic registry), resources and services (per-type
 * strategies), schema (known fields), patch, selectors, watch, handler
 * (HTTP), table (kubectl's columns), protobuf (kubectl's generator bodies),
 * discovery, status (error objects), certs.
 */
import { once } from 'node:events';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseAllDocuments, stringify } from 'yaml';
import { makeServerCerts, type ServerCerts } from './kube-apiserver/certs.js';
import { ApiHandler, type RequestRecord } from './kube-apiserver/handler.js';
import { Registry, type WriteOptions } from './kube-apiserver/registry.js';
import { RESOURCES, resourceByKind, type ResourceDef } from './kube-apiserver/resources.js';
import { isObject, type JsonObject } from './kube-apiserver/status.js';

export type { RequestRecord } from './kube-apiserver/handler.js';
export { ApiError, type JsonObject } from './kube-apiserver/status.js';

/** The resources the server serves, by their plural. */
export type KubeResource = 'services' | 'endpointslices' | 'nodes' | 'namespaces';

/** Options of KubeApiServer.start; every field has a default. */
export interface KubeApiServerOptions {
  /** Port on 127.0.0.1; 0 (the default) picks a free one, kept across restart(). */
  port?: number;
  /** The bearer token clients must send; random by default. */
  token?: string;
  /** --service-cluster-ip-range's IPv4 range. Default 10.96.0.0/16. */
  serviceCidr?: string;
  /** --service-cluster-ip-range's IPv6 range (the cluster is then dual-stack, IPv4 primary); "" for none. Default fd96::/112. */
  serviceCidr6?: string;
  /** --service-node-port-range. Default 30000-32767. */
  nodePortRange?: string;
  /** Events kept for watches that start from a resourceVersion. Default 1000. */
  historySize?: number;
  /** Time between BOOKMARK events of watches that allow them. Default 60 s (the real server's period). */
  bookmarkIntervalMs?: number;
}

/** Programmatic writes refuse unknown fields, so that a typo in a test's object is an error, not a dropped field. */
const STRICT: WriteOptions = { fieldValidation: 'Strict' };

const DEFAULT_NAMESPACES = ['default', 'kube-node-lease', 'kube-public', 'kube-system'];

function resolveOptions(opts: KubeApiServerOptions): Required<KubeApiServerOptions> {
  return {
    port: opts.port ?? 0,
    token: opts.token ?? randomBytes(24).toString('base64url'),
    serviceCidr: opts.serviceCidr ?? '10.96.0.0/16',
    serviceCidr6: opts.serviceCidr6 ?? 'fd96::/112',
    nodePortRange: opts.nodePortRange ?? '30000-32767',
    historySize: opts.historySize ?? 1000,
    bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 60_000,
  };
}

function parsePortRange(range: string): { nodePortMin: number; nodePortMax: number } {
  const m = /^(\d+)-(\d+)$/.exec(range);
  const min = Number(m?.[1]);
  const max = Number(m?.[2]);
  if (!m || min < 1 || max > 65535 || min > max) throw new Error(`node port range ${range}: want MIN-MAX within 1-65535`);
  return { nodePortMin: min, nodePortMax: max };
}

/** The documents of a YAML text (`---` separated; `kind: List` flattened; empty documents skipped). */
export function parseManifests(text: string): JsonObject[] {
  const out: JsonObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`YAML: ${doc.errors[0]!.message}`);
    const v: unknown = doc.toJS();
    if (v === null || v === undefined) continue;
    if (!isObject(v)) throw new Error('YAML: a manifest document is not an object');
    if (v['kind'] === 'List' && Array.isArray(v['items'])) out.push(...v['items'].filter(isObject));
    else out.push(v);
  }
  return out;
}

/** The manifests of a file, or of every *.yaml / *.yml file of a directory in name order. */
export function loadManifests(fileOrDir: string): JsonObject[] {
  if (!statSync(fileOrDir).isDirectory()) return parseManifests(readFileSync(fileOrDir, 'utf8'));
  return readdirSync(fileOrDir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .flatMap((f) => parseManifests(readFileSync(path.join(fileOrDir, f), 'utf8')));
}

function def(resource: KubeResource): ResourceDef {
  return RESOURCES.find((r) => r.plural === resource)!;
}

/** A running (or stopped) test API server. */
export class KubeApiServer {
  readonly #registry: Registry;
  readonly #handler: ApiHandler;
  readonly #certs: ServerCerts;
  #server: https.Server | undefined;
  #sockets = new Set<Socket>();
  #port: number;

  /** The bearer token clients must send. */
  readonly token: string;

  private constructor(opts: Required<KubeApiServerOptions>, certs: ServerCerts) {
    this.token = opts.token;
    this.#port = opts.port;
    this.#certs = certs;
    this.#registry = new Registry({ network: { cidr: opts.serviceCidr, ...(opts.serviceCidr6 !== '' ? { cidr6: opts.serviceCidr6 } : {}), ...parsePortRange(opts.nodePortRange) }, historySize: opts.historySize });
    this.#handler = new ApiHandler(this.#registry, {
      token: opts.token,
      bookmarkIntervalMs: opts.bookmarkIntervalMs,
      serverAddress: () => `127.0.0.1:${this.#port}`,
    });
    for (const name of DEFAULT_NAMESPACES) this.#registry.create(def('namespaces'), undefined, { metadata: { name } });
  }

  /** Make the certificates, the default namespaces, and listen. */
  static async start(opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
    const server = new KubeApiServer(resolveOptions(opts), await makeServerCerts());
    await server.#listen();
    return server;
  }

  async #listen(): Promise<void> {
    const server = https.createServer({ cert: this.#certs.cert, key: this.#certs.key }, (req, res) => this.#handler.handle(req, res));
    // Every TCP connection, TLS handshakes under way included: closeAllConnections()
    // knows only those that carry HTTP, and one still in its handshake keeps close() waiting.
    const sockets = new Set<Socket>();
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    this.#sockets = sockets;
    // A port given back by a stopped server can be taken for a moment by a client socket: try again briefly.
    for (let attempt = 0; ; attempt++) {
      server.listen(this.#port, '127.0.0.1');
      try {
        await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))]);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || this.#port === 0 || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** The port (fixed at the first start). */
  get port(): number {
    return this.#port;
  }

  /** `https://127.0.0.1:<port>` */
  get url(): string {
    return `https://127.0.0.1:${this.#port}`;
  }

  /** PEM of the CA that signed the server's certificate. */
  get caPem(): string {
    return this.#certs.ca;
  }

  /** Whether the server is listening. */
  get running(): boolean {
    return this.#server !== undefined;
  }

  /** The current revision (the resourceVersion a list now returns). */
  get revision(): number {
    return this.#registry.store.revision;
  }

  /** Every request so far (across restarts), oldest first. */
  get requests(): readonly RequestRecord[] {
    return this.#handler.requests;
  }

  /** Forget the recorded requests. */
  clearRequests(): void {
    this.#handler.requests.length = 0;
  }

  /** Number of watch streams open now. */
  get openWatches(): number {
    return this.#handler.watches.size;
  }

  /** A kubeconfig (YAML) with this server's CA, URL and token, as the current context. */
  kubeconfig(opts: { name?: string; namespace?: string } = {}): string {
    const name = opts.name ?? 'sluice-test';
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name, cluster: { server: this.url, 'certificate-authority-data': Buffer.from(this.#certs.ca).toString('base64') } }],
      users: [{ name, user: { token: this.token } }],
      contexts: [{ name, context: { cluster: name, user: name, ...(opts.namespace ? { namespace: opts.namespace } : {}) } }],
      'current-context': name,
      preferences: {},
    });
  }

  /** Write kubeconfig() to `file` (mode 0600, as kubectl writes its own). */
  writeKubeconfig(file: string, opts: { name?: string; namespace?: string } = {}): void {
    writeFileSync(file, this.kubeconfig(opts), { mode: 0o600 });
  }

  /**
   * Create each object, or replace it if it exists (no resourceVersion check),
   * through the same registry as the HTTP API: defaults, validation and
   * allocation apply, watches see the events. A namespaced object without a
   * namespace goes to `default`. Unknown fields are refused (as with
   * fieldValidation=Strict). Throws ApiError as the API would answer.
   */
  applyObjects(objects: readonly JsonObject[]): JsonObject[] {
    return objects.map((obj) => {
      const r = resourceByKind(obj['apiVersion'], obj['kind']);
      if (!r) throw new Error(`no resource for apiVersion ${String(obj['apiVersion'])} kind ${String(obj['kind'])}`);
      const meta = isObject(obj['metadata']) ? obj['metadata'] : {};
      const ns = r.namespaced ? String(meta['namespace'] ?? 'default') : undefined;
      const name = String(meta['name'] ?? '');
      const existing = this.#registry.store.get(this.#registry.key(r, ns, name));
      if (!existing) return this.#registry.create(r, ns, obj, STRICT);
      const body = structuredClone(obj);
      if (isObject(body['metadata'])) delete body['metadata']['resourceVersion'];
      const updated = this.#registry.update(r, ns, name, body, STRICT).object;
      if (r.statusSubresource && obj['status'] !== undefined && r.plural !== 'namespaces') {
        return this.#registry.update(r, ns, name, { ...updated, status: obj['status'] }, { ...STRICT, subresource: 'status' }).object;
      }
      return updated;
    });
  }

  /** applyObjects(loadManifests(fileOrDir)). */
  applyManifests(fileOrDir: string): JsonObject[] {
    return this.applyObjects(loadManifests(fileOrDir));
  }

  /** One object, or undefined. */
  get(resource: KubeResource, namespace: string | undefined, name: string): JsonObject | undefined {
    return this.#registry.store.get(this.#registry.key(def(resource), namespace, name));
  }

  /** The objects of a resource (in one namespace, or all), in key order. */
  list(resource: KubeResource, namespace?: string): JsonObject[] {
    const r = def(resource);
    return this.#registry.store.list(this.#registry.prefix(r, namespace)).map(([, o]) => o);
  }

  /**
   * Patch an object as a PATCH request would (merge patch by default);
   * `subresource: 'status'` writes the status (a load balancer's ingress).
   */
  patch(
    resource: KubeResource, namespace: string | undefined, name: string, patch: JsonObject,
    opts: { type?: 'merge' | 'strategic'; subresource?: 'status' } = {},
  ): JsonObject {
    const type = opts.type === 'strategic' ? 'application/strategic-merge-patch+json' : 'application/merge-patch+json';
    const write: WriteOptions = { ...STRICT, ...(opts.subresource ? { subresource: opts.subresource } : {}) };
    return this.#registry.patch(def(resource), namespace, name, type, patch, write).object;
  }

  /** Delete an object; returns its last state. Throws ApiError (404) when absent. */
  delete(resource: KubeResource, namespace: string | undefined, name: string): JsonObject {
    return this.#registry.delete(def(resource), namespace, name);
  }

  /** Compact at the current revision: older resourceVersions get 410 in lists, continue tokens and watches. */
  compact(): number {
    return this.#registry.store.compact();
  }

  /**
   * Close every open watch; returns how many. By default the connections are
   * cut (no end of the chunked body: a network failure, a crash); `graceful`
   * ends each response as a timeoutSeconds does.
   */
  closeWatches(opts: { graceful?: boolean } = {}): number {
    const watches = [...this.#handler.watches];
    for (const w of watches) {
      if (opts.graceful) w.close();
      else w.abort();
    }
    return watches.length;
  }

  /**
   * Stop listening; the state stays for restart(). Open watches are ended
   * cleanly, as a real API server's graceful shutdown does; `crash` cuts them
   * instead. Every connection is then closed.
   */
  async stop(opts: { crash?: boolean } = {}): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    this.closeWatches({ graceful: !opts.crash });
    const closed = once(server, 'close');
    server.close();
    server.closeIdleConnections();
    // Ended watches flush their last chunk first; whatever is still open after that is cut.
    const sockets = this.#sockets;
    const cut = setTimeout(() => {
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
    }, opts.crash ? 0 : 200);
    await closed;
    clearTimeout(cut);
  }

  /**
   * An API server restart: stop, then listen again on the same port with the
   * same objects and revision counter. The watch history is gone, as the real
   * watch cache is rebuilt from a list at the current revision: a client that
   * resumes a watch from an older resourceVersion gets 410 and must relist.
   * `keepHistory` keeps it instead; `crash` cuts open watches (see stop()).
   */
  async restart(opts: { keepHistory?: boolean; crash?: boolean } = {}): Promise<void> {
    await this.stop(opts.crash ? { crash: true } : {});
    if (!opts.keepHistory) this.#registry.store.dropHistory();
    await this.#listen();
  }

  /** Stop for good. */
  async close(): Promise<void> {
    await this.stop();
  }
}
