/**
 * A scale-out test topology of network namespaces: N load balancers side by
 * side behind an ECMP router, and M backends behind a second router whose
 * route back to the clients is an ECMP group over the same load balancers.
 *
 *                     ┌─ front [lb1] back ─┐
 *   client ── router ─┼─ front [lb2] back ─┼─ brouter ─┬─ be1
 *                     └─ front [lb3] back ─┘           ├─ be2
 *                                                      └─ be3
 *
 *   client               192.168.80.2/24, default via the router (.1)
 *   router ↔ lb i        10.80.i.0/24: router .1 (its "lbI"), lb i .2 ("front")
 *   lb i ↔ brouter       10.81.i.0/24: lb i .2 ("back"), brouter .1 (its "lbI")
 *   brouter ↔ backend j  10.82.j.0/24: brouter .1 (its "beJ"), backend j .2
 *
 * The router sends the VIP range (10.96.0.0/16) and the backend range
 * (10.82.0.0/16) over one nexthop group of the load balancers' front
 * addresses; the backend router's default route is one nexthop group of
 * their back addresses, members in the same order. One group object serves
 * every route of its router, so a change of members is one atomic replace
 * per router.
 *
 * Why a second router on the backend side rather than the backends on the
 * first one: each router is a plain routing table, with no policy rules to
 * tell a client's packet from one a load balancer sends on, and a backend is
 * reachable from the client side only through the load-balancer tier, as
 * behind a real one. The backends keep an ordinary default route to their
 * router, which is where the return path's ECMP lives, so a change of the
 * tier is made in the two routers, not in every backend.
 *
 * Both routers hash the 5-tuple read from the packet's headers
 * (fib_multipath_hash_policy 3 with fields 0x37), as a router across a wire
 * does. Policy 1 would not: it takes the hash a packet already carries,
 * which on a veth is the sending socket's random one, so connections with
 * one 5-tuple would spread over the load balancers and a TCP connection
 * would change load balancer when a retransmission timeout redraws it. The
 * kernel's flow hash is symmetric (it orders addresses and ports before
 * hashing) and both routers use one seed (by default the kernel's, drawn once
 * per boot for every namespace), so a reply that is not translated crosses
 * the load balancer its request crossed. A load balancer's translation
 * changes the reply's 5-tuple and with it the reply's path, which is why the
 * load balancers must rewrite replies without state of their own.
 *
 * Each load balancer forwards (net.ipv4.ip_forward=1) with nothing attached:
 * clients are behind its default route, backends behind its back link, and
 * the VIP range is unreachable there, so a VIP packet that no program takes
 * is refused instead of bouncing back to the router. Its two interfaces,
 * `front` and `back`, are where a sluice daemon per load balancer attaches.
 *
 * Withdrawing a load balancer replaces both groups with the remaining
 * members, as a routing daemon does when its session to that load balancer
 * goes down; restoring it puts it back in its place. The groups are of the
 * kernel's default type, hash-threshold: the hash space is cut into equal
 * consecutive ranges, one per member in order, so a change of members can
 * move flows between members that stay. Of three, withdrawing the second
 * moves only its own flows; withdrawing the first or the third also moves
 * about half of the second's flows to the other survivor.
 *
 * IPv6 is off in every namespace, so that link-local chatter (router
 * solicitations, MLD, DAD) stays out of the packet counters the tests read.
 * Every name carries the owner's tag; nothing is ever created in the host
 * namespace (each veth pair is made in one namespace with its peer placed
 * straight into the other); teardown removes every namespace made.
 */
import { acceptXdpTx, deleteNamespaces, ipIn, listNamespaces, nsExec, sh, tuneEndpoint } from './topology.js';

/** The VIP range the router sends over the load balancers. */
export const SCALEOUT_VIP_RANGE = '10.96.0.0/16';
/** The range of the backends' addresses (10.82.j.2). */
export const SCALEOUT_BACKEND_RANGE = '10.82.0.0/16';
/** The client's address. */
export const SCALEOUT_CLIENT_ADDRESS = '192.168.80.2';

/** Nexthop object ids: load balancer i is nexthop i in both routers, the group is this one. */
const GROUP_ID = 100;
/** Source and destination address, protocol, source and destination port. */
const HASH_FIELDS = '0x0037';

