/**
 * What the real API server does to a core/v1 Service beyond storing it:
 * defaulting (SetDefaults_Service in pkg/apis/core/v1/defaults.go), the
 * registry's create/update preparation (status reset, allocated values kept
 * across updates, type-dependent fields dropped), the validation a kube-proxy
 * relies on (pkg/apis/core/validation ValidateService, a subset), and the
 * allocation of cluster IPs and node ports (pkg/registry/core/service).
 *
 * Allocation differs in one way: the real allocators pick at random in the
 * upper part of the range (the lower part is kept for static assignments);
 * here the first free value of that upper part is taken, so tests see
 * predictable addresses. The cluster is dual-stack with IPv4 primary when an
 * IPv6 service range is given (as `--service-cluster-ip-range=
 * 10.96.0.0/16,fd96::/112`), single-stack IPv4 otherwise.
 */
import { isIP, isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import { GoLiteral, isObject, type FieldError, type JsonObject } from './status.js';
import { checkIP, checkName, checkOneOf, checkPortNumber, checkProtocol } from './validation.js';

/** The cluster's service network: `--service-cluster-ip-range` and `--service-node-port-range`. */
export interface ServiceNetwork {
  /** e.g. 10.96.0.0/16 */
  cidr: string;
  /** The IPv6 range, e.g. fd96::/112; absent: a single-stack IPv4 cluster. */
  cidr6?: string;
  nodePortMin: number;
  nodePortMax: number;
}

const TYPES = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];
const DEFAULT_AFFINITY_TIMEOUT = 10800;
const MAX_AFFINITY_TIMEOUT = 86400;

function spec(svc: JsonObject): JsonObject {
  if (!isObject(svc['spec'])) svc['spec'] = {};
  return svc['spec'] as JsonObject;
}

function ports(s: JsonObject): JsonObject[] {
  return Array.isArray(s['ports']) ? (s['ports'] as unknown[]).filter(isObject) : [];
}

function needsNodePorts(s: JsonObject): boolean {
  return s['type'] === 'NodePort' || (s['type'] === 'LoadBalancer' && s['allocateLoadBalancerNodePorts'] !== false);
}

function needsClusterIP(s: JsonObject): boolean {
  return s['type'] !== 'ExternalName';
}

function needsHealthCheckNodePort(s: JsonObject): boolean {
  return s['type'] === 'LoadBalancer' && s['externalTrafficPolicy'] === 'Local';
}

function externallyAccessible(s: JsonObject): boolean {
  return s['type'] === 'LoadBalancer' || s['type'] === 'NodePort' || (s['type'] === 'ClusterIP' && Array.isArray(s['externalIPs']) && s['externalIPs'].length > 0);
}

/** SetDefaults_Service (and SetDefaults_ServiceStatus's ipMode). */
export function defaultService(svc: JsonObject): void {
  const s = spec(svc);
  if (!s['sessionAffinity']) s['sessionAffinity'] = 'None';
  if (s['sessionAffinity'] === 'None') delete s['sessionAffinityConfig'];
  if (s['sessionAffinity'] === 'ClientIP') {
    const cfg = isObject(s['sessionAffinityConfig']) ? s['sessionAffinityConfig'] : undefined;
    const clientIP = cfg && isObject(cfg['clientIP']) ? cfg['clientIP'] : undefined;
    if (!clientIP || clientIP['timeoutSeconds'] === undefined || clientIP['timeoutSeconds'] === null) {
      s['sessionAffinityConfig'] = { clientIP: { timeoutSeconds: DEFAULT_AFFINITY_TIMEOUT } };
    }
  }
  if (!s['type']) s['type'] = 'ClusterIP';
  for (const p of ports(s)) {
    if (!p['protocol']) p['protocol'] = 'TCP';
    if (p['targetPort'] === undefined || p['targetPort'] === 0 || p['targetPort'] === '') p['targetPort'] = p['port'];
  }
  if (externallyAccessible(s) && !s['externalTrafficPolicy']) s['externalTrafficPolicy'] = 'Cluster';
  if (!s['internalTrafficPolicy'] && (s['type'] === 'NodePort' || s['type'] === 'LoadBalancer' || s['type'] === 'ClusterIP')) {
    s['internalTrafficPolicy'] = 'Cluster';
  }
  if (s['type'] === 'LoadBalancer' && s['allocateLoadBalancerNodePorts'] === undefined) s['allocateLoadBalancerNodePorts'] = true;
  defaultServiceStatus(svc);
}

