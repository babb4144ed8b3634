/**
 * `sluice kube-proxy` on a dual-stack node (test/helpers/kube-node.ts): the
 * test API server allocates cluster IPs of both families by ipFamilyPolicy
 * (10.96.0.0/16 and fd96::/112), every pod has an IPv4 and an IPv6 address,
 * the Node an InternalIP of each family, and EndpointSlices of both address
 * types give each VIP the endpoints of its own family. Real TCP and UDP
 * traffic from a pod, from the node's own processes (balanced at their
 * sockets) and from a client outside the node, after Kubernetes' own
 * dual-stack tests (test/e2e/network/dual_stack.go).
 *
 * The IPv4 and IPv6 endpoints differ on purpose (web-1 is only IPv4, web-3
 * only IPv6), so which pods answer shows which family's endpoints a VIP
 * was balanced over; the servers' peer counts show the flow's family.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { httpUrl, type Agent } from '../../src/demo/agent-client.js';
import type { BatchResult } from '../../src/demo/ns-agent.js';
import { CLIENT_ADDRESS, CLIENT_ADDRESS6, NODE_ADDRESS, NODE_ADDRESS6 } from '../../src/demo/pod-topology.js';
import { sluice } from '../helpers/cli.js';
import { endpointSliceYaml, kubeNode, type KubeNode } from '../helpers/kube-node.js';
import { openPinned } from '../helpers/pinned.js';

const WEB_1 = '10.244.1.11';
const WEB_2 = '10.244.1.12';
const WEB_2_6 = 'fd44::12';
const WEB_3_6 = 'fd44::13';
const APP = '10.244.1.20';
const APP_6 = 'fd44::20';
const HTTP = 8080;
const UDP = 5353;

const SERVICES = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  ipFamilyPolicy: PreferDualStack
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353, nodePort: 30053}
---
apiVersion: v1
kind: Service
metadata: {name: solo, namespace: default}
spec:
  ipFamilies: [IPv6]
  ipFamilyPolicy: SingleStack
  selector: {app: solo}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  ipFamilyPolicy: PreferDualStack
  selector: {app: nothing}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
`;

function slice(service: string, name: string, addressType: 'IPv4' | 'IPv6', ports: Array<{ name: string; port: number; protocol?: string }>, ips: string[]): string {
  return endpointSliceYaml(service, ports, ips, { name, addressType });
}

const WEB_PORTS = [{ name: 'http', port: HTTP }, { name: 'dns', port: UDP, protocol: 'UDP' }];
const SLICES = [
  slice('web', 'web-v4', 'IPv4', WEB_PORTS, [WEB_1, WEB_2]),
  slice('web', 'web-v6', 'IPv6', WEB_PORTS, [WEB_2_6, WEB_3_6]),
  slice('solo', 'solo-v6', 'IPv6', [{ name: 'http', port: HTTP }], [WEB_3_6]),
  // The IPv6-only service has no IPv4 cluster IP: this slice is reported and left out.
  slice('solo', 'solo-v4', 'IPv4', [{ name: 'http', port: HTTP }], [WEB_1]),
].join('---\n');

function ok(t: ExecutionContext, r: BatchResult, n: number, what: string): void {
  t.is(r.failed, 0, `${what}: ${r.errors.slice(0, 3).join('; ')}`);
  t.is(r.ok, n, what);
}

function spec(k: KubeNode, name: string): { clusterIP: string; clusterIPs: string[]; ipFamilies: string[]; ipFamilyPolicy: string } {
  return k.api.get('services', 'default', name)?.['spec'] as { clusterIP: string; clusterIPs: string[]; ipFamilies: string[]; ipFamilyPolicy: string };
}

/** What each server's peer counts grew by, merged: client address -> requests. */
async function peersDuring(servers: Agent[], kind: 'httpPeers' | 'udpPeers', f: () => Promise<void>): Promise<Record<string, number>> {
  const before = await Promise.all(servers.map((s) => s.stats()));
  await f();
  const after = await Promise.all(servers.map((s) => s.stats()));
  const out: Record<string, number> = {};
  after.forEach((a, i) => {
    for (const [peer, n] of Object.entries(a[kind])) {
      const d = n - (before[i]![kind][peer] ?? 0);
      if (d > 0) out[peer] = (out[peer] ?? 0) + d;
    }
  });
  return out;
}