/** A host at the edge of the topology: the client or a backend. */
export interface ScaleoutHost {
  /** Namespace name (ip netns). */
  ns: string;
  /** Path usable with setns(2): /var/run/netns/<ns>. */
  nsPath: string;
  /** Its address. */
  address: string;
  /** Its interface (eth0). */
  ifname: string;
  /** The router's interface on the same link. */
  gatewayIfname: string;
  /** The router's address on that link, its default gateway. */
  gatewayAddress: string;
}

/** One side of a load balancer: its interface and the router across the link. */
export interface ScaleoutLbPort {
  /** Interface name in the load balancer's namespace (front or back). */
  ifname: string;
  /** The load balancer's address on it. */
  address: string;
  /** The router's interface on the same link (lbI). */
  peerIfname: string;
  /** The router's address on that link. */
  peerAddress: string;
}

/** One load-balancer namespace. */
export interface ScaleoutLb {
  /** 1-based: lb1 is nexthop 1 of both groups. */
  index: number;
  /** Namespace name (ip netns). */
  ns: string;
  /** Path usable with setns(2), for a daemon's `--interface front@<nsPath>`. */
  nsPath: string;
  /** Toward the router: requests arrive here, replies leave here. */
  front: ScaleoutLbPort;
  /** Toward the backend router: requests leave here, replies arrive here. */
  back: ScaleoutLbPort;
  /** Both interface names, for a daemon to attach to. */
  ifnames: string[];
}

/** A router namespace. */
export interface ScaleoutRouter {
  /** Namespace name (ip netns). */
  ns: string;
  /** Path usable with setns(2). */
  nsPath: string;
}

/** Packet and byte counters of one interface (ip -s link). */
export interface LinkCounters {
  rxPackets: number;
  txPackets: number;
  rxBytes: number;
  txBytes: number;
}

/** The counters of one load balancer's two interfaces. */
export interface LbCounters {
  /** The load balancer's index (1-based). */
  index: number;
  front: LinkCounters;
  back: LinkCounters;
}

/** A built scale-out topology. */
export interface ScaleoutTopology {
  /** The tag in every namespace name: sl-<tag>-<role>. */
  tag: string;
  /** The client namespace, behind the router. */
  client: ScaleoutHost;
  /** The client-side router, ECMP over the load balancers' front addresses. */
  router: ScaleoutRouter;
  /** The backend-side router, ECMP over their back addresses. */
  backendRouter: ScaleoutRouter;
  /** The load balancers, lb1 first. */
  lbs: ScaleoutLb[];
  /** The backend namespaces, behind the backend router, be1 first. */
  backends: ScaleoutHost[];
  /** The load balancers (1-based indexes) in both groups now, ascending. */
  members(): number[];
  /**
   * Take load balancer `index` out of both groups; a no-op if it is out
   * already. Refuses to leave a group empty. Its own namespace is left as it
   * is: it still forwards what reaches it.
   */
  withdraw(index: number): Promise<void>;
  /** Put load balancer `index` back in both groups; a no-op if it is in. */
  restore(index: number): Promise<void>;
  /** Counters of every load balancer's interfaces, in index order. */
  counters(): Promise<LbCounters[]>;
  /** Remove every namespace (and with them links and attachments). Idempotent. */
  destroy(): Promise<void>;
}

/** Options of createScaleoutTopology. */
export interface ScaleoutOptions {
  /** Short unique tag (letters, digits, at most 8), part of every name. */
  tag: string;
  /** Number of load balancers (1..8, default 3). */
  lbs?: number;
  /** Number of backends (1..8, default 3). */
  backends?: number;
  /**
   * net.ipv4.fib_multipath_hash_seed of both routers, for a spread that is
   * the same from boot to boot; 0 (the default) is the kernel's seed, drawn
   * once per boot.
   */
  hashSeed?: number;
}

/** Namespaces left with this tag (empty after destroy). */
export const scaleoutNamespaces = (tag: string): Promise<string[]> => listNamespaces(`sl-${tag}-`);

/** Counters of every interface in a namespace, by name: one ip(8) call. */
async function linkCounters(ns: string): Promise<Map<string, LinkCounters>> {
  const links = JSON.parse(await ipIn(ns, '-j', '-s', 'link', 'show')) as Array<{
    ifname: string;
    stats64?: { rx: { packets: number; bytes: number }; tx: { packets: number; bytes: number } };
  }>;
  const out = new Map<string, LinkCounters>();
  for (const { ifname, stats64: s } of links) {
    if (s) out.set(ifname, { rxPackets: s.rx.packets, txPackets: s.tx.packets, rxBytes: s.rx.bytes, txBytes: s.tx.bytes });
  }
  return out;
}

