/**
 * The three patch types the server takes, on plain JSON:
 * - JSON merge patch (RFC 7386, application/merge-patch+json);
 * - strategic merge patch (application/strategic-merge-patch+json): maps
 *   merge, lists are atomic unless the type's patch metadata gives a merge
 *   key (Service spec.ports by `port`) or a primitive merge (finalizers), with
 *   the directives kubectl sends: `$patch: replace|delete`, `$retainKeys`,
 *   `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>` (ported from
 *   k8s.io/apimachinery pkg/util/strategicpatch, element order included);
 * - server-side apply (application/apply-patch+yaml), simplified: the
 *   configuration is merged into the live object (keyed lists by their
 *   listMapKeys, atomic lists replaced), and the fields this field manager
 *   applied last time but no longer applies are removed. There are no
 *   managedFields, no ownership between managers and so no conflicts.
 */
import { isObject, type JsonObject } from './status.js';

/** What the strategic merge and apply need to know about a value at one path of a type. */
export interface PatchMeta {
  /** Children of an object, by field name. */
  fields?: Record<string, PatchMeta>;
  /** Element of a list. */
  items?: PatchMeta;
  /** A list of objects merged by this key (patchMergeKey) in a strategic merge patch. */
  mergeKey?: string;
  /** A list of scalars merged as a set (patchStrategy merge on []string). */
  primitiveMerge?: boolean;
  /** listMapKeys for server-side apply (defaults to [mergeKey]). */
  applyKeys?: readonly string[];
  /** Values a missing list-map key takes (the schema default, as apply uses it to match). */
  keyDefaults?: Readonly<Record<string, unknown>>;
}

const clone = <T>(v: T): T => structuredClone(v);

/** RFC 7386. */
export function jsonMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = jsonMergePatch(out[k], v);
  }
  return out;
}

const SET_ORDER = '$setElementOrder/';
const DELETE_PRIMITIVE = '$deleteFromPrimitiveList/';

function keyOf(item: unknown, key: string): unknown {
  return isObject(item) ? item[key] : undefined;
}

/** Index of `item` in `list`: by merge key for objects, by value for scalars; -1 when absent. */
function indexIn(list: readonly unknown[], item: unknown, key: string | undefined): number {
  if (key === undefined) return list.findIndex((x) => x === item);
  const k = keyOf(item, key);
  return list.findIndex((x) => keyOf(x, key) === k);
}

/** strategicpatch.mergeSortedSlice: insert the server-only items among the patched ones, both orders kept. */
function mergeSortedSlice(left: unknown[], right: unknown[], serverOrder: readonly unknown[], key: string | undefined): unknown[] {
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (i >= left.length) out.push(right[j++]);
    else if (j >= right.length) out.push(left[i++]);
    else {
      const li = indexIn(serverOrder, left[i], key);
      const ri = indexIn(serverOrder, right[j], key);
      if (li >= 0 && ri >= 0 && li < ri) out.push(left[i++]);
      else out.push(right[j++]);
    }
  }
  return out;
}

/** `$setElementOrder`: the patch's items in the given order, the server-only ones placed among them by their live order. */
function applyElementOrder(merged: unknown[], order: readonly unknown[], original: readonly unknown[], key: string | undefined): unknown[] {
  const inOrder = (x: unknown): number => (key === undefined ? order.findIndex((o) => o === x) : order.findIndex((o) => keyOf(o, key) === keyOf(x, key)));
  const patched = merged.filter((x) => inOrder(x) >= 0).sort((a, b) => inOrder(a) - inOrder(b));
  const serverOnly = merged
    .filter((x) => inOrder(x) < 0)
    .sort((a, b) => indexIn(original, a, key) - indexIn(original, b, key));
  return mergeSortedSlice(serverOnly, patched, original, key);
}

function smpList(original: readonly unknown[], patch: readonly unknown[], meta: PatchMeta | undefined): unknown[] {
  if (patch.some((x) => isObject(x) && x['$patch'] === 'replace')) {
    return patch.filter((x) => !(isObject(x) && x['$patch'] === 'replace')).map((x) => newValue(x, meta?.items));
  }
  if (meta?.primitiveMerge) {
    const out = [...original];
    for (const v of patch) if (!out.includes(v)) out.push(v);
    return out;
  }
  const key = meta?.mergeKey;
  if (key === undefined) return patch.map((x) => newValue(x, meta?.items));
  const out: unknown[] = original.map(clone);
  for (const item of patch) {
    if (!isObject(item)) continue;
    const idx = out.findIndex((x) => keyOf(x, key) === item[key]);
    if (item['$patch'] === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) {
      const merged = smpMap(out[idx] as JsonObject, item, meta?.items);
      if (merged === undefined) out.splice(idx, 1);
      else out[idx] = merged;
    } else {
      const fresh = smpMap({}, item, meta?.items);
      if (fresh !== undefined) out.push(fresh);
    }
  }
  return out;
}

/** A value the patch brings where the original has none: directives still apply (to an empty original). */
function newValue(v: unknown, meta: PatchMeta | undefined): unknown {
  if (isObject(v)) return smpMap({}, v, meta) ?? {};
  if (Array.isArray(v)) return smpList([], v, meta);
  return v;
}

