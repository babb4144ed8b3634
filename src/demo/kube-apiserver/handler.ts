/**
 * The HTTP side of the server: bearer-token authentication, routing of the
 * Kubernetes REST paths to the registry, query parameters, content types,
 * watch streams, and a record of every request for tests to inspect.
 *
 * Paths: /api/v1/[watch/][namespaces/<ns>/]<resource>[/<name>[/status]] and
 * the same under /apis/<group>/<version>, plus discovery, /openapi/v3 and
 * /healthz, /livez, /readyz. Bodies are JSON (YAML is taken too); responses
 * are always JSON: a client that asks for a Table or protobuf with a JSON
 * fallback (kubectl, client-go) gets the plain object or List.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { apiGroupDoc, apiGroupList, apiResourceList, apiVersions, openApiV3Doc, openApiV3Index, versionInfo } from './discovery.js';
import { PATCH_TYPES, parseResourceVersion, type ListOptions, type Preconditions, type Registry, type WriteOptions } from './registry.js';
import { resourceByPath, type ResourceDef } from './resources.js';
import { decodeKubeProtobuf } from './protobuf.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { toTable, wantsTable, type IncludeObject } from './table.js';
import { ApiError, badRequest, isObject, methodNotSupported, pathNotFound, unauthorized, unsupportedMediaType, type JsonObject } from './status.js';
import { WatchStream } from './watch.js';

/** One request as the server saw it. */
export interface RequestRecord {
  method: string;
  /** The path without the query. */
  path: string;
  /** Query parameters (the last value of each). */
  query: Record<string, string>;
  /** A watch (query `watch=true|1` or a /watch/ path). */
  watch: boolean;
  /** The HTTP status answered (200 for a watch, whatever its events). */
  status: number;
  userAgent: string;
  accept: string;
  contentType: string;
  /** Milliseconds since the epoch at arrival. */
  time: number;
}

const MAX_BODY = 3 * 1024 * 1024;

interface Route {
  def: ResourceDef;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
  watchPath: boolean;
}