const sorted = (r: BatchResult): string[] => Object.keys(r.byBackend).sort();

test('dual-stack Services: each family\'s VIPs reach that family\'s endpoints, from pods, the node and outside', async (t) => {
  const k = await kubeNode(t, 'kds');
  const [web1, web2, web3, app] = [
    await k.node.addPod('web-1', WEB_1),
    await k.node.addPod('web-2', WEB_2),
    await k.node.addPod('web-3', '10.244.1.13'),
    await k.node.addPod('app', APP),
  ];
  t.deepEqual([web2.address6, web3.address6, app.address6], [WEB_2_6, WEB_3_6, APP_6], 'pods have IPv6 addresses too');
  const [a1, a2, a3, client, appAgent, nodeProc] = await Promise.all([
    k.agentIn(web1.ns), k.agentIn(web2.ns), k.agentIn(web3.ns), k.agentIn(k.node.client.ns), k.agentIn(app.ns), k.agentIn(k.node.ns, { cgroup: k.cgroup }),
  ]);
  await Promise.all([a1.serve('web-1', HTTP, UDP), a2.serve('web-2', HTTP, UDP), a3.serve('web-3', HTTP, UDP)]);
  const servers = [a1, a2, a3];
  await k.apply(SERVICES);
  await k.apply(SLICES);

  // The API server's allocation, by ipFamilyPolicy.
  const web = spec(k, 'web');
  t.is(web.ipFamilyPolicy, 'PreferDualStack');
  t.deepEqual(web.ipFamilies, ['IPv4', 'IPv6']);
  t.is(web.clusterIPs.length, 2, JSON.stringify(web.clusterIPs));
  const [vip4, vip6] = web.clusterIPs as [string, string];
  t.regex(vip4, /^10\.96\.\d+\.\d+$/);
  t.regex(vip6, /^fd96::[0-9a-f]{1,4}$/);
  const solo = spec(k, 'solo');
  t.deepEqual(solo.ipFamilies, ['IPv6']);
  t.is(solo.clusterIPs.length, 1);
  const soloVip = solo.clusterIPs[0]!;
  t.regex(soloVip, /^fd96::[0-9a-f]{1,4}$/);

  await k.start();
  const webBackends = [WEB_1, WEB_2, WEB_2_6, WEB_3_6];
  await k.programmed({
    'default/web:http': webBackends, 'default/web:http/nodeport': webBackends,
    'default/web:dns': webBackends, 'default/web:dns/nodeport': webBackends,
    'default/solo:http': [WEB_3_6],
    'default/empty:http': [], 'default/empty:dns': [],
  });

  // Pod to the IPv6 cluster IP: only the IPv6 endpoints answer, and see the pod's IPv6 address.
  let r!: BatchResult;
  let peers = await peersDuring(servers, 'httpPeers', async () => {
    r = await appAgent.http(httpUrl(vip6, 80), 40, 4);
  });
  ok(t, r, 40, 'pod -> [IPv6 cluster IP]:80');
  t.deepEqual(sorted(r), ['web-2', 'web-3'], 'the IPv6 VIP is balanced over the IPv6 endpoints only');
  t.deepEqual(peers, { [APP_6]: 40 }, 'the servers saw the pod\'s own IPv6 address');
  // And to the IPv4 one: only the IPv4 endpoints.
  peers = await peersDuring(servers, 'httpPeers', async () => {
    r = await appAgent.http(httpUrl(vip4, 80), 40, 4);
  });
  ok(t, r, 40, 'pod -> IPv4 cluster IP:80');
  t.deepEqual(sorted(r), ['web-1', 'web-2'], 'the IPv4 VIP is balanced over the IPv4 endpoints only');
  t.deepEqual(peers, { [APP]: 40 });
  // UDP over IPv6: answered from the VIP the datagram was sent to.
  peers = await peersDuring(servers, 'udpPeers', async () => {
    r = await appAgent.udp(vip6, 53, 20, 4);
  });
  ok(t, r, 20, 'pod -> [IPv6 cluster IP]:53/udp');
  t.deepEqual(sorted(r), ['web-2', 'web-3']);
  t.deepEqual(r.replyFrom, { [`[${vip6}]:53`]: 20 }, 'the answers come from the VIP');
  t.deepEqual(peers, { [APP_6]: 20 });

  // From outside the node: the node port on the node's IPv6 address (and on its IPv4 one), the IPv6 cluster IP.
  peers = await peersDuring(servers, 'httpPeers', async () => {
    r = await client.http(httpUrl(NODE_ADDRESS6, 30080), 20, 4);
  });
  ok(t, r, 20, 'client -> [node IPv6]:30080');
  t.deepEqual(sorted(r), ['web-2', 'web-3']);
  t.deepEqual(peers, { [CLIENT_ADDRESS6]: 20 }, 'the client\'s IPv6 address reached the pods unchanged');
  r = await client.udp(NODE_ADDRESS6, 30053, 10, 4);
  ok(t, r, 10, 'client -> [node IPv6]:30053/udp');
  t.deepEqual(r.replyFrom, { [`[${NODE_ADDRESS6}]:30053`]: 10 });
  peers = await peersDuring(servers, 'httpPeers', async () => {
    r = await client.http(httpUrl(NODE_ADDRESS, 30080), 20, 4);
  });
  ok(t, r, 20, 'client -> node IPv4:30080');
  t.deepEqual(sorted(r), ['web-1', 'web-2']);
  t.deepEqual(peers, { [CLIENT_ADDRESS]: 20 });
  r = await client.http(httpUrl(vip6, 80), 10, 4);
  ok(t, r, 10, 'client -> [IPv6 cluster IP]:80');
  t.deepEqual(sorted(r), ['web-2', 'web-3']);

  // The node's own processes, balanced at their sockets (connect6, sendmsg6/recvmsg6).
  const pinned = await openPinned(k.agent.pinDir);
  try {
    const translated = pinned.globalStats().sock_translated;
    r = await nodeProc.http(httpUrl(vip6, 80), 10, 4);
    ok(t, r, 10, 'node -> [IPv6 cluster IP]:80');
    t.deepEqual(sorted(r), ['web-2', 'web-3']);
    r = await nodeProc.udp(vip6, 53, 10, 4);
    ok(t, r, 10, 'node -> [IPv6 cluster IP]:53/udp');
    t.deepEqual(r.replyFrom, { [`[${vip6}]:53`]: 10 }, 'recvmsg6 gives the VIP back as the peer');
    r = await nodeProc.http(httpUrl(vip4, 80), 10, 4);
    ok(t, r, 10, 'node -> IPv4 cluster IP:80');
    t.deepEqual(sorted(r), ['web-1', 'web-2']);
    const grew = pinned.globalStats().sock_translated - translated;
    t.true(grew >= 30n, `the node's connects and datagrams were translated at their sockets: ${grew}`);
  } finally {
    pinned.close();
  }

  // The IPv6-only service: its one endpoint, from another pod and from itself (hairpin, from the node's IPv6 address).
  ok(t, await appAgent.http(httpUrl(soloVip, 80), 5, 1), 5, 'pod -> [IPv6-only service]:80');
  peers = await peersDuring([a3], 'httpPeers', async () => {
    r = await a3.http(httpUrl(soloVip, 80), 5, 1);
  });
  ok(t, r, 5, 'hairpin over IPv6');
  t.deepEqual(peers, { [NODE_ADDRESS6]: 5 }, 'IPv6 hairpin traffic is masqueraded to the node\'s IPv6 address');
  t.regex(k.agent.log(), /EndpointSlice solo-v4: its IPv4 endpoints are left out: the service has no IPv4 cluster IP/);

  // No endpoints: refused at once over IPv6 too (TCP RST, ICMPv6 port unreachable), from a pod (tc) and from outside (XDP).
  const empty6 = spec(k, 'empty').clusterIPs[1]!;
  t.regex(empty6, /^fd96::/);
  for (const [who, agent] of [['pod', appAgent], ['client', client]] as const) {
    t.is((await agent.probe(empty6, 80, 'tcp', 3000)).outcome, 'ECONNREFUSED', `${who}: TCP to an IPv6 VIP without endpoints`);
    t.is((await agent.probe(empty6, 53, 'udp', 3000)).outcome, 'ECONNREFUSED', `${who}: UDP to an IPv6 VIP without endpoints`);
  }

  // What the CLI shows: both VIPs on one service, the IPv6-only service with its one; IPv6 flows to IPv6 endpoints.
  const list = await sluice(['--server', k.agent.address, '-o', 'json', 'service', 'list']);
  t.is(list.code, 0, list.stderr);
  const services = new Map((JSON.parse(list.stdout) as Array<{ name: string; addresses: string[] }>).map((s) => [s.name, s.addresses]));
  t.deepEqual(services.get('default/web:http'), [vip4, vip6]);
  t.deepEqual(services.get('default/web:http/nodeport'), [NODE_ADDRESS, NODE_ADDRESS6]);
  t.deepEqual(services.get('default/solo:http'), [soloVip]);
  const text = await sluice(['--server', k.agent.address, 'service', 'list']);
  t.regex(text.stdout, new RegExp(`default/web:http\\s.*${vip4.replace(/\./g, '\\.')},${vip6}`));
  // A connection held open, so that the table has a live IPv6 flow of the pod's.
  const held = await appAgent.open(httpUrl(vip6, 80));
  const ct = await sluice(['--server', k.agent.address, '-o', 'json', 'conntrack', 'list', '--family', '6', '--service', 'default/web:http']);
  t.is(ct.code, 0, ct.stderr);
  const flows = JSON.parse(ct.stdout) as Array<{ clientAddress: string; address: string; backendAddress: string }>;
  const own = held.backend === 'web-2' ? WEB_2_6 : WEB_3_6;
  t.true(flows.some((f) => f.clientAddress === APP_6 && f.address === vip6 && f.backendAddress === own), `the held connection is tracked to ${own}: ${ct.stdout.slice(0, 500)}`);
  t.deepEqual(flows.filter((f) => f.backendAddress !== WEB_2_6 && f.backendAddress !== WEB_3_6), [], 'IPv6 flows go to IPv6 endpoints only');
});

