/**
 * The resources the server serves and what each one's registry strategy does:
 * core/v1 Service, Node and Namespace, discovery.k8s.io/v1 EndpointSlice.
 * Each entry holds what discovery advertises (names, scope, verbs), the
 * strategic-merge metadata of its lists (the Go types' patchMergeKey tags),
 * defaulting, create/update preparation and validation.
 */
import type { PatchMeta } from './patch.js';
import { defaultService, prepareServiceCreate, prepareServiceUpdate, validateService, validateServiceStatus } from './services.js';
import { isObject, type ErrorResource, type FieldError, type JsonObject } from './status.js';
import { checkIPv4, checkIP, checkName, checkObjectMeta, checkOneOf, checkPortNumber, checkProtocol, type NameRule } from './validation.js';

/** One served resource. */
export interface ResourceDef extends ErrorResource {
  singular: string;
  listKind: string;
  version: string;
  /** `v1` or `discovery.k8s.io/v1`. */
  apiVersion: string;
  namespaced: boolean;
  shortNames: readonly string[];
  categories: readonly string[];
  /** Has a `status` subresource (status ignored on the main resource's updates, spec on the subresource's). */
  statusSubresource: boolean;
  /** A PUT to a missing object creates it (rest.RESTUpdateStrategy.AllowCreateOnUpdate). */
  allowCreateOnUpdate: boolean;
  nameRule: NameRule;
  /** Fields a fieldSelector may name. */
  selectableFields: readonly string[];
  /** metadata.generation: not kept, or bumped by any change but metadata's (labels count). */
  generation: 'none' | 'non-meta';
  patchMeta: PatchMeta;
  /** Defaulting applied to every object decoded from a request. */
  defaults(obj: JsonObject): void;
  prepareForCreate(obj: JsonObject): void;
  prepareForUpdate(obj: JsonObject, old: JsonObject): void;
  validate(obj: JsonObject, old: JsonObject | undefined): FieldError[];
  validateStatus(obj: JsonObject): FieldError[];
}

const OBJECT_META: PatchMeta = {
  fields: {
    finalizers: { primitiveMerge: true },
    ownerReferences: { mergeKey: 'uid' },
  },
};

const CONDITIONS: PatchMeta = { mergeKey: 'type' };

const noop = (): void => {};
const none = (): FieldError[] => [];

function field(obj: JsonObject, name: string): JsonObject {
  if (!isObject(obj[name])) obj[name] = {};
  return obj[name] as JsonObject;
}

const services: ResourceDef = {
  plural: 'services',
  singular: 'service',
  kind: 'Service',
  listKind: 'ServiceList',
  group: '',
  version: 'v1',
  apiVersion: 'v1',
  namespaced: true,
  shortNames: ['svc'],
  categories: ['all'],
  statusSubresource: true,
  allowCreateOnUpdate: true,
  nameRule: 'dns1035',
  selectableFields: ['metadata.name', 'metadata.namespace'],
  generation: 'none',
  patchMeta: {
    fields: {
      metadata: OBJECT_META,
      spec: { fields: { ports: { mergeKey: 'port', applyKeys: ['port', 'protocol'], keyDefaults: { protocol: 'TCP' } } } },
      status: { fields: { conditions: CONDITIONS } },
    },
  },
  defaults: defaultService,
  prepareForCreate: prepareServiceCreate,
  prepareForUpdate: prepareServiceUpdate,
  validate: (obj, old) => [...checkObjectMeta(obj, 'dns1035'), ...validateService(obj, old)],
  validateStatus: validateServiceStatus,
};

function defaultEndpointSlice(obj: JsonObject): void {
  for (const p of Array.isArray(obj['ports']) ? obj['ports'] : []) {
    if (!isObject(p)) continue;
    if (p['name'] === undefined || p['name'] === null) p['name'] = '';
    if (p['protocol'] === undefined || p['protocol'] === null) p['protocol'] = 'TCP';
  }
  // EndpointConditions is a struct: the real server always writes it, `{}` when nothing is set.
  for (const e of Array.isArray(obj['endpoints']) ? obj['endpoints'] : []) if (isObject(e) && !isObject(e['conditions'])) e['conditions'] = {};
}

