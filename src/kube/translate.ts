/**
 * Kubernetes Services and EndpointSlices to sluice service definitions, as
 * kube-proxy reads them (pkg/proxy/serviceport.go, endpointslicecache.go,
 * topology.go). Pure: the same objects give the same definitions.
 *
 * One sluice service per Kubernetes service port (kube-proxy's
 * ServicePortName): a definition applies each of its ports to each of its
 * VIPs, while a Kubernetes port has its own endpoints' port number and its
 * own node port. `default/web` port `http` is `default/web:http` (an
 * unnamed port, allowed only alone, is `default/web`); its VIPs are the
 * cluster IPs, the external IPs and the load balancer's ingress IPs. Its
 * node port is a second service, `default/web:http/nodeport`, on the node's
 * addresses. Kubernetes names hold no "/" or ":", so neither form can be
 * mistaken for another service's.
 *
 * Dual stack: a service is served in the families of its cluster IPs, as
 * kube-proxy's per-family proxiers serve it (a proxier skips a service
 * without a cluster IP of its family, with its external IPs, ingress IPs,
 * node ports and endpoints of that family). One definition carries both
 * families' VIPs and backends; the model gives each VIP the backends of
 * its own family.
 */
import type { BackendDefinition, ServiceDefinition } from '../model/definition.js';
import type { Protocol } from '../model/service.js';
import { familyName, familyOfText, kubeIP, type Family } from './ip.js';
import type { KubeEndpointSlice, KubeService, KubeServicePort } from './objects.js';

/** Kubernetes' default ClientIP affinity timeout (API-server defaulting; kube-proxy relies on it). */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;

/** The owner of the services the kube-proxy mode writes. */
export const KUBE_OWNER = 'kubernetes';

/** What the node contributes to a translation. */
export interface NodeContext {
  /** The node's addresses (IPv4 and IPv6, in sluice's text) that carry node ports (--nodeport-addresses applied). */
  nodePortAddresses: readonly string[];
}

/** The definitions of one Kubernetes service, and what of it could not be programmed. */
export interface Translation {
  definitions: ServiceDefinition[];
  /** One line per thing left out, naming the port or endpoint ("port dns: SCTP is not balanced"). */
  problems: string[];
}

/** The sluice name of a Kubernetes service port. */
export function servicePortName(namespace: string, name: string, portName: string | undefined): string {
  return portName === undefined || portName === '' ? `${namespace}/${name}` : `${namespace}/${name}:${portName}`;
}

/** The sluice name of a service port's node port. */
export function nodePortName(portServiceName: string): string {
  return `${portServiceName}/nodeport`;
}

/**
 * The Kubernetes service ("namespace/name") a sluice service name belongs
 * to, if it is one the kube-proxy mode writes.
 */
export function kubeServiceOf(sluiceName: string): string | undefined {
  const m = /^([a-z0-9-]+)\/([a-z0-9-]+)(?::[a-z0-9-]+)?(?:\/nodeport)?$/.exec(sluiceName);
  return m ? `${m[1]}/${m[2]}` : undefined;
}

/** True if kube-proxy leaves the service alone: headless, or ExternalName. */
export function isSkipped(svc: KubeService): boolean {
  const ip = svc.spec?.clusterIP;
  return svc.spec?.type === 'ExternalName' || ip === undefined || ip === '' || ip === 'None';
}

/** An endpoint's standing for one service port: chosen by the best entry of its address. */
type Standing = 'ready' | 'terminating' | 'unused';

function standingOf(c: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null } | undefined): Standing {
  // Unset conditions: ready and serving true, terminating false (the API's meaning).
  const ready = c?.ready ?? true;
  const serving = c?.serving ?? true;
  const terminating = c?.terminating ?? false;
  if (ready && !terminating) return 'ready';
  if (serving && terminating) return 'terminating';
  return 'unused';
}

const RANK: Record<Standing, number> = { ready: 2, terminating: 1, unused: 0 };

/** A slice's usable part: its family and its endpoints' addresses in sluice's text (those that fit). */
interface UsableSlice {
  slice: KubeEndpointSlice;
  endpoints: Array<{ address: string; standing: Standing }>;
}

const SLICE_FAMILY: Record<string, Family> = { IPv4: 4, IPv6: 6 };

/**
 * The slices' endpoints of the service's families. A slice of another
 * address type (FQDN), of a family the service has no cluster IP of, or an
 * endpoint whose address is not of its slice's type is left out and
 * reported, once per slice.
 */
