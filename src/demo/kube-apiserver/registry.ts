/**
 * The generic registry (k8s.io/apiserver pkg/registry/generic/registry):
 * get, list, create, update, patch and delete of the served resources over
 * the revision store, with system metadata (uid, creationTimestamp,
 * resourceVersion, generation), preconditions, defaulting, validation and
 * the Service allocators. HTTP parsing is elsewhere; this takes decoded
 * objects and throws ApiError.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { jsonMergePatch, serverSideApply, strategicMergePatch } from './patch.js';
import { RESOURCES, labelsOf, selectableFields, type ResourceDef } from './resources.js';
import type { Selector } from './selectors.js';
import { allocateService, type ServiceNetwork } from './services.js';
import {
  ApiError, alreadyExists, badRequest, conflict, expired, forbidden, internalError, invalid, isObject, notFound, unsupportedMediaType,
  type FieldError, type JsonObject,
} from './status.js';
import { pruneUnknown, SCHEMAS } from './schema.js';
import { RevisionStore } from './store.js';

/** Options of a write (query parameters). */
export interface WriteOptions {
  dryRun?: boolean;
  /** What to do with unknown fields: drop them, drop them with a warning (the default), or refuse the request. */
  fieldValidation?: 'Ignore' | 'Warn' | 'Strict';
  /** Receives the warnings of the request (the Warning header's texts). */
  warnings?: string[];
  fieldManager?: string;
  /** For a patch of type apply: take fields from other managers (always, here). */
  force?: boolean;
  /** `status` to write the status subresource. */
  subresource?: 'status';
}

/** Options of a list (query parameters). */
export interface ListOptions {
  labelSelector?: Selector;
  fieldSelector?: Selector;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
}

/** Delete preconditions (DeleteOptions.preconditions). */
export interface Preconditions {
  uid?: string;
  resourceVersion?: string;
}

/** The patch content types the server takes. */
export const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml'] as const;

const IMMORTAL_NAMESPACES = ['default', 'kube-system', 'kube-public'];
const NAMESPACES = RESOURCES.find((r) => r.plural === 'namespaces')!;
const SERVICES = RESOURCES.find((r) => r.plural === 'services')!;

function meta(obj: JsonObject): JsonObject {
  if (!isObject(obj['metadata'])) obj['metadata'] = {};
  return obj['metadata'] as JsonObject;
}

/** JSON with sorted keys, to compare objects. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

const TOP_ORDER = ['kind', 'apiVersion', 'metadata'];
const META_ORDER = ['name', 'generateName', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'labels', 'annotations', 'ownerReferences', 'finalizers'];

function reorder(obj: JsonObject, first: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const k of first) if (k in obj) out[k] = obj[k];
  for (const [k, v] of Object.entries(obj)) if (!(k in out)) out[k] = v;
  return out;
}

/**
 * The object as the real server writes it: kind, apiVersion, metadata first,
 * metadata's system fields first, and no empty labels, annotations,
 * finalizers or ownerReferences (Go's omitempty drops an empty map or list).
 */
function ordered(obj: JsonObject): JsonObject {
  const m: JsonObject = { resourceVersion: '', ...meta(obj) };
  for (const k of ['labels', 'annotations', 'finalizers', 'ownerReferences']) {
    const v = m[k];
    if (v === null || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0)) delete m[k];
  }
  return reorder({ ...obj, metadata: reorder(m, META_ORDER) }, TOP_ORDER);
}

/** Seconds-precision RFC 3339, as metav1.Time serializes. */
function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

interface ContinueToken {
  rv: number;
  start: string;
}

function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64url');
}

function decodeContinue(token: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown;
    if (isObject(t) && t['v'] === 'meta.k8s.io/v1' && typeof t['rv'] === 'number' && typeof t['start'] === 'string') return { rv: t['rv'], start: t['start'] };
  } catch {
    /* reported below */
  }
  throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
}

/** Parse a resourceVersion parameter. */
export function parseResourceVersion(rv: string): number {
  if (!/^\d+$/.test(rv)) throw badRequest(`invalid resource version: ${rv}`);
  return Number(rv);
}

