/**
 * The flags of `sluice daemon`, in one table, so that help, parsing and the
 * messages that name a flag agree. Light on purpose: `sluice --help` reads
 * it without loading the daemon.
 */
import type { AttachMode } from '../dataplane/dataplane.js';
import { CAPACITY_RANGE } from '../daemon/capacity.js';
import { CONNTRACK_FLAGS, type ConntrackFlags } from './conntrack-flags.js';
import { checkHostPort } from './host-port.js';
import { UsageError } from './output.js';
import { canonicalAddress, familyOf } from '../model/address.js';
import { DEFAULT_DNS_ZONE, DNS_TTL_DEFAULT_S, DNS_TTL_MAX_S } from '../dns/names.js';

/** The capacity flags as commander gives them (the daemon's and the agent's). */
export interface CapacityFlags {
  conntrackSize?: number;
  affinitySize?: number;
  maxFrontends?: number;
  maxBackends?: number;
  maglevSlots?: number;
  socketLbSize?: number;
}

/** The daemon's flags as commander gives them. */
export interface DaemonFlags extends CapacityFlags, ConntrackFlags {
  interface?: string[];
  followInterfaces?: string[];
  hairpinSnatAddress?: string | null;
  socketLb?: string;
  mode?: AttachMode;
  listen?: string;
  metricsBindAddress?: string;
  requireClientCert?: boolean;
  stateDir?: string;
  pinDir?: string;
  detachOnExit?: boolean;
  force?: boolean;
  adoptDataplane?: boolean;
  resetDataplane?: boolean;
  logLevel?: string;
  exitWithParent?: boolean;
  store?: string;
  storeCa?: string;
  storeCert?: string;
  storeKey?: string;
  storePrefix?: string;
  statelessReplies?: boolean;
  dnsBindAddress?: string;
  dnsZone?: string;
  dnsTtl?: number;
  healthNetns?: string;
}

/** One flag of the daemon. */
export interface DaemonFlag {
  flags: string;
  description: string;
  /** DaemonOptions field (or capacity.<name>, tls.<name>) that errors name this flag by. */
  field?: string;
  choices?: string[];
  parse?: (value: string, previous: unknown) => unknown;
  hidden?: boolean;
}

function count(flag: string, r: { min: number; max: number }) {
  return (v: string): number => {
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < r.min || n > r.max) throw new UsageError(`--${flag}: must be an integer in ${r.min}..${r.max}, got ${v}`);
    return n;
  };
}

/** A listener's host:port or [v6]:port, or "" for none (off). */
export function bindAddress(flag: string, examplePort: number) {
  return (v: string): string => (v === '' ? '' : checkHostPort(v, { flag, forms: 'host:port or [v6]:port', examplePort, minPort: 0, also: ', or "" to turn it off' }));
}

/** The API's address: a unix socket (checked by the daemon: an absolute path) or host:port or [v6]:port. */
export function listenAddress(v: string): string {
  if (v.startsWith('unix://')) return v;
  return checkHostPort(v, { flag: '--listen', forms: 'unix:///absolute/path, host:port or [v6]:port', examplePort: 19470, minPort: 0 });
}

/**
 * The IPv4 hairpin address, or null (off). The address itself is checked
 * by the daemon (its range); an IPv6 one is said here, since the IPv6
 * hairpin address has no flag.
 */
function hairpinAddress(v: string): string | null {
  if (v === 'off') return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(canonicalAddress(v) ?? '');
  if (mapped) throw new UsageError(`--hairpin-snat-address: ${v} is an IPv4-mapped address: write it as the IPv4 address ${mapped[1]}`);
  if (familyOf(v) === 6) {
    throw new UsageError(`--hairpin-snat-address: takes an IPv4 address of the node, and ${v} is IPv6; the IPv6 hairpin address is set by kube-proxy mode (sluice kube-proxy), from the Node's first IPv6 address`);
  }
  return v;
}

/** 2097152 → "2,097,152" (by hand: toLocaleString would load ICU, megabytes of the daemon's RSS). */
const fmt = (n: number): string => String(n).replace(/\B(?=(\d{3})+$)/g, ',');