function usableSlices(slices: readonly KubeEndpointSlice[], families: ReadonlySet<Family>, problems: string[]): UsableSlice[] {
  const out: UsableSlice[] = [];
  for (const slice of slices) {
    const label = `EndpointSlice ${slice.metadata?.name ?? ''}`;
    const family = SLICE_FAMILY[slice.addressType ?? ''];
    if (family === undefined) {
      problems.push(`${label}: addressType ${slice.addressType ?? '(none)'} is not balanced (IPv4 and IPv6 are)`);
      continue;
    }
    if (!families.has(family)) {
      if ((slice.endpoints ?? []).length > 0) problems.push(`${label}: its ${familyName(family)} endpoints are left out: the service has no ${familyName(family)} cluster IP`);
      continue;
    }
    const endpoints: UsableSlice['endpoints'] = [];
    for (const ep of slice.endpoints ?? []) {
      const given = ep.addresses?.[0];
      if (given === undefined) continue;
      const ip = kubeIP(given);
      if (ip === undefined) {
        problems.push(`${label}: endpoint ${JSON.stringify(given)} left out: not an IP address`);
        continue;
      }
      if (ip.family !== family) {
        problems.push(`${label}: endpoint ${given} left out: it is ${familyName(ip.family)}, in a slice of addressType ${familyName(family)}`);
        continue;
      }
      endpoints.push({ address: ip.text, standing: standingOf(ep.conditions ?? undefined) });
    }
    out.push({ slice, endpoints });
  }
  return out;
}

/** The endpoints of one service port, merged over its slices, and the port number they listen on. */
interface PortEndpoints {
  targetPort: number | undefined;
  standing: Map<string, Standing>;
  problems: string[];
}

function endpointsOf(port: KubeServicePort, protocol: string, slices: readonly UsableSlice[]): PortEndpoints {
  const wanted = port.name ?? '';
  // Endpoints by the port number their slice gives this port name: slices
  // may disagree while a targetPort by name changes across pods, or
  // between the families' slices.
  const byNumber = new Map<number, Map<string, Standing>>();
  for (const { slice, endpoints } of slices) {
    const sp = slice.ports?.find((p) => (p.name ?? '') === wanted && (p.protocol ?? 'TCP') === protocol);
    if (!sp || typeof sp.port !== 'number' || sp.port <= 0) continue;
    let group = byNumber.get(sp.port);
    if (!group) byNumber.set(sp.port, (group = new Map()));
    for (const { address, standing: s } of endpoints) {
      const had = group.get(address);
      if (had === undefined || RANK[s] > RANK[had]) group.set(address, s);
    }
  }
  if (byNumber.size === 0) return { targetPort: undefined, standing: new Map(), problems: [] };
  // The number most endpoints use; the others are reported.
  const groups = [...byNumber.entries()].sort((a, b) => b[1].size - a[1].size || a[0] - b[0]);
  const [targetPort, standing] = groups[0]!;
  const dual = new Set(groups.flatMap(([, g]) => [...g.keys()].map(familyOfText))).size > 1;
  const problems = groups.slice(1).map(([n, g]) => `${g.size} ${dual ? groupFamily(g) : ''}endpoint(s) on port ${n} left out: this port's endpoints listen on ${targetPort}, and a sluice service port has one target port`);
  return { targetPort, standing, problems };
}

/** "IPv4 " or "IPv6 " for a group of one family's endpoints (the families' slices disagree), else "". */
function groupFamily(g: ReadonlyMap<string, Standing>): string {
  const fs = new Set([...g.keys()].map(familyOfText));
  return fs.size === 1 ? `${familyName([...fs][0]!)} ` : '';
}