/** The objects of all resources, and the operations on them. */
export class Registry {
  readonly store: RevisionStore;
  readonly #network: ServiceNetwork;
  /** What each field manager last applied (server-side apply), by object uid. */
  readonly #applied = new Map<string, Map<string, JsonObject>>();

  constructor(opts: { network: ServiceNetwork; historySize: number }) {
    this.store = new RevisionStore({ historySize: opts.historySize });
    this.#network = opts.network;
  }

  /** The store key of an object (the part of etcd's /registry/... key below the resource). */
  key(def: ResourceDef, ns: string | undefined, name: string): string {
    return def.namespaced ? `${def.plural}/${ns ?? ''}/${name}` : `${def.plural}/${name}`;
  }

  /** The key prefix of a collection (one namespace, or all). */
  prefix(def: ResourceDef, ns: string | undefined): string {
    return def.namespaced && ns !== undefined ? `${def.plural}/${ns}/` : `${def.plural}/`;
  }

  /** Get one object. */
  get(def: ResourceDef, ns: string | undefined, name: string): JsonObject {
    const obj = this.store.get(this.key(def, ns, name));
    if (!obj) throw notFound(def, name);
    return obj;
  }

  /** Whether an object passes a watch's or list's selectors. */
  matches(def: ResourceDef, obj: JsonObject, labels: Selector | undefined, fields: Selector | undefined): boolean {
    return (labels?.matches(labelsOf(obj)) ?? true) && (fields?.matches(selectableFields(def, obj)) ?? true);
  }

  /** A List object (ServiceList, ...) as the real server returns it: items without kind and apiVersion. */
  list(def: ResourceDef, ns: string | undefined, opts: ListOptions = {}): JsonObject {
    const store = this.store;
    const prefix = this.prefix(def, ns);
    let readRev = store.revision;
    let start = '';
    if (opts.resourceVersionMatch !== undefined && opts.resourceVersion === undefined) {
      throw badRequest('resourceVersionMatch is forbidden unless resourceVersion is provided');
    }
    if (opts.continue) {
      const token = decodeContinue(opts.continue);
      start = token.start;
      if (token.rv > 0) {
        if (token.rv < store.compactedRevision) {
          throw expired(
            'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
            { continue: encodeContinue(0, start) },
          );
        }
        readRev = token.rv;
      }
    } else if (opts.resourceVersion !== undefined && opts.resourceVersion !== '') {
      const rv = parseResourceVersion(opts.resourceVersion);
      const exact = opts.resourceVersionMatch === 'Exact' || (opts.resourceVersionMatch === undefined && rv !== 0 && (opts.limit ?? 0) > 0);
      if (opts.resourceVersionMatch !== undefined && opts.resourceVersionMatch !== 'Exact' && opts.resourceVersionMatch !== 'NotOlderThan') {
        throw badRequest(`resourceVersionMatch: Unsupported value: ${JSON.stringify(opts.resourceVersionMatch)}`);
      }
      if (rv > store.revision) {
        throw new ApiError(504, 'Timeout', `Too large resource version: ${rv}, current: ${store.revision}`, {
          causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
          retryAfterSeconds: 1,
        });
      }
      if (exact) {
        if (rv < store.compactedRevision) throw expired('The resourceVersion for the provided list is too old.');
        readRev = rv;
      }
    }
    const entries = store.list(prefix, readRev).filter(([key]) => key.slice(prefix.length) >= start);
    const selected = entries.filter(([, obj]) => this.matches(def, obj, opts.labelSelector, opts.fieldSelector));
    const limit = opts.limit && opts.limit > 0 ? opts.limit : undefined;
    const page = limit === undefined ? selected : selected.slice(0, limit);
    const listMeta: JsonObject = { resourceVersion: String(readRev) };
    if (limit !== undefined && selected.length > limit) {
      const lastKey = page[page.length - 1]![0];
      listMeta['continue'] = encodeContinue(readRev, `${lastKey.slice(prefix.length)}\u0000`);
      // The real server counts the rest only when it need not filter.
      if (opts.labelSelector?.empty !== false && opts.fieldSelector?.empty !== false) listMeta['remainingItemCount'] = selected.length - limit;
    }
    const items = page.map(([, obj]) => {
      const { kind: _k, apiVersion: _a, ...rest } = obj;
      return rest;
    });
    return { kind: def.listKind, apiVersion: def.apiVersion, metadata: listMeta, items };
  }

