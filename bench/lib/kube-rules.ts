/**
 * kube-proxy's rule sets, generated as kube-proxy writes them, and loaded into
 * a network namespace with the tools kube-proxy uses: the baselines sluice is
 * compared with.
 *
 * iptables mode (pkg/proxy/iptables/proxier.go): one iptables-restore input
 * holding the filter and nat tables. KUBE-SERVICES (jumped to from
 * PREROUTING and OUTPUT) matches each service port's cluster IP and jumps to
 * its KUBE-SVC-<hash> chain, which picks an endpoint with `-m statistic
 * --mode random --probability 1/(n-i)` rules (the last unconditional) and
 * jumps to that endpoint's KUBE-SEP-<hash> chain, which DNATs. Packets
 * marked by KUBE-MARK-MASQ are masqueraded by KUBE-POSTROUTING. A partial
 * sync (one service's endpoints changed) rewrites KUBE-SERVICES, the changed
 * service's chains, and deletes the chains of endpoints that went away,
 * through iptables-restore --noflush.
 *
 * nftables mode (pkg/proxy/nftables/proxier.go): `table ip kube-proxy`, a
 * `service-ips` verdict map keyed by `daddr . l4proto . dport` going to a
 * chain per service port, which picks an endpoint chain with `numgen random
 * mod N vmap`; each endpoint chain DNATs. A partial sync flushes and rewrites
 * the changed service's chains in one `nft -f` transaction.
 *
 * The shapes follow kube-proxy's own expected outputs (proxier_test.go);
 * NodePorts, external and load-balancer IPs, session affinity and topology
 * are left out: the benchmark's services are ClusterIP services.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';

/** One service port of a ClusterIP service and its ready endpoints. */
export interface KubeService {
  /** "namespace/name" (a bare name is in namespace "default"). */
  name: string;
  /** The cluster IP. */
  vip: string;
  port: number;
  protocol: 'tcp' | 'udp';
  /** The endpoints, each an address and the target port. */
  endpoints: Array<{ ip: string; port: number }>;
  /** The service port's name; `p<port>` by default. */
  portName?: string;
}

/** What a cluster adds to the rules besides its services. */
export interface KubeRulesOptions {
  /**
   * The cluster (pod) CIDR given to kube-proxy (`--cluster-cidr`): traffic to a
   * cluster IP from outside it is marked for masquerade, as kube-proxy's local
   * detector does. Without it no such rule is written (kube-proxy without a
   * local detector).
   */
  clusterCidr?: string;
  /** The service CIDR (nftables mode drops traffic to unallocated cluster IPs in it). Default 10.96.0.0/12. */
  serviceCidr?: string;
}

/** What a partial sync knows besides the changed service. */
export interface KubeChangeOptions extends KubeRulesOptions {
  /** The service as it was before: chains of endpoints it no longer has are deleted. */
  previous?: KubeService;
  /**
   * Every service of the cluster (the changed one included). kube-proxy's
   * partial iptables sync rewrites KUBE-SERVICES in full; without this list
   * KUBE-SERVICES is left as it is, which is less work than kube-proxy does.
   * It also decides kube-proxy's large-cluster mode (over 1,000 endpoints).
   */
  services?: readonly KubeService[];
}

/** Which iptables backend runs iptables-restore. */
export type IptablesVariant = 'legacy' | 'nft';

/** How long a tool took, or that it was killed at the timeout. */
export type ApplyResult = { seconds: number } | { timedOut: true; seconds: number };

// kube-proxy's constants (pkg/proxy/iptables/proxier.go).
const MASQ_BIT = '0x4000';
const LARGE_CLUSTER_ENDPOINTS = 1000;
const DEFAULT_SERVICE_CIDR = '10.96.0.0/12';

// ---------------------------------------------------------------------------
// Names

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (Go's base32.StdEncoding) of the first `chars` characters' worth of bytes. */
function base32Prefix(bytes: Buffer, chars: number): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
    if (out.length >= chars) break;
  }
  return out;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/** kube-proxy's ServicePortName.String(): "namespace/name:portName". */