test('dual stack as it changes: a family added and removed, IPv6 endpoints replaced, the agent restarted (tc)', async (t) => {
  const k = await kubeNode(t, 'kdt', { mode: 'tc' });
  const [web1, web2, web3] = [await k.node.addPod('web-1', WEB_1), await k.node.addPod('web-2', WEB_2), await k.node.addPod('web-3', '10.244.1.13')];
  const [a1, a2, a3, client] = await Promise.all([k.agentIn(web1.ns), k.agentIn(web2.ns), k.agentIn(web3.ns), k.agentIn(k.node.client.ns)]);
  await Promise.all([a1.serve('web-1', HTTP, UDP), a2.serve('web-2', HTTP, UDP), a3.serve('web-3', HTTP, UDP)]);
  // Single-stack IPv4 (the cluster's default), with slices of both families.
  await k.apply(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
`);
  await k.apply([slice('web', 'web-v4', 'IPv4', WEB_PORTS, [WEB_1, WEB_2]), slice('web', 'web-v6', 'IPv6', WEB_PORTS, [WEB_2_6, WEB_3_6])].join('---\n'));
  t.deepEqual(spec(k, 'web').ipFamilies, ['IPv4']);
  await k.start();
  await k.programmed({ 'default/web:http': [WEB_1, WEB_2], 'default/web:dns': [WEB_1, WEB_2] });
  t.regex(k.agent.log(), /EndpointSlice web-v6: its IPv6 endpoints are left out: the service has no IPv6 cluster IP/);

  // Upgraded to dual stack: the API server adds an IPv6 cluster IP, the agent its VIP and the IPv6 endpoints.
  await k.kubectl('patch', 'service', 'web', '-p', '{"spec":{"ipFamilyPolicy":"PreferDualStack"}}');
  const [vip4, vip6] = spec(k, 'web').clusterIPs as [string, string];
  t.regex(vip6 ?? '', /^fd96::[0-9a-f]{1,4}$/, `an IPv6 cluster IP was added: ${JSON.stringify(spec(k, 'web').clusterIPs)}`);
  const all = [WEB_1, WEB_2, WEB_2_6, WEB_3_6];
  await k.programmed({ 'default/web:http': all, 'default/web:dns': all });
  let r = await client.http(httpUrl(vip6, 80), 20, 4);
  ok(t, r, 20, 'client -> [IPv6 cluster IP]:80 at tc');
  t.deepEqual(sorted(r), ['web-2', 'web-3']);
  ok(t, await client.http(httpUrl(vip4, 80), 10, 4), 10, 'client -> IPv4 cluster IP:80 at tc');

  // A UDP client with a fixed source port, and a long-lived TCP connection, both over IPv6.
  const dnsFrom = async (): Promise<string | undefined> => Object.keys((await client.udp(vip6, 53, 1, 1, 41_000)).byBackend)[0];
  const first = await dnsFrom();
  t.true(first === 'web-2' || first === 'web-3', `answered by an IPv6 endpoint: ${first}`);
  const conn = await client.open(httpUrl(vip6, 80));
  // The UDP flow's IPv6 endpoint leaves (its pod keeps its IPv4 one): the flow moves at once; the TCP connection goes on.
  const gone6 = first === 'web-2' ? WEB_2_6 : WEB_3_6;
  const stays6 = gone6 === WEB_2_6 ? WEB_3_6 : WEB_2_6;
  const web4 = await k.node.addPod('web-4', '10.244.1.14');
  await (await k.agentIn(web4.ns)).serve('web-4', HTTP, UDP);
  await k.apply(slice('web', 'web-v6', 'IPv6', WEB_PORTS, [stays6, web4.address6]));
  await k.programmed({ 'default/web:http': [WEB_1, WEB_2, stays6, web4.address6, `${gone6}:draining`], 'default/web:dns': [WEB_1, WEB_2, stays6, web4.address6] });
  const moved = await dnsFrom();
  t.true(moved !== undefined && moved !== first, `the IPv6 UDP flow left the endpoint that went (${first} -> ${moved})`);
  t.is((await client.request(conn.conn)).backend, conn.backend, 'an established IPv6 connection outlives its endpoint\'s removal');

  // The agent killed and restarted: the IPv6 connection survives (conntrack6 adopted), new ones work.
  const conn2 = await client.open(httpUrl(vip6, 80));
  await k.agent.stop('SIGKILL');
  t.is((await client.request(conn2.conn)).backend, conn2.backend, 'IPv6 forwarding goes on without the agent');
  await k.start();
  t.is((await client.request(conn2.conn)).backend, conn2.backend, 'a restarted agent keeps established IPv6 connections');
  ok(t, await client.http(httpUrl(vip6, 80), 10, 4), 10, 'new IPv6 connections after the restart');

  // Back to single stack: the API server releases the IPv6 cluster IP, the agent removes its VIP and endpoints.
  await k.kubectl('patch', 'service', 'web', '-p', '{"spec":{"ipFamilyPolicy":"SingleStack"}}');
  t.deepEqual(spec(k, 'web').clusterIPs, [vip4]);
  await k.programmed({ 'default/web:http': [WEB_1, WEB_2], 'default/web:dns': [WEB_1, WEB_2] });
  const list = await sluice(['--server', k.agent.address, '-o', 'json', 'service', 'list']);
  t.deepEqual((JSON.parse(list.stdout) as Array<{ name: string; addresses: string[] }>).find((s) => s.name === 'default/web:http')?.addresses, [vip4]);
  ok(t, await client.http(httpUrl(vip4, 80), 10, 4), 10, 'IPv4 goes on');
});