  #checkNamespace(def: ResourceDef, ns: string | undefined): void {
    if (!def.namespaced) return;
    if (!ns || !this.store.get(this.key(NAMESPACES, undefined, ns))) throw notFound(NAMESPACES, ns ?? '');
  }

  #checkBody(def: ResourceDef, ns: string | undefined, body: JsonObject): void {
    const kind = body['kind'];
    const apiVersion = body['apiVersion'];
    if ((kind !== undefined && kind !== def.kind) || (apiVersion !== undefined && apiVersion !== def.apiVersion)) {
      throw badRequest(`${String(apiVersion)}, Kind=${String(kind)} in version ${JSON.stringify(def.version)} cannot be handled as a ${def.kind}: the object is not a ${def.apiVersion} ${def.kind}`);
    }
    const m = meta(body);
    if (def.namespaced) {
      if (m['namespace'] !== undefined && m['namespace'] !== '' && m['namespace'] !== ns) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      m['namespace'] = ns;
    } else {
      delete m['namespace'];
    }
  }

  /** What decoding into the Go type does: unknown fields dropped (or refused), wrong JSON types refused. */
  #decode(def: ResourceDef, obj: JsonObject, opts: WriteOptions): void {
    const report = pruneUnknown(obj, SCHEMAS[def.plural]!);
    const prefix = `${def.kind} in version ${JSON.stringify(def.version)} cannot be handled as a ${def.kind}`;
    if (report.typeErrors.length) throw badRequest(`${prefix}: ${report.typeErrors[0]!}`);
    if (report.unknown.length === 0) return;
    const texts = report.unknown.map((u) => `unknown field ${JSON.stringify(u)}`);
    const mode = opts.fieldValidation ?? 'Warn';
    if (mode === 'Strict') throw badRequest(`${prefix}: strict decoding error: ${texts.join(', ')}`);
    if (mode === 'Warn') opts.warnings?.push(...texts);
  }

  #validate(def: ResourceDef, obj: JsonObject, old: JsonObject | undefined, subresource: string | undefined): void {
    const errs: FieldError[] = subresource === 'status' ? def.validateStatus(obj) : def.validate(obj, old);
    if (errs.length) throw invalid(def, String(meta(obj)['name'] ?? ''), errs);
  }

  #allocate(def: ResourceDef, obj: JsonObject, key: string): void {
    if (def !== SERVICES) return;
    const others = this.store.peekCurrent(this.prefix(SERVICES, undefined), key);
    const errs = allocateService(obj, others, this.#network);
    if (errs.length) throw invalid(def, String(meta(obj)['name'] ?? ''), errs);
  }

  /** POST: create an object; returns it as stored. */
  create(def: ResourceDef, ns: string | undefined, body: JsonObject, opts: WriteOptions = {}): JsonObject {
    const obj = structuredClone(body);
    this.#decode(def, obj, opts);
    this.#checkBody(def, ns, obj);
    const m = meta(obj);
    if ((m['name'] === undefined || m['name'] === '') && typeof m['generateName'] === 'string' && m['generateName'] !== '') {
      m['name'] = `${m['generateName']}${randomBytes(4).toString('hex').replace(/[^a-z0-9]/g, 'x').slice(0, 5)}`;
    }
    this.#checkNamespace(def, ns);
    if (m['resourceVersion'] !== undefined && m['resourceVersion'] !== '') {
      throw internalError('resourceVersion should not be set on objects to be created');
    }
    obj['kind'] = def.kind;
    obj['apiVersion'] = def.apiVersion;
    for (const k of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'selfLink', 'generation']) delete m[k];
    def.defaults(obj);
    def.prepareForCreate(obj);
    m['uid'] = randomUUID();
    m['creationTimestamp'] = now();
    if (def.generation !== 'none') m['generation'] = 1;
    this.#validate(def, obj, undefined, undefined);
    const name = String(m['name']);
    const key = this.key(def, ns, name);
    if (this.store.get(key)) throw alreadyExists(def, name);
    this.#allocate(def, obj, key);
    if (opts.dryRun) {
      delete meta(obj)['resourceVersion'];
      return ordered(obj);
    }
    return this.store.put(def.plural, key, ordered(obj));
  }

  /** PUT: replace an object (or create it where the resource allows); `created` tells which. */
  update(def: ResourceDef, ns: string | undefined, name: string, body: JsonObject, opts: WriteOptions = {}): { object: JsonObject; created: boolean } {
    const obj = structuredClone(body);
    this.#decode(def, obj, opts);
    const m = meta(obj);
    if (m['name'] !== undefined && m['name'] !== name) throw badRequest(`the name of the object (${String(m['name'])}) does not match the name on the URL (${name})`);
    m['name'] = name;
    this.#checkBody(def, ns, obj);
    const key = this.key(def, ns, name);
    const old = this.store.get(key);
    if (!old) {
      if (!def.allowCreateOnUpdate || opts.subresource) throw notFound(def, name);
      delete m['resourceVersion'];
      return { object: this.create(def, ns, obj, opts), created: true };
    }
    const oldMeta = meta(old);
    const rv = m['resourceVersion'];
    if (rv !== undefined && rv !== '' && rv !== oldMeta['resourceVersion']) throw conflict(def, name);
    if (m['uid'] !== undefined && m['uid'] !== '' && m['uid'] !== oldMeta['uid']) {
      throw conflict(def, name, `Precondition failed: UID in precondition: ${String(m['uid'])}, UID in object meta: ${String(oldMeta['uid'])}`);
    }
    obj['kind'] = def.kind;
    obj['apiVersion'] = def.apiVersion;
    m['uid'] = oldMeta['uid'];
    m['creationTimestamp'] = oldMeta['creationTimestamp'];
    m['resourceVersion'] = oldMeta['resourceVersion'];
    delete m['managedFields'];
    delete m['generation'];
    def.defaults(obj);
    if (opts.subresource === 'status') {
      obj['spec'] = structuredClone(old['spec']);
    } else {
      def.prepareForUpdate(obj, old);
      if (def.statusSubresource) obj['status'] = structuredClone(old['status']);
    }
    if (def.generation === 'non-meta') {
      const strip = (o: JsonObject): string => canonical({ ...o, metadata: { labels: labelsOf(o) } });
      m['generation'] = Number(oldMeta['generation'] ?? 1) + (strip(obj) === strip(old) ? 0 : 1);
    }
    this.#validate(def, obj, old, opts.subresource);
    this.#allocate(def, obj, key);
    const next = ordered(obj);
    // etcd's GuaranteedUpdate writes nothing when the bytes are the same: no new resourceVersion, no event.
    if (canonical(next) === canonical(old)) return { object: old, created: false };
    if (opts.dryRun) return { object: next, created: false };
    return { object: this.store.put(def.plural, key, next), created: false };
  }

  /** PATCH of any of the four types; `created` when an apply made the object. */
  patch(
    def: ResourceDef, ns: string | undefined, name: string, contentType: string, patch: unknown, opts: WriteOptions = {},
  ): { object: JsonObject; created: boolean } {
    const key = this.key(def, ns, name);
    const old = this.store.get(key);
    if (contentType === 'application/apply-patch+yaml') {
      if (!opts.fieldManager) throw badRequest('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
      if (!isObject(patch)) throw badRequest('error decoding YAML: the apply configuration is not an object');
      const m = meta(patch);
      if (m['name'] !== undefined && m['name'] !== name) throw badRequest(`the name of the object (${String(m['name'])}) does not match the name on the URL (${name})`);
      if (patch['kind'] === undefined || patch['apiVersion'] === undefined) throw badRequest('invalid object type: /, Kind=');
      this.#decode(def, patch, opts);
      const previous = old ? this.#applied.get(String(meta(old)['uid']))?.get(opts.fieldManager) : undefined;
      const merged = serverSideApply(old, patch, previous, def.patchMeta);
      let result: { object: JsonObject; created: boolean };
      if (!old) {
        if (opts.subresource) throw notFound(def, name);
        meta(merged)['name'] = name;
        result = { object: this.create(def, ns, merged, opts), created: true };
      } else {
        result = this.update(def, ns, name, merged, opts);
      }
      if (!opts.dryRun) {
        const uid = String(meta(result.object)['uid']);
        const byManager = this.#applied.get(uid) ?? new Map<string, JsonObject>();
        byManager.set(opts.fieldManager, structuredClone(patch));
        this.#applied.set(uid, byManager);
      }
      return result;
    }
    if (!old) throw notFound(def, name);
    let next: JsonObject;
    if (contentType === 'application/merge-patch+json') {
      next = jsonMergePatch(old, patch) as JsonObject;
    } else if (contentType === 'application/strategic-merge-patch+json') {
      if (!isObject(patch)) throw badRequest('the strategic merge patch is not an object');
      next = strategicMergePatch(old, patch, def.patchMeta);
    } else if (contentType === 'application/json-patch+json') {
      throw unsupportedMediaType(contentType, PATCH_TYPES.filter((t) => t !== contentType));
    } else {
      throw unsupportedMediaType(contentType, PATCH_TYPES.filter((t) => t !== 'application/json-patch+json'));
    }
    if (!isObject(next)) throw badRequest('the patch does not result in an object');
    this.#decode(def, next, opts);
    const m = meta(next);
    if (m['name'] !== name) throw badRequest(`the name of the object (${String(m['name'])}) does not match the name on the URL (${name})`);
    // A resourceVersion the patch sets is a precondition (as in a PUT); otherwise the patch applies to what is there.
    if (m['resourceVersion'] === undefined || m['resourceVersion'] === null) m['resourceVersion'] = meta(old)['resourceVersion'];
    return this.update(def, ns, name, next, { ...opts, fieldManager: opts.fieldManager ?? '' });
  }

  /** DELETE one object; returns its last state with the deletion's resourceVersion. */
  delete(def: ResourceDef, ns: string | undefined, name: string, opts: WriteOptions & { preconditions?: Preconditions } = {}): JsonObject {
    const key = this.key(def, ns, name);
    const old = this.store.get(key);
    if (!old) throw notFound(def, name);
    const m = meta(old);
    const pre = opts.preconditions;
    if (pre?.uid !== undefined && pre.uid !== m['uid']) {
      throw conflict(def, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(m['uid'])}`);
    }
    if (pre?.resourceVersion !== undefined && pre.resourceVersion !== m['resourceVersion']) {
      throw conflict(def, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${String(m['resourceVersion'])}`);
    }
    if (def === NAMESPACES && IMMORTAL_NAMESPACES.includes(name)) throw forbidden(def, name, 'this namespace may not be deleted');
    if (opts.dryRun) return old;
    if (def === NAMESPACES) {
      // No namespace controller runs here: the namespace's objects go at once, then the namespace.
      for (const r of RESOURCES) {
        if (!r.namespaced) continue;
        for (const [k, o] of this.store.list(this.prefix(r, name))) {
          this.store.remove(r.plural, k);
          this.#applied.delete(String(meta(o)['uid']));
        }
      }
    }
    this.#applied.delete(String(m['uid']));
    return this.store.remove(def.plural, key)!;
  }

  /** DELETE on a collection: every object the selectors match; returns the List of what went. */
  deleteCollection(def: ResourceDef, ns: string | undefined, opts: ListOptions & WriteOptions): JsonObject {
    const list = this.list(def, ns, { ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}), ...(opts.fieldSelector ? { fieldSelector: opts.fieldSelector } : {}) });
    const items = (list['items'] as JsonObject[]).map((o) => {
      const m = meta(o);
      const gone = this.delete(def, typeof m['namespace'] === 'string' ? m['namespace'] : undefined, String(m['name']), opts);
      const { kind: _k, apiVersion: _a, ...rest } = gone;
      return rest;
    });
    return { ...list, items, metadata: { resourceVersion: String(this.store.revision) } };
  }
}
