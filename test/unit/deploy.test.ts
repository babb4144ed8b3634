/**
 * deploy/*.yaml held to the code: the ClusterRole grants exactly what the
 * agent asks of the API server (KUBE_API_ACCESS, and the requests the agent
 * really makes, recorded by a stand-in API server), the binding joins the
 * ServiceAccount the DaemonSet runs as to that ClusterRole, every argument
 * is a flag of `sluice kube-proxy`, the probes reach the healthz port the
 * arguments give, and the volumes hold the directories the flags name.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { pino } from 'pino';
import { parseAllDocuments } from 'yaml';
import { Catalog } from '../../src/catalog/catalog.js';
import { CatalogKeys } from '../../src/catalog/keys.js';
import { CatalogView } from '../../src/catalog/view.js';
import { KUBE_PROXY_FLAGS } from '../../src/cli/kube-proxy-flags.js';
import { connectKube, KUBE_API_ACCESS } from '../../src/kube/client.js';
import { KubeSource } from '../../src/kube/source.js';
import { packageRoot } from '../../src/package-root.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';

// ---- the manifests

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [field: string]: unknown;
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}
interface Probe {
  httpGet: { path: string; port: number | string };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  volumeMounts?: Array<{ name: string; mountPath: string; mountPropagation?: string }>;
  securityContext?: { privileged?: boolean };
}
interface PodSpec {
  serviceAccountName: string;
  hostNetwork?: boolean;
  dnsPolicy?: string;
  priorityClassName?: string;
  tolerations?: Array<{ operator?: string; key?: string; effect?: string }>;
  initContainers?: Container[];
  containers: Container[];
  volumes: Array<{ name: string; hostPath?: { path: string; type?: string } }>;
}

const DEPLOY = path.join(packageRoot(), 'deploy');

/** The objects of the YAML files of deploy/ (or of a folder of it). */
function manifests(dir = DEPLOY): K8sObject[] {
  const out: K8sObject[] = [];
  for (const f of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort()) {
    for (const doc of parseAllDocuments(readFileSync(path.join(dir, f), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${f}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const obj = doc.toJS() as K8sObject | null;
      if (obj !== null) out.push(obj);
    }
  }
  return out;
}

function only(kind: string): K8sObject {
  const found = manifests().filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`deploy/: ${found.length} objects of kind ${kind}, want 1`);
  return found[0]!;
}

function podSpec(): PodSpec {
  return (only('DaemonSet')['spec'] as { template: { spec: PodSpec } }).template.spec;
}

/** The agent's container: the one that runs `kube-proxy`. */
function agent(): Container {
  const c = podSpec().containers.filter((x) => x.args?.[0] === 'kube-proxy');
  if (c.length !== 1) throw new Error(`${c.length} containers run kube-proxy, want 1`);
  return c[0]!;
}

/** "group/resource verb" for each verb of each rule. */
function grants(rules: readonly Rule[]): string[] {
  return rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g === '' ? 'core' : g}/${res} ${v}`)))).sort();
}

const EXPECTED = KUBE_API_ACCESS.flatMap((a) => a.verbs.map((v) => `${a.apiGroup === '' ? 'core' : a.apiGroup}/${a.resource} ${v}`)).sort();

/** The flag an argument gives and its value: "--x=v" or "--x" followed by "v". */
function flags(args: readonly string[]): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq >= 0) out.set(a.slice(0, eq), a.slice(eq + 1));
    else if (args[i + 1] !== undefined && !args[i + 1]!.startsWith('--')) out.set(a, args[++i]);
    else out.set(a, undefined);
  }
  return out;
}

const KNOWN = new Map(KUBE_PROXY_FLAGS.map((f) => [f.flags.split(' ')[0]!, f]));

/** Where `value` has a field its Kubernetes type does not (client-node's models), or a value of another kind. */
function schemaErrors(value: unknown, type: string, at: string, models: Record<string, unknown>): string[] {
  if (value === null || value === undefined) return [];
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) return Array.isArray(value) ? value.flatMap((v, i) => schemaErrors(v, arr[1]!, `${at}[${i}]`, models)) : [`${at}: want a list`];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) return typeof value === 'object' ? Object.entries(value).flatMap(([k, v]) => schemaErrors(v, map[1]!, `${at}.${k}`, models)) : [`${at}: want a map`];
  if (type === 'string' || type === 'Date') return typeof value === 'string' ? [] : [`${at}: want a string, got ${JSON.stringify(value)}`];
  if (type === 'number') return typeof value === 'number' ? [] : [`${at}: want a number, got ${JSON.stringify(value)}`];
  if (type === 'boolean') return typeof value === 'boolean' ? [] : [`${at}: want true or false, got ${JSON.stringify(value)}`];
  if (type === 'IntOrString') return typeof value === 'number' || typeof value === 'string' ? [] : [`${at}: want a number or a string`];
  const model = models[type] as { getAttributeTypeMap?: () => Array<{ baseName: string; type: string }> } | undefined;
  if (!model?.getAttributeTypeMap) return []; // object, quantities: anything goes
  if (typeof value !== 'object' || Array.isArray(value)) return [`${at}: want an object (${type})`];
  const fields = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) => (fields.has(k) ? schemaErrors(v, fields.get(k)!, `${at}.${k}`, models) : [`${at}.${k}: not a field of ${type}`]));
}

test('every object is valid for its Kubernetes type: no unknown field, no value of the wrong kind', async (t) => {
  const models = (await import('@kubernetes/client-node')) as unknown as Record<string, unknown>;
  for (const o of [...manifests(), ...manifests(path.join(DEPLOY, 'cleanup'))]) {
    const type = `V1${o.kind}`;
    t.truthy(models[type], `${o.kind}: no such kind`);
    t.deepEqual(schemaErrors(o, type, `${o.kind}/${o.metadata.name}`, models), []);
  }
});

test('the ClusterRole grants exactly what the agent asks of the API server', (t) => {
  const role = only('ClusterRole');
  const rules = role['rules'] as Rule[];
  t.deepEqual(grants(rules), EXPECTED);
  t.true(rules.every((r) => r.resourceNames === undefined && r.nonResourceURLs === undefined));
  t.deepEqual(EXPECTED, ['core/nodes list', 'core/nodes watch', 'core/services list', 'core/services watch', 'discovery.k8s.io/endpointslices list', 'discovery.k8s.io/endpointslices watch']);
  t.is(manifests().filter((o) => o.kind === 'Role' || o.kind === 'RoleBinding').length, 0, 'no namespaced grants beside the ClusterRole');
});

test('the binding names the ServiceAccount the DaemonSet runs as and the ClusterRole', (t) => {
  const sa = only('ServiceAccount');
  const binding = only('ClusterRoleBinding');
  const ds = only('DaemonSet');
  const roleRef = binding['roleRef'] as { apiGroup: string; kind: string; name: string };
  const subjects = binding['subjects'] as Array<{ kind: string; name: string; namespace?: string }>;
  t.is(sa.metadata.name, 'sluice-kube-proxy');
  t.is(sa.metadata.namespace, 'kube-system');
  t.deepEqual(roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: only('ClusterRole').metadata.name });
  t.deepEqual(subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
  t.is(ds.metadata.namespace, sa.metadata.namespace);
  t.is(podSpec().serviceAccountName, sa.metadata.name);
});

test('every argument of the agent is a flag of `sluice kube-proxy`, with a value where it takes one', (t) => {
  const args = agent().args!;
  t.is(args[0], 'kube-proxy');
  t.is(agent().command, undefined, 'the image\'s entry point is sluice');
  for (const a of args.slice(1)) t.true(a.startsWith('--'), `${a}: not a flag`);
  for (const [flag, value] of flags(args.slice(1))) {
    const f = KNOWN.get(flag);
    t.truthy(f, `${flag} is not a flag of sluice kube-proxy`);
    if (!f) continue;
    t.false(f.hidden === true, `${flag} is for tests`);
    t.not(flag, '--cleanup');
    const takes = /[<[]/.test(f.flags);
    t.is(value !== undefined, takes, `${flag}: ${takes ? 'needs a value' : 'takes no value'}`);
    if (value !== undefined && f.choices) t.true(f.choices.includes(value), `${flag}=${value}: not one of ${f.choices.join(', ')}`);
  }
});

test('the node name comes from the downward API; the API server is reached at its own address', (t) => {
  const f = flags(agent().args!.slice(1));
  t.is(f.get('--hostname-override'), '$(NODE_NAME)');
  t.deepEqual(agent().env?.find((e) => e.name === 'NODE_NAME')?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
  // Not the kubernetes Service's cluster IP: the node's own connections are not balanced.
  t.deepEqual(agent().env?.filter((e) => e.name.startsWith('KUBERNETES_SERVICE_')).map((e) => e.name).sort(), ['KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT']);
  t.false(f.has('--kubeconfig'), 'in-cluster configuration: the ServiceAccount\'s token');
});

test('the cleanup DaemonSet runs --cleanup on the agent\'s directories, with its image and mounts, and no API access', (t) => {
  const objs = manifests(path.join(DEPLOY, 'cleanup'));
  t.deepEqual(objs.map((o) => o.kind), ['DaemonSet']);
  const spec = (objs[0]!['spec'] as { template: { spec: PodSpec & { automountServiceAccountToken?: boolean } } }).template.spec;
  t.false(spec.automountServiceAccountToken);
  t.true(spec.hostNetwork);
  t.deepEqual(spec.tolerations, [{ operator: 'Exists' }]);
  const c = spec.initContainers?.find((x) => x.args?.[0] === 'kube-proxy');
  t.truthy(c);
  t.true(c!.securityContext?.privileged);
  t.is(c!.image, agent().image);
  const cf = flags(c!.args!.slice(1));
  for (const flag of cf.keys()) t.truthy(KNOWN.get(flag), `${flag} is not a flag of sluice kube-proxy`);
  t.true(cf.has('--cleanup'));
  const af = flags(agent().args!.slice(1));
  for (const flag of ['--pin-dir', '--state-dir']) t.is(cf.get(flag), af.get(flag), `${flag} as the agent's`);
  const hostPaths = (p: PodSpec, x: Container): string[] => (x.volumeMounts ?? []).map((m) => `${m.mountPath}=${p.volumes.find((v) => v.name === m.name)?.hostPath?.path}`).sort();
  const agentPaths = hostPaths(podSpec(), agent());
  for (const m of hostPaths(spec, c!)) t.true(agentPaths.includes(m), `${m}: not one of the agent's mounts`);
});