/** IPv4 before IPv6, each in text order. */
function compareText(a: string, b: string): number {
  return familyOfText(a) - familyOfText(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * The backends of a port among `addresses`' families: ready endpoints,
 * else serving-and-terminating ones; the rest drain (TCP) or go (UDP).
 * Which endpoints serve is decided per family, as each family's proxier
 * decides it.
 */
function backendsOf(standing: Map<string, Standing>, protocol: Protocol, addresses: readonly string[], problems: string[]): BackendDefinition[] {
  const vips = new Set(addresses);
  const families = new Set(addresses.map(familyOfText));
  const serve = new Map<Family, Standing>();
  for (const f of families) serve.set(f, [...standing].some(([a, s]) => s === 'ready' && familyOfText(a) === f) ? 'ready' : 'terminating');
  const out: BackendDefinition[] = [];
  for (const [address, s] of [...standing.entries()].sort((a, b) => compareText(a[0], b[0]))) {
    const chosen = serve.get(familyOfText(address));
    if (chosen === undefined) continue;
    if (vips.has(address)) {
      problems.push(`endpoint ${address} left out: it is one of the port's own addresses`);
      continue;
    }
    if (s === chosen) out.push({ address, weight: 1, state: 'active' });
    // An endpoint not chosen keeps its TCP connections (kube-proxy leaves
    // them to end); a UDP flow has no end, so it moves at once.
    else if (protocol === 'tcp') out.push({ address, weight: 1, state: 'draining' });
  }
  return out;
}

/**
 * The sluice definitions of one Kubernetes service and its EndpointSlices
 * (those labelled with its name). A skipped service (headless,
 * ExternalName) has none.
 */
export function translateService(svc: KubeService, slices: Iterable<KubeEndpointSlice>, node: NodeContext): Translation {
  const definitions: ServiceDefinition[] = [];
  const problems: string[] = [];
  if (isSkipped(svc)) return { definitions, problems };
  const spec = svc.spec!;
  const ns = svc.metadata?.namespace ?? 'default';
  const name = svc.metadata?.name ?? '';
  // clusterIP is clusterIPs[0]; clusterIPs holds one address per family.
  const cluster = spec.clusterIPs && spec.clusterIPs.length > 0 ? spec.clusterIPs : [spec.clusterIP!];
  const ingress = (svc.status?.loadBalancer?.ingress ?? [])
    .filter((i) => i.ip !== undefined && i.ip !== '' && (i.ipMode === undefined || i.ipMode === 'VIP'))
    .map((i) => i.ip!);
  const families = new Set<Family>();
  for (const a of cluster) {
    const ip = kubeIP(a);
    if (ip) families.add(ip.family);
  }
  const vips: string[] = [];
  for (const [field, list] of [['clusterIPs', cluster], ['externalIPs', spec.externalIPs ?? []], ['status.loadBalancer.ingress', ingress]] as const) {
    for (const a of list) {
      const ip = kubeIP(a);
      if (ip === undefined) problems.push(`${field}: ${JSON.stringify(a)} left out: not an IP address`);
      else if (!families.has(ip.family)) problems.push(`${field}: ${a} left out: the service has no ${familyName(ip.family)} cluster IP`);
      else if (!vips.includes(ip.text)) vips.push(ip.text);
    }
  }
  const affinity =
    spec.sessionAffinity === 'ClientIP'
      ? { timeoutSeconds: spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS }
      : undefined;
  const sliceList = [...slices];
  const usable = usableSlices(sliceList, families, problems);
  // The node's addresses of the service's families.
  const nodeAddrs = node.nodePortAddresses.filter((a) => families.has(familyOfText(a)));
  for (const port of spec.ports ?? []) {
    const kubeProtocol = port.protocol ?? 'TCP';
    const base = servicePortName(ns, name, port.name);
    const label = port.name ? `port ${port.name}` : `port ${port.port}`;
    if (kubeProtocol !== 'TCP' && kubeProtocol !== 'UDP') {
      problems.push(`${label}: ${kubeProtocol} is not balanced (TCP and UDP are)`);
      continue;
    }
    const protocol: Protocol = kubeProtocol === 'TCP' ? 'tcp' : 'udp';
    const eps = endpointsOf(port, kubeProtocol, usable);
    const portProblems = eps.problems.map((p) => `${label}: ${p}`);
    const targetPort = eps.targetPort ?? (typeof port.targetPort === 'number' && port.targetPort > 0 ? port.targetPort : port.port);
    const shared = (addresses: string[], servicePort: number, defName: string): ServiceDefinition => {
      const d: ServiceDefinition = {
        name: defName,
        addresses,
        ports: [{ name: port.name || `${servicePort}-${protocol}`, port: servicePort, protocol, targetPort }],
        backends: backendsOf(eps.standing, protocol, addresses, portProblems),
        // kube-proxy rejects traffic to a service without endpoints.
        noBackends: 'reject',
      };
      if (affinity) d.sessionAffinity = { ...affinity };
      return d;
    };
    if (vips.length > 0) definitions.push(shared(vips, port.port, base));
    if (port.nodePort !== undefined && port.nodePort > 0) {
      if (nodeAddrs.length > 0) definitions.push(shared(nodeAddrs, port.nodePort, nodePortName(base)));
      else if (node.nodePortAddresses.length > 0) portProblems.push(`node port ${port.nodePort}: the node has no ${[...families].sort().map(familyName).join(' or ')} address for node ports (Node status.addresses, --nodeport-addresses)`);
      else portProblems.push(`node port ${port.nodePort}: the node has no address for node ports (Node status.addresses, --nodeport-addresses)`);
    }
    problems.push(...new Set(portProblems));
  }
  // A slice port that names no port of the service (a typo in a hand-written
  // slice) gives nothing; kube-proxy ignores it silently, sluice says so.
  const known = new Set((spec.ports ?? []).map((p) => `${p.name ?? ''}/${p.protocol ?? 'TCP'}`));
  const stray = new Set<string>();
  for (const slice of sliceList) {
    for (const p of slice.ports ?? []) {
      const k = `${p.name ?? ''}/${p.protocol ?? 'TCP'}`;
      if (!known.has(k)) stray.add(`EndpointSlice ${slice.metadata?.name ?? ''}: port ${p.name ? JSON.stringify(p.name) : '(unnamed)'}/${p.protocol ?? 'TCP'} names no port of the service`);
    }
  }
  problems.push(...stray);
  return { definitions, problems };
}