function send(res: ServerResponse, status: number, body: unknown, warnings: readonly string[] = []): void {
  const text = JSON.stringify(body);
  if (warnings.length) res.setHeader('Warning', warnings.map((w) => `299 - ${JSON.stringify(w)}`));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new ApiError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Whether the Accept header lets us answer with JSON (an object, a List or a Table). */
function acceptsJson(accept: string | undefined): boolean {
  if (!accept || wantsTable(accept)) return true;
  return accept.split(',').some((part) => {
    const [type, ...params] = part.split(';').map((s) => s.trim());
    if (type === '*/*' || type === 'application/*') return true;
    return type === 'application/json' && !params.some((p) => p.startsWith('as='));
  });
}

function parseBody(raw: Buffer, contentType: string): unknown {
  if (contentType === 'application/vnd.kubernetes.protobuf') return decodeKubeProtobuf(raw);
  if (contentType === 'application/cbor') throw unsupportedMediaType(contentType, ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf']);
  const text = raw.toString('utf8');
  try {
    return contentType.includes('yaml') ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw badRequest(`the body of the request could not be decoded: ${(err as Error).message}`);
  }
}

function boolParam(v: string | null): boolean {
  return v === 'true' || v === '1';
}

/** The request handler; one per server, kept across restarts. */
export class ApiHandler {
  readonly #registry: Registry;
  readonly #token: string;
  readonly #bookmarkIntervalMs: number;
  readonly #serverAddress: () => string;
  /** Open watch streams. */
  readonly watches = new Set<WatchStream>();
  /** Every request, oldest first. */
  readonly requests: RequestRecord[] = [];

  constructor(registry: Registry, opts: { token: string; bookmarkIntervalMs: number; serverAddress: () => string }) {
    this.#registry = registry;
    this.#token = opts.token;
    this.#bookmarkIntervalMs = opts.bookmarkIntervalMs;
    this.#serverAddress = opts.serverAddress;
  }

  /** The http(s) server's request listener. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const record: RequestRecord = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      watch: boolParam(url.searchParams.get('watch')) || url.pathname.includes('/watch/'),
      status: 0,
      userAgent: req.headers['user-agent'] ?? '',
      accept: req.headers['accept'] ?? '',
      contentType: req.headers['content-type'] ?? '',
      time: Date.now(),
    };
    this.requests.push(record);
    const origWriteHead = res.writeHead.bind(res);
    res.writeHead = ((status: number, ...rest: unknown[]) => {
      record.status = status;
      return (origWriteHead as (...a: unknown[]) => ServerResponse)(status, ...rest);
    }) as typeof res.writeHead;
    this.#serve(req, res, url).catch((err: unknown) => {
      const apiErr = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`);
      if (!res.headersSent) send(res, apiErr.code, apiErr.status());
      else res.destroy();
    });
  }

  async #serve(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const auth = req.headers['authorization'] ?? '';
    const m = /^bearer\s+(\S+)$/i.exec(auth);
    if (!m || m[1] !== this.#token) {
      await readBody(req).catch(() => Buffer.alloc(0));
      throw unauthorized();
    }
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const doc = this.#discovery(path);
    const route = doc === undefined ? this.#route(path) : undefined;
    if (doc === undefined && !route) throw pathNotFound();
    if (!acceptsJson(req.headers['accept'])) {
      throw new ApiError(406, 'NotAcceptable', 'only the following media types are accepted: application/json, application/yaml');
    }
    if (doc !== undefined) {
      if (method !== 'GET') throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
      if (typeof doc === 'string') {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(doc);
      } else send(res, 200, doc);
      return;
    }
    await this.#resource(req, res, url, route!, method);
  }

  #discovery(path: string): JsonObject | string | undefined {
    switch (path) {
      case '/healthz':
      case '/livez':
      case '/readyz':
        return 'ok';
      case '/version':
        return versionInfo();
      case '/api':
        return apiVersions(this.#serverAddress());
      case '/apis':
        return apiGroupList();
      case '/openapi/v3':
        return openApiV3Index();
    }
    if (path.startsWith('/openapi/v3/')) return openApiV3Doc(path.slice('/openapi/v3/'.length)) ?? undefined;
    if (path === '/api/v1') return apiResourceList('', 'v1');
    const g = /^\/apis\/([^/]+)$/.exec(path);
    if (g) return apiGroupDoc(g[1]!);
    const gv = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
    if (gv) return apiResourceList(gv[1]!, gv[2]!);
    return undefined;
  }

  #route(path: string): Route | undefined {
    let group: string;
    let version: string;
    let segs: string[];
    const parts = path.split('/').slice(1).map(decodeURIComponent);
    if (parts[0] === 'api' && parts[1] === 'v1') {
      group = '';
      version = 'v1';
      segs = parts.slice(2);
    } else if (parts[0] === 'apis' && parts.length >= 3) {
      group = parts[1]!;
      version = parts[2]!;
      segs = parts.slice(3);
    } else return undefined;
    let watchPath = false;
    if (segs[0] === 'watch') {
      watchPath = true;
      segs = segs.slice(1);
    }
    let namespace: string | undefined;
    if (segs[0] === 'namespaces' && segs.length >= 3 && resourceByPath(group, version, segs[2]!)?.namespaced) {
      namespace = segs[1];
      segs = segs.slice(2);
    }
    const def = segs[0] === undefined ? undefined : resourceByPath(group, version, segs[0]);
    if (!def || segs.length > 3) return undefined;
    const subresource = segs[2];
    if (subresource !== undefined && !(subresource === 'status' && def.statusSubresource)) return undefined;
    return { def, namespace, name: segs[1], subresource, watchPath };
  }

  async #resource(req: IncomingMessage, res: ServerResponse, url: URL, route: Route, method: string): Promise<void> {
    const q = url.searchParams;
    const { def, namespace, name, subresource } = route;
    const registry = this.#registry;
    const dryRunParam = q.getAll('dryRun');
    for (const d of dryRunParam) if (d !== 'All') throw badRequest(`Invalid dryRun: ${JSON.stringify(d)}: supported values: "All"`);
    const fieldValidation = q.get('fieldValidation');
    if (fieldValidation !== null && !['Ignore', 'Warn', 'Strict'].includes(fieldValidation)) {
      throw badRequest(`fieldValidation: Unsupported value: ${JSON.stringify(fieldValidation)}: supported values: "Ignore", "Strict", "Warn"`);
    }
    const fieldManager = q.get('fieldManager');
    const warnings: string[] = [];
    const write: WriteOptions = {
      warnings,
      ...(fieldValidation !== null ? { fieldValidation: fieldValidation as 'Ignore' | 'Warn' | 'Strict' } : {}),
      ...(dryRunParam.length ? { dryRun: true } : {}),
      ...(fieldManager !== null ? { fieldManager } : {}),
      ...(boolParam(q.get('force')) ? { force: true } : {}),
      ...(subresource === 'status' ? { subresource: 'status' as const } : {}),
    };
    const watch = route.watchPath || boolParam(q.get('watch'));
    const include = q.get('includeObject') ?? 'Metadata';
    if (!['None', 'Metadata', 'Object'].includes(include)) throw badRequest(`includeObject: Unsupported value: ${JSON.stringify(include)}`);
    const table = wantsTable(req.headers['accept']) && method === 'GET' ? (include as IncludeObject) : undefined;
    if (def.namespaced && namespace === undefined && name !== undefined) throw pathNotFound();

    if (method === 'GET' && watch) {
      let fieldText = q.get('fieldSelector');
      if (name !== undefined) fieldText = [fieldText, `metadata.name=${name}`].filter(Boolean).join(',');
      this.#watch(res, def, namespace, q, fieldText, table);
      return;
    }
    if (name === undefined) {
      if (method === 'GET') {
        const list = registry.list(def, namespace, this.#listOptions(def, q));
        send(res, 200, table ? toTable(def, list['items'] as JsonObject[], list['metadata'] as JsonObject, table) : list);
      } else if (method === 'POST') {
        if (def.namespaced && namespace === undefined) throw methodNotSupported(def, 'create');
        const body = await this.#objectBody(req);
        send(res, 201, registry.create(def, namespace, body, write), warnings);
      } else if (method === 'DELETE') {
        if (def.plural === 'namespaces') throw methodNotSupported(def, 'deletecollection');
        await readBody(req);
        send(res, 200, registry.deleteCollection(def, namespace, { ...this.#listOptions(def, q), ...write }));
      } else throw methodNotSupported(def, method.toLowerCase());
      return;
    }
    switch (method) {
      case 'GET': {
        const obj = registry.get(def, namespace, name);
        const rv = (obj['metadata'] as JsonObject)['resourceVersion'];
        send(res, 200, table ? toTable(def, [obj], { resourceVersion: rv }, table) : obj);
        return;
      }
      case 'PUT': {
        const body = await this.#objectBody(req);
        const { object, created } = registry.update(def, namespace, name, body, write);
        send(res, created ? 201 : 200, object, warnings);
        return;
      }
      case 'PATCH': {
        const type = mediaType(req.headers['content-type']);
        if (!(PATCH_TYPES as readonly string[]).includes(type)) throw unsupportedMediaType(type, PATCH_TYPES);
        const patch = parseBody(await readBody(req), type === 'application/apply-patch+yaml' ? 'yaml' : 'json');
        const { object, created } = registry.patch(def, namespace, name, type, patch, write);
        send(res, created ? 201 : 200, object, warnings);
        return;
      }
      case 'DELETE': {
        const raw = await readBody(req);
        const opts: JsonObject = raw.length ? (parseBody(raw, 'json') as JsonObject) : {};
        const pre = isObject(opts) && isObject(opts['preconditions']) ? opts['preconditions'] : {};
        const preconditions: Preconditions = {
          ...(typeof pre['uid'] === 'string' ? { uid: pre['uid'] } : {}),
          ...(typeof pre['resourceVersion'] === 'string' ? { resourceVersion: pre['resourceVersion'] } : {}),
        };
        const dryRun = write.dryRun || (Array.isArray(opts['dryRun']) && opts['dryRun'].includes('All'));
        send(res, 200, registry.delete(def, namespace, name, { ...write, ...(dryRun ? { dryRun } : {}), preconditions }));
        return;
      }
      default:
        throw methodNotSupported(def, method.toLowerCase());
    }
  }

  async #objectBody(req: IncomingMessage): Promise<JsonObject> {
    const body = parseBody(await readBody(req), mediaType(req.headers['content-type']));
    if (!isObject(body)) throw badRequest('the body of the request is not an object');
    return body;
  }

  #listOptions(def: ResourceDef, q: URLSearchParams): ListOptions {
    const limit = q.get('limit');
    if (limit !== null && !/^\d+$/.test(limit)) throw badRequest(`limit: Invalid value: ${JSON.stringify(limit)}`);
    const opt = <K extends string>(k: K, v: string | null): Partial<Record<K, string>> => (v === null ? {} : ({ [k]: v } as Record<K, string>));
    return {
      labelSelector: parseLabelSelector(q.get('labelSelector')),
      fieldSelector: parseFieldSelector(q.get('fieldSelector'), def.selectableFields),
      ...(limit !== null ? { limit: Number(limit) } : {}),
      ...opt('continue', q.get('continue')),
      ...opt('resourceVersion', q.get('resourceVersion')),
      ...opt('resourceVersionMatch', q.get('resourceVersionMatch')),
    };
  }

  #watch(res: ServerResponse, def: ResourceDef, namespace: string | undefined, q: URLSearchParams, fieldText: string | null, table: IncludeObject | undefined): void {
    const labelSelector = parseLabelSelector(q.get('labelSelector'));
    const fieldSelector = parseFieldSelector(fieldText, def.selectableFields);
    const rvText = q.get('resourceVersion');
    const resourceVersion = rvText === null || rvText === '' ? undefined : parseResourceVersion(rvText);
    const timeout = q.get('timeoutSeconds');
    if (timeout !== null && !/^\d+$/.test(timeout)) throw badRequest(`timeoutSeconds: Invalid value: ${JSON.stringify(timeout)}`);
    const sendInitialEvents = boolParam(q.get('sendInitialEvents'));
    const allowBookmarks = boolParam(q.get('allowWatchBookmarks'));
    if (sendInitialEvents && !allowBookmarks) throw badRequest('sendInitialEvents is forbidden for watch unless allowWatchBookmarks=true');
    const stream = new WatchStream(
      this.#registry,
      {
        def, namespace, labelSelector, fieldSelector, resourceVersion, allowBookmarks, sendInitialEvents,
        timeoutSeconds: timeout === null ? undefined : Number(timeout),
        ...(table ? { transform: (o: JsonObject) => toTable(def, [o], { resourceVersion: (o['metadata'] as JsonObject)['resourceVersion'] }, table) } : {}),
      },
      res,
      { bookmarkIntervalMs: this.#bookmarkIntervalMs, onClose: (w) => this.watches.delete(w) },
    );
    if (!res.writableEnded) this.watches.add(stream);
  }
}
