/**
 * Which addresses can be a VIP or a backend, and the one text each has.
 *
 * IPv4 is written as four decimal parts (no leading zeros, no shorthand such
 * as "10.1"). IPv6 is any RFC 4291 spelling (upper or lower case, leading
 * zeros, "::", a dotted IPv4 tail), and is kept and shown in its RFC 5952
 * form only ("2001:DB8:0::1" is 2001:db8::1), so that one address never
 * stands as two services, two backends or two Maglev permutations. An
 * IPv4-mapped address is shown with its IPv4 tail (::ffff:192.0.2.1, as RFC
 * 5952 section 5 recommends): it is an IPv4 client as a dual-stack socket
 * names it, and people copy it from such logs. A zone id ("fe80::1%eth0")
 * is not an address here: it names a link of one host.
 *
 * An address must be one a packet can be sent to and answered from: the
 * ranges below cannot, so a service or backend on them would only ever drop
 * traffic. Private, shared (100.64/10), ULA (fc00::/7) and documentation
 * ranges are fine: labs and clusters use them.
 *
 * A bulk load checks every address of every service (110,000 for 10,000
 * services of 10 backends), so an IPv4 address is parsed once, by one
 * regular expression, and its ranges are compared as integers: 5 times
 * faster than parsing it with ipaddr.js, which reads the table of ranges.
 * IPv6 goes through ipaddr.js after a strict check of its syntax.
 */
import ipaddr from 'ipaddr.js';

/** An address family: 4 or 6. */
export type IPFamily = 4 | 6;

/** A usable address: its family and its one text (RFC 5952 for IPv6). */
export interface ParsedAddress {
  family: IPFamily;
  text: string;
}

/** What parseAddress or addressProblem found wrong. */
export type AddressProblem = { kind: 'syntax' } | { kind: 'range'; why: string };

/** A range no VIP or backend may be in, and why. */
interface RefusedRange {
  /** Network address and mask, as unsigned 32-bit integers. */
  network: number;
  mask: number;
  why: string;
}

const refused: readonly RefusedRange[] = [
  ['0.0.0.0/8', 'the unspecified ("this network") range 0.0.0.0/8'],
  ['127.0.0.0/8', 'loopback (127.0.0.0/8): it never leaves the host'],
  ['169.254.0.0/16', 'link-local (169.254.0.0/16): it is not routed'],
  ['224.0.0.0/4', 'multicast (224.0.0.0/4): one flow cannot go to one backend'],
  // Before 240/4, which holds it too: the more specific reason is given.
  ['255.255.255.255/32', 'the limited broadcast address'],
  ['240.0.0.0/4', 'reserved for future use (240.0.0.0/4): hosts drop it'],
].map(([cidr, why]) => {
  const [ip, bits] = ipaddr.IPv4.parseCIDR(cidr!);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { network: (u32(ip.octets) & mask) >>> 0, mask, why: why! };
});

/**
 * An IPv6 range no VIP or backend may be in: what it is, and why it is
 * refused (`why` may depend on the address: v4-mapped names its IPv4 form).
 */
interface RefusedRange6 {
  network: ipaddr.IPv6;
  bits: number;
  what: string;
  why: (a: ipaddr.IPv6) => string;
  /** The dataplane passes packets from the range untouched before any map is read (bpf/include/lb6.h addr6_unforwardable). */
  passedAsSource: boolean;
}

/** Most specific first: `::` and `::1` sit inside `::/96` and get their own reason. */
const refused6: readonly RefusedRange6[] = (
  [
    ['::/128', 'the unspecified address', () => 'the unspecified address ::', true],
    ['::1/128', 'loopback (::1)', () => 'loopback (::1): it never leaves the host', true],
    ['::ffff:0:0/96', 'an IPv4-mapped address (::ffff:0:0/96)', (a) => mappedWhy(a), false],
    ['::/96', 'an IPv4-compatible address (::/96)', () => 'an IPv4-compatible address (::/96), deprecated by RFC 4291', false],
    ['fe80::/10', 'link-local (fe80::/10)', () => 'link-local (fe80::/10): it is not routed', true],
    ['fec0::/10', 'site-local (fec0::/10)', () => 'site-local (fec0::/10), deprecated by RFC 3879', false],
    ['ff00::/8', 'multicast (ff00::/8)', () => 'multicast (ff00::/8): one flow cannot go to one backend', true],
    ['100::/64', 'discard-only (100::/64)', () => 'discard-only (100::/64): routers drop it', false],
  ] satisfies ReadonlyArray<readonly [string, string, (a: ipaddr.IPv6) => string, boolean]>
).map(([cidr, what, why, passedAsSource]) => {
  const [network, bits] = ipaddr.IPv6.parseCIDR(cidr);
  return { network, bits, what, why, passedAsSource };
});

