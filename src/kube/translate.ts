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
 */
import { isIPv4Address } from '../model/address.js';
import type { BackendDefinition, ServiceDefinition } from '../model/definition.js';
import type { Protocol } from '../model/service.js';
import type { KubeEndpointSlice, KubeService, KubeServicePort } from './objects.js';

/** Kubernetes' default ClientIP affinity timeout (API-server defaulting; kube-proxy relies on it). */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;

/** The owner of the services the kube-proxy mode writes. */
export const KUBE_OWNER = 'kubernetes';

/** What the node contributes to a translation. */
export interface NodeContext {
  /** The node's IPv4 addresses that carry node ports (--nodeport-addresses applied). */
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

/** The endpoints of one service port, merged over its slices, and the port number they listen on. */
interface PortEndpoints {
  targetPort: number | undefined;
  standing: Map<string, Standing>;
  problems: string[];
}

function endpointsOf(port: KubeServicePort, protocol: string, slices: Iterable<KubeEndpointSlice>): PortEndpoints {
  const wanted = port.name ?? '';
  // Endpoints by the port number their slice gives this port name: slices
  // may disagree while a targetPort by name changes across pods.
  const byNumber = new Map<number, Map<string, Standing>>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4') continue;
    const sp = slice.ports?.find((p) => (p.name ?? '') === wanted && (p.protocol ?? 'TCP') === protocol);
    if (!sp || typeof sp.port !== 'number' || sp.port <= 0) continue;
    let group = byNumber.get(sp.port);
    if (!group) byNumber.set(sp.port, (group = new Map()));
    for (const ep of slice.endpoints ?? []) {
      const address = ep.addresses?.[0];
      if (address === undefined || !isIPv4Address(address)) continue;
      const s = standingOf(ep.conditions ?? undefined);
      const had = group.get(address);
      if (had === undefined || RANK[s] > RANK[had]) group.set(address, s);
    }
  }
  if (byNumber.size === 0) return { targetPort: undefined, standing: new Map(), problems: [] };
  // The number most endpoints use; the others are reported.
  const groups = [...byNumber.entries()].sort((a, b) => b[1].size - a[1].size || a[0] - b[0]);
  const [targetPort, standing] = groups[0]!;
  const problems = groups.slice(1).map(([n, g]) => `${g.size} endpoint(s) on port ${n} left out: this port's endpoints listen on ${targetPort}, and a sluice service port has one target port`);
  return { targetPort, standing, problems };
}

/** The backends of a port: ready endpoints, else serving-and-terminating ones; the rest drain (TCP) or go (UDP). */
function backendsOf(standing: Map<string, Standing>, protocol: Protocol, vips: ReadonlySet<string>, problems: string[]): BackendDefinition[] {
  const anyReady = [...standing.values()].some((s) => s === 'ready');
  const serve: Standing = anyReady ? 'ready' : 'terminating';
  const out: BackendDefinition[] = [];
  for (const [address, s] of [...standing.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    if (vips.has(address)) {
      problems.push(`endpoint ${address} left out: it is one of the port's own addresses`);
      continue;
    }
    if (s === serve) out.push({ address, weight: 1, state: 'active' });
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
  const cluster = spec.clusterIPs && spec.clusterIPs.length > 0 ? spec.clusterIPs : [spec.clusterIP!];
  const ingress = (svc.status?.loadBalancer?.ingress ?? [])
    .filter((i) => i.ip !== undefined && i.ip !== '' && (i.ipMode === undefined || i.ipMode === 'VIP'))
    .map((i) => i.ip!);
  const vips: string[] = [];
  for (const a of [...cluster, ...(spec.externalIPs ?? []), ...ingress]) {
    if (isIPv4Address(a) && !vips.includes(a)) vips.push(a);
  }
  const affinity =
    spec.sessionAffinity === 'ClientIP'
      ? { timeoutSeconds: spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS }
      : undefined;
  const sliceList = [...slices];
  for (const port of spec.ports ?? []) {
    const kubeProtocol = port.protocol ?? 'TCP';
    const base = servicePortName(ns, name, port.name);
    const label = port.name ? `port ${port.name}` : `port ${port.port}`;
    if (kubeProtocol !== 'TCP' && kubeProtocol !== 'UDP') {
      problems.push(`${label}: ${kubeProtocol} is not balanced (TCP and UDP are)`);
      continue;
    }
    const protocol: Protocol = kubeProtocol === 'TCP' ? 'tcp' : 'udp';
    const eps = endpointsOf(port, kubeProtocol, sliceList);
    const portProblems = eps.problems.map((p) => `${label}: ${p}`);
    const targetPort = eps.targetPort ?? (typeof port.targetPort === 'number' && port.targetPort > 0 ? port.targetPort : port.port);
    const shared = (addresses: string[], servicePort: number, defName: string): ServiceDefinition => {
      const d: ServiceDefinition = {
        name: defName,
        addresses,
        ports: [{ name: port.name || `${servicePort}-${protocol}`, port: servicePort, protocol, targetPort }],
        backends: backendsOf(eps.standing, protocol, new Set(addresses), portProblems),
        // kube-proxy rejects traffic to a service without endpoints.
        noBackends: 'reject',
      };
      if (affinity) d.sessionAffinity = { ...affinity };
      return d;
    };
    if (vips.length > 0) definitions.push(shared(vips, port.port, base));
    if (port.nodePort !== undefined && port.nodePort > 0) {
      if (node.nodePortAddresses.length > 0) definitions.push(shared([...node.nodePortAddresses], port.nodePort, nodePortName(base)));
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
