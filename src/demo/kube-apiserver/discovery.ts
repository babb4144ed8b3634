/**
 * What clients read before they touch a resource: /version, the legacy
 * discovery documents (/api, /api/v1, /apis, /apis/<group>[/<version>]),
 * and a minimal OpenAPI v3.
 *
 * Aggregated discovery (the apidiscovery.k8s.io/v2 Accept types) is not
 * served: the server answers with the legacy documents as application/json,
 * which client-go takes as the legacy format.
 *
 * OpenAPI: kubectl's `--validate=strict` (the default) asks the OpenAPI v3
 * document of a group version whether the PATCH operation of the kind takes
 * the `fieldValidation` query parameter; when it does, kubectl leaves
 * validation to the server and does no client-side schema check. So each
 * document lists only the PATCH operations with their query parameters and
 * the kind (x-kubernetes-group-version-kind). They carry no request body
 * schema, so `kubectl apply` does not compute its strategic merge patch from
 * OpenAPI but from the Go types compiled into it (its fallback), which have
 * the same merge keys. /openapi/v2 is not served (404); kubectl falls back
 * past it.
 */
import { createHash } from 'node:crypto';
import { RESOURCES, type ResourceDef } from './resources.js';
import type { JsonObject } from './status.js';

/** The Kubernetes version the server claims (kubectl 1.32 is on this machine). */
export const SERVER_VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.4' };

/** GET /version. */
export function versionInfo(): JsonObject {
  return {
    ...SERVER_VERSION,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2025-04-22T00:00:00Z',
    goVersion: 'go1.23.8',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

/** GET /api. */
export function apiVersions(serverAddress: string): JsonObject {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groups(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of RESOURCES) {
    if (r.group === '') continue;
    const versions = out.get(r.group) ?? [];
    if (!versions.includes(r.version)) versions.push(r.version);
    out.set(r.group, versions);
  }
  return out;
}

function apiGroup(name: string, versions: readonly string[]): JsonObject {
  const vs = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: vs, preferredVersion: vs[0] };
}

/** GET /apis. */
export function apiGroupList(): JsonObject {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [...groups()].map(([name, versions]) => apiGroup(name, versions)) };
}

/** GET /apis/<group>; undefined for a group not served. */
export function apiGroupDoc(group: string): JsonObject | undefined {
  const versions = groups().get(group);
  return versions ? { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(group, versions) } : undefined;
}

function verbs(r: ResourceDef): string[] {
  // The real API has no deletecollection on namespaces.
  return r.plural === 'namespaces'
    ? ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']
    : ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
}

function storageVersionHash(r: ResourceDef): string {
  return createHash('sha256').update(`${r.group}/${r.version}/${r.kind}`).digest('base64').slice(0, 11);
}

/** GET /api/v1 or /apis/<group>/<version>: the APIResourceList; undefined when not served. */
export function apiResourceList(group: string, version: string): JsonObject | undefined {
  const defs = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (defs.length === 0) return undefined;
  const resources: JsonObject[] = [];
  for (const r of defs) {
    resources.push({
      name: r.plural,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: verbs(r),
      ...(r.shortNames.length ? { shortNames: [...r.shortNames] } : {}),
      ...(r.categories.length ? { categories: [...r.categories] } : {}),
      storageVersionHash: storageVersionHash(r),
    });
    if (r.statusSubresource) {
      resources.push({ name: `${r.plural}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}

/** The OpenAPI v3 path of a group version: `api/v1`, `apis/discovery.k8s.io/v1`. */
function openApiPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

function queryParam(name: string, description: string): JsonObject {
  return { name, in: 'query', description, schema: { type: 'string', uniqueItems: true } };
}

/** GET /openapi/v3/<path>: a document with the PATCH operations only; undefined when not served. */
export function openApiV3Doc(path: string): JsonObject | undefined {
  const defs = RESOURCES.filter((r) => openApiPath(r.group, r.version) === path);
  if (defs.length === 0) return undefined;
  const paths: JsonObject = {};
  for (const r of defs) {
    const base = `/${path}${r.namespaced ? '/namespaces/{namespace}' : ''}/${r.plural}/{name}`;
    const gvk = { group: r.group, version: r.version, kind: r.kind };
    const patch = (sub: string): JsonObject => ({
      description: `partially update ${sub ? 'status of ' : ''}the specified ${r.kind}`,
      operationId: `patch${r.group ? 'Discovery' : 'Core'}V1${r.namespaced ? 'Namespaced' : ''}${r.kind}${sub ? 'Status' : ''}`,
      parameters: [
        queryParam('dryRun', 'When present, indicates that modifications should not be persisted.'),
        queryParam('fieldManager', 'fieldManager is a name associated with the actor or entity that is making these changes.'),
        queryParam('fieldValidation', 'fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields.'),
        { name: 'force', in: 'query', description: 'Force is going to "force" Apply requests.', schema: { type: 'boolean', uniqueItems: true } },
      ],
      responses: { '200': { description: 'OK' }, '201': { description: 'Created' } },
      'x-kubernetes-action': 'patch',
      'x-kubernetes-group-version-kind': gvk,
    });
    paths[base] = { patch: patch('') };
    if (r.statusSubresource) paths[`${base}/status`] = { patch: patch('status') };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: SERVER_VERSION.gitVersion }, paths, components: { schemas: {} } };
}

/** GET /openapi/v3: the index of the group version documents. */
export function openApiV3Index(): JsonObject {
  const paths: JsonObject = {};
  for (const r of RESOURCES) {
    const p = openApiPath(r.group, r.version);
    const hash = createHash('sha512').update(JSON.stringify(openApiV3Doc(p))).digest('hex').toUpperCase();
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
  }
  return { paths };
}
