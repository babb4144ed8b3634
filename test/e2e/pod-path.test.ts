/**
 * Pod traffic through a node, kube-proxy mode: a node namespace with a
 * bridge and pods on veths (src/demo/pod-topology.ts), a daemon that
 * follows the pods' links (--follow-interfaces veth*@node) and balances the
 * node's own processes at their sockets (--socket-lb, in a cgroup of this
 * test's own), and real TCP and UDP servers and clients in the pods, the
 * node and a namespace outside it.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Agent } from '../../src/demo/agent-client.js';
import type { BatchResult, ServerStats } from '../../src/demo/ns-agent.js';
import { CLIENT_ADDRESS, NODE_ADDRESS, POD_GATEWAY, createPodNode, type PodNode } from '../../src/demo/pod-topology.js';
import { createCgroup, removeCgroup } from '../../src/demo/cgroup.js';
import { ipIn, listNamespaces } from '../../src/demo/topology.js';
import { native } from '../../src/dataplane/native.js';
import { connect } from '../../src/api/client.js';
import type { ServiceInput } from '../../src/api/messages.js';
import { resolveDaemonOptions, startDaemon } from '../../src/daemon/daemon.js';
import { DaemonProcess } from '../helpers/daemon.js';
import { openPinned } from '../helpers/pinned.js';

const VIP = '10.96.0.10';
const SELF_VIP = '10.96.0.11';
const EXT_VIP = '10.96.0.12';
const HTTP_PORT = 8080;
const UDP_PORT = 5353;

function service(name: string, address: string, backends: string[]): ServiceInput {
  return {
    name,
    addresses: [address],
    ports: [
      { name: 'http', port: 80, protocol: 'TCP', targetPort: HTTP_PORT },
      { name: 'dns', port: 53, protocol: 'UDP', targetPort: UDP_PORT },
    ],
    backends: backends.map((a) => ({ address: a })),
  };
}

/** What a server's peer counts grew by between two stats. */
function grew(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/** Every request of a batch answered. */
function allOk(t: ExecutionContext, r: BatchResult, n: number, what: string): void {
  t.is(r.failed, 0, `${what}: ${r.errors.join('; ')}`);
  t.is(r.ok, n, what);
}

/** The node, a tagged pin/state directory name, and teardown of everything in reverse order. */
async function podNode(t: ExecutionContext, prefix: string): Promise<PodNode> {
  const tag = `${prefix}${process.pid.toString(36)}`.slice(0, 8);
  const node = await createPodNode({ tag });
  t.teardown(async () => {
    await node.destroy();
    const left = await listNamespaces(`sl-${tag}-`);
    if (left.length) throw new Error(`namespaces left behind: ${left.join(', ')}`);
  });
  return node;
}

/** An agent, stopped with the test (before the namespaces go: teardowns run last-registered first). */
async function agent(t: ExecutionContext, ns: string, opts: { cgroup?: string } = {}): Promise<Agent> {
  const a = new Agent(ns, opts);
  t.teardown(() => a.stop());
  await a.ready;
  return a;
}

/** Whose program a tc hook of a link in `netns` runs: 'none', this daemon's (by its pinned conntrack map) or 'other'. */
function tcHook(netns: string, ifname: string, direction: 'ingress' | 'egress', conntrackMapId: number): 'none' | 'sluice' | 'other' {
  const addon = native();
  const id = addon.tcQuery(addon.ifIndex(ifname, netns), direction, netns);
  if (id === 0) return 'none';
  return addon.progInfo(id).mapIds.includes(conntrackMapId) ? 'sluice' : 'other';
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const http = (a: Agent, vip: string, n: number): Promise<BatchResult> => a.http(`http://${vip}:80/`, n, 4);
const udp = (a: Agent, vip: string, n: number): Promise<BatchResult> => a.udp(vip, 53, n, 4);

test('pods reach a ClusterIP on their bridge, themselves (hairpin), a routed backend; the node\'s processes reach it at their sockets; links are followed as pods come and go', async (t) => {
  const node = await podNode(t, 'pp');
  const cgroup = await createCgroup(`sluice-${node.tag}`);
  t.teardown(() => removeCgroup(cgroup));
  const podA = await node.addPod('pod-a', '10.244.1.11');
  const podB = await node.addPod('pod-b', '10.244.1.12');
  const podC = await node.addPod('pod-c', '10.244.1.13');
  // Links in the node that the pattern does not match: they must stay untouched.
  await ipIn(node.ns, 'link', 'add', 'other0', 'type', 'veth', 'peer', 'name', 'other1');
  await ipIn(node.ns, 'link', 'set', 'other0', 'up');
  await ipIn(node.ns, 'link', 'set', 'other1', 'up');

  const [a, b, c, outside, nodeProc, nodeUnbalanced] = await Promise.all([
    agent(t, podA.ns), agent(t, podB.ns), agent(t, podC.ns), agent(t, node.client.ns),
    agent(t, node.ns, { cgroup }), agent(t, node.ns),
  ]);
  await Promise.all([a.serve('pod-a', HTTP_PORT, UDP_PORT), b.serve('pod-b', HTTP_PORT, UDP_PORT), outside.serve('external', HTTP_PORT, UDP_PORT)]);

  const daemon = await DaemonProcess.create(node.tag, [
    '--follow-interfaces', `veth*@${node.nsPath}`,
    '--hairpin-snat-address', NODE_ADDRESS,
    '--socket-lb', `${cgroup}@${node.nsPath}`,
    '--log-level', 'info',
  ]);
  t.teardown(() => daemon.destroy());
  await daemon.start();
  const api = daemon.client();
  t.teardown(() => api.close());
  await api.applyService(service('default/web', VIP, [podA.address, podB.address]));
  await api.applyService(service('default/self', SELF_VIP, [podA.address]));
  await api.applyService(service('default/ext', EXT_VIP, [CLIENT_ADDRESS]));

  const ct = native().pinnedMapInfo(path.join(daemon.pinDir, 'conntrack')).id;
  const hooksOf = (ifname: string): string => `${tcHook(node.nsPath, ifname, 'ingress', ct)}/${tcHook(node.nsPath, ifname, 'egress', ct)}`;
  for (const p of [podA, podB, podC]) t.is(hooksOf(p.hostIfname), 'sluice/sluice', `${p.hostIfname} (${p.name}): ingress and egress attached at start`);
  for (const ifname of ['cni0', 'ext0', 'other0', 'other1']) t.is(hooksOf(ifname), 'none/none', `${ifname} does not match veth*: untouched`);
  const stats = (): Promise<ServerStats[]> => Promise.all([a.stats(), b.stats(), outside.stats()]);

  // Pod -> ClusterIP -> pods on the same bridge: both backends, each seeing the client pod's own address.
  let before = await stats();
  const web = await http(c, VIP, 40);
  allOk(t, web, 40, 'pod-c -> web over TCP');
  t.true((web.byBackend['pod-a'] ?? 0) > 0 && (web.byBackend['pod-b'] ?? 0) > 0, `spread over both pods: ${JSON.stringify(web.byBackend)}`);
  const dns = await udp(c, VIP, 40);
  allOk(t, dns, 40, 'pod-c -> web over UDP');
  t.deepEqual(Object.keys(dns.replyFrom), [`${VIP}:53`], 'every UDP answer comes from the VIP');
  let after = await stats();
  for (const i of [0, 1]) {
    t.deepEqual(Object.keys(grew(before[i]!.httpPeers, after[i]!.httpPeers)), [podC.address], `pod-${'ab'[i]} sees pod-c's address over TCP`);
    t.deepEqual(Object.keys(grew(before[i]!.udpPeers, after[i]!.udpPeers)), [podC.address], `pod-${'ab'[i]} sees pod-c's address over UDP`);
  }

  // Hairpin: pod-a through its own service reaches itself, from the node's address.
  before = await stats();
  allOk(t, await http(a, SELF_VIP, 20), 20, 'pod-a -> its own service over TCP (hairpin)');
  const self = await udp(a, SELF_VIP, 20);
  allOk(t, self, 20, 'pod-a -> its own service over UDP (hairpin)');
  t.deepEqual(Object.keys(self.replyFrom), [`${SELF_VIP}:53`], 'hairpin UDP answers come from the VIP');
  after = await stats();
  t.deepEqual(grew(before[0]!.httpPeers, after[0]!.httpPeers), { [NODE_ADDRESS]: 20 }, 'pod-a sees its own connections from the hairpin address');
  t.deepEqual(grew(before[0]!.udpPeers, after[0]!.udpPeers), { [NODE_ADDRESS]: 20 }, 'and its own datagrams');

  // A backend reached through routing (outside the node): its replies are restored at the pod's link's egress.
  before = await stats();
  const ext = await http(c, EXT_VIP, 20);
  allOk(t, ext, 20, 'pod-c -> a backend outside the node, over TCP');
  t.deepEqual(ext.byBackend, { external: 20 });
  allOk(t, await udp(c, EXT_VIP, 20), 20, 'pod-c -> a backend outside the node, over UDP');
  after = await stats();
  t.deepEqual(Object.keys(grew(before[2]!.httpPeers, after[2]!.httpPeers)), [podC.address], 'the outside backend sees pod-c\'s address');

  // The node's own processes, in the cgroup: balanced at their sockets, from the node's address on the bridge.
  before = await stats();
  const fromNode = await http(nodeProc, VIP, 30);
  allOk(t, fromNode, 30, 'node -> web over TCP (connect4)');
  t.true((fromNode.byBackend['pod-a'] ?? 0) > 0 && (fromNode.byBackend['pod-b'] ?? 0) > 0, `node's connections spread over both pods: ${JSON.stringify(fromNode.byBackend)}`);
  const fromNodeUdp = await udp(nodeProc, VIP, 30);
  allOk(t, fromNodeUdp, 30, 'node -> web over UDP (sendmsg4)');
  t.deepEqual(Object.keys(fromNodeUdp.replyFrom), [`${VIP}:53`], 'recvmsg reports the VIP, not the pod');
  after = await stats();
  for (const proto of ['httpPeers', 'udpPeers'] as const) {
    const saw = new Set([0, 1].flatMap((i) => Object.keys(grew(before[i]![proto], after[i]![proto]))));
    t.deepEqual([...saw], [POD_GATEWAY], `the pods see the node's address on the bridge (${proto})`);
  }
  const pinned = await openPinned(daemon.pinDir);
  try {
    const g = pinned.globalStats();
    t.true(g.sock_translated >= 60n, `socket translations counted: ${g.sock_translated}`);
    t.true(g.hairpin_flows >= 40n, `hairpin flows counted: ${g.hairpin_flows}`);
    t.is(pinned.hairpinAddress(), NODE_ADDRESS, '--hairpin-snat-address set it');
  } finally {
    pinned.close();
  }
  // A process of the same namespace outside the cgroup is not balanced: the VIP is no route's.
  const unbalanced = await nodeUnbalanced.udp(VIP, 53, 3, 3);
  t.is(unbalanced.ok, 0, 'a process outside the cgroup reaches no pod through the VIP');

  // A pod made after the daemon started: its link is followed, its traffic balanced, and it serves.
  const bridgeMac = await ipIn(node.ns, 'link', 'show', 'cni0');
  const podD = await node.addPod('pod-d', '10.244.1.14');
  await until(`${podD.hostIfname} attached`, () => hooksOf(podD.hostIfname) === 'sluice/sluice');
  const d = await agent(t, podD.ns);
  await d.serve('pod-d', HTTP_PORT, UDP_PORT);
  allOk(t, await http(d, VIP, 10), 10, 'the new pod -> web');
  await api.applyService(service('default/web', VIP, [podA.address, podB.address, podD.address]));
  const dBefore = await d.stats();
  const three = await http(c, VIP, 60);
  allOk(t, three, 60, 'pod-c -> web with the new pod among its backends');
  t.true((three.byBackend['pod-d'] ?? 0) > 0, `the new pod is balanced to: ${JSON.stringify(three.byBackend)}`);
  t.deepEqual(Object.keys(grew(dBefore.httpPeers, (await d.stats()).httpPeers)), [podC.address], 'the new pod sees pod-c\'s address');

  // The pod goes (its endpoints first, as Kubernetes does): forgotten, no error, the rest unaffected.
  await api.applyService(service('default/web', VIP, [podA.address, podB.address]));
  await d.stop();
  await node.removePod('pod-d');
  await until(`${podD.hostIfname} forgotten`, () => daemon.log().includes('link gone: forgotten') && daemon.log().includes(podD.hostIfname));
  allOk(t, await http(c, VIP, 20), 20, 'pod-c -> web after a pod went');
  t.is(await ipIn(node.ns, 'link', 'show', 'cni0'), bridgeMac, 'the bridge kept its address while pods came and went');
  const errors = daemon.log().split('\n').filter((l) => /"level":(50|60)/.test(l) || l.includes('link monitor ended'));
  t.deepEqual(errors, [], 'the daemon logged no error, and its link monitor ran throughout');
  for (const ifname of ['cni0', 'ext0', 'other0', 'other1']) t.is(hooksOf(ifname), 'none/none', `${ifname} still untouched`);
});

test('the hairpin address is a runtime setting of a running daemon; followed links are listed and detached on exit', async (t) => {
  const node = await podNode(t, 'ph');
  const pod = await node.addPod('pod-a', '10.244.1.11');
  const a = await agent(t, pod.ns);
  await a.serve('pod-a', HTTP_PORT, UDP_PORT);
  const dir = await mkdtemp(path.join(tmpdir(), `sluice-${node.tag}-`));
  const pinDir = `/sys/fs/bpf/sluice-${node.tag}-rt`;
  t.teardown(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(pinDir, { recursive: true, force: true });
  });
  const running = await startDaemon(resolveDaemonOptions({
    listen: `unix://${path.join(dir, 'sluice.sock')}`,
    stateDir: path.join(dir, 'state'),
    pinDir,
    capacity: { conntrack: 65536 },
    followInterfaces: [`veth*@${node.nsPath}`],
    detachOnExit: true,
    logLevel: 'silent',
  }), pino({ level: 'silent' }));
  let stopped = false;
  t.teardown(() => (stopped ? undefined : running.stop()));
  t.deepEqual(running.followedLinks().map((l) => `${l.ifname}@${l.netns}`), [`${pod.hostIfname}@${node.nsPath}`]);
  const api = connect(running.address);
  t.teardown(() => api.close());
  await api.applyService(service('default/self', SELF_VIP, [pod.address]));

  // Off (new maps, no flag): the pod is handed a packet from its own address, which it drops.
  const off = await a.udp(SELF_VIP, 53, 2, 2);
  t.is(off.ok, 0, 'without hairpin SNAT a pod cannot reach itself through its service');
  running.setHairpinAddress(NODE_ADDRESS);
  let before = await a.stats();
  allOk(t, await http(a, SELF_VIP, 10), 10, 'hairpin after it was turned on');
  t.deepEqual(grew(before.httpPeers, (await a.stats()).httpPeers), { [NODE_ADDRESS]: 10 });
  // Another address of the node: new flows come from it.
  running.setHairpinAddress(POD_GATEWAY);
  before = await a.stats();
  allOk(t, await udp(a, SELF_VIP, 10), 10, 'hairpin from the changed address');
  t.deepEqual(grew(before.udpPeers, (await a.stats()).udpPeers), { [POD_GATEWAY]: 10 });
  t.throws(() => running.setHairpinAddress('127.0.0.1'), { message: /loopback/ }, 'an address no packet comes back to is refused');

  const ct = native().pinnedMapInfo(path.join(pinDir, 'conntrack')).id;
  t.is(tcHook(node.nsPath, pod.hostIfname, 'egress', ct), 'sluice');
  stopped = true;
  await running.stop();
  t.is(`${tcHook(node.nsPath, pod.hostIfname, 'ingress', ct)}/${tcHook(node.nsPath, pod.hostIfname, 'egress', ct)}`, 'none/none', 'detached on exit');
});

