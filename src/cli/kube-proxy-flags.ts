/**
 * The flags of `sluice kube-proxy`: kube-proxy's own names where kube-proxy
 * has the option, sluice's for the rest. One table for help, parsing and
 * the messages that name a flag; light, like daemon-flags.ts.
 */
import { CONNTRACK_FLAGS, type ConntrackFlags } from './conntrack-flags.js';
import { CAPACITY_FLAGS, bindAddress, listenAddress, type CapacityFlags, type DaemonFlag } from './daemon-flags.js';
import { UsageError } from './output.js';

/** The agent's flags as commander gives them. */
export interface KubeProxyFlags extends CapacityFlags, ConntrackFlags {
  kubeconfig?: string;
  hostnameOverride?: string;
  healthzBindAddress?: string;
  metricsBindAddress?: string;
  nodeportAddresses?: string[];
  clusterCidr?: string[];
  mode?: 'xdp' | 'tc';
  pinDir?: string;
  stateDir?: string;
  netns?: string;
  interface?: string[];
  podInterfaces?: string[];
  socketLb?: string;
  listen?: string;
  minSyncPeriod?: number;
  logLevel?: string;
  exitWithParent?: boolean;
  cleanup?: boolean;
}

/** One flag of the agent: the daemon's shape (field: the KubeProxyOptions field errors name it by). */
export type KubeProxyFlag = DaemonFlag;

/** A Go-style duration as kube-proxy takes it ("1s", "250ms", "1m30s", "0") → ms. */
export function parseDuration(flag: string, v: string): number {
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (v === '0') return 0;
  const parts = [...v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== v) throw new UsageError(`--${flag}: must be a duration like 1s, 250ms or 1m30s, got ${v}`);
  return parts.reduce((ms, p) => ms + Number(p[1]) * unit[p[2]!]!, 0);
}

const list = (v: string, prev: unknown): string[] => [...((prev as string[] | undefined) ?? []), ...v.split(',').map((x) => x.trim()).filter((x) => x !== '')];

export const KUBE_PROXY_FLAGS: readonly KubeProxyFlag[] = [
  { flags: '--kubeconfig <file>', field: 'kubeconfig', description: 'kubeconfig of the API server (default: the in-cluster configuration: service account token and KUBERNETES_SERVICE_HOST)' },
  { flags: '--hostname-override <name>', field: 'hostnameOverride', description: 'this node\'s name in the API: its Node gives the node port addresses (default: the host name)' },
  { flags: '--healthz-bind-address <host:port>', field: 'healthzBindAddress', description: '/healthz and /livez, as kube-proxy serves them: host:port or [v6]:port (default 0.0.0.0:10256; "" turns them off)', parse: bindAddress('--healthz-bind-address', 10256) },
  { flags: '--metrics-bind-address <host:port>', field: 'metricsBindAddress', description: 'Prometheus /metrics: host:port or [v6]:port (default 127.0.0.1:10249; "" turns it off)', parse: bindAddress('--metrics-bind-address', 10249) },
  { flags: '--nodeport-addresses <cidrs>', field: 'nodePortAddresses', description: 'node ports only on the Node\'s addresses in these CIDRs, comma-separated (IPv4 or IPv6), or primary (its first address of each family) (default: all of its InternalIP and ExternalIP addresses)', parse: list },
  { flags: '--cluster-cidr <cidrs>', field: 'clusterCidr', description: 'the pods\' CIDRs of either family, comma-separated (checked and logged; see README: kube-proxy mode)', parse: list },
  { flags: '--mode <mode>', field: 'mode', description: 'the hook on the node\'s external interfaces: xdp (native) or tc (default xdp); pod interfaces always use tc', choices: ['xdp', 'tc'] },
  { flags: '--pin-dir <dir>', field: 'pinDir', description: 'bpffs directory of the pinned maps, locked (default /sys/fs/bpf/sluice)' },
  { flags: '--state-dir <dir>', field: 'stateDir', description: 'the node\'s store (SQLite) and lock (default /var/lib/sluice)' },
  { flags: '--netns <path>', field: 'netns', description: 'attach inside this network namespace (the node), while the API server is reached from where the process runs' },
  { flags: '--interface <if>', field: 'interfaces', description: 'an external interface, for node ports and load balancer IPs (repeat for more; default: those with a default route)', parse: (v, prev) => [...((prev as string[] | undefined) ?? []), v] },
  { flags: '--pod-interfaces <globs>', field: 'podInterfaces', description: 'name patterns of the pods\' host-side links, comma-separated, attached at tc (ingress and egress) as they come and go (default veth*; Calico cali*, Cilium lxc*; \"\" turns it off)', parse: list },
  { flags: '--socket-lb <cgroup>', field: 'socketLb', description: 'balance the node\'s own processes at connect()/sendmsg(): the cgroup v2 directory they run under, only sockets of the node\'s namespace (default: the cgroup v2 root, /sys/fs/cgroup or /sys/fs/cgroup/unified; "" turns it off)' },
  ...CAPACITY_FLAGS,
  ...CONNTRACK_FLAGS,
  { flags: '--listen <address>', field: 'listen', description: 'sluice\'s API for `sluice stats`, `flow lookup`, `conntrack list`: unix:///path, host:port or [v6]:port (default unix:///run/sluice/sluice.sock)', parse: listenAddress },
  { flags: '--min-sync-period <duration>', field: 'minSyncMs', description: 'least time between two syncs; changes in between are written together (default 100ms; a lone change is written at once)', parse: (v) => parseDuration('min-sync-period', v) },
  { flags: '--log-level <level>', field: 'logLevel', description: 'fatal, error, warn, info (default), debug, trace or silent', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  { flags: '--cleanup', description: 'take sluice off this node and exit: detach its programs from every interface (of --netns), remove the maps pinned in --pin-dir and the store in --state-dir; refused while a daemon runs on them. The other flags are ignored' },
  { flags: '--exit-with-parent', description: 'stop when the parent process dies (for the demo and tests)', hidden: true },
  // kube-proxy's, carried over from its manifests: say what sluice has instead.
  { flags: '--conntrack-tcp-timeout-close-wait <duration>', description: 'kube-proxy\'s; not sluice\'s', hidden: true, parse: () => { throw new UsageError('--conntrack-tcp-timeout-close-wait: kube-proxy\'s timeout of the kernel\'s CLOSE_WAIT state, which sluice\'s own table does not use; its closing flows (a FIN or RST seen) expire after --conntrack-tcp-timeout-close (default 10s): drop the flag, or give that one'); } },
];