/**
 * Why an IPv4-mapped address is refused: its IPv4 form is the address to
 * write, unless that form is refused too (::ffff:127.0.0.1), which is then
 * the reason.
 */
function mappedWhy(a: ipaddr.IPv6): string {
  const v4 = a.toIPv4Address().toString();
  const r = parseAddress(v4);
  const what = 'an IPv4-mapped address (::ffff:0:0/96)';
  return isAddressProblem(r) && r.kind === 'range' ? `${what}, and its IPv4 address ${v4} is ${r.why}` : `${what}: write it as the IPv4 address ${v4}`;
}

function u32(octets: readonly number[]): number {
  return ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
}

const DOTTED = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

/** The address as an unsigned 32-bit integer, or undefined if it is not four decimal parts of 0..255. */
function parseIPv4(s: unknown): number | undefined {
  if (typeof s !== 'string') return undefined;
  const m = DOTTED.exec(s);
  if (!m) return undefined;
  const a = +m[1]!;
  const b = +m[2]!;
  const c = +m[3]!;
  const d = +m[4]!;
  if (a > 255 || b > 255 || c > 255 || d > 255) return undefined;
  return u32([a, b, c, d]);
}

/** Hex groups and colons, optionally ending in a dotted IPv4 part after a colon. */
const IPV6_CHARS = /^([0-9A-Fa-f:]*:)((?:\d{1,3}\.){3}\d{1,3})?$|^[0-9A-Fa-f:]+$/;

/**
 * An IPv6 address of any RFC 4291 spelling, or undefined. Stricter than
 * ipaddr.js alone: no zone id, hex groups of at most 4 digits, and a dotted
 * tail of four decimal parts without leading zeros or hex, read as the last
 * 32 bits ("::1.2.3.4" is ::102:304, where ipaddr.js would map it to
 * ::ffff:102:304).
 */
function parseIPv6(s: unknown): ipaddr.IPv6 | undefined {
  if (typeof s !== 'string' || s.length > 45) return undefined;
  const m = IPV6_CHARS.exec(s);
  if (!m) return undefined;
  let text = s;
  if (m[2] !== undefined) {
    const v = parseIPv4(m[2]);
    if (v === undefined) return undefined;
    text = `${m[1]}${(v >>> 16).toString(16)}:${(v & 0xffff).toString(16)}`;
  }
  if (!ipaddr.IPv6.isValid(text)) return undefined;
  return ipaddr.IPv6.parse(text);
}

/** The one text of an IPv6 address: RFC 5952, an IPv4-mapped one with its dotted IPv4 tail. */
function ipv6Text(a: ipaddr.IPv6): string {
  return a.isIPv4MappedAddress() ? `::ffff:${a.toIPv4Address().toString()}` : a.toRFC5952String();
}

/** The one text of the IPv6 address of eight 16-bit parts (as canonicalAddress gives it). */
export function formatIPv6Parts(parts: readonly number[]): string {
  return ipv6Text(new ipaddr.IPv6([...parts]));
}

/** Whether `s` is an IPv4 address in dotted decimal (four parts, no leading zeros). */
export function isIPv4Address(s: unknown): s is string {
  return parseIPv4(s) !== undefined;
}

/** Whether `s` is written as an IPv4 or an IPv6 address (any range; no zone id). */
export function isIPAddress(s: unknown): s is string {
  return familyOf(s) !== undefined;
}

/** The family `s` is written in, or undefined if it is no address. */
export function familyOf(s: unknown): IPFamily | undefined {
  if (parseIPv4(s) !== undefined) return 4;
  return parseIPv6(s) !== undefined ? 6 : undefined;
}

/** "IPv4" or "IPv6", as messages name a family. */
export function familyName(f: IPFamily): string {
  return f === 4 ? 'IPv4' : 'IPv6';
}

/** The one text of an address (IPv4 as given, IPv6 in RFC 5952 form), or undefined if `s` is no address. */
export function canonicalAddress(s: unknown): string | undefined {
  if (parseIPv4(s) !== undefined) return s as string;
  const a = parseIPv6(s);
  return a === undefined ? undefined : ipv6Text(a);
}

/** The 16 bytes of an IPv6 address in network order, or undefined if `s` is not one. */
export function ipv6Bytes(s: unknown): number[] | undefined {
  return parseIPv6(s)?.toByteArray();
}

/**
 * One parse of a VIP or backend address: its family and one text, or
 * whether it is not an address or in which refused range.
 */
export function parseAddress(s: unknown): ParsedAddress | AddressProblem {
  const ip = parseIPv4(s);
  if (ip !== undefined) {
    for (const r of refused) if (((ip & r.mask) >>> 0) === r.network) return { kind: 'range', why: r.why };
    return { family: 4, text: s as string };
  }
  const a = parseIPv6(s);
  if (a === undefined) return { kind: 'syntax' };
  for (const r of refused6) if (a.match(r.network, r.bits)) return { kind: 'range', why: r.why(a) };
  return { family: 6, text: ipv6Text(a) };
}

