/**
 * A Kubernetes node as network namespaces, the way the bridge CNI plugin
 * lays it out, for kube-proxy mode's tests and demo:
 *
 *   client (192.168.80.2, fd80::2) ── eth0 ═ ext0 (192.168.80.1, fd80::1) ── node
 *                                                │ cni0 (bridge, 10.244.1.1/24, fd44::1/64)
 *                                     ┌────────────────────┼────────────────────┐
 *                                  veth…                 veth…                veth…
 *                                     │                    │                    │
 *                                pod-a eth0           pod-b eth0           pod-c eth0
 *              (10.244.1.N/24 and fd44::N/64, default via 10.244.1.1 and fd44::1)
 *
 * The node routes between its bridge and its external link (the client
 * reaches the pods through it, and pods reach the client); each pod's
 * host-side veth is a port of the bridge, named as the plugin names it
 * (`veth` and 8 hex digits). Pods come and go (addPod, removePod) while
 * the node stays.
 *
 * Dual stack, as a dual-stack cluster's bridge plugin lays it out: every
 * pod has an IPv6 address beside its IPv4 one, the node routes both
 * families, and the client reaches the pods' and the services' IPv6
 * ranges through the node. IPv6 addresses are added `nodad`: duplicate
 * address detection would keep them tentative for a second or two, in
 * which binds fail (EADDRNOTAVAIL) and packets from them are not sent.
 *
 * Names carry the owner's tag (sl-<tag>-node, sl-<tag>-<pod>), so parallel
 * tests never collide; destroy() removes every namespace, and with them the
 * links. The host namespace is never given an address or a route.
 */
import { createHash } from 'node:crypto';
import { acceptXdpTx, deleteNamespaces, ipIn, nsExec, sh, tuneEndpoint } from './topology.js';

/** The node's bridge and its address, the pods' gateway. */
export const POD_GATEWAY = '10.244.1.1';
/** The pods' subnet on this node. */
export const POD_SUBNET = '10.244.1.0/24';
/** The bridge's fixed MAC address. */
export const BRIDGE_MAC = '02:42:0a:f4:01:01';
/** The node's own address, on its external link. */
export const NODE_ADDRESS = '192.168.80.1';
/** The client's address, outside the node. */
export const CLIENT_ADDRESS = '192.168.80.2';
/** Service IPs (the test API server's service CIDR), routed to the node from the client. */
export const SERVICE_CIDR = '10.96.0.0/16';
/** The bridge's IPv6 address, the pods' IPv6 gateway. */
export const POD_GATEWAY6 = 'fd44::1';
/** The pods' IPv6 subnet on this node. */
export const POD_SUBNET6 = 'fd44::/64';
/** The node's own IPv6 address, on its external link. */
export const NODE_ADDRESS6 = 'fd80::1';
/** The client's IPv6 address, outside the node. */
export const CLIENT_ADDRESS6 = 'fd80::2';
/** IPv6 service IPs (the test API server's IPv6 service CIDR), routed to the node from the client. */
export const SERVICE_CIDR6 = 'fd96::/112';
/** External and load balancer IPs, routed to the node from the client. */
export const EXTERNAL_CIDR = '203.0.113.0/24';

/** One pod: its namespace and its link to the node's bridge. */
export interface Pod {
  name: string;
  /** Namespace name (ip netns). */
  ns: string;
  /** Path usable with setns(2): /var/run/netns/<ns>. */
  nsPath: string;
  /** Its address on the bridge's subnet. */
  address: string;
  /** Its IPv6 address on the bridge's IPv6 subnet. */
  address6: string;
  /** Its interface, inside its namespace. */
  ifname: 'eth0';
  /** The veth's other end, in the node's namespace and on the bridge. */
  hostIfname: string;
}

/** A node and the namespace outside it. */
export interface PodNode {
  tag: string;
  /** The node's namespace. */
  ns: string;
  nsPath: string;
  /** The bridge, in the node's namespace. */
  bridge: { ifname: string; address: string; address6: string };
  /** The node's external link (its end) and the node's addresses on it. */
  external: { ifname: string; address: string; address6: string };
  /** The namespace outside the node, at the other end of the external link. */
  client: { ns: string; nsPath: string; address: string; address6: string; ifname: string };
  /** The pods there are now, by name. */
  readonly pods: ReadonlyMap<string, Pod>;
  /**
   * Make a pod (its namespace, its veth on the bridge, its addresses and
   * default routes). Its IPv6 address is `opts.address6`, by default the
   * one podAddress6 gives its IPv4 address.
   */
  addPod(name: string, address: string, opts?: { address6?: string }): Promise<Pod>;
  /** Remove a pod's namespace; its veth goes with it. */
  removePod(name: string): Promise<void>;
  /** Remove every namespace made. Idempotent. */
  destroy(): Promise<void>;
}