/** strategicpatch.mergeMap; undefined when the patch deletes the map (`$patch: delete`). */
function smpMap(original: JsonObject, patch: JsonObject, meta: PatchMeta | undefined): JsonObject | undefined {
  const directive = patch['$patch'];
  if (directive === 'delete') return undefined;
  if (directive === 'replace') {
    const { $patch: _drop, ...rest } = patch;
    return smpMap({}, rest, meta);
  }
  const out: JsonObject = clone(original);
  const retain = patch['$retainKeys'];
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith(SET_ORDER)) continue;
    if (k.startsWith(DELETE_PRIMITIVE)) {
      const field = k.slice(DELETE_PRIMITIVE.length);
      const cur = out[field];
      if (Array.isArray(cur) && Array.isArray(v)) out[field] = cur.filter((x) => !v.includes(x));
      continue;
    }
    const childMeta = meta?.fields?.[k];
    if (v === null) {
      delete out[k];
    } else if (isObject(v)) {
      const merged = smpMap(isObject(out[k]) ? (out[k] as JsonObject) : {}, v, childMeta);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    } else if (Array.isArray(v)) {
      out[k] = smpList(Array.isArray(out[k]) ? (out[k] as unknown[]) : [], v, childMeta);
    } else {
      out[k] = v;
    }
  }
  for (const [k, order] of Object.entries(patch)) {
    if (!k.startsWith(SET_ORDER) || !Array.isArray(order)) continue;
    const field = k.slice(SET_ORDER.length);
    const merged = out[field];
    const before = original[field];
    if (Array.isArray(merged)) {
      const childMeta = meta?.fields?.[field];
      out[field] = applyElementOrder(merged, order, Array.isArray(before) ? before : [], childMeta?.mergeKey);
    }
  }
  if (Array.isArray(retain)) {
    for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  }
  return out;
}

/** Apply a strategic merge patch to an object. */
export function strategicMergePatch(original: JsonObject, patch: JsonObject, meta: PatchMeta | undefined): JsonObject {
  return smpMap(original, patch, meta) ?? {};
}

function applyKeys(meta: PatchMeta | undefined): readonly string[] | undefined {
  if (meta?.applyKeys) return meta.applyKeys;
  return meta?.mergeKey === undefined ? undefined : [meta.mergeKey];
}

/** The list-map key of an item, with the schema's defaults for missing key fields. */
function applyKeyOf(item: unknown, keys: readonly string[], meta: PatchMeta): string {
  const obj = isObject(item) ? item : {};
  return JSON.stringify(keys.map((k) => obj[k] ?? meta.keyDefaults?.[k] ?? null));
}

function applyMerge(live: unknown, config: unknown, meta: PatchMeta | undefined): unknown {
  if (isObject(config)) {
    const out: JsonObject = isObject(live) ? clone(live) : {};
    for (const [k, v] of Object.entries(config)) out[k] = applyMerge(out[k], v, meta?.fields?.[k]);
    return out;
  }
  if (Array.isArray(config)) {
    const keys = applyKeys(meta);
    if (meta?.primitiveMerge && Array.isArray(live)) return [...live, ...config.filter((v) => !live.includes(v))];
    if (keys === undefined || !Array.isArray(live) || meta === undefined) return clone(config);
    const out: unknown[] = live.map(clone);
    for (const item of config) {
      const k = applyKeyOf(item, keys, meta);
      const idx = out.findIndex((x) => applyKeyOf(x, keys, meta) === k);
      if (idx >= 0) out[idx] = applyMerge(out[idx], item, meta.items);
      else out.push(clone(item));
    }
    return out;
  }
  return config;
}

/** Remove from `target` what `previous` had and `config` no longer has. */
function prune(target: unknown, previous: unknown, config: unknown, meta: PatchMeta | undefined): unknown {
  if (isObject(target) && isObject(previous) && isObject(config)) {
    for (const k of Object.keys(previous)) {
      const childMeta = meta?.fields?.[k];
      if (k in config) target[k] = prune(target[k], previous[k], config[k], childMeta);
      // No longer applied: a map keeps what others set in it, a keyed list what others added; anything else goes.
      else if (isObject(previous[k]) && isObject(target[k])) target[k] = prune(target[k], previous[k], {}, childMeta);
      else if (Array.isArray(previous[k]) && Array.isArray(target[k]) && (childMeta?.primitiveMerge || applyKeys(childMeta))) {
        target[k] = prune(target[k], previous[k], [], childMeta);
      } else delete target[k];
    }
    return target;
  }
  if (Array.isArray(target) && Array.isArray(previous) && Array.isArray(config) && meta !== undefined) {
    if (meta.primitiveMerge) return target.filter((v) => config.includes(v) || !previous.includes(v));
    const keys = applyKeys(meta);
    if (keys === undefined) return target;
    const cfgKeys = new Map(config.map((c) => [applyKeyOf(c, keys, meta), c]));
    const prevKeys = new Map(previous.map((p) => [applyKeyOf(p, keys, meta), p]));
    return target
      .filter((x) => {
        const k = applyKeyOf(x, keys, meta);
        return cfgKeys.has(k) || !prevKeys.has(k);
      })
      .map((x) => {
        const k = applyKeyOf(x, keys, meta);
        return prevKeys.has(k) ? prune(x, prevKeys.get(k), cfgKeys.get(k), meta.items) : x;
      });
  }
  return target;
}

/**
 * Server-side apply of `config` by one field manager over `live` (absent:
 * the apply creates the object); `previous` is what the same manager applied
 * last time.
 */
export function serverSideApply(live: JsonObject | undefined, config: JsonObject, previous: JsonObject | undefined, meta: PatchMeta | undefined): JsonObject {
  const merged = applyMerge(live ?? {}, config, meta) as JsonObject;
  return previous === undefined ? merged : (prune(merged, previous, config, meta) as JsonObject);
}
