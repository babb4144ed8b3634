/**
 * Which DNS names a service has, as pure functions of its name and the
 * zone. A service named `NAMESPACE/NAME`, both parts RFC 1123 labels
 * (lowercase letters, digits and "-", starting and ending with a letter or
 * digit, at most 63 characters), is `NAME.NAMESPACE.<zone>`; each of its
 * ports whose name is such a label (at most 62 characters, for the "_")
 * has an SRV record at `_PORT._PROTOCOL.NAME.NAMESPACE.<zone>`. Any other
 * service name ("web", "a/b/c", "Default/Web", the kube-proxy mode's
 * "ns/name:port") has no record: DNS names are case-insensitive, so
 * mapping "Default/Web" would make it one name with "default/web".
 */
import type { Protocol } from '../model/service.js';

/** The zone a daemon answers for unless told otherwise. */
export const DEFAULT_DNS_ZONE = 'svc.sluice.local';

/** TTL of answers unless told otherwise, seconds: short, so that clients follow a changed VIP soon. */
export const DNS_TTL_DEFAULT_S = 5;
/** Longest TTL a daemon takes: an hour. */
export const DNS_TTL_MAX_S = 3600;

/** Longest DNS name in its dotted form, without the final dot (RFC 1035 §3.1: 255 octets on the wire). */
export const MAX_DNS_NAME_LENGTH = 253;

const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** True when `s` is an RFC 1123 label in lowercase. */
export function isDnsLabel(s: string): boolean {
  return LABEL_RE.test(s);
}

/**
 * Why `zone` cannot be the zone (lowercase RFC 1123 labels joined by dots,
 * no final dot, at most 253 characters), or undefined when it can.
 */
export function zoneProblem(zone: string): string | undefined {
  if (zone === '') return 'must name a zone, e.g. svc.sluice.local';
  if (zone.endsWith('.')) return `must be written without the final dot, e.g. ${zone.replace(/\.+$/, '') || 'svc.sluice.local'}`;
  if (zone.length > MAX_DNS_NAME_LENGTH) return `must be at most ${MAX_DNS_NAME_LENGTH} characters, got ${zone.length}`;
  const bad = zone.split('.').find((l) => !isDnsLabel(l));
  if (bad !== undefined) {
    const hint = bad !== bad.toLowerCase() && isDnsLabel(bad.toLowerCase()) ? ` (lowercase: ${zone.toLowerCase()})` : '';
    return `must be lowercase DNS labels (letters, digits and "-", 1-63 characters, not starting or ending with "-") joined by dots, got ${JSON.stringify(zone)}: label ${JSON.stringify(bad)}${hint}`;
  }
  return undefined;
}

/** The name of a service in `zone` (`web.default.<zone>` for `default/web`), or undefined when it has none. */
export function serviceDnsName(service: string, zone: string): string | undefined {
  const slash = service.indexOf('/');
  if (slash < 0) return undefined;
  const namespace = service.slice(0, slash);
  const name = service.slice(slash + 1);
  if (!isDnsLabel(namespace) || !isDnsLabel(name)) return undefined;
  const fqdn = `${name}.${namespace}.${zone}`;
  return fqdn.length <= MAX_DNS_NAME_LENGTH ? fqdn : undefined;
}

/** The SRV owner name of a port (`_http._tcp.web.default.<zone>`), or undefined when the port name is not a label. */
export function srvName(serviceFqdn: string, portName: string, protocol: Protocol): string | undefined {
  if (portName.length > 62 || !isDnsLabel(portName)) return undefined;
  const fqdn = `_${portName}._${protocol}.${serviceFqdn}`;
  return fqdn.length <= MAX_DNS_NAME_LENGTH ? fqdn : undefined;
}

/**
 * Where `name` (lowercase, no final dot) stands relative to `zone`: the
 * labels below the apex ([] at the apex), or undefined outside the zone.
 */
export function labelsInZone(name: string, zone: string): string[] | undefined {
  if (name === zone) return [];
  if (name.length <= zone.length + 1 || !name.endsWith(zone) || name[name.length - zone.length - 1] !== '.') return undefined;
  return name.slice(0, name.length - zone.length - 1).split('.');
}