/**
 * The flags of the map capacities (src/daemon/capacity.ts), shared by the
 * daemon and the agent. Each default says what it holds in README's "Map
 * sizes"; `sluice stats` shows how full each map is.
 */
export const CAPACITY_FLAGS: readonly DaemonFlag[] = [
  { flags: '--conntrack-size <n>', field: 'capacity.conntrack', description: `conntrack entries, two per flow (default ${fmt(CAPACITY_RANGE.conntrack.default)}, or the pinned map's)`, parse: count('conntrack-size', CAPACITY_RANGE.conntrack) },
  { flags: '--conntrack6-size <n>', field: 'capacity.conntrack6', description: `IPv6 conntrack entries, two per flow (default ${fmt(CAPACITY_RANGE.conntrack6.default)}, or the pinned map's)`, parse: count('conntrack6-size', CAPACITY_RANGE.conntrack6) },
  { flags: '--affinity-size <n>', field: 'capacity.affinity', description: `ClientIP affinity entries (default ${fmt(CAPACITY_RANGE.affinity.default)}, or the pinned map's)`, parse: count('affinity-size', CAPACITY_RANGE.affinity) },
  { flags: '--max-frontends <n>', field: 'capacity.frontends', description: `frontends (VIP x port x protocol) over all services (default ${fmt(CAPACITY_RANGE.frontends.default)}, or the pinned map's)`, parse: count('max-frontends', CAPACITY_RANGE.frontends) },
  { flags: '--max-backends <n>', field: 'capacity.backends', description: `backend entries, one per backend of each frontend (default ${fmt(CAPACITY_RANGE.backends.default)}, or the pinned map's)`, parse: count('max-backends', CAPACITY_RANGE.backends) },
  { flags: '--maglev-slots <n>', field: 'capacity.maglevSlots', description: `slots for all Maglev tables, 4 bytes each (default ${fmt(CAPACITY_RANGE.maglevSlots.default)}, or the pinned map's)`, parse: count('maglev-slots', CAPACITY_RANGE.maglevSlots) },
  { flags: '--socket-lb-size <n>', field: 'capacity.sockets', description: `sockets of the node's processes connected to a VIP that the socket LB remembers (default ${fmt(CAPACITY_RANGE.sockets.default)}, or the pinned map's)`, parse: count('socket-lb-size', CAPACITY_RANGE.sockets) },
];

