/**
 * The traffic benchmark's topology: three network namespaces in a line.
 *
 *   gen (eth0 10.79.0.2) ── lbg 10.79.0.1 [lb] lbs 10.78.0.1 ── sink (eth0 10.78.0.2)
 *
 * The generator's packets come from 198.18.0.0/15 (the benchmarking range,
 * RFC 2544) and go to a VIP; whatever runs in lb (sluice, iptables, nft, the
 * plain forwarder) sends them on to a backend address in 10.78.0.0/24. No
 * backend exists as a host: the lb namespace has a permanent neighbour entry
 * for each backend address pointing at the sink, and the sink counts and
 * drops every packet in XDP, by the last byte of its destination, so the
 * benchmark can tell which backend each packet was sent to.
 *
 * Both veth links are tuned for XDP: GRO on the receiving ends (a veth
 * peer needs NAPI to take frames sent with XDP_TX or XDP_REDIRECT), which
 * is also what the live-frames generator's XDP_TX needs on lbg. Nothing is
 * ever created in the host namespace: each veth pair is made inside lb and
 * one end moved out.
 */
import { deleteNamespaces, ipIn, nsExec, sh } from '../../src/demo/topology.js';

export interface TrafficEnd {
  ns: string;
  nsPath: string;
  ifname: string;
  ifindex: number;
  mac: string;
  address: string;
}

export interface TrafficTopology {
  tag: string;
  gen: TrafficEnd;
  sink: TrafficEnd;
  lb: {
    ns: string;
    nsPath: string;
    /** Ingress, toward the generator. */
    inIf: TrafficEnd;
    /** Egress, toward the sink. */
    outIf: TrafficEnd;
  };
  /** The backend addresses (10.78.0.11, ...), all reached through the sink. */
  backends: string[];
  /** First source address of the generator's flows. */
  sourceBase: string;
  /** Remove every namespace (links and attachments go with them). Idempotent. */
  destroy(): Promise<void>;
}

export const TRAFFIC_SOURCE_NET = '198.18.0.0/15';
/** Where the benchmark's VIPs live (10.96.0.10 and the fillers' 10.100.x.y). */
export const TRAFFIC_VIP_NET = '10.96.0.0/11';

/** The backend address of index i (0-based): 10.78.0.(11 + i). */
export const trafficBackend = (i: number): string => `10.78.0.${11 + i}`;

/** Namespace names of a traffic topology with this tag (for cleanup of a crashed run). */
export const trafficNamespaces = (tag: string): string[] => ['gen', 'lb', 'sink'].map((r) => `sl-${tag}-${r}`);

async function linkInfo(ns: string, ifname: string, address: string): Promise<TrafficEnd> {
  const [info] = JSON.parse(await ipIn(ns, '-j', 'link', 'show', 'dev', ifname)) as Array<{ ifindex: number; address: string }>;
  if (!info) throw new Error(`${ifname} not found in ${ns}`);
  return { ns, nsPath: `/var/run/netns/${ns}`, ifname, ifindex: info.ifindex, mac: info.address, address };
}