/** The status every Service has (`loadBalancer: {}`), ingress IPs with ipMode VIP. */
export function defaultServiceStatus(svc: JsonObject): void {
  if (!isObject(svc['status'])) svc['status'] = {};
  const status = svc['status'] as JsonObject;
  if (!isObject(status['loadBalancer'])) status['loadBalancer'] = {};
  const lb = status['loadBalancer'] as JsonObject;
  if (spec(svc)['type'] === 'LoadBalancer' && Array.isArray(lb['ingress'])) {
    for (const ing of lb['ingress']) if (isObject(ing) && ing['ip'] && !ing['ipMode']) ing['ipMode'] = 'VIP';
  }
}

/** Service REST's create preparation: users do not set status at creation. */
export function prepareServiceCreate(svc: JsonObject): void {
  svc['status'] = { loadBalancer: {} };
}

function findPort(list: readonly JsonObject[], p: JsonObject): JsonObject | undefined {
  return list.find((o) => o['port'] === p['port'] && o['protocol'] === p['protocol']) ?? list.find((o) => p['name'] && o['name'] === p['name']);
}

/**
 * An update keeps what was allocated when the new object leaves it out
 * (patchAllocatedValues), drops what the new type no longer uses when the
 * user did not change it (dropTypeDependentFields), and keeps the status.
 */
export function prepareServiceUpdate(svc: JsonObject, old: JsonObject): void {
  const s = spec(svc);
  const o = spec(old);
  if (needsClusterIP(s) && needsClusterIP(o)) {
    if (!s['clusterIP'] && (!Array.isArray(s['clusterIPs']) || s['clusterIPs'].length === 0)) {
      if (o['clusterIP'] !== undefined) s['clusterIP'] = o['clusterIP'];
      if (o['clusterIPs'] !== undefined) s['clusterIPs'] = structuredClone(o['clusterIPs']);
    }
    if (s['ipFamilies'] === undefined && o['ipFamilies'] !== undefined) s['ipFamilies'] = structuredClone(o['ipFamilies']);
    if (s['ipFamilyPolicy'] === undefined && o['ipFamilyPolicy'] !== undefined) s['ipFamilyPolicy'] = o['ipFamilyPolicy'];
    // A downgrade (initIPFamilyFields): SingleStack with the two cluster IPs
    // and families left as they were is clear intent; the secondary goes.
    if (s['ipFamilyPolicy'] === 'SingleStack') {
      for (const field of ['clusterIPs', 'ipFamilies']) {
        const now = s[field];
        if (Array.isArray(now) && now.length > 1 && JSON.stringify(now) === JSON.stringify(o[field])) s[field] = now.slice(0, 1);
      }
    }
  }
  if (needsNodePorts(s) && needsNodePorts(o)) {
    for (const p of ports(s)) {
      if (p['nodePort']) continue;
      const was = findPort(ports(o), p);
      if (was?.['nodePort']) p['nodePort'] = was['nodePort'];
    }
  }
  if (needsHealthCheckNodePort(s) && needsHealthCheckNodePort(o) && !s['healthCheckNodePort'] && o['healthCheckNodePort']) {
    s['healthCheckNodePort'] = o['healthCheckNodePort'];
  }
  // dropTypeDependentFields: only values the user left as they were.
  if (!needsClusterIP(s) && needsClusterIP(o)) {
    if (s['clusterIP'] === o['clusterIP']) delete s['clusterIP'];
    if (JSON.stringify(s['clusterIPs']) === JSON.stringify(o['clusterIPs'])) delete s['clusterIPs'];
    if (JSON.stringify(s['ipFamilies']) === JSON.stringify(o['ipFamilies'])) delete s['ipFamilies'];
    if (s['ipFamilyPolicy'] === o['ipFamilyPolicy']) delete s['ipFamilyPolicy'];
  }
  if (!needsNodePorts(s) && needsNodePorts(o)) {
    for (const p of ports(s)) {
      const was = findPort(ports(o), p);
      if (was && p['nodePort'] === was['nodePort']) delete p['nodePort'];
    }
  }
  if (!needsHealthCheckNodePort(s) && s['healthCheckNodePort'] === o['healthCheckNodePort']) delete s['healthCheckNodePort'];
  if (!externallyAccessible(s) && s['externalTrafficPolicy'] === o['externalTrafficPolicy']) delete s['externalTrafficPolicy'];
  if (s['type'] !== 'LoadBalancer') {
    if (s['allocateLoadBalancerNodePorts'] === o['allocateLoadBalancerNodePorts']) delete s['allocateLoadBalancerNodePorts'];
    if (s['loadBalancerClass'] === o['loadBalancerClass']) delete s['loadBalancerClass'];
  }
  if (s['type'] === 'ExternalName' && s['internalTrafficPolicy'] === o['internalTrafficPolicy']) delete s['internalTrafficPolicy'];
  svc['status'] = structuredClone(old['status'] ?? { loadBalancer: {} });
}

