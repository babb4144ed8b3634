/**
 * The load balancers the traffic benchmark compares, each set up alone in
 * the lb namespace with the same services:
 *
 * - sluice-xdp / sluice-tc: sluice's own programs and LoadBalancer, in this
 *   process, attached to the lb namespace's ingress (lbg);
 * - iptables: kube-proxy's iptables rules (iptables-legacy), stack forwarding;
 * - nftables: kube-proxy's nftables-mode rules, stack forwarding;
 * - forwarder / forwarder-fib: plain XDP forwarders without load-balancing
 *   work (bpf/bench/xdp_fwd.bpf.c), static and routing: the ceilings.
 */
import { execFile } from 'node:child_process';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import type { ServiceSpec } from '../../src/model/service.js';
import { loadObject, u32 } from './bench-objects.js';
import {
  applyIptables,
  applyNft,
  clearIptables,
  clearNft,
  iptablesRestoreInput,
  nftRuleset,
  toolPath,
  type KubeService,
} from './kube-rules.js';
import type { TrafficTopology } from './traffic-topology.js';

export const PEERS = ['forwarder', 'forwarder-fib', 'sluice-xdp', 'sluice-tc', 'iptables', 'nftables'] as const;
export type Peer = (typeof PEERS)[number];

export const PEER_LABELS: Record<Peer, string> = {
  forwarder: 'plain XDP forwarder, static (raw ceiling)',
  'forwarder-fib': 'plain XDP forwarder, routing (ceiling)',
  'sluice-xdp': 'sluice, XDP',
  'sluice-tc': 'sluice, tc',
  iptables: 'kube-proxy iptables (legacy)',
  nftables: 'kube-proxy nftables',
};

/** The peers that forward without load balancing: the ceilings. */
export const isCeiling = (p: Peer): boolean => p === 'forwarder' || p === 'forwarder-fib';

/** The measured service: VIP:80/udp, its backends in the topology. */
export const TRAFFIC_VIP = '10.96.0.10';
export const TRAFFIC_PORT = 80;
export const TRAFFIC_TARGET_PORT = 8080;

/** One service in both forms: sluice's spec and kube-proxy's. */
export interface BenchService {
  spec: ServiceSpec;
  kube: KubeService;
}

export function benchService(name: string, vip: string, backends: readonly string[]): BenchService {
  return {
    spec: {
      name,
      address: vip,
      port: TRAFFIC_PORT,
      protocol: 'udp',
      backends: backends.map((address) => ({ address, port: TRAFFIC_TARGET_PORT })),
    },
    kube: {
      name,
      vip,
      port: TRAFFIC_PORT,
      protocol: 'udp',
      endpoints: backends.map((ip) => ({ ip, port: TRAFFIC_TARGET_PORT })),
    },
  };
}

/**
 * The measured service plus fillers up to `count` services (each with 10
 * backends of its own, never sent to). The measured one sits in the middle
 * of the list: kube-proxy writes services in Go map order, so on average a
 * service is halfway down KUBE-SERVICES.
 */
export function serviceSet(topo: TrafficTopology, count: number): { all: BenchService[]; measured: BenchService } {
  const measured = benchService('bench/measured', TRAFFIC_VIP, topo.backends);
  const fillers: BenchService[] = [];
  for (let i = 0; i < count - 1; i++) {
    const vip = `10.100.${i >> 8}.${i & 255}`;
    const bes = Array.from({ length: 10 }, (_, j) => `10.${101 + (j >> 2)}.${i >> 8}.${((i & 255) << 2 | (j & 3)) & 255}`);
    fillers.push(benchService(`bench/filler-${i}`, vip, bes));
  }
  const mid = Math.floor(fillers.length / 2);
  return { all: [...fillers.slice(0, mid), measured, ...fillers.slice(mid)], measured };
}

/** A peer set up in the lb namespace; `stop` removes every trace of it. */
export interface RunningPeer {
  peer: Peer;
  /** sluice's counters, for sluice peers. */
  sluice?: { dp: NativeDataplane; lb: LoadBalancer };
  /** Seconds it took to program the services. */
  programSeconds: number;
  stop(): Promise<void>;
}

/** A peer whose rules took longer to load than the cap allows. */
export class ProgramTimeout extends Error {}