/** Build the topology; on failure, whatever was made is removed before the error is thrown. */
export async function createTrafficTopology(opts: { tag: string; backends: number }): Promise<TrafficTopology> {
  if (!/^[a-z0-9]{1,8}$/.test(opts.tag)) throw new Error(`tag must be 1-8 lowercase letters or digits: ${opts.tag}`);
  if (opts.backends < 1 || opts.backends > 200) throw new Error('backends must be 1..200');
  const [genNs, lbNs, sinkNs] = trafficNamespaces(opts.tag) as [string, string, string];
  // A crashed earlier run with the same tag may have left its namespaces.
  await deleteNamespaces([genNs, lbNs, sinkNs]);
  const made: string[] = [];
  const destroy = async (): Promise<void> => {
    await deleteNamespaces(made.splice(0));
  };
  try {
    for (const ns of [lbNs, genNs, sinkNs]) {
      await sh('ip', ['netns', 'add', ns]);
      made.push(ns);
      await ipIn(ns, 'link', 'set', 'lo', 'up');
      // No IPv6 on these links: its router and multicast listener chatter
      // would be counted with the benchmark's packets.
      await nsExec(ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    }
    for (const [k, v] of [['net.ipv4.ip_forward', '1'], ['net.ipv4.conf.all.rp_filter', '0'], ['net.ipv4.conf.default.rp_filter', '0']]) {
      await nsExec(lbNs, 'sysctl', '-qw', `${k}=${v}`);
    }
    const pair = async (lbIf: string, ns: string, lbAddr: string, addr: string): Promise<void> => {
      await ipIn(lbNs, 'link', 'add', lbIf, 'type', 'veth', 'peer', 'name', 'eth0');
      await ipIn(lbNs, 'link', 'set', 'eth0', 'netns', ns);
      await ipIn(lbNs, 'addr', 'add', `${lbAddr}/24`, 'dev', lbIf);
      await ipIn(ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
      for (const [n, i] of [[lbNs, lbIf], [ns, 'eth0']] as const) {
        await ipIn(n, 'link', 'set', i, 'up');
        await nsExec(n, 'ethtool', '-K', i, 'gro', 'on', 'tx', 'off');
      }
    };
    await pair('lbg', genNs, '10.79.0.1', '10.79.0.2');
    await pair('lbs', sinkNs, '10.78.0.1', '10.78.0.2');
    await ipIn(lbNs, 'route', 'add', TRAFFIC_SOURCE_NET, 'via', '10.79.0.2', 'dev', 'lbg');
    await ipIn(genNs, 'route', 'add', 'default', 'via', '10.79.0.1');
    // A queue for packets sent through the stack (trafgen with its qdisc
    // path): a veth has none, and stops its queue when the peer's ring is
    // full, which a qdisc absorbs instead of failing the sender.
    await nsExec(genNs, 'tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'pfifo', 'limit', '4096');
    await ipIn(sinkNs, 'route', 'add', 'default', 'via', '10.78.0.1');

    const gen = await linkInfo(genNs, 'eth0', '10.79.0.2');
    const sink = await linkInfo(sinkNs, 'eth0', '10.78.0.2');
    const inIf = await linkInfo(lbNs, 'lbg', '10.79.0.1');
    const outIf = await linkInfo(lbNs, 'lbs', '10.78.0.1');
    const backends = Array.from({ length: opts.backends }, (_, i) => trafficBackend(i));
    // Permanent neighbours: the FIB lookups (sluice's and the stack's) never
    // wait for ARP, and the sink never has to answer it.
    for (const b of backends) await ipIn(lbNs, 'neigh', 'replace', b, 'lladdr', sink.mac, 'dev', 'lbs', 'nud', 'permanent');
    await ipIn(lbNs, 'neigh', 'replace', '10.79.0.2', 'lladdr', gen.mac, 'dev', 'lbg', 'nud', 'permanent');
    await ipIn(lbNs, 'neigh', 'replace', '10.78.0.2', 'lladdr', sink.mac, 'dev', 'lbs', 'nud', 'permanent');
    // The VIPs route to the sink, for the routing forwarder (the ceiling),
    // which forwards packets as they arrive, VIP and all. Load balancers
    // route after their DNAT, on the backend's address.
    await ipIn(lbNs, 'route', 'add', TRAFFIC_VIP_NET, 'via', '10.78.0.2', 'dev', 'lbs');
    return {
      tag: opts.tag,
      gen,
      sink,
      lb: { ns: lbNs, nsPath: `/var/run/netns/${lbNs}`, inIf, outIf },
      backends,
      sourceBase: '198.18.0.1',
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}

/** ethtool -S of an interface, as numbers (veth: per-queue XDP and drop counters). */
export async function interfaceCounters(ns: string, ifname: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const text = await nsExec(ns, 'ethtool', '-S', ifname);
  for (const line of text.split('\n')) {
    const m = /^\s*([\w.-]+):\s+(\d+)\s*$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  const [link] = JSON.parse(await ipIn(ns, '-s', '-j', 'link', 'show', 'dev', ifname)) as Array<{
    stats64?: { rx?: Record<string, number>; tx?: Record<string, number> };
  }>;
  for (const dir of ['rx', 'tx'] as const) {
    for (const [k, v] of Object.entries(link?.stats64?.[dir] ?? {})) out[`link_${dir}_${k}`] = v;
  }
  return out;
}