/** Go's %#v of the key validation uses for a duplicate port. */
function portKey(p: JsonObject): string {
  return `core.ServicePort{Name:"", Protocol:${JSON.stringify(p['protocol'] ?? '')}, AppProtocol:(*string)(nil), Port:${String(p['port'])}, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}`;
}

/** ValidateService (create) and the parts of ValidateServiceUpdate a test can hit. */
export function validateService(svc: JsonObject, old: JsonObject | undefined): FieldError[] {
  const errs: FieldError[] = [];
  const s = spec(svc);
  const type = s['type'];
  errs.push(...checkOneOf('spec.type', type, TYPES));
  const list = ports(s);
  const headless = s['clusterIP'] === 'None';
  if (list.length === 0 && !headless && type !== 'ExternalName') errs.push({ type: 'Required', field: 'spec.ports' });
  const names = new Set<string>();
  const keys = new Set<string>();
  list.forEach((p, i) => {
    const at = `spec.ports[${i}]`;
    const name = p['name'];
    if (list.length > 1 && (typeof name !== 'string' || name === '')) errs.push({ type: 'Required', field: `${at}.name` });
    if (typeof name === 'string' && name !== '') {
      errs.push(...checkName(`${at}.name`, name, 'dns1123-label'));
      if (names.has(name)) errs.push({ type: 'Duplicate', field: `${at}.name`, value: name });
      names.add(name);
    }
    errs.push(...checkPortNumber(`${at}.port`, p['port']));
    errs.push(...checkProtocol(`${at}.protocol`, p['protocol']));
    const tp = p['targetPort'];
    if (typeof tp === 'number') errs.push(...checkPortNumber(`${at}.targetPort`, tp));
    else if (typeof tp === 'string' && !(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(tp) && tp.length <= 15 && /[a-z]/.test(tp))) {
      errs.push({ type: 'Invalid', field: `${at}.targetPort`, value: tp, detail: 'must be a valid IANA_SVC_NAME (at most 15 characters, matching regex [-a-z0-9]+ and containing at least one letter)' });
    }
    const key = `${String(p['port'])}/${String(p['protocol'])}`;
    if (keys.has(key)) errs.push({ type: 'Duplicate', field: at, value: new GoLiteral(portKey(p)) });
    keys.add(key);
    if (p['nodePort'] !== undefined && p['nodePort'] !== 0) {
      if (type === 'ClusterIP' || type === 'ExternalName') {
        errs.push({ type: 'Forbidden', field: `${at}.nodePort`, detail: `may not be used when \`type\` is '${String(type)}'` });
      } else errs.push(...checkPortNumber(`${at}.nodePort`, p['nodePort']));
    }
  });
  errs.push(...checkOneOf('spec.sessionAffinity', s['sessionAffinity'], ['ClientIP', 'None']));
  if (s['sessionAffinity'] === 'ClientIP') {
    const cfg = s['sessionAffinityConfig'];
    const t = isObject(cfg) && isObject(cfg['clientIP']) ? cfg['clientIP']['timeoutSeconds'] : undefined;
    if (!Number.isInteger(t) || (t as number) <= 0 || (t as number) > MAX_AFFINITY_TIMEOUT) {
      errs.push({ type: 'Invalid', field: 'spec.sessionAffinityConfig.clientIP.timeoutSeconds', value: t, detail: `must be greater than 0 and less than ${MAX_AFFINITY_TIMEOUT}` });
    }
  }
  if (type === 'ExternalName') {
    const en = s['externalName'];
    if (typeof en !== 'string' || en === '') errs.push({ type: 'Required', field: 'spec.externalName' });
    else errs.push(...checkName('spec.externalName', en.replace(/\.$/, ''), 'dns1123-subdomain'));
    if (s['clusterIP']) errs.push({ type: 'Forbidden', field: 'spec.clusterIP', detail: 'may not be set for ExternalName services' });
  } else {
    const ip = s['clusterIP'];
    const cips = Array.isArray(s['clusterIPs']) && s['clusterIPs'].length > 0 ? (s['clusterIPs'] as unknown[]) : undefined;
    if (cips === undefined && ip !== undefined && ip !== '' && ip !== 'None') errs.push(...checkIP('spec.clusterIPs[0]', ip));
    if (headless && (type === 'NodePort' || type === 'LoadBalancer')) {
      errs.push({ type: 'Invalid', field: 'spec.clusterIPs[0]', value: 'None', detail: `may not be set to 'None' for ${type} services` });
    }
    errs.push(...validateIPFamilyInfo(s, cips, headless));
  }
  const ext = s['externalIPs'];
  if (Array.isArray(ext)) ext.forEach((ip, i) => errs.push(...checkIP(`spec.externalIPs[${i}]`, ip)));
  if (s['externalTrafficPolicy'] !== undefined) {
    if (!externallyAccessible(s)) {
      errs.push({ type: 'Invalid', field: 'spec.externalTrafficPolicy', value: s['externalTrafficPolicy'], detail: 'may only be set for externally-accessible services' });
    } else errs.push(...checkOneOf('spec.externalTrafficPolicy', s['externalTrafficPolicy'], ['Cluster', 'Local']));
  }
  if (s['internalTrafficPolicy'] !== undefined && type !== 'ExternalName') {
    errs.push(...checkOneOf('spec.internalTrafficPolicy', s['internalTrafficPolicy'], ['Cluster', 'Local']));
  }
  if (s['healthCheckNodePort'] && !needsHealthCheckNodePort(s)) {
    errs.push({ type: 'Invalid', field: 'spec.healthCheckNodePort', value: s['healthCheckNodePort'], detail: "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'" });
  }
  if (old) {
    const o = spec(old);
    const before = Array.isArray(o['clusterIPs']) ? o['clusterIPs'] : [];
    const after = Array.isArray(s['clusterIPs']) ? s['clusterIPs'] : s['clusterIP'] ? [s['clusterIP']] : [];
    if (needsClusterIP(s) && needsClusterIP(o) && before.length > 0 && after.length > 0 && before[0] !== after[0]) {
      errs.push({ type: 'Invalid', field: 'spec.clusterIPs[0]', value: after, detail: 'may not change once set' });
    }
    // Only SingleStack releases a family (initIPFamilyFields).
    if (needsClusterIP(s) && needsClusterIP(o) && s['ipFamilyPolicy'] !== 'SingleStack') {
      const fams = (x: JsonObject): unknown[] => (Array.isArray(x['ipFamilies']) ? x['ipFamilies'] : []);
      if (after.length > 0 && after.length < before.length) {
        errs.push({ type: 'Invalid', field: 'spec.ipFamilyPolicy', value: s['ipFamilyPolicy'], detail: "must be 'SingleStack' to release the secondary cluster IP" });
      }
      if (fams(s).length > 0 && fams(s).length < fams(o).length) {
        errs.push({ type: 'Invalid', field: 'spec.ipFamilyPolicy', value: s['ipFamilyPolicy'], detail: "must be 'SingleStack' to release the secondary IP family" });
      }
    }
  }
  return errs;
}