function validateEndpointSlice(obj: JsonObject): FieldError[] {
  const errs = checkObjectMeta(obj, 'dns1123-subdomain');
  const type = obj['addressType'];
  if (type === undefined || type === '') errs.push({ type: 'Required', field: 'addressType' });
  else errs.push(...checkOneOf('addressType', type, ['FQDN', 'IPv4', 'IPv6']));
  const endpoints = Array.isArray(obj['endpoints']) ? obj['endpoints'] : [];
  if (obj['endpoints'] !== undefined && obj['endpoints'] !== null && !Array.isArray(obj['endpoints'])) {
    errs.push({ type: 'Invalid', field: 'endpoints', value: obj['endpoints'], detail: 'must be a list' });
  }
  if (endpoints.length > 1000) errs.push({ type: 'TooMany', field: 'endpoints', detail: 'must have at most 1000 items' });
  endpoints.forEach((e, i) => {
    const at = `endpoints[${i}]`;
    const addrs = isObject(e) && Array.isArray(e['addresses']) ? e['addresses'] : [];
    if (addrs.length === 0) errs.push({ type: 'Required', field: `${at}.addresses`, detail: 'must contain at least 1 address' });
    if (addrs.length > 100) errs.push({ type: 'TooMany', field: `${at}.addresses`, detail: 'must have at most 100 items' });
    addrs.forEach((a, j) => {
      const f = `${at}.addresses[${j}]`;
      if (type === 'IPv4') errs.push(...checkIPv4(f, a));
      else if (type === 'IPv6') {
        if (typeof a !== 'string' || !a.includes(':') || checkIP(f, a).length) errs.push({ type: 'Invalid', field: f, value: a, detail: 'must be a valid IPv6 address' });
      } else if (type === 'FQDN') errs.push(...checkName(f, String(a), 'dns1123-subdomain'));
    });
    const cond = isObject(e) && isObject(e['conditions']) ? e['conditions'] : {};
    for (const c of ['ready', 'serving', 'terminating']) {
      if (cond[c] !== undefined && cond[c] !== null && typeof cond[c] !== 'boolean') {
        errs.push({ type: 'Invalid', field: `${at}.conditions.${c}`, value: cond[c], detail: 'must be a boolean' });
      }
    }
  });
  const ports = Array.isArray(obj['ports']) ? obj['ports'] : [];
  if (ports.length > 100) errs.push({ type: 'TooMany', field: 'ports', detail: 'must have at most 100 items' });
  const names = new Set<unknown>();
  ports.forEach((p, i) => {
    if (!isObject(p)) return;
    const at = `ports[${i}]`;
    if (p['port'] !== undefined && p['port'] !== null) errs.push(...checkPortNumber(`${at}.port`, p['port']));
    errs.push(...checkProtocol(`${at}.protocol`, p['protocol']));
    if (typeof p['name'] === 'string' && p['name'] !== '') errs.push(...checkName(`${at}.name`, p['name'], 'dns1123-label'));
    if (names.has(p['name'])) errs.push({ type: 'Duplicate', field: `${at}.name`, value: p['name'] });
    names.add(p['name']);
  });
  return errs;
}

const endpointSlices: ResourceDef = {
  plural: 'endpointslices',
  singular: 'endpointslice',
  kind: 'EndpointSlice',
  listKind: 'EndpointSliceList',
  group: 'discovery.k8s.io',
  version: 'v1',
  apiVersion: 'discovery.k8s.io/v1',
  namespaced: true,
  shortNames: [],
  categories: [],
  statusSubresource: false,
  allowCreateOnUpdate: true,
  nameRule: 'dns1123-subdomain',
  selectableFields: ['metadata.name', 'metadata.namespace'],
  generation: 'non-meta',
  // endpoints and ports are atomic lists (+listType=atomic): a patch replaces them whole.
  patchMeta: { fields: { metadata: OBJECT_META } },
  defaults: defaultEndpointSlice,
  prepareForCreate: noop,
  prepareForUpdate: noop,
  validate: (obj) => validateEndpointSlice(obj),
  validateStatus: none,
};

function defaultNode(obj: JsonObject): void {
  field(obj, 'spec');
  const status = field(obj, 'status');
  if (status['capacity'] !== undefined && status['allocatable'] === undefined) status['allocatable'] = structuredClone(status['capacity']);
  // Zero-valued structs the real server always writes.
  const daemon = field(status, 'daemonEndpoints');
  if (!isObject(daemon['kubeletEndpoint'])) daemon['kubeletEndpoint'] = { Port: 0 };
  const info = field(status, 'nodeInfo');
  for (const k of ['machineID', 'systemUUID', 'bootID', 'kernelVersion', 'osImage', 'containerRuntimeVersion', 'kubeletVersion', 'kubeProxyVersion', 'operatingSystem', 'architecture']) {
    if (info[k] === undefined) info[k] = '';
  }
}

