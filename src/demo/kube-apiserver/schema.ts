/**
 * The fields each served kind has, for what the real server's decoding into
 * Go structs does to a request body: a field the type does not have is
 * dropped (fieldValidation=Ignore), dropped with a warning (Warn, the
 * default), or refused with 400 (Strict: `strict decoding error: unknown
 * field "spec.portz"`), and a value of the wrong JSON type is refused
 * (`json: cannot unmarshal string into Go struct field ...`).
 *
 * Field lists follow k8s.io/api core/v1 and discovery/v1; parts no kube-proxy
 * reads (Node images, volumes, config) are `any` and not checked inside.
 */
import { isObject, type JsonObject } from './status.js';

/** A JSON value's expected shape. */
export type Schema =
  | 'string'
  | 'int'
  | 'bool'
  /** A number or a string (intstr.IntOrString). */
  | 'int-or-string'
  | 'any'
  | { fields: Record<string, Schema>; go: string }
  | { items: Schema }
  | { map: Schema };

const s = 'string';
const strings: Schema = { items: 'string' };
const stringMap: Schema = { map: 'string' };
const struct = (go: string, fields: Record<string, Schema>): Schema => ({ fields, go });

const OBJECT_META = struct('ObjectMeta', {
  name: s, generateName: s, namespace: s, selfLink: s, uid: s, resourceVersion: s, generation: 'int',
  creationTimestamp: 'any', deletionTimestamp: 'any', deletionGracePeriodSeconds: 'int', labels: stringMap, annotations: stringMap,
  ownerReferences: { items: struct('OwnerReference', { apiVersion: s, kind: s, name: s, uid: s, controller: 'bool', blockOwnerDeletion: 'bool' }) },
  finalizers: strings, managedFields: { items: 'any' },
});

const CONDITION = struct('Condition', { type: s, status: s, observedGeneration: 'int', lastHeartbeatTime: 'any', lastTransitionTime: 'any', reason: s, message: s });

const top = (go: string, fields: Record<string, Schema>): Schema => struct(go, { apiVersion: s, kind: s, metadata: OBJECT_META, ...fields });

/** The schema of each served kind, by plural. */
export const SCHEMAS: Record<string, Schema> = {
  services: top('Service', {
    spec: struct('ServiceSpec', {
      ports: { items: struct('ServicePort', { name: s, protocol: s, appProtocol: s, port: 'int', targetPort: 'int-or-string', nodePort: 'int' }) },
      selector: stringMap, clusterIP: s, clusterIPs: strings, type: s, externalIPs: strings, sessionAffinity: s, loadBalancerIP: s,
      loadBalancerSourceRanges: strings, externalName: s, externalTrafficPolicy: s, healthCheckNodePort: 'int', publishNotReadyAddresses: 'bool',
      sessionAffinityConfig: struct('SessionAffinityConfig', { clientIP: struct('ClientIPConfig', { timeoutSeconds: 'int' }) }),
      ipFamilies: strings, ipFamilyPolicy: s, allocateLoadBalancerNodePorts: 'bool', loadBalancerClass: s, internalTrafficPolicy: s, trafficDistribution: s,
    }),
    status: struct('ServiceStatus', {
      loadBalancer: struct('LoadBalancerStatus', {
        ingress: { items: struct('LoadBalancerIngress', { ip: s, hostname: s, ipMode: s, ports: { items: struct('PortStatus', { port: 'int', protocol: s, error: s }) } }) },
      }),
      conditions: { items: CONDITION },
    }),
  }),
  endpointslices: top('EndpointSlice', {
    addressType: s,
    endpoints: {
      items: struct('Endpoint', {
        addresses: strings,
        conditions: struct('EndpointConditions', { ready: 'bool', serving: 'bool', terminating: 'bool' }),
        hostname: s,
        targetRef: struct('ObjectReference', { kind: s, namespace: s, name: s, uid: s, apiVersion: s, resourceVersion: s, fieldPath: s }),
        deprecatedTopology: stringMap, nodeName: s, zone: s,
        hints: struct('EndpointHints', { forZones: { items: struct('ForZone', { name: s }) }, forNodes: { items: struct('ForNode', { name: s }) } }),
      }),
    },
    ports: { items: struct('EndpointPort', { name: s, protocol: s, port: 'int', appProtocol: s }) },
  }),
  nodes: top('Node', {
    spec: struct('NodeSpec', {
      podCIDR: s, podCIDRs: strings, providerID: s, unschedulable: 'bool',
      taints: { items: struct('Taint', { key: s, value: s, effect: s, timeAdded: 'any' }) }, configSource: 'any', externalID: s,
    }),
    status: struct('NodeStatus', {
      capacity: stringMap, allocatable: stringMap, phase: s, conditions: { items: CONDITION },
      addresses: { items: struct('NodeAddress', { type: s, address: s }) },
      daemonEndpoints: struct('NodeDaemonEndpoints', { kubeletEndpoint: struct('DaemonEndpoint', { Port: 'int' }) }),
      nodeInfo: 'any', images: 'any', volumesInUse: 'any', volumesAttached: 'any', config: 'any', runtimeHandlers: 'any', features: 'any', declaredFeatures: 'any',
    }),
  }),
  namespaces: top('Namespace', {
    spec: struct('NamespaceSpec', { finalizers: strings }),
    status: struct('NamespaceStatus', { phase: s, conditions: { items: CONDITION } }),
  }),
};