/** Every flag of `sluice daemon`. The TLS files are the global --tls-cert, --tls-key and --tls-ca. */
export const DAEMON_FLAGS: readonly DaemonFlag[] = [
  { flags: '--interface <if[@netns]>', field: 'interfaces', description: 'attach to this interface (repeat for more); IF@/var/run/netns/NAME for one inside a namespace', parse: (v, prev) => [...((prev as string[] | undefined) ?? []), v] },
  { flags: '--follow-interfaces <glob[@netns]>', field: 'followInterfaces', description: 'attach tc (ingress and egress) to every interface whose name matches, now and as they appear, e.g. veth* for pods\' links (kube-proxy mode; also cali*, lxc*); GLOB@/var/run/netns/NAME for a namespace; repeat for more; turns stateless replies off', parse: (v, prev) => [...((prev as string[] | undefined) ?? []), v] },
  { flags: '--hairpin-snat-address <ipv4|off>', field: 'hairpinSnatAddress', description: 'source-NAT a pod that reaches itself through its service to this IPv4 address of the node (off: none; default: as the pinned dataplane has it); kube-proxy mode sets the IPv6 one from the Node', parse: hairpinAddress },
  { flags: '--socket-lb <cgroup[@netns]>', field: 'socketLb', description: 'balance the node\'s own processes at connect()/sendmsg(): the cgroup v2 directory whose processes are translated (e.g. /sys/fs/cgroup), for sockets of the daemon\'s namespace or the one after @' },
  { flags: '--mode <mode>', field: 'mode', description: 'xdp (native), xdp-generic or tc (default xdp)', choices: ['xdp', 'xdp-generic', 'tc'] },
  { flags: '--listen <address>', field: 'listen', description: 'where the API listens: unix:///path (default unix:///run/sluice/sluice.sock, mode 0600), host:port or [v6]:port, e.g. 127.0.0.1:19470 or [::1]:19470', parse: listenAddress },
  { flags: '--metrics-bind-address <host:port>', field: 'metricsBindAddress', description: 'Prometheus /metrics (and the status page) over HTTP, no TLS: host:port or [v6]:port, e.g. [::1]:9469 (default 127.0.0.1:9469; "" turns it off)', parse: bindAddress('--metrics-bind-address', 9469) },
  { flags: '--require-client-cert', field: 'tls.requireClientCert', description: 'mutual TLS: refuse clients without a certificate signed by --tls-ca' },
  { flags: '--state-dir <dir>', field: 'stateDir', description: 'the store\'s directory, locked by the daemon (default /var/lib/sluice)' },
  { flags: '--pin-dir <dir>', field: 'pinDir', description: 'bpffs directory of the pinned maps, locked by the daemon (default /sys/fs/bpf/sluice)' },
  { flags: '--store <url>', field: 'store', description: 'where desired state lives: etcd://HOST:PORT[,HOST:PORT...] for an etcd cluster shared by several nodes (default: SQLite in --state-dir, for one node)' },
  { flags: '--store-ca <file>', field: 'storeTls.ca', description: 'TLS to etcd: the CA that signs its members\' certificates (PEM)' },
  { flags: '--store-cert <file>', field: 'storeTls.cert', description: 'TLS to etcd: this node\'s client certificate (PEM), with --store-key' },
  { flags: '--store-key <file>', field: 'storeTls.key', description: 'TLS to etcd: the client certificate\'s key (PEM)' },
  { flags: '--store-prefix <prefix>', field: 'storePrefix', description: 'the key prefix of sluice\'s state in the store (default /sluice); nodes that share it balance alike' },
  { flags: '--no-stateless-replies', field: 'statelessReplies', description: 'pass replies of flows this node has no entry for untouched, instead of restoring them by their backend endpoint (see README: scale-out)' },
  { flags: '--dns-bind-address <host:port>', field: 'dnsBindAddress', description: 'answer DNS for the services over UDP and TCP on this address: host:port or [v6]:port, e.g. 127.0.0.1:53 or [::1]:53 (default: no DNS server)', parse: bindAddress('--dns-bind-address', 5353) },
  { flags: '--dns-zone <zone>', field: 'dnsZone', description: `the zone of the services' names: service default/web is web.default.<zone> (default ${DEFAULT_DNS_ZONE})` },
  { flags: '--dns-ttl <seconds>', field: 'dnsTtl', description: `TTL of DNS answers, negative ones included (default ${DNS_TTL_DEFAULT_S})`, parse: count('dns-ttl', { min: 0, max: DNS_TTL_MAX_S }) },
  { flags: '--health-netns <path>', field: 'healthNetns', description: 'the network namespace health checks probe from, e.g. /var/run/netns/lb (default: the namespace of the --interface targets when they share one, else the daemon\'s own)' },
  { flags: '--detach-on-exit', description: 'detach the programs when the daemon stops (default: keep forwarding)' },
  ...CAPACITY_FLAGS,
  ...CONNTRACK_FLAGS,
  { flags: '--force', description: 'replace another program attached to an interface\'s hook (refused otherwise)' },
  { flags: '--adopt-dataplane', description: 'with an empty store, rebuild it from the pinned dataplane instead of refusing to start' },
  { flags: '--reset-dataplane', description: 'start from empty maps, dropping every connection (for an empty store over a live dataplane, or to change a map\'s size)' },
  { flags: '--log-level <level>', field: 'logLevel', description: 'fatal, error, warn, info (default), debug, trace or silent', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  { flags: '--exit-with-parent', description: 'stop when the parent process dies (for the demo and tests)', hidden: true },
  // The agent's flag, tried on the daemon: say how the daemon says it.
  { flags: '--netns <path>', description: 'the agent\'s; not the daemon\'s', hidden: true, parse: (v) => { throw new UsageError(`--netns: the daemon attaches inside a namespace interface by interface: --interface IF@${v.startsWith('/') ? v : `/var/run/netns/${v}`} (sluice kube-proxy takes --netns)`); } },
];