/** Set a peer up in the lb namespace with these services. */
export async function startPeer(
  peer: Peer,
  topo: TrafficTopology,
  services: readonly BenchService[],
  flows: number,
  opts: { programCapSeconds?: number } = {},
): Promise<RunningPeer> {
  const timeoutMs = (opts.programCapSeconds ?? 300) * 1000;
  const lbNs = topo.lb.ns;
  const t0 = performance.now();
  const elapsed = (): number => (performance.now() - t0) / 1000;
  switch (peer) {
    case 'forwarder':
    case 'forwarder-fib': {
      const dp = await loadObject('xdp_fwd');
      try {
        // struct fwd_cfg: ifindex, dmac, smac, fib.
        const cfg = Buffer.alloc(20);
        cfg.writeUInt32LE(topo.lb.outIf.ifindex, 0);
        Buffer.from(topo.sink.mac.split(':').map((h) => parseInt(h, 16))).copy(cfg, 4);
        Buffer.from(topo.lb.outIf.mac.split(':').map((h) => parseInt(h, 16))).copy(cfg, 10);
        cfg.writeUInt16LE(peer === 'forwarder-fib' ? 1 : 0, 16);
        dp.mapUpdate('fwd_cfg', u32(0), cfg);
        dp.attachXdp(topo.lb.inIf.ifindex, 'native', topo.lb.nsPath);
      } catch (err) {
        dp.close();
        throw err;
      }
      return {
        peer,
        programSeconds: elapsed(),
        stop: async () => {
          try {
            dp.detachXdp(topo.lb.inIf.ifindex, 'native', topo.lb.nsPath);
          } finally {
            dp.close();
          }
        },
      };
    }
    case 'sluice-xdp':
    case 'sluice-tc': {
      // Two conntrack entries per flow (forward and reply), with room to spare.
      const conntrackSize = Math.max(65_536, 2 ** Math.ceil(Math.log2(flows * 2.5)));
      // No flood guard: the warm-up sends every flow's first packet at the
      // generator's full rate (over a million a second), and past the
      // guard's 125,000 new flows a second most of a million flows would be
      // balanced untracked, so that the measured packets were new flows,
      // not the established ones the stage measures.
      const dp = await NativeDataplane.open({ capacity: { conntrack: conntrackSize, maglevSlots: 16_777_216 }, floodRate: 0 });
      const target = { ifname: topo.lb.inIf.ifname, netns: topo.lb.nsPath, mode: peer === 'sluice-xdp' ? 'xdp' : 'tc' } as const;
      try {
        const lb = new LoadBalancer(dp);
        await lb.applyMany(services.map((s) => s.spec));
        const seconds = elapsed();
        dp.attach(target);
        // The sink's end runs an XDP program: a redirect out of the LB's out link reaches it.
        if (peer === 'sluice-xdp') dp.allowXdpRedirect(topo.lb.outIf.ifindex);
        return {
          peer,
          sluice: { dp, lb },
          programSeconds: seconds,
          stop: async () => {
            try {
              dp.detach(target);
            } finally {
              dp.close();
            }
          },
        };
      } catch (err) {
        dp.close();
        throw err;
      }
    }
    case 'iptables': {
      const r = await applyIptables(lbNs, 'legacy', iptablesRestoreInput(services.map((s) => s.kube)), { timeoutMs });
      if ('timedOut' in r) throw new ProgramTimeout(`iptables-legacy-restore of ${services.length} services: > ${r.seconds.toFixed(0)} s (cap)`);
      await flushConntrack(lbNs);
      return { peer, programSeconds: elapsed(), stop: () => clearIptables(lbNs, 'legacy') };
    }
    case 'nftables': {
      const r = await applyNft(lbNs, nftRuleset(services.map((s) => s.kube)), { timeoutMs });
      if ('timedOut' in r) {
        await clearNft(lbNs);
        throw new ProgramTimeout(`nft -f of ${services.length} services: > ${r.seconds.toFixed(0)} s (cap)`);
      }
      await flushConntrack(lbNs);
      return { peer, programSeconds: elapsed(), stop: () => clearNft(lbNs) };
    }
  }
}

/**
 * Empty the lb namespace's netfilter conntrack table (entries of an earlier
 * peer's run would change what the next one does). conntrack(8) comes with
 * `setup.sh --bench`; without it the table is left as it is (the flows of a
 * run are all warmed up anyway).
 */
async function flushConntrack(ns: string): Promise<void> {
  let tool: string;
  try {
    tool = toolPath('conntrack');
  } catch {
    return;
  }
  await new Promise<void>((resolve) => execFile('ip', ['netns', 'exec', ns, tool, '-F'], () => resolve()));
}
