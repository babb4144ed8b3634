/**
 * Which IPv4 addresses can be a VIP or a backend. An address is written as
 * four decimal parts (no leading zeros, no shorthand such as "10.1"), and
 * must be one a packet can be sent to and answered from: the ranges below
 * cannot, so a service or backend on them would only ever drop traffic.
 * Private, shared (100.64/10) and documentation ranges are fine: labs and
 * clusters use them.
 */
import ipaddr from 'ipaddr.js';

/** A range no VIP or backend may be in, and why. */
interface RefusedRange {
  cidr: [ipaddr.IPv4, number];
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
].map(([cidr, why]) => ({ cidr: ipaddr.IPv4.parseCIDR(cidr!), why: why! }));

/** Whether `s` is an IPv4 address in dotted decimal (four parts, no leading zeros). */
export function isIPv4Address(s: unknown): s is string {
  return typeof s === 'string' && /^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/.test(s) && ipaddr.IPv4.isValidFourPartDecimal(s);
}

/**
 * Why `address` (a valid IPv4 address) cannot carry traffic for a service,
 * or undefined if it can.
 */
export function unusableAddressReason(address: string): string | undefined {
  const ip = ipaddr.IPv4.parse(address);
  return refused.find((r) => ip.match(r.cidr))?.why;
}