/** An address's family as the API names it. */
function familyOf(ip: string): 'IPv4' | 'IPv6' {
  return isIPv6(ip) ? 'IPv6' : 'IPv4';
}

/**
 * validateIPFamilyInfo: ipFamilies (IPv4 or IPv6, each once), ipFamilyPolicy,
 * clusterIPs (addresses, 'None' alone, one per family, at most two) and
 * clusterIPs[i] of the family ipFamilies[i] names. Whether the cluster has
 * a family is the allocator's to say.
 */
function validateIPFamilyInfo(s: JsonObject, cips: unknown[] | undefined, headless: boolean): FieldError[] {
  const errs: FieldError[] = [];
  const fam = Array.isArray(s['ipFamilies']) ? (s['ipFamilies'] as unknown[]) : undefined;
  const seen = new Set<unknown>();
  fam?.forEach((f, i) => {
    errs.push(...checkOneOf(`spec.ipFamilies[${i}]`, f, ['IPv4', 'IPv6']));
    if (seen.has(f)) errs.push({ type: 'Duplicate', field: `spec.ipFamilies[${i}]`, value: f });
    seen.add(f);
  });
  if (s['ipFamilyPolicy'] !== undefined) errs.push(...checkOneOf('spec.ipFamilyPolicy', s['ipFamilyPolicy'], ['PreferDualStack', 'RequireDualStack', 'SingleStack']));
  if (cips === undefined) return errs;
  let bad = false;
  cips.forEach((ip, i) => {
    if (i === 0 && ip === 'None') {
      if (cips.length > 1) {
        bad = true;
        errs.push({ type: 'Invalid', field: 'spec.clusterIPs', value: cips, detail: "'None' must be the first and only value" });
      }
      return;
    }
    const e = checkIP(`spec.clusterIPs[${i}]`, ip);
    if (e.length > 0) bad = true;
    errs.push(...e);
  });
  if (cips.length > 2) {
    bad = true;
    errs.push({ type: 'Invalid', field: 'spec.clusterIPs', value: cips, detail: 'may only hold up to 2 values' });
  }
  if (bad) return errs;
  if (cips.length === 2 && familyOf(cips[0] as string) === familyOf(cips[1] as string)) {
    errs.push({ type: 'Invalid', field: 'spec.clusterIPs', value: cips, detail: 'may specify no more than one IP for each IP family' });
  }
  if (!headless && fam !== undefined) {
    cips.forEach((ip, i) => {
      const want = fam[i];
      if ((want === 'IPv4' || want === 'IPv6') && familyOf(ip as string) !== want) {
        errs.push({ type: 'Invalid', field: `spec.clusterIPs[${i}]`, value: ip, detail: `expected an ${want} value as indicated by \`ipFamilies[${i}]\`` });
      }
    });
  }
  return errs;
}