function servicePortName(s: KubeService): string {
  const full = s.name.includes('/') ? s.name : `default/${s.name}`;
  return `${full}:${s.portName ?? `p${s.port}`}`;
}

/** KUBE-SVC-<first 16 base32 characters of sha256(servicePortName + protocol)>. */
export function iptablesServiceChain(s: KubeService): string {
  return `KUBE-SVC-${base32Prefix(sha256(servicePortName(s) + s.protocol), 16)}`;
}

/** KUBE-SEP-<first 16 base32 characters of sha256(servicePortName + protocol + "ip:port")>. */
export function iptablesEndpointChain(s: KubeService, ep: { ip: string; port: number }): string {
  return `KUBE-SEP-${base32Prefix(sha256(servicePortName(s) + s.protocol + `${ep.ip}:${ep.port}`), 16)}`;
}

/** The nftables-mode name base: "<8 base32 of sha256(name)>-<name>". */
function hashAndTruncate(name: string): string {
  return `${base32Prefix(sha256(name), 8)}-${name}`;
}

function nftServiceBase(s: KubeService): string {
  const full = s.name.includes('/') ? s.name : `default/${s.name}`;
  return `${full}/${s.protocol}/${s.portName ?? `p${s.port}`}`;
}

/** service-<hash>-namespace/name/protocol/portName */
export function nftServiceChain(s: KubeService): string {
  return `service-${hashAndTruncate(nftServiceBase(s))}`;
}

/** endpoint-<hash>-namespace/name/protocol/portName__ip/port */
export function nftEndpointChain(s: KubeService, ep: { ip: string; port: number }): string {
  return `endpoint-${hashAndTruncate(`${nftServiceBase(s)}__${ep.ip}/${ep.port}`)}`;
}

// ---------------------------------------------------------------------------
// iptables

/** kube-proxy's probability: 1/n printed with ten decimals. */
function probability(n: number): string {
  return (1 / n).toFixed(10);
}

/** A quoted comment argument, as kube-proxy writes it (quotes only when it has spaces). */
function comment(text: string): string {
  return `-m comment --comment ${/\s/.test(text) ? `"${text}"` : text}`;
}

function totalEndpoints(services: readonly KubeService[]): number {
  let n = 0;
  for (const s of services) n += s.endpoints.length;
  return n;
}

