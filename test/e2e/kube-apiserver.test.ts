/**
 * The test Kubernetes API server (src/demo/kube-apiserver.ts) is held to
 * the real API's behaviour by the real kubectl (/usr/bin/kubectl, 1.32):
 * apply of the YAML fixtures, the server's defaults and allocations as
 * `kubectl get -o json` shows them, a second apply (strategic merge patch),
 * delete, selectors, `get -w`, a raw watch after compaction, the token.
 * The watch and list protocol details kubectl does not reach are checked with
 * plain HTTPS requests: bookmarks, timeoutSeconds, paging, replay, selector
 * transitions, restart, errors, the status subresource.
 *
 * Each test has its own server on a free port and its own kubeconfig and
 * KUBECACHEDIR (kubectl caches discovery per server URL) in a temp dir.
 * A missing kubectl fails the tests.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { KubeApiServer, loadManifests, type JsonObject, type KubeApiServerOptions } from '../../src/demo/kube-apiserver.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/kube');
const KUBECTL = '/usr/bin/kubectl';

interface Env {
  api: KubeApiServer;
  dir: string;
  kubeconfig: string;
  kubectl(args: readonly string[], opts?: { kubeconfig?: string }): Promise<{ code: number; stdout: string; stderr: string }>;
}

async function setup(t: ExecutionContext, opts: KubeApiServerOptions = {}): Promise<Env> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `sluice-kubeapi-test-${process.pid}-`));
  const api = await KubeApiServer.start(opts);
  t.teardown(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const kubeconfig = path.join(dir, 'kubeconfig');
  api.writeKubeconfig(kubeconfig);
  const kubectl: Env['kubectl'] = (args, o = {}) =>
    new Promise((resolve) => {
      const env = { ...process.env, HOME: dir, KUBECACHEDIR: path.join(dir, 'cache'), KUBECONFIG: o.kubeconfig ?? kubeconfig };
      execFile(KUBECTL, [...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  return { api, dir, kubeconfig, kubectl };
}

/** kubectl that must succeed; returns stdout. */
async function ok(t: ExecutionContext, env: Env, args: readonly string[]): Promise<string> {
  const r = await env.kubectl(args);
  if (r.code !== 0) t.fail(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

interface Reply {
  status: number;
  body: JsonObject;
}

/** One HTTPS request to the server, with its CA and (unless told otherwise) its token. */
function request(api: KubeApiServer, method: string, urlPath: string, opts: { body?: unknown; contentType?: string; token?: string | null } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const token = opts.token === undefined ? api.token : opts.token;
    const data = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = https.request(
      `${api.url}${urlPath}`,
      {
        method,
        ca: api.caPem,
        // A connection per request: a kept-alive one may be from before a restart.
        agent: false,
        headers: {
          Accept: 'application/json',
          ...(token !== null ? { Authorization: `Bearer ${token}` } : {}),
          ...(data !== undefined ? { 'Content-Type': opts.contentType ?? 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as JsonObject });
          } catch (err) {
            reject(new Error(`${method} ${urlPath}: ${res.statusCode} not JSON: ${text.slice(0, 200)} (${String(err)})`));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

interface WatchEvent {
  type: string;
  object: JsonObject;
}

/** A watch read line by line: its events so far, waits for more, and how it ended. */
interface Watch {
  status: number;
  events: WatchEvent[];
  /** Resolves when an event satisfying `pred` has arrived (rejects after `ms`). */
  waitFor(pred: (e: WatchEvent) => boolean, ms?: number): Promise<WatchEvent>;
  /** 'end' (clean end of the chunked body) or 'aborted' (connection cut). */
  ended: Promise<'end' | 'aborted'>;
  close(): void;
}

function watch(t: ExecutionContext, api: KubeApiServer, urlPath: string): Promise<Watch> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${api.url}${urlPath}`, { ca: api.caPem, agent: false, headers: { Authorization: `Bearer ${api.token}`, Accept: 'application/json' } });
    req.on('error', (err) => reject(err));
    req.on('response', (res: IncomingMessage) => {
      const events: WatchEvent[] = [];
      const waiters: Array<() => void> = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          events.push(JSON.parse(buf.slice(0, nl)) as WatchEvent);
          buf = buf.slice(nl + 1);
        }
        for (const w of waiters.splice(0)) w();
      });
      const ended = new Promise<'end' | 'aborted'>((done) => {
        res.on('end', () => done(res.complete ? 'end' : 'aborted'));
        res.on('aborted', () => done('aborted'));
        res.on('error', () => done('aborted'));
      });
      const close = (): void => {
        req.destroy();
      };
      t.teardown(close);
      resolve({
        status: res.statusCode ?? 0,
        events,
        ended,
        close,
        waitFor: (pred, ms = 5000) =>
          new Promise((ok, fail) => {
            const timer = setTimeout(() => fail(new Error(`no matching watch event in ${ms} ms; got ${JSON.stringify(events.map((e) => e.type))}`)), ms);
            const check = (): void => {
              const e = events.find(pred);
              if (e) {
                clearTimeout(timer);
                ok(e);
              } else waiters.push(check);
            };
            check();
          }),
      });
    });
    req.end();
  });
}

const nameOf = (o: JsonObject): string => String((o['metadata'] as JsonObject)['name']);
const metaOf = (o: JsonObject): JsonObject => o['metadata'] as JsonObject;
const specOf = (o: JsonObject): JsonObject => o['spec'] as JsonObject;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function service(name: string, labels?: Record<string, string>, port = 80): JsonObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default', ...(labels ? { labels } : {}) }, spec: { ports: [{ port }] } };
}

function ipInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

test('kubectl apply of the fixtures: services get the real defaults and allocations', async (t) => {
  const env = await setup(t);
  const out = await ok(t, env, ['apply', '-f', FIXTURES]);
  t.regex(out, /service\/web created/);
  t.regex(out, /endpointslice\.discovery\.k8s\.io\/web-7xk2p created/);
  t.regex(out, /node\/node-a created/);

  const list = JSON.parse(await ok(t, env, ['get', 'svc', '-A', '-o', 'json'])) as JsonObject;
  const svcs = new Map((list['items'] as JsonObject[]).map((s) => [nameOf(s), s]));
  t.deepEqual([...svcs.keys()].sort(), ['kube-dns', 'mesh-only', 'db', 'sticky', 'upstream', 'web', 'web-external', 'web-lb', 'web-nodeport'].sort());
  const spec = (n: string): JsonObject => specOf(svcs.get(n)!);

  const web = spec('web');
  t.is(web['type'], 'ClusterIP');
  t.is(web['sessionAffinity'], 'None');
  t.is(web['sessionAffinityConfig'], undefined);
  t.is(web['internalTrafficPolicy'], 'Cluster');
  t.is(web['externalTrafficPolicy'], undefined, 'a plain ClusterIP service has no externalTrafficPolicy');
  t.deepEqual(web['ports'], [
    { name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 },
    { name: 'https', port: 443, protocol: 'TCP', targetPort: 8443 },
  ]);
  t.deepEqual(web['ipFamilies'], ['IPv4']);
  t.is(web['ipFamilyPolicy'], 'SingleStack');
  t.deepEqual(web['clusterIPs'], [web['clusterIP']]);

  // Every allocated cluster IP is in 10.96.0.0/16 (not its network or broadcast address) and unique.
  const ips = [...svcs.values()].map((s) => specOf(s)['clusterIP']).filter((ip): ip is string => typeof ip === 'string' && ip !== 'None');
  t.is(ips.length, 7, 'all but the headless and the ExternalName service have a cluster IP');
  for (const ip of ips) t.true(ipInt(ip) > ipInt('10.96.0.0') && ipInt(ip) < ipInt('10.96.255.255'), `${ip} is outside 10.96.0.0/16`);
  t.is(new Set(ips).size, ips.length, `cluster IPs repeat: ${ips.join(' ')}`);

  const dns = spec('kube-dns');
  t.is(dns['clusterIP'], '10.96.0.10', 'a requested cluster IP is kept');
  t.deepEqual(
    (dns['ports'] as JsonObject[]).map((p) => `${String(p['port'])}/${String(p['protocol'])}`),
    ['53/UDP', '53/TCP'],
  );

  const sticky = spec('sticky');
  t.is(sticky['sessionAffinity'], 'ClientIP');
  t.deepEqual(sticky['sessionAffinityConfig'], { clientIP: { timeoutSeconds: 10800 } });

  const np = spec('web-nodeport');
  const npPorts = np['ports'] as JsonObject[];
  t.is(npPorts[1]!['nodePort'], 30910, 'a requested node port is kept');
  t.is(npPorts[1]!['targetPort'], 9100, 'targetPort defaults to port');
  const allocated = npPorts[0]!['nodePort'] as number;
  t.true(allocated >= 30000 && allocated <= 32767 && allocated !== 30910, `allocated node port ${allocated}`);
  t.is(np['externalTrafficPolicy'], 'Cluster');

  const lb = spec('web-lb');
  t.is(lb['allocateLoadBalancerNodePorts'], true);
  t.is(lb['externalTrafficPolicy'], 'Local');
  const lbNodePort = (lb['ports'] as JsonObject[])[0]!['nodePort'] as number;
  const hc = lb['healthCheckNodePort'] as number;
  t.true(lbNodePort >= 30000 && lbNodePort <= 32767 && hc >= 30000 && hc <= 32767 && hc !== lbNodePort && lbNodePort !== allocated, `node ports ${lbNodePort} ${hc}`);
  t.is((lb['ports'] as JsonObject[])[0]!['targetPort'], 'https', 'a named targetPort stays a name');

  t.is(spec('web-external')['externalTrafficPolicy'], 'Cluster', 'externalIPs make a ClusterIP service externally accessible');

  const headless = spec('db');
  t.is(headless['clusterIP'], 'None');
  t.deepEqual(headless['clusterIPs'], ['None']);

  const ext = spec('upstream');
  t.is(ext['type'], 'ExternalName');
  t.is(ext['clusterIP'], undefined);
  t.is(ext['clusterIPs'], undefined);
  t.is(ext['ipFamilies'], undefined);
  t.is(ext['internalTrafficPolicy'], undefined);

  // System metadata as the real server sets it: Services have no generation.
  const rvs = [...svcs.values()].map((s) => Number(metaOf(s)['resourceVersion']));
  t.true(rvs.every((rv) => Number.isInteger(rv) && rv > 0));
  t.is(new Set(rvs).size, rvs.length, 'each write has its own resourceVersion');
  t.true(env.api.revision >= Math.max(...rvs));
  for (const s of svcs.values()) {
    t.regex(String(metaOf(s)['uid']), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    t.regex(String(metaOf(s)['creationTimestamp']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    t.is(metaOf(s)['generation'], undefined);
    t.deepEqual(s['status'], { loadBalancer: {} });
  }

  const nodes = JSON.parse(await ok(t, env, ['get', 'nodes', '-o', 'json'])) as JsonObject;
  const nodeA = (nodes['items'] as JsonObject[]).find((n) => nameOf(n) === 'node-a')!;
  t.deepEqual((nodeA['status'] as JsonObject)['addresses'], [
    { type: 'InternalIP', address: '192.168.56.11' },
    { type: 'Hostname', address: 'node-a' },
  ]);
});

test('kubectl get prints the server-side Table columns of a cluster, for lists and watches', async (t) => {
  const env = await setup(t);
  await ok(t, env, ['apply', '-f', FIXTURES]);
  env.api.patch('services', 'default', 'web-lb', { status: { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } } }, { subresource: 'status' });
  const svcs = await ok(t, env, ['get', 'svc', '-A']);
  t.regex(svcs, /^NAMESPACE\s+NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE$/m);
  t.regex(svcs, /^kube-system\s+kube-dns\s+ClusterIP\s+10\.96\.0\.10\s+<none>\s+53\/UDP,53\/TCP\s+\d+s$/m);
  t.regex(svcs, /^default\s+web-nodeport\s+NodePort\s+10\.96\.\S+\s+<none>\s+80:3\d{4}\/TCP,9100:30910\/TCP\s/m);
  t.regex(svcs, /^default\s+web-lb\s+LoadBalancer\s+\S+\s+203\.0\.113\.7\s+443:3\d{4}\/TCP\s/m);
  t.regex(svcs, /^default\s+upstream\s+ExternalName\s+<none>\s+api\.example\.com\s+<none>\s/m);
  t.regex(svcs, /^default\s+db\s+ClusterIP\s+None\s/m);
  t.regex(await ok(t, env, ['get', 'svc', 'web', '-o', 'wide']), /^web\s+ClusterIP\s+\S+\s+<none>\s+80\/TCP,443\/TCP\s+\d+s\s+app=web$/m);
  t.regex(await ok(t, env, ['get', 'endpointslices']), /^web-7xk2p\s+IPv4\s+8080,8443\s+10\.244\.1\.10,10\.244\.2\.11,10\.244\.1\.12\s+\d+s$/m);
  t.regex(await ok(t, env, ['get', 'nodes', '-o', 'wide']), /^node-a\s+Ready\s+<none>\s+\d+s\s+v1\.32\.4\s+192\.168\.56\.11\s+<none>\s+Debian GNU\/Linux 12 \(bookworm\)\s+6\.1\.0-28-amd64\s+containerd:\/\/1\.7\.24$/m);
  t.regex(await ok(t, env, ['get', 'ns', 'kube-system']), /^kube-system\s+Active\s+\d+s$/m);
  const table = env.api.requests.find((r) => r.path === '/api/v1/services' && r.method === 'GET');
  t.regex(table?.accept ?? '', /^application\/json;as=Table;v=v1;g=meta\.k8s\.io/);
});

test('kubectl create namespace and create service (protobuf request bodies)', async (t) => {
  const env = await setup(t);
  t.regex(await ok(t, env, ['create', 'namespace', 'team']), /namespace\/team created/);
  await ok(t, env, ['create', 'service', 'nodeport', 'np', '-n', 'team', '--tcp=80:8080', '--node-port=30555']);
  await ok(t, env, ['create', 'service', 'clusterip', 'headless', '-n', 'team', '--clusterip=None', '--tcp=5432:5432']);
  await ok(t, env, ['create', 'service', 'externalname', 'ext', '-n', 'team', '--external-name=example.com']);
  const posts = env.api.requests.filter((r) => r.method === 'POST');
  t.is(posts.length, 4);
  t.true(posts.every((r) => r.contentType === 'application/vnd.kubernetes.protobuf' && r.status === 201));
  t.deepEqual(metaOf(env.api.get('namespaces', undefined, 'team')!)['labels'], { 'kubernetes.io/metadata.name': 'team' });
  const np = env.api.get('services', 'team', 'np')!;
  t.deepEqual(metaOf(np)['labels'], { app: 'np' });
  t.deepEqual(specOf(np)['ports'], [{ name: '80-8080', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30555 }]);
  t.is(specOf(np)['type'], 'NodePort');
  t.regex(String(specOf(np)['clusterIP']), /^10\.96\./);
  t.is(specOf(env.api.get('services', 'team', 'headless')!)['clusterIP'], 'None');
  t.is(specOf(env.api.get('services', 'team', 'ext')!)['externalName'], 'example.com');
  t.is(specOf(env.api.get('services', 'team', 'ext')!)['clusterIP'], undefined);
});

test('kubectl get endpointslices with label selectors, conditions kept as given', async (t) => {
  const env = await setup(t);
  await ok(t, env, ['apply', '-f', FIXTURES]);

  const web = JSON.parse(await ok(t, env, ['get', 'endpointslices', '-l', 'kubernetes.io/service-name=web', '-o', 'json'])) as JsonObject;
  const items = web['items'] as JsonObject[];
  t.deepEqual(items.map(nameOf), ['web-7xk2p']);
  const slice = items[0]!;
  t.is(slice['addressType'], 'IPv4');
  t.is(metaOf(slice)['generation'], 1, 'EndpointSlices have a generation');
  t.deepEqual(
    (slice['endpoints'] as JsonObject[]).map((e) => e['conditions']),
    [
      { ready: true, serving: true, terminating: false },
      { ready: false, serving: true, terminating: true },
      { ready: false, serving: false, terminating: false },
    ],
  );

  const dnsSlice = JSON.parse(await ok(t, env, ['get', 'endpointslice', 'kube-dns-q8v4r', '-n', 'kube-system', '-o', 'json'])) as JsonObject;
  t.deepEqual((dnsSlice['endpoints'] as JsonObject[])[0]!['conditions'], { ready: true }, 'unset conditions stay unset');

  // kube-proxy's selector: slices of headless services and services of other proxies are left out.
  const proxySelector = '!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless';
  const slices = JSON.parse(await ok(t, env, ['get', 'endpointslices', '-A', '-l', proxySelector, '-o', 'json'])) as JsonObject;
  t.deepEqual((slices['items'] as JsonObject[]).map(nameOf).sort(), ['kube-dns-q8v4r', 'web-7xk2p']);
  const all = JSON.parse(await ok(t, env, ['get', 'endpointslices', '-A', '-o', 'json'])) as JsonObject;
  t.true((all['items'] as JsonObject[]).map(nameOf).includes('db-m2c9w'), 'without the selector the headless slice is listed');
  const svcs = JSON.parse(await ok(t, env, ['get', 'svc', '-A', '-l', proxySelector, '-o', 'json'])) as JsonObject;
  const names = (svcs['items'] as JsonObject[]).map(nameOf);
  t.false(names.includes('mesh-only'));
  t.true(names.includes('web'));
  const inSel = JSON.parse(await ok(t, env, ['get', 'svc', '-A', '-l', 'k8s-app in (kube-dns,other),app notin (x)', '-o', 'json'])) as JsonObject;
  t.deepEqual((inSel['items'] as JsonObject[]).map(nameOf), ['kube-dns']);
});

test('kubectl apply of a change sends a strategic merge patch the server applies', async (t) => {
  const env = await setup(t);
  await ok(t, env, ['apply', '-f', FIXTURES]);
  const before = JSON.parse(await ok(t, env, ['get', 'svc', 'web', '-o', 'json'])) as JsonObject;

  const changed = path.join(env.dir, 'web-changed.yaml');
  writeFileSync(
    changed,
    [
      'apiVersion: v1',
      'kind: Service',
      'metadata: {name: web, namespace: default, labels: {app: web, tier: front}}',
      'spec:',
      '  selector: {app: web}',
      '  ports:',
      '    - {name: metrics, port: 9090}',
      '    - {name: http, port: 80, targetPort: 8081}',
      '',
    ].join('\n'),
  );
  env.api.clearRequests();
  t.regex(await ok(t, env, ['apply', '-f', changed]), /service\/web configured/);
  const patch = env.api.requests.find((r) => r.method === 'PATCH');
  t.truthy(patch, 'kubectl patched the existing service');
  t.is(patch!.contentType, 'application/strategic-merge-patch+json');
  t.is(patch!.query['fieldManager'], 'kubectl-client-side-apply');

  const after = JSON.parse(await ok(t, env, ['get', 'svc', 'web', '-o', 'json'])) as JsonObject;
  // The https port is gone ($patch: delete), the order is the manifest's ($setElementOrder), http merged by its key.
  t.deepEqual(specOf(after)['ports'], [
    { name: 'metrics', port: 9090, protocol: 'TCP', targetPort: 9090 },
    { name: 'http', port: 80, protocol: 'TCP', targetPort: 8081 },
  ]);
  t.deepEqual(metaOf(after)['labels'], { app: 'web', tier: 'front' });
  t.is(specOf(after)['clusterIP'], specOf(before)['clusterIP'], 'the cluster IP survives the patch');
  t.is(metaOf(after)['uid'], metaOf(before)['uid']);
  t.true(Number(metaOf(after)['resourceVersion']) > Number(metaOf(before)['resourceVersion']));
  const applied = JSON.parse(String((metaOf(after)['annotations'] as JsonObject)['kubectl.kubernetes.io/last-applied-configuration'])) as JsonObject;
  t.deepEqual(metaOf(applied)['labels'], { app: 'web', tier: 'front' });

  // Back to the fixture: the label goes (a null in the patch), https comes back.
  await ok(t, env, ['apply', '-f', path.join(FIXTURES, 'web.yaml')]);
  const back = JSON.parse(await ok(t, env, ['get', 'svc', 'web', '-o', 'json'])) as JsonObject;
  t.deepEqual(metaOf(back)['labels'], { app: 'web' });
  t.deepEqual((specOf(back)['ports'] as JsonObject[]).map((p) => p['name']), ['http', 'https']);

  // Applying what is there changes nothing, not even the resourceVersion.
  const rv = env.api.revision;
  t.regex(await ok(t, env, ['apply', '-f', path.join(FIXTURES, 'web.yaml')]), /unchanged/);
  t.is(env.api.revision, rv);
});

test('kubectl apply --server-side creates, and a second apply drops what it no longer sets', async (t) => {
  const env = await setup(t);
  const file = path.join(env.dir, 'ssa.yaml');
  const manifest = (ports: string[]): string =>
    ['apiVersion: v1', 'kind: Service', 'metadata: {name: ssa, namespace: default, labels: {a: "1"}}', 'spec:', '  ports:', ...ports.map((p) => `    - ${p}`), ''].join('\n');
  writeFileSync(file, manifest(['{name: a, port: 80}', '{name: b, port: 81, protocol: UDP}']));
  t.regex(await ok(t, env, ['apply', '--server-side', '-f', file]), /service\/ssa serverside-applied/);
  const apply = env.api.requests.find((r) => r.method === 'PATCH' && r.contentType.startsWith('application/apply-patch+yaml'));
  t.truthy(apply);
  t.is(apply!.query['fieldManager'], 'kubectl');
  const first = env.api.get('services', 'default', 'ssa')!;
  t.deepEqual((specOf(first)['ports'] as JsonObject[]).map((p) => `${String(p['port'])}/${String(p['protocol'])}`), ['80/TCP', '81/UDP']);

  writeFileSync(file, manifest(['{name: a, port: 80, targetPort: 8080}']));
  await ok(t, env, ['apply', '--server-side', '-f', file]);
  const second = env.api.get('services', 'default', 'ssa')!;
  t.deepEqual(specOf(second)['ports'], [{ name: 'a', port: 80, protocol: 'TCP', targetPort: 8080 }]);
  t.is(specOf(second)['clusterIP'], specOf(first)['clusterIP']);
});

test('kubectl delete removes objects, and a get of a missing one is NotFound', async (t) => {
  const env = await setup(t);
  await ok(t, env, ['apply', '-f', FIXTURES]);
  const out = await ok(t, env, ['delete', '-f', path.join(FIXTURES, 'headless.yaml')]);
  t.regex(out, /service "db" deleted/);
  t.regex(out, /endpointslice\.discovery\.k8s\.io "db-m2c9w" deleted/);
  t.is(env.api.get('services', 'default', 'db'), undefined);
  t.is(env.api.get('endpointslices', 'default', 'db-m2c9w'), undefined);
  const missing = await env.kubectl(['get', 'svc', 'db']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /Error from server \(NotFound\): services "db" not found/);

  // Deleting a namespace takes its objects with it; the built-in namespaces cannot go.
  env.api.applyObjects([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } }]);
  env.api.applyObjects([{ ...service('in-team'), metadata: { name: 'in-team', namespace: 'team' } }]);
  await ok(t, env, ['delete', 'namespace', 'team']);
  t.is(env.api.get('services', 'team', 'in-team'), undefined);
  const kept = await env.kubectl(['delete', 'namespace', 'default']);
  t.is(kept.code, 1);
  t.regex(kept.stderr, /namespaces "default" is forbidden: this namespace may not be deleted/);
});

test('kubectl create of an invalid service gets the 422 with the field named; unknown fields per --validate', async (t) => {
  const env = await setup(t);
  const file = path.join(env.dir, 'bad.yaml');
  writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec:\n  ports: [{port: 70000, targetPort: 80}]\n');
  const r = await env.kubectl(['create', '-f', file]);
  t.is(r.code, 1);
  t.regex(r.stderr, /The Service "bad" is invalid: spec\.ports\[0\]\.port: Invalid value: 70000: must be between 1 and 65535, inclusive/);
  const create = env.api.requests.find((q) => q.method === 'POST');
  t.is(create?.query['fieldManager'], 'kubectl-create');
  t.is(create?.status, 422);

  // Unknown fields: refused with kubectl's default --validate=strict, dropped with a warning with warn.
  writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: typo}\nspec:\n  ports: [{port: 80, targetport: 8080}]\n');
  const strict = await env.kubectl(['apply', '-f', file]);
  t.is(strict.code, 1);
  t.regex(strict.stderr, /Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec\.ports\[0\]\.targetport"/);
  const warn = await env.kubectl(['apply', '--validate=warn', '-f', file]);
  t.is(warn.code, 0);
  t.regex(warn.stderr, /^Warning: unknown field "spec\.ports\[0\]\.targetport"$/m);
  t.deepEqual(specOf(env.api.get('services', 'default', 'typo')!)['ports'], [{ port: 80, protocol: 'TCP', targetPort: 80 }]);
  writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: typed}\nspec:\n  ports: [{port: "80"}]\n');
  t.regex((await env.kubectl(['apply', '-f', file])).stderr, /json: cannot unmarshal string into Go struct field ServicePort\.spec\.ports\.port of type int32/);

  writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: good}\nspec:\n  ports: [{port: 80}]\n');
  t.regex(await ok(t, env, ['create', '-f', file]), /service\/good created/);
  const again = await env.kubectl(['create', '-f', file]);
  t.regex(again.stderr, /Error from server \(AlreadyExists\).*services "good" already exists/);
});

test('kubectl get -w lists, then watches from the list resourceVersion and prints changes', async (t) => {
  const env = await setup(t);
  env.api.applyObjects(loadManifests(path.join(FIXTURES, 'web.yaml')));
  const listedAt = String(env.api.revision);
  const child = spawn(KUBECTL, ['get', 'svc', '-w', '--output-watch-events'], {
    env: { ...process.env, HOME: env.dir, KUBECACHEDIR: path.join(env.dir, 'cache'), KUBECONFIG: env.kubeconfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const until = async (re: RegExp): Promise<void> => {
    for (let i = 0; i < 100 && !re.test(out); i++) await sleep(100);
    if (!re.test(out)) t.fail(`kubectl get -w printed no ${re}: ${out} ${err}`);
  };
  await until(/^ADDED\s+web\s/m);
  for (let i = 0; i < 50 && env.api.openWatches === 0; i++) await sleep(100);
  t.is(env.api.openWatches, 1);
  env.api.applyObjects([service('late')]);
  env.api.delete('services', 'default', 'web');
  await until(/^ADDED\s+late\s[\s\S]*^DELETED\s+web\s/m);
  child.kill('SIGTERM');

  const list = env.api.requests.find((r) => r.method === 'GET' && r.path === '/api/v1/namespaces/default/services' && !r.watch);
  const w = env.api.requests.find((r) => r.watch && r.path === '/api/v1/namespaces/default/services');
  t.truthy(list);
  t.is(w?.query['resourceVersion'], listedAt, 'the watch starts at the revision the list returned');
});

test('a watch from a compacted resourceVersion gets one ERROR event with the 410 Status (kubectl get --raw)', async (t) => {
  const env = await setup(t);
  env.api.applyObjects(loadManifests(path.join(FIXTURES, 'web.yaml')));
  const compactedAt = env.api.compact();
  const r = await env.kubectl(['get', '--raw', '/api/v1/services?watch=true&resourceVersion=1']);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.is(lines.length, 1, `one event, then the end of the stream: ${r.stdout}`);
  const event = JSON.parse(lines[0]!) as WatchEvent;
  t.is(event.type, 'ERROR');
  t.deepEqual(event.object, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `too old resource version: 1 (${compactedAt})`,
    reason: 'Expired',
    code: 410,
  });
  t.is(env.api.requests.at(-1)?.status, 200, 'the 410 travels inside a 200 watch response');

  // From the compaction revision on, the watch works.
  const ok2 = await env.kubectl(['get', '--raw', `/api/v1/services?watch=true&resourceVersion=${compactedAt}&timeoutSeconds=1`]);
  t.is(ok2.code, 0);
  t.is(ok2.stdout.trim(), '', 'no event: nothing changed since the compaction');
});

test('without the token: 401 with a Status for HTTPS requests and kubectl', async (t) => {
  const env = await setup(t);
  const none = await request(env.api, 'GET', '/api/v1/services', { token: null });
  t.is(none.status, 401);
  t.deepEqual(none.body, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
  const wrong = await request(env.api, 'GET', '/version', { token: 'not-the-token' });
  t.is(wrong.status, 401);

  const badConfig = path.join(env.dir, 'bad-kubeconfig');
  writeFileSync(badConfig, env.api.kubeconfig().replace(env.api.token, 'not-the-token'));
  const r = await env.kubectl(['get', 'svc'], { kubeconfig: badConfig });
  t.is(r.code, 1);
  t.regex(r.stderr, /You must be logged in to the server|Unauthorized/);
  t.is(env.api.get('services', 'default', 'web'), undefined);
  t.true(env.api.requests.every((q) => q.status === 401));
});

test('bookmarks are sent only to watches that allow them, at the set interval', async (t) => {
  const env = await setup(t, { bookmarkIntervalMs: 100 });
  env.api.applyObjects([service('a')]);
  const rv = String(env.api.revision);
  const withBm = await watch(t, env.api, `/api/v1/namespaces/default/services?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true`);
  const without = await watch(t, env.api, `/api/v1/namespaces/default/services?watch=1&resourceVersion=${rv}`);
  t.is(withBm.status, 200);
  await withBm.waitFor(() => withBm.events.filter((e) => e.type === 'BOOKMARK').length >= 3);
  const bookmarks = withBm.events.filter((e) => e.type === 'BOOKMARK');
  t.deepEqual(bookmarks[0]!.object, { kind: 'Service', apiVersion: 'v1', metadata: { resourceVersion: rv } });
  t.deepEqual(without.events, [], 'no bookmark without allowWatchBookmarks');

  // A bookmark after a change carries the new revision (of any resource).
  env.api.applyObjects(loadManifests(path.join(FIXTURES, 'nodes.yaml')));
  const now = String(env.api.revision);
  await withBm.waitFor((e) => e.type === 'BOOKMARK' && metaOf(e.object)['resourceVersion'] === now);
  t.deepEqual(without.events, []);
});

test('timeoutSeconds ends a watch cleanly after that time', async (t) => {
  const env = await setup(t);
  const start = Date.now();
  const w = await watch(t, env.api, '/api/v1/services?watch=true&timeoutSeconds=1');
  t.is(w.status, 200);
  t.is(await w.ended, 'end', 'the chunked body is terminated, not cut');
  const took = Date.now() - start;
  t.true(took >= 950 && took < 5000, `ended after ${took} ms`);
  t.deepEqual(w.events, [], 'an empty cluster has no services to add');
  t.is(env.api.openWatches, 0);
});

test('paging with limit and continue reads one snapshot, and an old continue token gets 410', async (t) => {
  const env = await setup(t);
  env.api.applyObjects(['s1', 's2', 's3', 's4', 's5', 's6', 's7'].map((n) => service(n)));
  const page1 = await request(env.api, 'GET', '/api/v1/namespaces/default/services?limit=3');
  t.is(page1.status, 200);
  t.is(page1.body['kind'], 'ServiceList');
  t.is(page1.body['apiVersion'], 'v1');
  const meta1 = page1.body['metadata'] as JsonObject;
  t.deepEqual((page1.body['items'] as JsonObject[]).map(nameOf), ['s1', 's2', 's3']);
  t.is(meta1['remainingItemCount'], 4);
  t.is((page1.body['items'] as JsonObject[])[0]!['kind'], undefined, 'list items carry no kind, as from the real server');
  const token = String(meta1['continue']);
  const snapshotRv = String(meta1['resourceVersion']);
  const decoded = JSON.parse(Buffer.from(token, 'base64url').toString()) as JsonObject;
  t.is(decoded['rv'], Number(snapshotRv), 'the continue token holds the revision');

  // Changes after the first page do not show in the following pages.
  env.api.patch('services', 'default', 's5', { metadata: { labels: { changed: 'yes' } } });
  env.api.applyObjects([service('s0')]);
  const page2 = await request(env.api, 'GET', `/api/v1/namespaces/default/services?limit=3&continue=${encodeURIComponent(token)}`);
  t.deepEqual((page2.body['items'] as JsonObject[]).map(nameOf), ['s4', 's5', 's6']);
  t.is(metaOf((page2.body['items'] as JsonObject[])[1]!)['labels'], undefined, 's5 as it was at the snapshot');
  t.is((page2.body['metadata'] as JsonObject)['resourceVersion'], snapshotRv);
  const page3 = await request(env.api, 'GET', `/api/v1/namespaces/default/services?limit=3&continue=${encodeURIComponent(String((page2.body['metadata'] as JsonObject)['continue']))}`);
  t.deepEqual((page3.body['items'] as JsonObject[]).map(nameOf), ['s7']);
  t.is((page3.body['metadata'] as JsonObject)['continue'], undefined);

  // Selectors and the field selector apply within pages; a list without limit is the current state.
  const byName = await request(env.api, 'GET', '/api/v1/services?fieldSelector=metadata.name%3Ds5,metadata.namespace%3Ddefault');
  t.deepEqual((byName.body['items'] as JsonObject[]).map((o) => metaOf(o)['labels']), [{ changed: 'yes' }]);
  const badField = await request(env.api, 'GET', '/api/v1/services?fieldSelector=spec.foo%3Dx');
  t.is(badField.status, 400);
  t.is(badField.body['message'], 'field label not supported: spec.foo');

  env.api.compact();
  const stale = await request(env.api, 'GET', `/api/v1/namespaces/default/services?limit=3&continue=${encodeURIComponent(token)}`);
  t.is(stale.status, 410);
  t.is(stale.body['reason'], 'Expired');
  t.regex(String(stale.body['message']), /^The provided continue parameter is too old to display a consistent list result/);
  const fresh = String((stale.body['metadata'] as JsonObject)['continue']);
  const rest = await request(env.api, 'GET', `/api/v1/namespaces/default/services?limit=10&continue=${encodeURIComponent(fresh)}`);
  t.deepEqual((rest.body['items'] as JsonObject[]).map(nameOf), ['s4', 's5', 's6', 's7'], 'the inconsistent token resumes at the current state');
  const exactOld = await request(env.api, 'GET', `/api/v1/services?resourceVersion=${snapshotRv}&resourceVersionMatch=Exact`);
  t.is(exactOld.status, 410);
  t.is(exactOld.body['message'], 'The resourceVersion for the provided list is too old.');
});

test('a watch from a resourceVersion replays what came after it; from 0 it starts with the current state', async (t) => {
  const env = await setup(t);
  env.api.applyObjects([service('a')]);
  const afterA = env.api.revision;
  env.api.applyObjects([service('b')]);
  env.api.patch('services', 'default', 'a', { metadata: { labels: { x: '1' } } });
  env.api.delete('services', 'default', 'b');

  const replay = await watch(t, env.api, `/api/v1/namespaces/default/services?watch=true&resourceVersion=${afterA}`);
  await replay.waitFor((e) => e.type === 'DELETED');
  t.deepEqual(replay.events.map((e) => `${e.type} ${nameOf(e.object)} ${String(metaOf(e.object)['resourceVersion'])}`), [
    `ADDED b ${afterA + 1}`,
    `MODIFIED a ${afterA + 2}`,
    `DELETED b ${afterA + 3}`,
  ]);

  const fromZero = await watch(t, env.api, '/api/v1/namespaces/default/services?watch=true&resourceVersion=0');
  const fromNone = await watch(t, env.api, '/api/v1/services?watch=true');
  await fromZero.waitFor((e) => nameOf(e.object) === 'a');
  await fromNone.waitFor((e) => nameOf(e.object) === 'a');
  t.deepEqual(fromZero.events.map((e) => `${e.type} ${nameOf(e.object)}`), ['ADDED a']);
  t.deepEqual(fromNone.events.map((e) => `${e.type} ${nameOf(e.object)}`), ['ADDED a']);

  env.api.applyObjects([service('c')]);
  for (const w of [replay, fromZero, fromNone]) await w.waitFor((e) => e.type === 'ADDED' && nameOf(e.object) === 'c');
  t.is(env.api.openWatches, 3);

  // Another namespace's service does not reach a namespaced watch.
  env.api.applyObjects([{ ...service('elsewhere'), metadata: { name: 'elsewhere', namespace: 'kube-system' } }]);
  await fromNone.waitFor((e) => nameOf(e.object) === 'elsewhere');
  t.false(fromZero.events.some((e) => nameOf(e.object) === 'elsewhere'));
});

test('selectors apply to a watch: starting to match is ADDED, stopping is DELETED', async (t) => {
  const env = await setup(t);
  env.api.applyObjects([service('x', { app: 'web' }), service('y', { app: 'db' })]);
  const w = await watch(t, env.api, `/api/v1/namespaces/default/services?watch=true&labelSelector=${encodeURIComponent('app=web')}`);
  await w.waitFor((e) => nameOf(e.object) === 'x');

  env.api.patch('services', 'default', 'y', { metadata: { labels: { app: 'web' } } });
  const added = await w.waitFor((e) => e.type === 'ADDED' && nameOf(e.object) === 'y');
  t.is(metaOf(added.object)['resourceVersion'], String(env.api.revision));

  env.api.patch('services', 'default', 'x', { metadata: { labels: { app: 'other' } } });
  const gone = await w.waitFor((e) => e.type === 'DELETED' && nameOf(e.object) === 'x');
  t.deepEqual(metaOf(gone.object)['labels'], { app: 'web' }, 'the DELETED event carries the last matching state');
  t.is(metaOf(gone.object)['resourceVersion'], String(env.api.revision), '...with the resourceVersion of the change');

  env.api.patch('services', 'default', 'y', { metadata: { annotations: { touched: 'yes' } } });
  await w.waitFor((e) => e.type === 'MODIFIED' && nameOf(e.object) === 'y');
  env.api.delete('services', 'default', 'x');
  env.api.delete('services', 'default', 'y');
  await w.waitFor((e) => e.type === 'DELETED' && nameOf(e.object) === 'y');
  t.deepEqual(w.events.map((e) => `${e.type} ${nameOf(e.object)}`), ['ADDED x', 'ADDED y', 'DELETED x', 'MODIFIED y', 'DELETED y'], 'x no longer matched: its deletion is not sent');

  // A watch on one object (field selector on its name).
  const one = await watch(t, env.api, '/api/v1/watch/namespaces/default/services/z');
  env.api.applyObjects([service('z'), service('zz')]);
  await one.waitFor((e) => nameOf(e.object) === 'z');
  t.deepEqual(one.events.map((e) => nameOf(e.object)), ['z']);
});

test('restart keeps objects and resourceVersions; watches are cut and old revisions get 410', async (t) => {
  const env = await setup(t);
  env.api.applyObjects(loadManifests(FIXTURES));
  const before = env.api.get('services', 'default', 'web')!;
  const rv = env.api.revision;
  const port = env.api.port;
  const w = await watch(t, env.api, `/api/v1/services?watch=true&resourceVersion=${rv}`);
  const w2 = await watch(t, env.api, `/api/v1/services?watch=true&resourceVersion=${rv}`);
  t.is(env.api.closeWatches(), 2);
  t.is(await w.ended, 'aborted');
  t.is(await w2.ended, 'aborted');

  const w3 = await watch(t, env.api, `/api/v1/services?watch=true&resourceVersion=${rv}`);
  await env.api.restart();
  t.is(await w3.ended, 'end', 'a restart ends open watches as a graceful shutdown does');
  const w4 = await watch(t, env.api, `/api/v1/services?watch=true&resourceVersion=${rv}`);
  await env.api.restart({ crash: true });
  t.is(await w4.ended, 'aborted', 'a crash cuts them');
  t.is(env.api.port, port);
  t.is(env.api.revision, rv);

  const got = await request(env.api, 'GET', '/api/v1/namespaces/default/services/web');
  t.is(got.status, 200);
  t.is(metaOf(got.body)['resourceVersion'], metaOf(before)['resourceVersion']);
  t.is(metaOf(got.body)['uid'], metaOf(before)['uid']);
  t.is(specOf(got.body)['clusterIP'], specOf(before)['clusterIP']);
  const list = await request(env.api, 'GET', '/api/v1/services');
  t.is((list.body['metadata'] as JsonObject)['resourceVersion'], String(rv));

  // The watch cache starts again at the current revision: older ones are expired.
  const old = await watch(t, env.api, `/api/v1/services?watch=true&resourceVersion=${rv - 1}`);
  const err = await old.waitFor((e) => e.type === 'ERROR');
  t.is((err.object as JsonObject)['code'], 410);
  t.is(await old.ended, 'end');
  const current = await watch(t, env.api, `/api/v1/services?watch=true&resourceVersion=${rv}`);
  env.api.applyObjects([service('after-restart')]);
  const added = await current.waitFor((e) => e.type === 'ADDED');
  t.is(metaOf(added.object)['resourceVersion'], String(rv + 1), 'the revision counter continues');

  const r = await env.kubectl(['get', 'svc', 'after-restart', '-o', 'name']);
  t.is(r.stdout.trim(), 'service/after-restart', 'the kubeconfig still works after the restart');
});

test('errors are Status objects: AlreadyExists, NotFound, Conflict on a stale resourceVersion', async (t) => {
  const env = await setup(t);
  const created = await request(env.api, 'POST', '/api/v1/namespaces/default/services', { body: service('web') });
  t.is(created.status, 201);
  t.is(created.body['kind'], 'Service', 'the created object comes back with its kind');
  const dup = await request(env.api, 'POST', '/api/v1/namespaces/default/services', { body: service('web') });
  t.is(dup.status, 409);
  t.deepEqual(dup.body, {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'services "web" already exists', reason: 'AlreadyExists',
    details: { name: 'web', kind: 'services' }, code: 409,
  });
  const missing = await request(env.api, 'GET', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/nope');
  t.is(missing.status, 404);
  t.deepEqual(missing.body, {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'endpointslices.discovery.k8s.io "nope" not found', reason: 'NotFound',
    details: { name: 'nope', group: 'discovery.k8s.io', kind: 'endpointslices' }, code: 404,
  });
  const noNs = await request(env.api, 'POST', '/api/v1/namespaces/nowhere/services', { body: { metadata: { name: 'web' }, spec: { ports: [{ port: 80 }] } } });
  t.is(noNs.status, 404);
  t.is(noNs.body['message'], 'namespaces "nowhere" not found');

  const staleRv = String(metaOf(created.body)['resourceVersion']);
  const update = { ...created.body, metadata: { ...metaOf(created.body), labels: { v: '2' } } };
  const put1 = await request(env.api, 'PUT', '/api/v1/namespaces/default/services/web', { body: update });
  t.is(put1.status, 200);
  t.not(metaOf(put1.body)['resourceVersion'], staleRv);
  const put2 = await request(env.api, 'PUT', '/api/v1/namespaces/default/services/web', { body: update });
  t.is(put2.status, 409);
  t.is(put2.body['reason'], 'Conflict');
  t.is(put2.body['message'], 'Operation cannot be fulfilled on services "web": the object has been modified; please apply your changes to the latest version and try again');

  const bad = await request(env.api, 'POST', '/api/v1/namespaces/default/services', {
    body: { metadata: { name: 'multi' }, spec: { type: 'Balanced', ports: [{ port: 80 }, { port: 80, protocol: 'SCTP' }] } },
  });
  t.is(bad.status, 422);
  t.is(bad.body['reason'], 'Invalid');
  const causes = ((bad.body['details'] as JsonObject)['causes'] as JsonObject[]).map((c) => `${String(c['field'])} ${String(c['reason'])}`);
  t.deepEqual(causes, ['spec.type FieldValueNotSupported', 'spec.ports[0].name FieldValueRequired', 'spec.ports[1].name FieldValueRequired']);
  t.regex(String(bad.body['message']), /^Service "multi" is invalid: \[spec\.type: Unsupported value: "Balanced": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort", /);

  const taken = await request(env.api, 'POST', '/api/v1/namespaces/default/services', {
    body: { metadata: { name: 'taken' }, spec: { clusterIP: String(specOf(created.body)['clusterIP']), ports: [{ port: 80 }] } },
  });
  t.is(taken.status, 422);
  t.regex(String(taken.body['message']), /spec\.clusterIPs: Invalid value: \[\]string\{"10\.96\.[0-9.]+"\}: failed to allocate IP 10\.96\.[0-9.]+: provided IP is already allocated/);
  const slice = await request(env.api, 'POST', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', {
    body: { metadata: { name: 'noaddr' }, endpoints: [{ addresses: ['10.0.0.1'] }] },
  });
  t.is(slice.status, 422);
  t.is(slice.body['message'], 'EndpointSlice.discovery.k8s.io "noaddr" is invalid: addressType: Required value');
});

test('updates keep allocated values; a type change drops what the new type does not use', async (t) => {
  const env = await setup(t);
  env.api.applyObjects(loadManifests(path.join(FIXTURES, 'nodeport.yaml')));
  const before = env.api.get('services', 'default', 'web-nodeport')!;
  const nodePorts = (specOf(before)['ports'] as JsonObject[]).map((p) => p['nodePort']);

  // A PUT of the manifest as written (no clusterIP, one nodePort unset) keeps what was allocated.
  const manifest = loadManifests(path.join(FIXTURES, 'nodeport.yaml'))[0]!;
  const put = await request(env.api, 'PUT', '/api/v1/namespaces/default/services/web-nodeport', { body: manifest });
  t.is(put.status, 200);
  t.is(specOf(put.body)['clusterIP'], specOf(before)['clusterIP']);
  t.deepEqual((specOf(put.body)['ports'] as JsonObject[]).map((p) => p['nodePort']), nodePorts);
  t.is(metaOf(put.body)['resourceVersion'], metaOf(before)['resourceVersion'], 'nothing changed, nothing written');

  const toClusterIP = await request(env.api, 'PATCH', '/api/v1/namespaces/default/services/web-nodeport', {
    body: { spec: { type: 'ClusterIP' } }, contentType: 'application/strategic-merge-patch+json',
  });
  t.is(toClusterIP.status, 200, JSON.stringify(toClusterIP.body));
  t.deepEqual((specOf(toClusterIP.body)['ports'] as JsonObject[]).map((p) => p['nodePort']), [undefined, undefined]);
  t.is(specOf(toClusterIP.body)['externalTrafficPolicy'], undefined);
  const toExternalName = await request(env.api, 'PATCH', '/api/v1/namespaces/default/services/web-nodeport', {
    body: { spec: { type: 'ExternalName', externalName: 'web.example.com' } }, contentType: 'application/merge-patch+json',
  });
  t.is(toExternalName.status, 200, JSON.stringify(toExternalName.body));
  t.is(specOf(toExternalName.body)['clusterIP'], undefined);
  t.is(specOf(toExternalName.body)['ipFamilies'], undefined);

  env.api.applyObjects([service('fixed')]);
  const moved = await request(env.api, 'PATCH', '/api/v1/namespaces/default/services/fixed', {
    body: { spec: { clusterIP: '10.96.200.1', clusterIPs: ['10.96.200.1'] } }, contentType: 'application/merge-patch+json',
  });
  t.is(moved.status, 422);
  t.regex(String(moved.body['message']), /^Service "fixed" is invalid: spec\.clusterIPs\[0\]: Invalid value: \[\]string\{"10\.96\.200\.1"\}: may not change once set$/);
  const stolen = await request(env.api, 'POST', '/api/v1/namespaces/default/services', {
    body: { metadata: { name: 'thief' }, spec: { type: 'NodePort', ports: [{ port: 80, nodePort: 29999 }] } },
  });
  t.is(stolen.status, 422);
  t.regex(String(stolen.body['message']), /spec\.ports\[0\]\.nodePort: Invalid value: 29999: provided port is not in the valid range\. The range of valid ports is 30000-32767/);
});

test('the status subresource sets a load balancer ingress; the main resource ignores status', async (t) => {
  const env = await setup(t);
  env.api.applyObjects(loadManifests(path.join(FIXTURES, 'loadbalancer.yaml')));
  const base = '/api/v1/namespaces/default/services/web-lb';
  const viaMain = await request(env.api, 'PATCH', base, { body: { status: { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } } }, contentType: 'application/merge-patch+json' });
  t.is(viaMain.status, 200);
  t.deepEqual(viaMain.body['status'], { loadBalancer: {} });
  const rv = env.api.revision;

  const viaStatus = await request(env.api, 'PATCH', `${base}/status`, {
    body: { status: { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } } },
    contentType: 'application/merge-patch+json',
  });
  t.is(viaStatus.status, 200);
  t.deepEqual(viaStatus.body['status'], { loadBalancer: { ingress: [{ ip: '203.0.113.7', ipMode: 'VIP' }] } }, 'ipMode defaults to VIP');
  t.is(metaOf(viaStatus.body)['resourceVersion'], String(rv + 1));
  const specViaStatus = await request(env.api, 'PATCH', `${base}/status`, { body: { spec: { type: 'ClusterIP' } }, contentType: 'application/merge-patch+json' });
  t.is(specOf(specViaStatus.body)['type'], 'LoadBalancer', 'the status subresource does not change the spec');
  t.is(env.api.revision, rv + 1, 'a write that changes nothing is no write');

  // kubectl reads it back; a dry run changes nothing.
  const out = JSON.parse(await ok(t, env, ['get', 'svc', 'web-lb', '-o', 'json'])) as JsonObject;
  t.deepEqual(((out['status'] as JsonObject)['loadBalancer'] as JsonObject)['ingress'], [{ ip: '203.0.113.7', ipMode: 'VIP' }]);
  const dry = await request(env.api, 'POST', '/api/v1/namespaces/default/services?dryRun=All', { body: service('dry') });
  t.is(dry.status, 201);
  t.is(env.api.get('services', 'default', 'dry'), undefined);
  t.is(env.api.revision, rv + 1);
});

test('discovery and OpenAPI documents are what kubectl needs', async (t) => {
  const env = await setup(t);
  const v1 = await request(env.api, 'GET', '/api/v1');
  const services = (v1.body['resources'] as JsonObject[]).find((r) => r['name'] === 'services')!;
  t.is(services['kind'], 'Service');
  t.is(services['namespaced'], true);
  t.deepEqual(services['shortNames'], ['svc']);
  t.true((services['verbs'] as string[]).includes('watch'));
  t.truthy((v1.body['resources'] as JsonObject[]).find((r) => r['name'] === 'services/status'));
  const out = await ok(t, env, ['api-resources', '--no-headers']);
  t.regex(out, /^endpointslices\s+discovery\.k8s\.io\/v1\s+true\s+EndpointSlice$/m);
  t.regex(out, /^nodes\s+no\s+v1\s+false\s+Node$/m);
  t.regex(out, /^services\s+svc\s+v1\s+true\s+Service$/m);
  const version = JSON.parse(await ok(t, env, ['version', '-o', 'json'])) as JsonObject;
  t.is((version['serverVersion'] as JsonObject)['gitVersion'], 'v1.32.4');
  const v2 = await request(env.api, 'GET', '/openapi/v2');
  t.is(v2.status, 404);
  // kubectl apply with its default --validate=strict passes (asks /openapi/v3 whether the server validates).
  await ok(t, env, ['apply', '-f', path.join(FIXTURES, 'nodes.yaml')]);
  t.true(env.api.requests.some((r) => r.path.startsWith('/openapi/v3/api/v1') && r.status === 200));
});