/** ValidateServiceStatusUpdate: ingress addresses. */
export function validateServiceStatus(svc: JsonObject): FieldError[] {
  const status = isObject(svc['status']) ? svc['status'] : {};
  const lb = isObject(status['loadBalancer']) ? status['loadBalancer'] : {};
  const errs: FieldError[] = [];
  if (Array.isArray(lb['ingress'])) {
    lb['ingress'].forEach((ing, i) => {
      if (isObject(ing) && ing['ip'] !== undefined) errs.push(...checkIP(`status.loadBalancer.ingress[${i}].ip`, ing['ip']));
      if (isObject(ing) && ing['ipMode'] !== undefined) errs.push(...checkOneOf(`status.loadBalancer.ingress[${i}].ipMode`, ing['ipMode'], ['Proxy', 'VIP']));
    });
  }
  return errs;
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** Parse and check a CIDR option. */
export function parseCidr(cidr: string): { base: number; size: number } {
  const [addr, bits] = cidr.split('/');
  const prefix = Number(bits);
  if (!addr || !isIPv4(addr) || !Number.isInteger(prefix) || prefix < 8 || prefix > 30) throw new Error(`service CIDR ${cidr}: want an IPv4 CIDR with a prefix from /8 to /30`);
  const size = 2 ** (32 - prefix);
  return { base: ipToInt(addr) - (ipToInt(addr) % size), size };
}

/** The first free value in the upper band (offsets from `bandStart`), then in the lower band. */
function firstFree(first: number, last: number, bandStart: number, used: ReadonlySet<number>): number | undefined {
  for (let v = bandStart; v <= last; v++) if (!used.has(v)) return v;
  for (let v = first; v < bandStart; v++) if (!used.has(v)) return v;
  return undefined;
}

/** A service range as integers: its network address and size. */
interface IPRange {
  family: 'IPv4' | 'IPv6';
  cidr: string;
  base: bigint;
  size: bigint;
}

/** Parse and check the IPv6 range (a prefix from /64 to /120: the allocator's bitmap stays small). */
export function parseCidr6(cidr: string): { base: bigint; size: bigint } {
  const [addr, bits] = cidr.split('/');
  const prefix = Number(bits);
  if (!addr || !isIPv6(addr) || !Number.isInteger(prefix) || prefix < 64 || prefix > 120) throw new Error(`service CIDR ${cidr}: want an IPv6 CIDR with a prefix from /64 to /120`);
  const size = 1n << BigInt(128 - prefix);
  const n = v6ToBig(addr);
  return { base: n - (n % size), size };
}

function v6ToBig(ip: string): bigint {
  return ipaddr.IPv6.parse(ip).toByteArray().reduce((n, b) => (n << 8n) | BigInt(b), 0n);
}

function bigToV6(n: bigint): string {
  const bytes: number[] = [];
  for (let i = 15; i >= 0; i--) bytes.push(Number((n >> BigInt(8 * i)) & 0xffn));
  return new ipaddr.IPv6(bytes).toRFC5952String();
}

function toBig(ip: string): bigint {
  return isIPv6(ip) ? v6ToBig(ip) : BigInt(ipToInt(ip));
}

function fromBig(range: IPRange, n: bigint): string {
  return range.family === 'IPv6' ? bigToV6(n) : intToIp(Number(n));
}

function rangeOf(family: 'IPv4' | 'IPv6', net: ServiceNetwork): IPRange {
  if (family === 'IPv4') {
    const { base, size } = parseCidr(net.cidr);
    return { family, cidr: net.cidr, base: BigInt(base), size: BigInt(size) };
  }
  return { family, cidr: net.cidr6!, ...parseCidr6(net.cidr6!) };
}

/**
 * initIPFamilyFields and the IP allocators (pkg/registry/core/service/
 * storage/alloc.go): the policy is inferred (two families or two cluster
 * IPs: RequireDualStack; else SingleStack), the families from the cluster
 * IPs given, then the primary (IPv4); a dual-stack policy adds the other
 * family when the cluster has it; each family's cluster IP is checked
 * against its range and the other services', or the first free one taken.
 */
function allocateClusterIPs(s: JsonObject, others: readonly JsonObject[], net: ServiceNetwork): FieldError[] {
  const errs: FieldError[] = [];
  const given = Array.isArray(s['clusterIPs']) ? (s['clusterIPs'] as unknown[]).filter((x): x is string => typeof x === 'string' && x !== '') : [];
  const requested = given.length > 0 ? given : typeof s['clusterIP'] === 'string' && s['clusterIP'] !== '' ? [s['clusterIP']] : [];
  const fam = Array.isArray(s['ipFamilies']) ? (s['ipFamilies'] as string[]) : [];
  if (requested[0] === 'None') {
    s['clusterIP'] = 'None';
    s['clusterIPs'] = ['None'];
    if (s['ipFamilyPolicy'] === undefined) s['ipFamilyPolicy'] = 'SingleStack';
    if (s['ipFamilies'] === undefined) s['ipFamilies'] = ['IPv4'];
    return errs;
  }
  if (s['ipFamilyPolicy'] === undefined && (fam.length === 2 || requested.length === 2)) s['ipFamilyPolicy'] = 'RequireDualStack';
  if (s['ipFamilyPolicy'] === undefined) s['ipFamilyPolicy'] = 'SingleStack';
  const policy = s['ipFamilyPolicy'];
  if (policy === 'SingleStack' && fam.length > 1) {
    errs.push({ type: 'Invalid', field: 'spec.ipFamilyPolicy', value: policy, detail: 'must be RequireDualStack or PreferDualStack when multiple IP families are specified' });
  }
  if (policy === 'SingleStack' && requested.length > 1) {
    errs.push({ type: 'Invalid', field: 'spec.ipFamilyPolicy', value: policy, detail: "must be RequireDualStack or PreferDualStack when multiple 'clusterIPs' are specified" });
  }
  if (errs.length > 0) return errs;
  const families = [...fam] as Array<'IPv4' | 'IPv6'>;
  requested.forEach((ip, i) => {
    if (families[i] === undefined && isIPv4(ip) !== isIPv6(ip)) families[i] = familyOf(ip);
  });
  if (families.length === 0) families.push('IPv4');
  if (net.cidr6 === undefined) {
    families.forEach((f, i) => {
      if (f === 'IPv6') errs.push({ type: 'Invalid', field: `spec.ipFamilies[${i}]`, value: f, detail: 'not configured on this cluster' });
    });
    if (policy === 'RequireDualStack') errs.push({ type: 'Invalid', field: 'spec.ipFamilyPolicy', value: 'RequireDualStack', detail: 'this cluster is not configured for dual-stack services' });
    if (errs.length > 0) return errs;
  } else if (policy !== 'SingleStack' && families.length === 1) {
    families.push(families[0] === 'IPv4' ? 'IPv6' : 'IPv4');
  }
  s['ipFamilies'] = families;
  const used = new Set<string>();
  for (const o of others) {
    const os = isObject(o['spec']) ? o['spec'] : {};
    const ips = Array.isArray(os['clusterIPs']) ? (os['clusterIPs'] as unknown[]) : [os['clusterIP']];
    for (const ip of ips) if (typeof ip === 'string' && isIP(ip)) used.add(toBig(ip).toString() + familyOf(ip));
  }
  const out: string[] = [];
  families.forEach((f, i) => {
    const range = rangeOf(f, net);
    const want = requested[i];
    if (want !== undefined) {
      const field = { type: 'Invalid' as const, field: 'spec.clusterIPs', value: requested };
      if (!isIP(want)) return;
      const n = toBig(want);
      if (familyOf(want) !== f || n <= range.base || n >= range.base + range.size - 1n) {
        errs.push({ ...field, detail: `failed to allocate IP ${want}: the provided IP (${want}) is not in the valid range. The range of valid IPs is ${range.cidr}` });
      } else if (used.has(n.toString() + f)) {
        errs.push({ ...field, detail: `failed to allocate IP ${want}: provided IP is already allocated` });
      }
      out.push(want);
      return;
    }
    const hosts = range.size - 2n;
    const band = bigMin(bigMax(16n, hosts / 16n), 256n);
    const found = firstFreeBig(range.base + 1n, range.base + hosts, range.base + 1n + band, (v) => used.has(v.toString() + f));
    if (found === undefined) errs.push({ type: 'Invalid', field: 'spec.clusterIPs', value: [], detail: 'failed to allocate a serviceIP: range is full' });
    else out.push(fromBig(range, found));
  });
  if (out.length === families.length) {
    s['clusterIP'] = out[0];
    s['clusterIPs'] = out;
  } else if (requested.length > 0) s['clusterIPs'] = requested;
  return errs;
}

function bigMin(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function bigMax(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/** firstFree over bigints (IPv6 ranges pass 2^53). */
function firstFreeBig(first: bigint, last: bigint, bandStart: bigint, used: (v: bigint) => boolean): bigint | undefined {
  for (let v = bandStart; v <= last; v++) if (!used(v)) return v;
  for (let v = first; v < bandStart; v++) if (!used(v)) return v;
  return undefined;
}

/**
 * Give the service its cluster IP and node ports (what the allocators do at
 * create and update), checking requested values against the ranges and
 * against `others`, the cluster's other services. Returns the field errors.
 */
export function allocateService(svc: JsonObject, others: readonly JsonObject[], net: ServiceNetwork): FieldError[] {
  const s = spec(svc);
  const errs: FieldError[] = [];
  if (!needsClusterIP(s)) {
    delete s['clusterIPs'];
    delete s['ipFamilies'];
    delete s['ipFamilyPolicy'];
  } else {
    errs.push(...allocateClusterIPs(s, others, net));
  }
  const usedPorts = new Set<number>();
  for (const o of others) {
    const os = isObject(o['spec']) ? o['spec'] : {};
    for (const p of ports(os)) if (typeof p['nodePort'] === 'number') usedPorts.add(p['nodePort']);
    if (typeof os['healthCheckNodePort'] === 'number') usedPorts.add(os['healthCheckNodePort']);
  }
  const inRange = (n: number): boolean => n >= net.nodePortMin && n <= net.nodePortMax;
  const rangeText = `${net.nodePortMin}-${net.nodePortMax}`;
  const checkRequested = (field: string, n: number): void => {
    if (!inRange(n)) errs.push({ type: 'Invalid', field, value: n, detail: `provided port is not in the valid range. The range of valid ports is ${rangeText}` });
    else if (usedPorts.has(n)) errs.push({ type: 'Invalid', field, value: n, detail: 'provided port is already allocated' });
  };
  const band = Math.min(Math.max(16, Math.floor((net.nodePortMax - net.nodePortMin + 1) / 32)), 128);
  const take = (field: string): number | undefined => {
    const n = firstFree(net.nodePortMin, net.nodePortMax, net.nodePortMin + band, usedPorts);
    if (n === undefined) errs.push({ type: 'Invalid', field, value: 0, detail: 'range is full' });
    else usedPorts.add(n);
    return n;
  };
  if (needsNodePorts(s)) {
    // The same port number under two protocols shares one node port, as the real allocator does.
    const byPort = new Map<unknown, number>();
    const list = ports(s);
    list.forEach((p, i) => {
      if (typeof p['nodePort'] === 'number' && p['nodePort'] !== 0) {
        if (!byPort.has(p['port'])) checkRequested(`spec.ports[${i}].nodePort`, p['nodePort']);
        byPort.set(p['port'], p['nodePort']);
      }
    });
    for (const n of byPort.values()) usedPorts.add(n);
    list.forEach((p, i) => {
      if (typeof p['nodePort'] === 'number' && p['nodePort'] !== 0) return;
      const n = byPort.get(p['port']) ?? take(`spec.ports[${i}].nodePort`);
      if (n !== undefined) {
        p['nodePort'] = n;
        byPort.set(p['port'], n);
      }
    });
  }
  if (needsHealthCheckNodePort(s)) {
    const h = s['healthCheckNodePort'];
    if (typeof h === 'number' && h !== 0) checkRequested('spec.healthCheckNodePort', h);
    else {
      const n = take('spec.healthCheckNodePort');
      if (n !== undefined) s['healthCheckNodePort'] = n;
    }
  }
  return errs;
}