const FILTER_CHAINS = ['KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL', 'KUBE-SERVICES'];
const NAT_CHAINS = ['KUBE-MARK-MASQ', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-SERVICES'];

/** The jumps from the built-in chains that kube-proxy ensures before it restores. */
const FILTER_JUMPS = [
  '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
  '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
  '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
  '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
  '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
  '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
  '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
  '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
];
const NAT_JUMPS = [
  '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
];
const FORWARD_RULES = [
  '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
  `-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark ${MASQ_BIT}/${MASQ_BIT} -j ACCEPT`,
  '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
];
const MASQ_RULES = [
  `-A KUBE-POSTROUTING -m mark ! --mark ${MASQ_BIT}/${MASQ_BIT} -j RETURN`,
  `-A KUBE-POSTROUTING -j MARK --xor-mark ${MASQ_BIT}`,
  '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  `-A KUBE-MARK-MASQ -j MARK --or-mark ${MASQ_BIT}`,
];
const NODEPORTS_LAST = '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS';

/** The restore input's pieces: chain declarations and rules of each table. */
interface Tables {
  filterChains: string[];
  filterRules: string[];
  natChains: string[];
  natRules: string[];
}

/** A service port's KUBE-SERVICES rule (nat, or filter's REJECT when it has no endpoints). */
function writeServicePortal(t: Tables, s: KubeService): void {
  const spn = servicePortName(s);
  const match = `-m ${s.protocol} -p ${s.protocol} -d ${s.vip} --dport ${s.port}`;
  if (s.endpoints.length === 0) {
    t.filterRules.push(`-A KUBE-SERVICES ${comment(`${spn} has no endpoints`)} ${match} -j REJECT`);
  } else {
    t.natRules.push(`-A KUBE-SERVICES ${comment(`${spn} cluster IP`)} ${match} -j ${iptablesServiceChain(s)}`);
  }
}

/** A service port's KUBE-SVC chain and its KUBE-SEP chains. */
function writeServiceChains(t: Tables, s: KubeService, opts: KubeRulesOptions, largeCluster: boolean): void {
  if (s.endpoints.length === 0) return;
  const spn = servicePortName(s);
  const svc = iptablesServiceChain(s);
  // kube-proxy drops the per-rule comments in large clusters (over 1,000 endpoints).
  const note = (text: string): string => (largeCluster ? '' : ` ${comment(text)}`);
  t.natChains.push(`:${svc} - [0:0]`);
  if (opts.clusterCidr !== undefined) {
    t.natRules.push(`-A ${svc} ${comment(`${spn} cluster IP`)} -m ${s.protocol} -p ${s.protocol} -d ${s.vip} --dport ${s.port} ! -s ${opts.clusterCidr} -j KUBE-MARK-MASQ`);
  }
  const n = s.endpoints.length;
  s.endpoints.forEach((ep, i) => {
    const stat = i < n - 1 ? ` -m statistic --mode random --probability ${probability(n - i)}` : '';
    t.natRules.push(`-A ${svc}${note(`${spn} -> ${ep.ip}:${ep.port}`)}${stat} -j ${iptablesEndpointChain(s, ep)}`);
  });
  for (const ep of s.endpoints) {
    const sep = iptablesEndpointChain(s, ep);
    t.natChains.push(`:${sep} - [0:0]`);
    t.natRules.push(`-A ${sep}${note(spn)} -s ${ep.ip} -j KUBE-MARK-MASQ`);
    t.natRules.push(`-A ${sep}${note(spn)} -m ${s.protocol} -p ${s.protocol} -j DNAT --to-destination ${ep.ip}:${ep.port}`);
  }
}

function join(t: Tables, filterHead: string[], natHead: string[], natTail: string[]): string {
  return [
    '*filter', ...filterHead, ...t.filterChains, ...t.filterRules, 'COMMIT',
    '*nat', ...natHead, ...t.natChains, ...t.natRules, ...natTail, 'COMMIT',
    '',
  ].join('\n');
}

/**
 * The whole filter and nat tables for iptables-restore without --noflush
 * (which replaces both tables): built-in chains with kube-proxy's jumps,
 * kube-proxy's chains, and every service's chains.
 */
export function iptablesRestoreInput(services: readonly KubeService[], opts: KubeRulesOptions = {}): string {
  const largeCluster = totalEndpoints(services) > LARGE_CLUSTER_ENDPOINTS;
  const t: Tables = {
    filterChains: FILTER_CHAINS.map((c) => `:${c} - [0:0]`),
    filterRules: [...FILTER_JUMPS, ...FORWARD_RULES],
    natChains: NAT_CHAINS.map((c) => `:${c} - [0:0]`),
    natRules: [...NAT_JUMPS, ...MASQ_RULES],
  };
  for (const s of services) writeServicePortal(t, s);
  for (const s of services) writeServiceChains(t, s, opts, largeCluster);
  return join(t,
    [':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'],
    [':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]'],
    [NODEPORTS_LAST]);
}

/**
 * kube-proxy's partial sync after one service's endpoints changed, for
 * iptables-restore --noflush: its own top-level chains rewritten (with
 * `services`, KUBE-SERVICES in full), the changed service's KUBE-SVC and
 * KUBE-SEP chains rewritten, and the KUBE-SEP chains of endpoints that are
 * gone (from `previous`) deleted.
 */
export function iptablesChangeInput(service: KubeService, opts: KubeChangeOptions = {}): string {
  const all = opts.services?.map((s) => (sameServicePort(s, service) ? service : s));
  const largeCluster = totalEndpoints(all ?? [service]) > LARGE_CLUSTER_ENDPOINTS;
  const t: Tables = {
    filterChains: FILTER_CHAINS.filter((c) => all !== undefined || c !== 'KUBE-SERVICES').map((c) => `:${c} - [0:0]`),
    filterRules: [...FORWARD_RULES],
    natChains: NAT_CHAINS.filter((c) => all !== undefined || c !== 'KUBE-SERVICES').map((c) => `:${c} - [0:0]`),
    natRules: [...MASQ_RULES],
  };
  if (all) for (const s of all) writeServicePortal(t, s);
  writeServiceChains(t, service, opts, largeCluster);
  const keep = new Set(service.endpoints.map((ep) => `${ep.ip}:${ep.port}`));
  const gone = (opts.previous?.endpoints ?? []).filter((ep) => !keep.has(`${ep.ip}:${ep.port}`));
  for (const ep of gone) {
    const sep = iptablesEndpointChain(service, ep);
    t.natChains.push(`:${sep} - [0:0]`);
    t.natRules.push(`-X ${sep}`);
  }
  if (service.endpoints.length === 0 && opts.previous && opts.previous.endpoints.length > 0) {
    const svc = iptablesServiceChain(service);
    t.natChains.push(`:${svc} - [0:0]`);
    t.natRules.push(`-X ${svc}`);
  }
  return join(t, [], [], all ? [NODEPORTS_LAST] : []);
}

function sameServicePort(a: KubeService, b: KubeService): boolean {
  return servicePortName(a) === servicePortName(b) && a.protocol === b.protocol;
}

// ---------------------------------------------------------------------------
// nftables

const NFT_TABLE = 'ip kube-proxy';

/** The table's fixed part, as kube-proxy's setupNFTables writes it. */
function nftBase(serviceCidr: string): string[] {
  const t = NFT_TABLE;
  const vmap3 = 'type ipv4_addr . inet_proto . inet_service : verdict';
  const vmap2 = 'type inet_proto . inet_service : verdict';
  return [
    `add table ${t} { comment "rules for kube-proxy" ; }`,
    `add set ${t} cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }`,
    `add set ${t} nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }`,
    `add map ${t} firewall-ips { ${vmap3} ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }`,
    `add map ${t} no-endpoint-nodeports { ${vmap2} ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }`,
    `add map ${t} no-endpoint-services { ${vmap3} ; comment "vmap to drop or reject packets to services with no endpoints" ; }`,
    `add map ${t} service-ips { ${vmap3} ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`,
    `add map ${t} service-nodeports { ${vmap2} ; comment "NodePort traffic" ; }`,
    `add chain ${t} cluster-ips-check`,
    `add chain ${t} filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }`,
    `add chain ${t} filter-output-pre-dnat { type filter hook output priority -110 ; }`,
    `add chain ${t} filter-forward { type filter hook forward priority 0 ; }`,
    `add chain ${t} filter-input { type filter hook input priority 0 ; }`,
    `add chain ${t} filter-output { type filter hook output priority 0 ; }`,
    `add chain ${t} firewall-check`,
    `add chain ${t} mark-for-masquerade`,
    `add chain ${t} masquerading`,
    `add chain ${t} nat-output { type nat hook output priority -100 ; }`,
    `add chain ${t} nat-postrouting { type nat hook postrouting priority 100 ; }`,
    `add chain ${t} nat-prerouting { type nat hook prerouting priority -100 ; }`,
    `add chain ${t} nodeport-endpoints-check`,
    `add chain ${t} reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }`,
    `add chain ${t} services`,
    `add chain ${t} service-endpoints-check`,
    `add rule ${t} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`,
    `add rule ${t} cluster-ips-check ip daddr { ${serviceCidr} } drop comment "Drop traffic to unallocated ClusterIPs"`,
    `add rule ${t} filter-prerouting-pre-dnat ct state new jump firewall-check`,
    `add rule ${t} filter-forward ct state new jump service-endpoints-check`,
    `add rule ${t} filter-forward ct state new jump cluster-ips-check`,
    `add rule ${t} filter-input ct state new jump nodeport-endpoints-check`,
    `add rule ${t} filter-input ct state new jump service-endpoints-check`,
    `add rule ${t} filter-output ct state new jump service-endpoints-check`,
    `add rule ${t} filter-output-pre-dnat ct state new jump firewall-check`,
    `add rule ${t} filter-output ct state new jump cluster-ips-check`,
    `add rule ${t} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips`,
    `add rule ${t} mark-for-masquerade mark set mark or ${MASQ_BIT}`,
    `add rule ${t} masquerading mark and ${MASQ_BIT} == 0 return`,
    `add rule ${t} masquerading mark set mark xor ${MASQ_BIT}`,
    `add rule ${t} masquerading masquerade fully-random`,
    `add rule ${t} nat-output jump services`,
    `add rule ${t} nat-postrouting jump masquerading`,
    `add rule ${t} nat-prerouting jump services`,
    `add rule ${t} nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports`,
    `add rule ${t} reject-chain reject`,
    `add rule ${t} services ip daddr . meta l4proto . th dport vmap @service-ips`,
    `add rule ${t} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports`,
    `add rule ${t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services`,
  ];
}

/**
 * A service port's chain and endpoint chains: every chain declared first
 * (flushed when `flush`), as kube-proxy's ensureChain does, since a vmap
 * may only name chains that exist; then the rules.
 */
function nftServiceChains(out: string[], s: KubeService, opts: KubeRulesOptions, flush: boolean): void {
  if (s.endpoints.length === 0) return;
  const t = NFT_TABLE;
  const svc = nftServiceChain(s);
  const eps = s.endpoints.map((ep) => ({ ep, chain: nftEndpointChain(s, ep) }));
  for (const chain of [svc, ...eps.map((e) => e.chain)]) {
    out.push(`add chain ${t} ${chain}`);
    if (flush) out.push(`flush chain ${t} ${chain}`);
  }
  if (opts.clusterCidr !== undefined) {
    out.push(`add rule ${t} ${svc} ip daddr ${s.vip} ip saddr != ${opts.clusterCidr} jump mark-for-masquerade`);
  }
  const arms = eps.map((e, i) => `${i} : goto ${e.chain}`).join(' , ');
  out.push(`add rule ${t} ${svc} numgen random mod ${eps.length} vmap { ${arms} }`);
  for (const { ep, chain } of eps) {
    out.push(`add rule ${t} ${chain} ip saddr ${ep.ip} jump mark-for-masquerade`);
    out.push(`add rule ${t} ${chain} meta l4proto ${s.protocol} dnat to ${ep.ip}:${ep.port}`);
  }
}

/** A service port's elements of the cluster-ips set and the service-ips / no-endpoint-services maps. */
function nftServiceElements(out: string[], s: KubeService, vips: Set<string>): void {
  const t = NFT_TABLE;
  if (!vips.has(s.vip)) {
    vips.add(s.vip);
    out.push(`add element ${t} cluster-ips { ${s.vip} }`);
  }
  const key = `${s.vip} . ${s.protocol} . ${s.port}`;
  if (s.endpoints.length === 0) {
    out.push(`add element ${t} no-endpoint-services { ${key} comment "${servicePortName(s)}" : goto reject-chain }`);
  } else {
    out.push(`add element ${t} service-ips { ${key} : goto ${nftServiceChain(s)} }`);
  }
}

/** `nft -f` input creating `table ip kube-proxy` with every service, into a namespace without it. */
export function nftRuleset(services: readonly KubeService[], opts: KubeRulesOptions = {}): string {
  const out = nftBase(opts.serviceCidr ?? DEFAULT_SERVICE_CIDR);
  const vips = new Set<string>();
  for (const s of services) {
    nftServiceChains(out, s, opts, false);
    nftServiceElements(out, s, vips);
  }
  out.push('');
  return out.join('\n');
}

/**
 * kube-proxy's partial sync of one service whose endpoints changed, one
 * `nft -f` transaction: its service and endpoint chains flushed and
 * rewritten, the chains of endpoints that are gone (from `previous`) flushed
 * and deleted. Its map elements stay: the cluster IP and port did not change.
 */
export function nftChange(service: KubeService, opts: KubeChangeOptions = {}): string {
  const t = NFT_TABLE;
  const out: string[] = [];
  nftServiceChains(out, service, opts, true);
  const keep = new Set(service.endpoints.map((ep) => `${ep.ip}:${ep.port}`));
  for (const ep of opts.previous?.endpoints ?? []) {
    if (keep.has(`${ep.ip}:${ep.port}`)) continue;
    const chain = nftEndpointChain(service, ep);
    out.push(`flush chain ${t} ${chain}`, `delete chain ${t} ${chain}`);
  }
  out.push('');
  return out.join('\n');
}

// ---------------------------------------------------------------------------
// Loading

/** The absolute path of a tool in the sbin/bin directories; an error when it is missing. */
export function toolPath(name: string): string {
  for (const dir of ['/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
    if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  throw new Error(`${name} is not installed (looked in /usr/sbin, /sbin, /usr/bin, /bin)`);
}

/** The iptables-restore of a variant. */
export function iptablesRestoreTool(variant: IptablesVariant): string {
  return variant === 'legacy' ? 'iptables-legacy-restore' : 'iptables-nft-restore';
}

/**
 * Run a tool inside a namespace with `input` on its stdin; time it from
 * spawn to exit. At the timeout it is killed (SIGKILL) and reported as
 * timed out; a non-zero exit is an error carrying its stderr.
 */
async function runIn(ns: string, tool: string, args: string[], input: string, timeoutMs: number): Promise<ApplyResult> {
  const path = toolPath(tool);
  const started = performance.now();
  const child = spawn('ip', ['netns', 'exec', ns, path, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    if (stderr.length < 4096) stderr += b.toString();
  });
  // A tool that dies early closes its stdin: the error is in its exit status.
  child.stdin.on('error', () => undefined);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  child.stdin.end(input);
  try {
    const { code, signal } = await done;
    const seconds = (performance.now() - started) / 1000;
    if (timedOut) return { timedOut: true, seconds };
    if (code !== 0) {
      throw new Error(`ip netns exec ${ns} ${tool} ${args.join(' ')}: exit ${code ?? signal}: ${stderr.trim().slice(0, 2000)}`);
    }
    return { seconds };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Load an iptables-restore input into a namespace with the variant's
 * iptables-restore (`--noflush` for a partial sync). Waits for the xtables
 * lock (shared by every namespace) up to the timeout.
 */
export function applyIptables(
  ns: string, variant: IptablesVariant, input: string,
  opts: { noflush?: boolean; timeoutMs?: number } = {},
): Promise<ApplyResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const args = ['-w', String(Math.max(1, Math.ceil(timeoutMs / 1000)))];
  if (opts.noflush) args.push('--noflush');
  return runIn(ns, iptablesRestoreTool(variant), args, input, timeoutMs);
}

/** Load an `nft -f` input into a namespace (one transaction). */
export function applyNft(ns: string, input: string, opts: { timeoutMs?: number } = {}): Promise<ApplyResult> {
  return runIn(ns, 'nft', ['-f', '-'], input, opts.timeoutMs ?? 60_000);
}

/** Empty the filter and nat tables of a namespace (the built-in chains stay, accepting). */
export async function clearIptables(ns: string, variant: IptablesVariant): Promise<void> {
  const input = [
    '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', 'COMMIT',
    '*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', 'COMMIT',
    '',
  ].join('\n');
  await applyIptables(ns, variant, input, { timeoutMs: 120_000 });
}

/** Remove `table ip kube-proxy` from a namespace (fine when it is not there). */
export async function clearNft(ns: string): Promise<void> {
  await applyNft(ns, `add table ${NFT_TABLE}\ndelete table ${NFT_TABLE}\n`, { timeoutMs: 120_000 });
}