/** Build the topology. On failure, what was made is removed before the error is thrown. */
export async function createScaleoutTopology(opts: ScaleoutOptions): Promise<ScaleoutTopology> {
  if (!/^[a-z0-9]{1,8}$/.test(opts.tag)) throw new Error(`topology tag must be 1-8 lowercase letters or digits: ${opts.tag}`);
  const nLb = opts.lbs ?? 3;
  const nBe = opts.backends ?? 3;
  if (!Number.isInteger(nLb) || nLb < 1 || nLb > 8) throw new Error('lbs must be 1..8');
  if (!Number.isInteger(nBe) || nBe < 1 || nBe > 8) throw new Error('backends must be 1..8');
  const seed = opts.hashSeed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error('hashSeed must be a 32-bit unsigned integer');
  const tag = opts.tag;
  const nsName = (role: string): string => `sl-${tag}-${role}`;
  const made: string[] = [];
  const destroy = async (): Promise<void> => {
    await deleteNamespaces(made.splice(0));
  };

  const addNs = async (role: string): Promise<ScaleoutRouter> => {
    const ns = nsName(role);
    await sh('ip', ['netns', 'add', ns]);
    made.push(ns);
    // Before any link exists, so that every link is made with these.
    await nsExec(ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1',
      // Not inherited from the host: a load balancer just withdrawn may still
      // forward a packet in flight, from a source the router now routes over the others.
      'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0');
    await ipIn(ns, 'link', 'set', 'lo', 'up');
    return { ns, nsPath: `/var/run/netns/${ns}` };
  };
  /** A veth pair from a to b, addressed, up and tuned for XDP at both ends. */
  const link = async (a: { ns: string; ifname: string; address: string }, b: { ns: string; ifname: string; address: string }): Promise<void> => {
    await ipIn(a.ns, 'link', 'add', a.ifname, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns);
    for (const end of [a, b]) {
      await ipIn(end.ns, 'addr', 'add', `${end.address}/24`, 'dev', end.ifname);
      await ipIn(end.ns, 'link', 'set', end.ifname, 'up');
      // Every end: a load balancer's XDP redirects into the routers' ends,
      // and a checksum left partial anywhere upstream would reach its XDP.
      await tuneEndpoint(end.ns, end.ifname);
    }
  };

  try {
    const router = await addNs('router');
    const backendRouter = await addNs('brouter');
    for (const r of [router, backendRouter]) {
      await nsExec(r.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.fib_multipath_hash_policy=3',
        `net.ipv4.fib_multipath_hash_fields=${HASH_FIELDS}`, `net.ipv4.fib_multipath_hash_seed=${seed}`);
    }

    const clientNs = await addNs('client');
    const client: ScaleoutHost = {
      ...clientNs, address: SCALEOUT_CLIENT_ADDRESS, ifname: 'eth0', gatewayIfname: 'client', gatewayAddress: '192.168.80.1',
    };
    await link({ ns: router.ns, ifname: 'client', address: client.gatewayAddress }, { ns: client.ns, ifname: 'eth0', address: client.address });
    await ipIn(client.ns, 'route', 'add', 'default', 'via', client.gatewayAddress);

    const lbs: ScaleoutLb[] = [];
    for (let i = 1; i <= nLb; i++) {
      const lbNs = await addNs(`lb${i}`);
      await nsExec(lbNs.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
      const front: ScaleoutLbPort = { ifname: 'front', address: `10.80.${i}.2`, peerIfname: `lb${i}`, peerAddress: `10.80.${i}.1` };
      const back: ScaleoutLbPort = { ifname: 'back', address: `10.81.${i}.2`, peerIfname: `lb${i}`, peerAddress: `10.81.${i}.1` };
      await link({ ns: router.ns, ifname: front.peerIfname, address: front.peerAddress }, { ns: lbNs.ns, ifname: front.ifname, address: front.address });
      await link({ ns: lbNs.ns, ifname: back.ifname, address: back.address }, { ns: backendRouter.ns, ifname: back.peerIfname, address: back.peerAddress });
      // The routers' ends take what a load balancer's XDP sends back out of the link it came in on.
      await acceptXdpTx(router.ns, front.peerIfname);
      await acceptXdpTx(backendRouter.ns, back.peerIfname);
      await ipIn(lbNs.ns, 'route', 'add', 'default', 'via', front.peerAddress);
      await ipIn(lbNs.ns, 'route', 'add', SCALEOUT_BACKEND_RANGE, 'via', back.peerAddress);
      await ipIn(lbNs.ns, 'route', 'add', 'unreachable', SCALEOUT_VIP_RANGE);
      await ipIn(router.ns, 'nexthop', 'add', 'id', String(i), 'via', front.address, 'dev', front.peerIfname);
      await ipIn(backendRouter.ns, 'nexthop', 'add', 'id', String(i), 'via', back.address, 'dev', back.peerIfname);
      lbs.push({ index: i, ...lbNs, front, back, ifnames: [front.ifname, back.ifname] });
    }

    const backends: ScaleoutHost[] = [];
    for (let j = 1; j <= nBe; j++) {
      const beNs = await addNs(`be${j}`);
      const be: ScaleoutHost = {
        ...beNs, address: `10.82.${j}.2`, ifname: 'eth0', gatewayIfname: `be${j}`, gatewayAddress: `10.82.${j}.1`,
      };
      await link({ ns: backendRouter.ns, ifname: be.gatewayIfname, address: be.gatewayAddress }, { ns: be.ns, ifname: be.ifname, address: be.address });
      await ipIn(be.ns, 'route', 'add', 'default', 'via', be.gatewayAddress);
      backends.push(be);
    }

    let members = lbs.map((l) => l.index);
    const setGroups = async (next: number[], verb: 'add' | 'replace'): Promise<void> => {
      const group = next.join('/');
      await ipIn(router.ns, 'nexthop', verb, 'id', String(GROUP_ID), 'group', group);
      await ipIn(backendRouter.ns, 'nexthop', verb, 'id', String(GROUP_ID), 'group', group);
      members = next;
    };
    await setGroups(members, 'add');
    // One group object serves every route of a router, so a change of
    // members is one atomic replace per router.
    await ipIn(router.ns, 'route', 'add', SCALEOUT_VIP_RANGE, 'nhid', String(GROUP_ID));
    await ipIn(router.ns, 'route', 'add', SCALEOUT_BACKEND_RANGE, 'nhid', String(GROUP_ID));
    await ipIn(backendRouter.ns, 'route', 'add', 'default', 'nhid', String(GROUP_ID));

    // Resolve neighbours up front so that first packets are not queued.
    await Promise.all([
      nsExec(client.ns, 'ping', '-c1', '-W1', client.gatewayAddress),
      ...lbs.map((l) => nsExec(router.ns, 'ping', '-c1', '-W1', l.front.address)),
      ...lbs.map((l) => nsExec(backendRouter.ns, 'ping', '-c1', '-W1', l.back.address)),
      ...backends.map((b) => nsExec(b.ns, 'ping', '-c1', '-W1', b.gatewayAddress)),
    ].map((p) => p.catch(() => undefined)));

    const checkIndex = (index: number): void => {
      if (!lbs.some((l) => l.index === index)) throw new Error(`no load balancer ${index} (1..${lbs.length})`);
    };
    return {
      tag,
      client,
      router,
      backendRouter,
      lbs,
      backends,
      members: () => [...members],
      async withdraw(index) {
        checkIndex(index);
        if (!members.includes(index)) return;
        if (members.length === 1) throw new Error(`load balancer ${index} is the last in the group`);
        await setGroups(members.filter((m) => m !== index), 'replace');
      },
      async restore(index) {
        checkIndex(index);
        if (members.includes(index)) return;
        await setGroups([...members, index].sort((a, b) => a - b), 'replace');
      },
      counters: () => Promise.all(lbs.map(async (l) => {
        const byName = await linkCounters(l.ns);
        const get = (ifname: string): LinkCounters => {
          const c = byName.get(ifname);
          if (!c) throw new Error(`no counters for ${ifname} in ${l.ns}`);
          return c;
        };
        return { index: l.index, front: get(l.front.ifname), back: get(l.back.ifname) };
      })),
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}