const GO_TYPE: Record<string, string> = { string: 'string', int: 'int32', bool: 'bool', 'int-or-string': 'intstr.IntOrString' };

function jsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'object' : typeof v;
}

/** What decoding found: unknown field paths (already removed from the object) and type errors. */
export interface DecodeReport {
  unknown: string[];
  typeErrors: string[];
}

/**
 * Remove the fields `schema` does not have from `value` (in place) and
 * report them, with values of the wrong type. Nulls are what JSON decoding
 * makes a zero value of, and are dropped too.
 */
export function pruneUnknown(value: JsonObject, schema: Schema): DecodeReport {
  const report: DecodeReport = { unknown: [], typeErrors: [] };
  const walk = (v: unknown, sc: Schema, path: string, goField: string): unknown => {
    if (sc === 'any') return v;
    if (typeof sc === 'string') {
      const ok =
        (sc === 'string' && typeof v === 'string') ||
        (sc === 'int' && Number.isInteger(v)) ||
        (sc === 'bool' && typeof v === 'boolean') ||
        (sc === 'int-or-string' && (typeof v === 'string' || Number.isInteger(v)));
      if (!ok) report.typeErrors.push(`json: cannot unmarshal ${jsonType(v)} into Go struct field ${goField} of type ${GO_TYPE[sc] ?? sc}`);
      return v;
    }
    if ('items' in sc) {
      if (!Array.isArray(v)) {
        report.typeErrors.push(`json: cannot unmarshal ${jsonType(v)} into Go struct field ${goField} of type []`);
        return v;
      }
      return v.map((x, i) => walk(x, sc.items, `${path}[${i}]`, goField));
    }
    if (!isObject(v)) {
      report.typeErrors.push(`json: cannot unmarshal ${jsonType(v)} into Go struct field ${goField} of type ${'go' in sc ? sc.go : 'map'}`);
      return v;
    }
    for (const [k, x] of Object.entries(v)) {
      const child = 'map' in sc ? sc.map : sc.fields[k];
      const childPath = path ? `${path}.${k}` : k;
      if (x === null) {
        delete v[k];
      } else if (child === undefined) {
        report.unknown.push(childPath);
        delete v[k];
      } else {
        // Go's message names the innermost struct and the path without indices: ServicePort.spec.ports.port
        const go = 'go' in sc ? `${sc.go}.${childPath.replace(/\[\d+\]/g, '')}` : goField;
        v[k] = walk(x, child, childPath, go);
      }
    }
    return v;
  };
  walk(value, schema, '', '');
  return report;
}