/**
 * Why a packet from `s` can be no flow the dataplane balances, when `s` is
 * an address that is never a flow's client: an IPv6 source the dataplane
 * passes untouched (unspecified, loopback, link-local, multicast), or an
 * IPv4-mapped address, which is an IPv4 client written as IPv6 (the IPv4
 * address is the one to give). Undefined for any other address: IPv4
 * sources are not filtered, and other refused IPv6 ranges still reach the
 * maps.
 */
export function clientProblem(s: unknown): string | undefined {
  if (parseIPv4(s) !== undefined) return undefined;
  const a = parseIPv6(s);
  if (a === undefined) return undefined;
  const text = ipv6Text(a);
  if (a.isIPv4MappedAddress()) return `${text} is ${mappedWhy(a)}`;
  const r = refused6.find((x) => a.match(x.network, x.bits));
  if (r === undefined || !r.passedAsSource) return undefined;
  return `${text} is ${r.what}: the dataplane passes packets from it untouched`;
}

/**
 * Why no flow can have `address` (in its one text) as its `role`, for the
 * addresses flows are looked up and filtered by: a client as clientProblem
 * says; a VIP or backend in an IPv6 range none can be in. Undefined when
 * one can (IPv4 VIPs and backends are not filtered here: a stored one was
 * checked when it was written).
 */
export function flowAddressProblem(address: string, role: 'client' | 'VIP' | 'backend'): string | undefined {
  if (role === 'client') return clientProblem(address);
  if (familyOf(address) !== 6) return undefined;
  const r = parseAddress(address);
  return isAddressProblem(r) && r.kind === 'range' ? `${address} cannot be a ${role}: it is ${r.why}` : undefined;
}

/** Whether parseAddress found a problem. */
export function isAddressProblem(r: ParsedAddress | AddressProblem): r is AddressProblem {
  return 'kind' in r;
}

/**
 * One parse of an IPv4 address that can carry traffic: undefined for a
 * usable one, else whether it is not an IPv4 address or in which refused
 * range (for settings that are IPv4 only).
 */
export function addressProblem(s: unknown): AddressProblem | undefined {
  if (parseIPv4(s) === undefined) return { kind: 'syntax' };
  const r = parseAddress(s);
  return isAddressProblem(r) ? r : undefined;
}

/** Order of two dotted-quad IPv4 addresses as numbers (negative, zero, positive); for sorting what the API returns. */
export function compareIPv4(a: string, b: string): number {
  return (parseIPv4(a) ?? -1) - (parseIPv4(b) ?? -1);
}

/**
 * Order of two addresses for listings: IPv4 before IPv6, numeric within a
 * family; text that is no address comes first, by its characters.
 */
export function compareAddresses(a: string, b: string): number {
  const a4 = parseIPv4(a);
  const b4 = parseIPv4(b);
  if (a4 !== undefined && b4 !== undefined) return a4 - b4;
  const a6 = a4 === undefined ? parseIPv6(a) : undefined;
  const b6 = b4 === undefined ? parseIPv6(b) : undefined;
  const rank = (v4: number | undefined, v6: ipaddr.IPv6 | undefined): number => (v4 !== undefined ? 1 : v6 !== undefined ? 2 : 0);
  const ra = rank(a4, a6);
  const rb = rank(b4, b6);
  if (ra !== rb) return ra - rb;
  if (a6 && b6) {
    for (let i = 0; i < 8; i++) {
      const d = a6.parts[i]! - b6.parts[i]!;
      if (d !== 0) return d;
    }
    return 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** "address:port" with an IPv6 address in brackets ("[2001:db8::1]:80"); IPv4 as "10.0.0.1:80". */
export function hostPort(address: string, port: number | string): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * The fix for an IPv6 address written without brackets ("::1:9469", or
 * "fd00::1" without a port) where an address and a port are asked for, or
 * undefined if `value` is not one: the colons of the address would run
 * into the port's. Shared by every flag and field that takes one.
 */
export function unbracketedIPv6(value: string, examplePort?: number): string | undefined {
  if (value.startsWith('[') || value.split(':').length < 3) return undefined;
  const at = value.lastIndexOf(':');
  const [head, tail] = [value.slice(0, at), value.slice(at + 1)];
  if (/^\d{1,5}$/.test(tail) && familyOf(head) === 6) return `${value} is an IPv6 address and a port: an IPv6 address goes in brackets, write [${canonicalAddress(head)}]:${tail}`;
  if (familyOf(value) === 6) return `${value} is an IPv6 address without a port: write [${canonicalAddress(value)}]:PORT${examplePort === undefined ? '' : ` (e.g. [${canonicalAddress(value)}]:${examplePort})`}`;
  return undefined;
}
