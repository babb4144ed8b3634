/**
 * `sluice kube-proxy` on a simulated node (test/helpers/kube-node.ts):
 * Services and EndpointSlices applied with the real kubectl to a test API
 * server, programmed into the dataplane, and exercised with real TCP and
 * UDP traffic from pods on the node's bridge, from the node itself and from
 * a client outside it, after Kubernetes' own service tests
 * (test/e2e/network/service.go, conntrack.go).
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { native } from '../../src/dataplane/native.js';
import type { Agent } from '../../src/demo/agent-client.js';
import type { BatchResult } from '../../src/demo/ns-agent.js';
import { NODE_ADDRESS, CLIENT_ADDRESS } from '../../src/demo/pod-topology.js';
import { sluice } from '../helpers/cli.js';
import { endpointSliceYaml, kubeNode, until, type KubeNode, type SliceEndpoint } from '../helpers/kube-node.js';
import { parseManifests } from '../../src/demo/kube-apiserver.js';

const WEB_1 = '10.244.1.11';
const WEB_2 = '10.244.1.12';
const WEB_3 = '10.244.1.13';
const HTTP = 8080;
const UDP = 5353;

function slice(service: string, ports: Array<{ name: string; port: number; protocol?: string }>, endpoints: SliceEndpoint[], name?: string): string {
  return endpointSliceYaml(service, ports, endpoints, name === undefined ? {} : { name });
}

const SERVICES = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080}
  - {name: alt, port: 8081, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec:
  selector: {app: web}
  ports:
  - {name: dns-udp, port: 53, protocol: UDP, targetPort: 5353}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: edge, namespace: default}
spec:
  type: LoadBalancer
  externalIPs: [203.0.113.10]
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30090}
---
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: default}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 2}}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  selector: {app: nothing}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
---
apiVersion: v1
kind: Service
metadata: {name: ending, namespace: default}
spec:
  selector: {app: ending}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: self, namespace: default}
spec:
  selector: {app: self}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: default}
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - {name: http, port: 80}
---
apiVersion: v1
kind: Service
metadata:
  name: elsewhere
  namespace: default
  labels: {service.kubernetes.io/service-proxy-name: another-proxy}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
`;

const both = [{ ip: WEB_1 }, { ip: WEB_2 }];
const SLICES = [
  slice('web', [{ name: 'http', port: HTTP }, { name: 'alt', port: HTTP }], both),
  slice('dns', [{ name: 'dns-udp', port: UDP, protocol: 'UDP' }, { name: 'dns-tcp', port: HTTP }], both),
  slice('edge', [{ name: 'http', port: HTTP }], both),
  slice('sticky', [{ name: 'http', port: HTTP }], both),
  // Both endpoints terminating; one still serving: it is used, as no endpoint is ready.
  slice('ending', [{ name: 'http', port: HTTP }], [{ ip: WEB_1, ready: false, serving: false, terminating: true }, { ip: WEB_2, ready: false, serving: true, terminating: true }]),
  slice('self', [{ name: 'http', port: HTTP }], [{ ip: WEB_1 }]),
].join('---\n');

function ok(t: ExecutionContext, r: BatchResult, n: number, what: string): void {
  t.is(r.failed, 0, `${what}: ${r.errors.slice(0, 3).join('; ')}`);
  t.is(r.ok, n, what);
}

function clusterIP(k: KubeNode, name: string): string {
  return String((k.api.get('services', 'default', name)?.['spec'] as { clusterIP: string }).clusterIP);
}

const httpTo = (a: Agent, host: string, port: number, n: number): Promise<BatchResult> => a.http(`http://${host}:${port}/`, n, 4);

test('Services and EndpointSlices applied with kubectl are programmed and carry real traffic as kube-proxy would', async (t) => {
  const k = await kubeNode(t, 'kpa');
  const [web1, web2] = [await k.node.addPod('web-1', WEB_1), await k.node.addPod('web-2', WEB_2)];
  const [a1, a2, client, nodeProc] = await Promise.all([k.agentIn(web1.ns), k.agentIn(web2.ns), k.agentIn(k.node.client.ns), k.agentIn(k.node.ns, { cgroup: k.cgroup })]);
  await Promise.all([a1.serve('web-1', HTTP, UDP), a2.serve('web-2', HTTP, UDP)]);
  await k.apply(SERVICES);
  await k.apply(SLICES);
  // The load balancer's address, as its controller would write it.
  k.api.patch('services', 'default', 'edge', { status: { loadBalancer: { ingress: [{ ip: '203.0.113.20' }] } } }, { subresource: 'status' });
  await k.start();
  const two = [WEB_1, WEB_2];
  await k.programmed({
    'default/web:http': two, 'default/web:http/nodeport': two, 'default/web:alt': two, 'default/web:alt/nodeport': two,
    'default/dns:dns-udp': two, 'default/dns:dns-tcp': two,
    'default/edge:http': two, 'default/edge:http/nodeport': two,
    'default/sticky:http': two,
    'default/empty:http': [], 'default/empty:dns': [],
    'default/ending:http': [`${WEB_1}:draining`, WEB_2],
    'default/self:http': [WEB_1],
  });

  // Pod to ClusterIP, both backends, the client pod's address preserved (named targetPort, second port).
  const web = clusterIP(k, 'web');
  const before = await a2.stats();
  const r = await httpTo(a1, web, 80, 40);
  ok(t, r, 40, 'pod -> web:80');
  t.deepEqual(Object.keys(r.byBackend).sort(), ['web-1', 'web-2']);
  const after = await a2.stats();
  t.true((after.httpPeers[WEB_1] ?? 0) > (before.httpPeers[WEB_1] ?? 0), `web-2 saw the client pod's own address: ${JSON.stringify(after.httpPeers)}`);
  ok(t, await httpTo(a1, web, 8081, 10), 10, 'pod -> web:8081 (a second port)');

  // The same port number with TCP and UDP.
  const dns = clusterIP(k, 'dns');
  ok(t, await httpTo(a2, dns, 53, 10), 10, 'TCP 53');
  ok(t, await a2.udp(dns, 53, 10, 4), 10, 'UDP 53');

  // From outside the node: node port on the node's address, external IP, load balancer IP.
  ok(t, await httpTo(client, NODE_ADDRESS, 30080, 20), 20, 'client -> node port 30080');
  ok(t, await httpTo(client, '203.0.113.10', 80, 10), 10, 'client -> external IP');
  ok(t, await httpTo(client, '203.0.113.20', 80, 10), 10, 'client -> load balancer IP');
  ok(t, await httpTo(client, NODE_ADDRESS, 30090, 10), 10, 'client -> the load balancer\'s node port');
  const peers = (await a1.stats()).httpPeers;
  t.true((peers[CLIENT_ADDRESS] ?? 0) > 0, `the client's address reached the pods unchanged: ${JSON.stringify(peers)}`);

  // The node's own processes reach a ClusterIP (balanced at their sockets).
  ok(t, await httpTo(nodeProc, web, 80, 10), 10, 'node -> web:80');

  // No endpoints: refused at once (TCP RST, ICMP port unreachable), not left to time out.
  const empty = clusterIP(k, 'empty');
  t.is((await a1.probe(empty, 80, 'tcp', 3000)).outcome, 'ECONNREFUSED', 'TCP to a service without endpoints');
  t.is((await a1.probe(empty, 53, 'udp', 3000)).outcome, 'ECONNREFUSED', 'UDP to a service without endpoints');

  // Terminating endpoints serve when none is ready; the one not serving does not.
  const ending = await httpTo(a1, clusterIP(k, 'ending'), 80, 10);
  ok(t, ending, 10, 'terminating fallback');
  t.deepEqual(Object.keys(ending.byBackend), ['web-2']);

  // Hairpin: web-1 reaches itself through its service, seen from the node's address.
  const selfBefore = (await a1.stats()).httpPeers[NODE_ADDRESS] ?? 0;
  ok(t, await httpTo(a1, clusterIP(k, 'self'), 80, 5), 5, 'hairpin');
  t.is(((await a1.stats()).httpPeers[NODE_ADDRESS] ?? 0) - selfBefore, 5, 'hairpin traffic is masqueraded to the node\'s address');

  // Session affinity: 15 requests in a row on one backend; off spreads them; on again sticks; it times out.
  const sticky = clusterIP(k, 'sticky');
  const s1 = await a1.http(`http://${sticky}:80/`, 15, 1);
  ok(t, s1, 15, 'affinity');
  t.is(Object.keys(s1.byBackend).length, 1, `ClientIP affinity: ${JSON.stringify(s1.byBackend)}`);
  await k.kubectl('patch', 'service', 'sticky', '-p', '{"spec":{"sessionAffinity":"None"}}');
  await until('affinity off', async () => Object.keys((await a1.http(`http://${sticky}:80/`, 30, 1)).byBackend).length === 2);
  await k.kubectl('patch', 'service', 'sticky', '-p', '{"spec":{"sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":2}}}}');
  await until('affinity on', async () => Object.keys((await a1.http(`http://${sticky}:80/`, 15, 1)).byBackend).length === 1);
  const seen = new Set<string>();
  for (let round = 0; round < 12 && seen.size < 2; round++) {
    await new Promise((res) => setTimeout(res, 3000));
    for (const b of Object.keys((await a1.http(`http://${sticky}:80/`, 1, 1)).byBackend)) seen.add(b);
  }
  t.is(seen.size, 2, 'after the affinity timeout a client is placed afresh');

  // Headless and other proxies' services are not programmed (checked by programmed() above); the CLI shows the rest.
  const list = await sluice(['--server', k.agent.address, '-o', 'json', 'service', 'list']);
  t.is(list.code, 0, list.stderr);
  const services = JSON.parse(list.stdout) as Array<{ name: string; owner: string }>;
  t.true(services.every((s) => s.owner === 'kubernetes'));
  t.false(services.some((s) => s.name.startsWith('default/headless') || s.name.startsWith('default/elsewhere')));
  const stats = await sluice(['--server', k.agent.address, 'stats']);
  t.is(stats.code, 0, stats.stderr);
  const denied = await sluice(['--server', k.agent.address, 'service', 'delete', 'default/web:http']);
  t.is(denied.code, 1);
  t.regex(denied.stderr, /owned by "kubernetes"/);

  // Operations: healthz as kube-proxy answers it, metrics that promtool accepts.
  const h = await fetch(`http://${k.healthz}/healthz`);
  t.is(h.status, 200);
  t.true('lastUpdated' in ((await h.json()) as object));
  const m = await (await fetch(`http://${k.metrics}/metrics`)).text();
  t.regex(m, /^sluice_kube_programmed_services 13$/m);
  t.regex(m, /^sluice_service_packets_total\{service="default\/web:http"\} [1-9]\d*$/m, "the daemon's families follow the agent's");
  t.is(execFileSync('promtool', ['check', 'metrics'], { input: m, encoding: 'utf8' }).trim(), '');
  // The status page's snapshot, on the same address: the same services.
  const status = (await (await fetch(`http://${k.metrics}/api/status`)).json()) as { services: Array<{ name: string }> };
  t.true(status.services.some((s) => s.name === 'default/web:http'), 'the status page sees the services');
});

test('changes as they happen: endpoints replaced, a type changed, the agent and the API server restarted under traffic', async (t) => {
  const k = await kubeNode(t, 'kpb', { mode: 'tc' });
  const [web1, web2] = [await k.node.addPod('web-1', WEB_1), await k.node.addPod('web-2', WEB_2)];
  const [a1, a2, client] = await Promise.all([k.agentIn(web1.ns), k.agentIn(web2.ns), k.agentIn(k.node.client.ns)]);
  await Promise.all([a1.serve('web-1', HTTP, UDP), a2.serve('web-2', HTTP, UDP)]);
  await k.apply(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
`);
  const ports = [{ name: 'http', port: HTTP }, { name: 'dns', port: UDP, protocol: 'UDP' }];
  await k.apply(slice('web', ports, [{ ip: WEB_1 }, { ip: WEB_2 }]));
  // kube-proxy still on the health port: refused before anything is made or attached.
  const busy = createServer().listen(0, '127.0.0.1');
  await once(busy, 'listening');
  const taken = `127.0.0.1:${(busy.address() as { port: number }).port}`;
  const refused = await k.start(['--healthz-bind-address', taken]).then(() => 'started', (err: Error) => err.message);
  busy.close();
  t.regex(refused, /--healthz-bind-address: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
  t.false(existsSync(k.agent.pinDir), 'no pin was made');
  t.is(native().xdpQuery(native().ifIndex('ext0', k.node.nsPath), k.node.nsPath).drvProgId, 0, 'nothing was attached');
  t.is(native().tcQuery(native().ifIndex('ext0', k.node.nsPath), 'ingress', k.node.nsPath), 0, 'nothing was attached');
  await k.start();
  await k.programmed({ 'default/web:http': [WEB_1, WEB_2], 'default/web:dns': [WEB_1, WEB_2] });
  const web = clusterIP(k, 'web');
  // A service without endpoints refuses a client outside the node too (at tc here; XDP's answer is in test/e2e/xdp.test.ts).
  await k.apply(`apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  selector: {app: nothing}
  ports:
  - {name: http, port: 80, targetPort: 8080}
`);
  await k.programmed({ 'default/web:http': [WEB_1, WEB_2], 'default/web:dns': [WEB_1, WEB_2], 'default/empty:http': [] });
  t.is((await client.probe(clusterIP(k, 'empty'), 80, 'tcp', 3000)).outcome, 'ECONNREFUSED', 'from outside the node');
  await k.kubectl('delete', 'service', 'empty');

  // A UDP client with a fixed source port, and a long-lived TCP connection.
  const dnsFrom = async (): Promise<string | undefined> => Object.keys((await client.udp(web, 53, 1, 1, 40_000)).byBackend)[0];
  const first = await dnsFrom();
  t.truthy(first);
  const conn = await client.open(`http://${web}:80/`);

  // The UDP server's pod is replaced: the flow moves to the new pod at once (no stale entry).
  const gone = first === 'web-1' ? WEB_1 : WEB_2;
  const stays = gone === WEB_1 ? WEB_2 : WEB_1;
  await k.node.addPod('web-3', WEB_3).then(async (p) => (await k.agentIn(p.ns)).serve('web-3', HTTP, UDP));
  await k.apply(slice('web', ports, [{ ip: stays }, { ip: WEB_3 }]));
  await k.programmed({ 'default/web:http': [stays, WEB_3, `${gone}:draining`], 'default/web:dns': [stays, WEB_3] });
  const moved = await dnsFrom();
  t.true(moved !== undefined && moved !== first, `the UDP flow left the endpoint that went (${first} -> ${moved})`);
  // The TCP connection to an endpoint that left keeps working until it ends.
  t.is((await client.request(conn.conn)).backend, conn.backend, 'an established connection outlives its endpoint\'s removal');

  // The agent killed and restarted under traffic: connections survive, changes go on.
  const conn2 = await client.open(`http://${web}:80/`);
  await k.agent.stop('SIGKILL');
  t.is((await client.request(conn2.conn)).backend, conn2.backend, 'forwarding goes on without the agent');
  await k.start();
  t.is((await client.request(conn2.conn)).backend, conn2.backend, 'a restarted agent keeps established connections');
  ok(t, await httpTo(client, web, 80, 10), 10, 'new connections after the restart');

  // The API server down (a change made meanwhile, its history compacted), then restarted: the agent's
  // watch resumes from a resourceVersion too old (410), it lists again and finds the change.
  const lists = (): number => k.api.requests.filter((r) => r.path === '/api/v1/services' && !r.watch).length;
  const listsBefore = lists();
  await k.api.stop({ crash: true });
  k.api.applyObjects(parseManifests(slice('web', ports, [{ ip: WEB_1 }, { ip: WEB_2 }, { ip: WEB_3 }])));
  k.api.compact();
  await k.api.restart();
  await k.programmed({ 'default/web:http': [WEB_1, WEB_2, WEB_3], 'default/web:dns': [WEB_1, WEB_2, WEB_3] }, 60_000);
  // (the Services watch may still be waiting out its backoff when the slices' relist has landed)
  await until('the agent to list Services again after the restart', () => lists() > listsBefore, 40_000);
  t.pass('the agent listed again after the restart');

  // A service port refused because another service holds its VIP and port is tried again when that one goes.
  const held = await sluice(['--server', k.agent.address, 'service', 'apply', '-f', '-'], { input: 'name: mine/holder\naddresses: [10.96.200.1]\nports: [{port: 80, protocol: tcp}]\nbackends: []\n' });
  t.is(held.code, 0, held.stderr);
  await k.apply(`apiVersion: v1
kind: Service
metadata: {name: late, namespace: default}
spec:
  clusterIP: 10.96.200.1
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
`);
  await k.apply(slice('late', [{ name: 'http', port: HTTP }], [{ ip: WEB_1 }]));
  await new Promise((r) => setTimeout(r, 1000));
  const before = await sluice(['--server', k.agent.address, '-o', 'json', 'service', 'list']);
  t.false((JSON.parse(before.stdout) as Array<{ name: string }>).some((x) => x.name === 'default/late:http'), 'refused while mine/holder holds 10.96.200.1:80');
  t.is((await sluice(['--server', k.agent.address, 'service', 'delete', 'mine/holder'])).code, 0);
  await k.programmed({ 'default/web:http': [WEB_1, WEB_2, WEB_3], 'default/web:dns': [WEB_1, WEB_2, WEB_3], 'default/late:http': [WEB_1] }, 20_000);
  await k.kubectl('delete', 'service', 'late');

  // Type changes program and remove exactly what they should.
  await k.kubectl('patch', 'service', 'web', '-p', '{"spec":{"type":"NodePort"}}');
  const np = (k.api.get('services', 'default', 'web')?.['spec'] as { ports: Array<{ name: string; nodePort: number }> }).ports;
  await k.programmed({ 'default/web:http': [WEB_1, WEB_2, WEB_3], 'default/web:dns': [WEB_1, WEB_2, WEB_3], 'default/web:http/nodeport': [WEB_1, WEB_2, WEB_3], 'default/web:dns/nodeport': [WEB_1, WEB_2, WEB_3] });
  ok(t, await httpTo(client, NODE_ADDRESS, np.find((p) => p.name === 'http')!.nodePort, 5), 5, 'the new node port');
  await k.kubectl('patch', 'service', 'web', '--type', 'merge', '-p', '{"spec":{"type":"ClusterIP","ports":[{"name":"http","port":80,"targetPort":8080},{"name":"dns","port":53,"protocol":"UDP","targetPort":5353}]}}');
  await k.programmed({ 'default/web:http': [WEB_1, WEB_2, WEB_3], 'default/web:dns': [WEB_1, WEB_2, WEB_3] });
  await k.kubectl('patch', 'service', 'web', '--type', 'merge', '-p', '{"spec":{"type":"ExternalName","externalName":"example.com","clusterIP":"","clusterIPs":null,"ports":null}}');
  await k.programmed({});
  const h = await fetch(`http://${k.healthz}/healthz`);
  t.is(h.status, 200);
});
