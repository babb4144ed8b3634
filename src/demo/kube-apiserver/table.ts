/**
 * Server-side printing: the meta.k8s.io/v1 Table that `kubectl get` asks for
 * (Accept: application/json;as=Table;v=v1;g=meta.k8s.io), with the columns
 * and cells of the real printers (pkg/printers/internalversion/printers.go)
 * for the four served kinds, so `kubectl get svc` prints TYPE, CLUSTER-IP,
 * EXTERNAL-IP, PORT(S) as on a cluster. Like the real server, the wide
 * columns are always there (priority 1; kubectl shows them with -o wide),
 * and each row carries the object's metadata (includeObject=Metadata, the
 * default), or the object, or nothing.
 */
import type { ResourceDef } from './resources.js';
import { isObject, type JsonObject } from './status.js';

interface Column {
  name: string;
  type?: string;
  format?: string;
  priority?: number;
  description: string;
}

const NAME: Column = { name: 'Name', format: 'name', description: 'Name must be unique within a namespace.' };
const AGE: Column = { name: 'Age', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.' };

const COLUMNS: Record<string, Column[]> = {
  services: [
    NAME,
    { name: 'Type', description: 'type determines how the Service is exposed.' },
    { name: 'Cluster-IP', description: 'clusterIP is the IP address of the service.' },
    { name: 'External-IP', description: 'externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.' },
    { name: 'Port(s)', description: 'The list of ports that are exposed by this service.' },
    AGE,
    { name: 'Selector', priority: 1, description: 'Route service traffic to pods with label keys and values matching this selector.' },
  ],
  endpointslices: [
    NAME,
    { name: 'AddressType', description: 'addressType specifies the type of address carried by this EndpointSlice.' },
    { name: 'Ports', description: 'ports specifies the list of network ports exposed by each endpoint in this slice.' },
    { name: 'Endpoints', description: 'endpoints is a list of unique endpoints in this slice.' },
    AGE,
  ],
  nodes: [
    NAME,
    { name: 'Status', description: 'The status of the node' },
    { name: 'Roles', description: 'The roles of the node' },
    AGE,
    { name: 'Version', description: 'Kubelet Version reported by the node.' },
    { name: 'Internal-IP', priority: 1, description: 'List of addresses reachable to the node.' },
    { name: 'External-IP', priority: 1, description: 'List of addresses reachable to the node.' },
    { name: 'OS-Image', priority: 1, description: 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).' },
    { name: 'Kernel-Version', priority: 1, description: "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)." },
    { name: 'Container-Runtime', priority: 1, description: 'ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).' },
  ],
  namespaces: [NAME, { name: 'Status', description: 'The status of the namespace' }, AGE],
};

/** duration.HumanDuration: 45s, 5m3s, 3h10m, 2d4h, ... */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${Math.floor(days / 365)}y` : `${Math.floor(days / 365)}y${days % 365}d`;
  return `${Math.floor(days / 365)}y`;
}

const obj = (v: unknown): JsonObject => (isObject(v) ? v : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function age(o: JsonObject): string {
  const ts = obj(o['metadata'])['creationTimestamp'];
  return typeof ts === 'string' ? humanDuration(Date.now() - Date.parse(ts)) : '<unknown>';
}

function serviceCells(o: JsonObject): unknown[] {
  const spec = obj(o['spec']);
  const type = String(spec['type'] ?? '');
  const clusterIPs = list(spec['clusterIPs']);
  const externalIPs = list(spec['externalIPs']).map(String);
  const ingress = list(obj(obj(o['status'])['loadBalancer'])['ingress']).map((i) => String(obj(i)['ip'] ?? obj(i)['hostname'] ?? '')).filter(Boolean);
  let external: string;
  if (type === 'ClusterIP' || type === 'NodePort') external = externalIPs.length ? externalIPs.join(',') : '<none>';
  else if (type === 'LoadBalancer') external = [...ingress, ...externalIPs].join(',') || '<pending>';
  else if (type === 'ExternalName') external = String(spec['externalName'] ?? '');
  else external = '<unknown>';
  const ports = list(spec['ports'])
    .map((p) => {
      const port = obj(p);
      return port['nodePort'] ? `${String(port['port'])}:${String(port['nodePort'])}/${String(port['protocol'])}` : `${String(port['port'])}/${String(port['protocol'])}`;
    })
    .join(',');
  const selector = Object.entries(obj(spec['selector'])).map(([k, v]) => `${k}=${String(v)}`).sort().join(',');
  return [obj(o['metadata'])['name'], type, clusterIPs.length ? clusterIPs[0] : '<none>', external, ports || '<none>', age(o), selector || '<none>'];
}

function moreString(items: string[], count: number, max = 3): string {
  const shown = items.slice(0, max).join(',');
  if (count > max) return `${shown} + ${count - max} more...`;
  return shown === '' ? '<unset>' : shown;
}

function endpointSliceCells(o: JsonObject): unknown[] {
  const ports = list(o['ports']).map((p) => (obj(p)['port'] !== undefined ? String(obj(p)['port']) : String(obj(p)['name'] ?? '*')));
  const addresses = list(o['endpoints']).flatMap((e) => list(obj(e)['addresses']).map(String));
  return [obj(o['metadata'])['name'], o['addressType'], moreString(ports, ports.length), moreString(addresses, addresses.length), age(o)];
}

function nodeCells(o: JsonObject): unknown[] {
  const meta = obj(o['metadata']);
  const status = obj(o['status']);
  const ready = list(status['conditions']).map(obj).find((c) => c['type'] === 'Ready');
  const states = [ready ? (ready['status'] === 'True' ? 'Ready' : 'NotReady') : 'Unknown'];
  if (obj(o['spec'])['unschedulable'] === true) states.push('SchedulingDisabled');
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(obj(meta['labels']))) {
    if (k.startsWith('node-role.kubernetes.io/') && k.length > 'node-role.kubernetes.io/'.length) roles.add(k.slice('node-role.kubernetes.io/'.length));
    else if (k === 'kubernetes.io/role' && v) roles.add(String(v));
  }
  const info = obj(status['nodeInfo']);
  const address = (type: string): string => String(list(status['addresses']).map(obj).find((a) => a['type'] === type)?.['address'] ?? '<none>');
  const orUnknown = (v: unknown): string => (typeof v === 'string' && v !== '' ? v : '<unknown>');
  return [
    meta['name'], states.join(','), [...roles].sort().join(',') || '<none>', age(o), String(info['kubeletVersion'] ?? ''),
    address('InternalIP'), address('ExternalIP'), orUnknown(info['osImage']), orUnknown(info['kernelVersion']), orUnknown(info['containerRuntimeVersion']),
  ];
}

const CELLS: Record<string, (o: JsonObject) => unknown[]> = {
  services: serviceCells,
  endpointslices: endpointSliceCells,
  nodes: nodeCells,
  namespaces: (o) => [obj(o['metadata'])['name'], obj(o['status'])['phase'] ?? '', age(o)],
};

/** What each row carries (the includeObject parameter). */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** The Table of one object or of a List's items. */
export function toTable(def: ResourceDef, objects: readonly JsonObject[], listMeta: JsonObject, include: IncludeObject): JsonObject {
  const columnDefinitions = COLUMNS[def.plural]!.map((c) => ({ name: c.name, type: c.type ?? 'string', format: c.format ?? '', description: c.description, priority: c.priority ?? 0 }));
  const rows = objects.map((o) => {
    const row: JsonObject = { cells: CELLS[def.plural]!(o) };
    if (include === 'Metadata') row['object'] = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o['metadata'] };
    else if (include === 'Object') row['object'] = { kind: def.kind, apiVersion: def.apiVersion, ...o };
    return row;
  });
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: listMeta, columnDefinitions, rows };
}

/** Whether the Accept header's first acceptable type is a meta.k8s.io Table (as kubectl get asks). */
export function wantsTable(accept: string | undefined): boolean {
  for (const part of (accept ?? '').split(',')) {
    const [type, ...params] = part.split(';').map((s) => s.trim());
    const p = new Map(params.map((kv) => kv.split('=') as [string, string]));
    if (type === 'application/json' && p.get('as') === 'Table' && p.get('g') === 'meta.k8s.io' && (p.get('v') === 'v1' || p.get('v') === 'v1beta1')) return true;
    if ((type === 'application/json' && !p.has('as')) || type === '*/*' || type === 'application/*') return false;
  }
  return false;
}