function validateNode(obj: JsonObject): FieldError[] {
  const errs = checkObjectMeta(obj, 'dns1123-subdomain');
  const spec = isObject(obj['spec']) ? obj['spec'] : {};
  const cidrs = Array.isArray(spec['podCIDRs']) ? spec['podCIDRs'] : [];
  cidrs.forEach((c, i) => {
    const [ip, bits] = typeof c === 'string' ? c.split('/') : [];
    if (!ip || checkIP('', ip).length || !/^\d+$/.test(bits ?? '')) {
      errs.push({ type: 'Invalid', field: `spec.podCIDRs[${i}]`, value: c, detail: 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)' });
    }
  });
  return errs.concat(validateNodeStatus(obj));
}

function validateNodeStatus(obj: JsonObject): FieldError[] {
  const status = isObject(obj['status']) ? obj['status'] : {};
  const errs: FieldError[] = [];
  const addrs = Array.isArray(status['addresses']) ? status['addresses'] : [];
  addrs.forEach((a, i) => {
    if (!isObject(a)) return;
    errs.push(...checkOneOf(`status.addresses[${i}].type`, a['type'], ['ExternalDNS', 'ExternalIP', 'Hostname', 'InternalDNS', 'InternalIP']));
    if (a['type'] === 'InternalIP' || a['type'] === 'ExternalIP') errs.push(...checkIP(`status.addresses[${i}].address`, a['address']));
  });
  return errs;
}

const nodes: ResourceDef = {
  plural: 'nodes',
  singular: 'node',
  kind: 'Node',
  listKind: 'NodeList',
  group: '',
  version: 'v1',
  apiVersion: 'v1',
  namespaced: false,
  shortNames: ['no'],
  categories: [],
  statusSubresource: true,
  allowCreateOnUpdate: false,
  nameRule: 'dns1123-subdomain',
  selectableFields: ['metadata.name', 'spec.unschedulable'],
  generation: 'none',
  patchMeta: {
    fields: {
      metadata: OBJECT_META,
      spec: { fields: { podCIDRs: { primitiveMerge: true } } },
      status: { fields: { addresses: { mergeKey: 'type' }, conditions: CONDITIONS } },
    },
  },
  defaults: defaultNode,
  // The kubelet registers its Node with a status: create keeps it.
  prepareForCreate: noop,
  prepareForUpdate: noop,
  validate: validateNode,
  validateStatus: validateNodeStatus,
};

const namespaces: ResourceDef = {
  plural: 'namespaces',
  singular: 'namespace',
  kind: 'Namespace',
  listKind: 'NamespaceList',
  group: '',
  version: 'v1',
  apiVersion: 'v1',
  namespaced: false,
  shortNames: ['ns'],
  categories: [],
  statusSubresource: true,
  allowCreateOnUpdate: false,
  nameRule: 'dns1123-label',
  selectableFields: ['metadata.name', 'status.phase'],
  generation: 'none',
  patchMeta: { fields: { metadata: OBJECT_META, status: { fields: { conditions: CONDITIONS } } } },
  defaults: (obj) => {
    const meta = field(obj, 'metadata');
    if (typeof meta['name'] === 'string') field(meta, 'labels')['kubernetes.io/metadata.name'] = meta['name'];
  },
  prepareForCreate: (obj) => {
    obj['spec'] = { finalizers: ['kubernetes'] };
    obj['status'] = { phase: 'Active' };
  },
  prepareForUpdate: (obj, old) => {
    obj['spec'] = structuredClone(old['spec']);
  },
  validate: (obj) => checkObjectMeta(obj, 'dns1123-label'),
  validateStatus: (obj) => {
    const status = isObject(obj['status']) ? obj['status'] : {};
    return status['phase'] === undefined ? [] : checkOneOf('status.phase', status['phase'], ['Active', 'Terminating']);
  },
};

/** Every served resource, in discovery order. */
export const RESOURCES: readonly ResourceDef[] = [namespaces, nodes, services, endpointSlices];

/** A resource by plural, group and version; undefined if not served. */
export function resourceByPath(group: string, version: string, plural: string): ResourceDef | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
}

/** A resource by apiVersion and kind (a manifest's). */
export function resourceByKind(apiVersion: unknown, kind: unknown): ResourceDef | undefined {
  return RESOURCES.find((r) => r.apiVersion === apiVersion && r.kind === kind);
}

/** The values an object offers to field selectors. */
export function selectableFields(def: ResourceDef, obj: JsonObject): Record<string, string> {
  const meta = isObject(obj['metadata']) ? obj['metadata'] : {};
  const out: Record<string, string> = { 'metadata.name': String(meta['name'] ?? '') };
  if (def.namespaced) out['metadata.namespace'] = String(meta['namespace'] ?? '');
  if (def.plural === 'nodes') out['spec.unschedulable'] = String(isObject(obj['spec']) && obj['spec']['unschedulable'] === true);
  if (def.plural === 'namespaces') out['status.phase'] = String(isObject(obj['status']) ? (obj['status']['phase'] ?? '') : '');
  return out;
}

/** An object's labels (empty when it has none). */
export function labelsOf(obj: JsonObject): Record<string, string> {
  const meta = isObject(obj['metadata']) ? obj['metadata'] : {};
  return isObject(meta['labels']) ? (meta['labels'] as Record<string, string>) : {};
}