test('the probes reach /livez and /healthz on the port the arguments give', (t) => {
  const c = agent();
  const bind = flags(c.args!.slice(1)).get('--healthz-bind-address') ?? '0.0.0.0:10256';
  const port = Number(bind.slice(bind.lastIndexOf(':') + 1));
  const host = bind.slice(0, bind.lastIndexOf(':'));
  t.true(host === '0.0.0.0' || host === '', `kubelet probes the node's address: ${bind} must listen on all of them`);
  const resolve = (p: number | string): number => (typeof p === 'number' ? p : c.ports?.find((x) => x.name === p)?.containerPort ?? NaN);
  t.is(c.livenessProbe?.httpGet.path, '/livez');
  t.is(resolve(c.livenessProbe!.httpGet.port), port);
  t.is(c.readinessProbe?.httpGet.path, '/healthz');
  t.is(resolve(c.readinessProbe!.httpGet.port), port);
});

test('the DaemonSet runs on every node, in the host network, with the mounts the flags name', (t) => {
  const spec = podSpec();
  const ds = only('DaemonSet')['spec'] as { updateStrategy: { type: string; rollingUpdate: { maxUnavailable: number } } };
  t.true(spec.hostNetwork);
  t.is(spec.dnsPolicy, 'ClusterFirstWithHostNet');
  t.is(spec.priorityClassName, 'system-node-critical');
  t.deepEqual(spec.tolerations, [{ operator: 'Exists' }]);
  t.deepEqual(ds.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  const c = agent();
  t.true(c.securityContext?.privileged);
  const f = flags(c.args!.slice(1));
  const mountOf = (dir: string): { mount: { name: string; mountPath: string; mountPropagation?: string }; hostPath: string | undefined } | undefined => {
    const m = c.volumeMounts?.find((v) => dir === v.mountPath || dir.startsWith(`${v.mountPath}/`));
    return m ? { mount: m, hostPath: spec.volumes.find((v) => v.name === m.name)?.hostPath?.path } : undefined;
  };
  const pins = mountOf(f.get('--pin-dir') ?? '/sys/fs/bpf/sluice');
  t.is(pins?.hostPath, '/sys/fs/bpf');
  t.is(pins?.mount.mountPropagation, 'Bidirectional', 'the pins outlive the pod');
  t.is(mountOf(f.get('--state-dir') ?? '/var/lib/sluice')?.hostPath, '/var/lib/sluice');
  t.is(mountOf(path.dirname((f.get('--listen') ?? 'unix:///run/sluice/sluice.sock').slice('unix://'.length)))?.hostPath, '/run/sluice');
  const version = (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  for (const x of [...(spec.initContainers ?? []), ...spec.containers]) t.true(x.image.endsWith(`/sluice:${version}`), `${x.name}: image ${x.image}, want this version (${version})`);
});

// ---- the requests the agent makes

/** "group/resource verb" of one request to the API server. */
function requestGrant(method: string, url: URL): string {
  const parts = url.pathname.split('/').filter(Boolean);
  // /api/v1/[namespaces/NS/]RES[/NAME] or /apis/GROUP/VERSION/[namespaces/NS/]RES[/NAME]
  let rest = parts[0] === 'api' ? parts.slice(2) : parts.slice(3);
  const group = parts[0] === 'api' ? 'core' : parts[1]!;
  if (rest[0] === 'namespaces' && rest.length > 2) rest = rest.slice(2);
  const [resource, name] = rest;
  const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
  const verb = method === 'GET' ? (watch ? 'watch' : name === undefined ? 'list' : 'get') : ({ POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: name === undefined ? 'deletecollection' : 'delete' } as Record<string, string>)[method] ?? method;
  return `${group}/${resource} ${verb}`;
}

/** One of each, so that the agent's first sync programs a service with a node port and an endpoint. */
const ITEMS: Record<string, unknown[]> = {
  'core/services': [{ metadata: { namespace: 'default', name: 'web', resourceVersion: '1' }, spec: { type: 'NodePort', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }] } }],
  'discovery.k8s.io/endpointslices': [{ metadata: { namespace: 'default', name: 'web-x', resourceVersion: '1', labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: ['10.244.1.5'], conditions: { ready: true } }] }],
  'core/nodes': [{ metadata: { name: 'node-1', resourceVersion: '1' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.7.2' }] } }],
};

test('the agent\'s requests to the API server are the ones KUBE_API_ACCESS names, each of them', async (t) => {
  const seen = new Set<string>();
  const open = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://api');
    const grant = requestGrant(req.method ?? 'GET', url);
    seen.add(grant);
    if (grant.endsWith(' watch')) {
      // A watch that stays open, as the API server's does until its timeout.
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      open.add(res);
      res.on('close', () => open.delete(res));
      return;
    }
    if (grant.endsWith(' list')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: ITEMS[grant.split(' ')[0]!] ?? [] }));
      return;
    }
    res.writeHead(403, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, message: `${grant}: not in the ClusterRole` }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-deploy-'));
  t.teardown(() => {
    for (const res of open) res.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'u', user: { token: 'test' } }],
    contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'c',
  }));

  const { api } = await connectKube(kubeconfig);
  const store = new MemoryKvStore();
  const keys = new CatalogKeys('/sluice');
  const view = new CatalogView({ store, keys });
  await view.start();
  const source = new KubeSource({
    api,
    catalog: new Catalog({ store, keys, owner: 'kubernetes', view }),
    view,
    nodeName: 'node-1',
    nodePortCidrs: [],
    logger: pino({ level: 'silent' }),
    minSyncMs: 0,
  });
  source.start();
  try {
    for (let i = 0; i < 200 && (seen.size < EXPECTED.length || !source.initialized); i++) await new Promise((r) => setTimeout(r, 25));
    // Whatever else a start does (its first sync) has had time to ask too.
    await source.settled();
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    await source.stop();
    view.close();
  }
  t.true(source.initialized, 'the agent listed everything it needs');
  t.deepEqual(view.names().sort(), ['default/web:http', 'default/web:http/nodeport'], 'its first sync programmed the service');
  t.deepEqual([...seen].sort(), EXPECTED);
});