/** The host-side name the bridge plugin would give a pod's veth: "veth" and 8 hex digits. */
export function hostVethName(tag: string, pod: string): string {
  return `veth${createHash('sha256').update(`${tag}/${pod}`).digest('hex').slice(0, 8)}`;
}

/**
 * A pod's default IPv6 address: fd44:: and its IPv4 address's last number,
 * written with the same digits (10.244.1.11 is fd44::11), so that a test's
 * two addresses of one pod read alike.
 */
export function podAddress6(address: string): string {
  const m = /^10\.244\.1\.([1-9]\d{0,2})$/.exec(address);
  if (!m || Number(m[1]) < 2 || Number(m[1]) > 254) throw new Error(`pod address ${address} is not a host of ${POD_SUBNET}: give its IPv6 address too`);
  return `fd44::${m[1]}`;
}

/** Build the node and the client namespace. On failure, what was made is removed before the error is thrown. */
export async function createPodNode(opts: { tag: string }): Promise<PodNode> {
  const tag = opts.tag;
  if (!/^[a-z0-9]{1,8}$/.test(tag)) throw new Error(`pod node tag must be 1-8 lowercase letters or digits: ${tag}`);
  const nsName = (role: string): string => `sl-${tag}-${role}`;
  const made: string[] = [];
  const pods = new Map<string, Pod>();
  const nodeNs = nsName('node');
  const clientNs = nsName('client');
  let destroyed: Promise<void> | undefined;
  const destroy = (): Promise<void> =>
    (destroyed ??= (async () => {
      pods.clear();
      await deleteNamespaces(made.splice(0));
    })());

  const addPod = async (name: string, address: string, o: { address6?: string } = {}): Promise<Pod> => {
    if (!/^[a-z0-9-]{1,20}$/.test(name) || name === 'node' || name === 'client') throw new Error(`not a pod name: ${name}`);
    if (pods.has(name)) throw new Error(`pod ${name} exists`);
    const address6 = o.address6 ?? podAddress6(address);
    const ns = nsName(name);
    const hostIfname = hostVethName(tag, name);
    await sh('ip', ['netns', 'add', ns]);
    made.push(ns);
    try {
      await ipIn(ns, 'link', 'set', 'lo', 'up');
      // Made in the node's namespace with its peer straight in the pod's,
      // then put on the bridge: neither end is ever in the host namespace.
      await ipIn(nodeNs, 'link', 'add', hostIfname, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await ipIn(nodeNs, 'link', 'set', hostIfname, 'master', 'cni0');
      await ipIn(nodeNs, 'link', 'set', hostIfname, 'up');
      await ipIn(ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      await ipIn(ns, 'link', 'set', 'eth0', 'up');
      await ipIn(ns, '-6', 'addr', 'add', `${address6}/64`, 'dev', 'eth0', 'nodad');
      await ipIn(ns, 'route', 'add', 'default', 'via', POD_GATEWAY);
      await ipIn(ns, '-6', 'route', 'add', 'default', 'via', POD_GATEWAY6);
      // The node learns the pod's neighbour entries, so that the first
      // packets to it take the FIB fast path.
      await nsExec(ns, 'ping', '-c1', '-W1', POD_GATEWAY).catch(() => undefined);
      await nsExec(ns, 'ping', '-6', '-c1', '-W1', POD_GATEWAY6).catch(() => undefined);
    } catch (err) {
      made.splice(made.indexOf(ns), 1);
      await deleteNamespaces([ns]);
      throw err;
    }
    const pod: Pod = { name, ns, nsPath: `/var/run/netns/${ns}`, address, address6, ifname: 'eth0', hostIfname };
    pods.set(name, pod);
    return pod;
  };

  const removePod = async (name: string): Promise<void> => {
    const pod = pods.get(name);
    if (!pod) throw new Error(`no pod ${name}`);
    pods.delete(name);
    const i = made.indexOf(pod.ns);
    if (i >= 0) made.splice(i, 1);
    await deleteNamespaces([pod.ns]);
  };

  try {
    for (const ns of [nodeNs, clientNs]) {
      await sh('ip', ['netns', 'add', ns]);
      made.push(ns);
      await ipIn(ns, 'link', 'set', 'lo', 'up');
    }
    // IPv6 forwarding too: without it bpf_fib_lookup answers FWD_DISABLED for IPv6.
    await nsExec(nodeNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1');
    await ipIn(nodeNs, 'link', 'add', 'cni0', 'type', 'bridge');
    // An address of its own, as the bridge plugin sets it: otherwise the
    // bridge takes its ports' lowest and changes it as pods come and go,
    // which flushes the node's neighbours on it and leaves pods sending to
    // a gateway address the bridge no longer answers to.
    await ipIn(nodeNs, 'link', 'set', 'cni0', 'address', BRIDGE_MAC);
    await ipIn(nodeNs, 'addr', 'add', `${POD_GATEWAY}/24`, 'dev', 'cni0');
    await ipIn(nodeNs, '-6', 'addr', 'add', `${POD_GATEWAY6}/64`, 'dev', 'cni0', 'nodad');
    await ipIn(nodeNs, 'link', 'set', 'cni0', 'up');
    await ipIn(nodeNs, 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', clientNs);
    await ipIn(nodeNs, 'addr', 'add', `${NODE_ADDRESS}/24`, 'dev', 'ext0');
    await ipIn(nodeNs, '-6', 'addr', 'add', `${NODE_ADDRESS6}/64`, 'dev', 'ext0', 'nodad');
    await ipIn(nodeNs, 'link', 'set', 'ext0', 'up');
    await ipIn(clientNs, 'addr', 'add', `${CLIENT_ADDRESS}/24`, 'dev', 'eth0');
    await ipIn(clientNs, '-6', 'addr', 'add', `${CLIENT_ADDRESS6}/64`, 'dev', 'eth0', 'nodad');
    await ipIn(clientNs, 'link', 'set', 'eth0', 'up');
    // The client reaches (and answers) the node's pods, service IPs and
    // external IPs through the node; the node's way out (its default
    // route, by which the kube-proxy agent finds its external interface)
    // is the client.
    await ipIn(clientNs, 'route', 'add', '10.244.0.0/16', 'via', NODE_ADDRESS);
    await ipIn(clientNs, 'route', 'add', SERVICE_CIDR, 'via', NODE_ADDRESS);
    await ipIn(clientNs, 'route', 'add', EXTERNAL_CIDR, 'via', NODE_ADDRESS);
    await ipIn(nodeNs, 'route', 'add', 'default', 'via', CLIENT_ADDRESS);
    await ipIn(clientNs, '-6', 'route', 'add', POD_SUBNET6, 'via', NODE_ADDRESS6);
    await ipIn(clientNs, '-6', 'route', 'add', SERVICE_CIDR6, 'via', NODE_ADDRESS6);
    await ipIn(nodeNs, '-6', 'route', 'add', 'default', 'via', CLIENT_ADDRESS6);
    // XDP_TX and redirects on ext0 send frames into the client's end: a veth
    // takes them only with GRO on, and is woken for XDP_TX only with an XDP program.
    await tuneEndpoint(clientNs, 'eth0');
    await acceptXdpTx(clientNs, 'eth0');
    await tuneEndpoint(nodeNs, 'ext0');
    await nsExec(clientNs, 'ping', '-c1', '-W1', NODE_ADDRESS).catch(() => undefined);
    await nsExec(clientNs, 'ping', '-6', '-c1', '-W1', NODE_ADDRESS6).catch(() => undefined);
  } catch (err) {
    await destroy();
    throw err;
  }
  return {
    tag,
    ns: nodeNs,
    nsPath: `/var/run/netns/${nodeNs}`,
    bridge: { ifname: 'cni0', address: POD_GATEWAY, address6: POD_GATEWAY6 },
    external: { ifname: 'ext0', address: NODE_ADDRESS, address6: NODE_ADDRESS6 },
    client: { ns: clientNs, nsPath: `/var/run/netns/${clientNs}`, address: CLIENT_ADDRESS, address6: CLIENT_ADDRESS6, ifname: 'eth0' },
    pods,
    addPod,
    removePod,
    destroy,
  };
}
