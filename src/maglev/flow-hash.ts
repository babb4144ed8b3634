/**
 * The flow hash of the dataplane (bpf/include/hash.h), mirrored in
 * TypeScript so that tests and tools compute the Maglev slot the kernel
 * does (LookupFlow asks the kernel itself). Part of the wire contract:
 * changing it moves every flow.
 *
 * The C code loads each network-order field as a host-order (little-endian)
 * word, so the words here are read with readUInt32LE/readUInt16LE from the
 * network-order bytes.
 */
import { Buffer } from 'node:buffer';
import ipaddr from 'ipaddr.js';

/** Seed shared with SLUICE_HASH_SEED in hash.h. */
export const FLOW_HASH_SEED = 0x5a1c3e00;

const rol = (v: number, s: number): number => ((v << s) | (v >>> (32 - s))) >>> 0;

/** The four words of an address as the dataplane loads them: an IPv4 address in the first, the rest zero. */
function addrWords(address: string): number[] {
  const b = Buffer.alloc(16);
  if (address.includes(':')) {
    Buffer.from(ipaddr.IPv6.parse(address).toByteArray()).copy(b);
  } else {
    const parts = address.split('.').map(Number);
    for (let i = 0; i < 4; i++) b[i] = parts[i] ?? 0;
  }
  return [b.readUInt32LE(0), b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt32LE(12)];
}

function portWord(port: number): number {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(port, 0);
  return b.readUInt16LE(0);
}

/** The 32-bit hash the dataplane computes for a 5-tuple, IPv4 or IPv6 (both addresses of one family). */
export function flowHash(saddr: string, daddr: string, sport: number, dport: number, proto: number): number {
  const s = addrWords(saddr);
  const d = addrWords(daddr);
  let a = (0xdeadbeef + (10 << 2) + FLOW_HASH_SEED) >>> 0;
  let b = a;
  let c = a;
  const mix = (): void => {
    a = (a - c) >>> 0; a = (a ^ rol(c, 4)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rol(a, 6)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rol(b, 8)) >>> 0; b = (b + a) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rol(c, 16)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rol(a, 19)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rol(b, 4)) >>> 0; b = (b + a) >>> 0;
  };
  a = (a + s[0]!) >>> 0; b = (b + s[1]!) >>> 0; c = (c + s[2]!) >>> 0;
  mix();
  a = (a + s[3]!) >>> 0; b = (b + d[0]!) >>> 0; c = (c + d[1]!) >>> 0;
  mix();
  a = (a + d[2]!) >>> 0; b = (b + d[3]!) >>> 0; c = (c + (((portWord(sport) << 16) | portWord(dport)) >>> 0)) >>> 0;
  mix();
  a = (a + proto) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rol(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rol(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rol(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rol(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rol(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rol(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rol(b, 24)) >>> 0;
  return c;
}

/**
 * The Maglev slot of a flow hash in a table of `size` slots, as the
 * dataplane computes it (bpf/include/lb.h maglev_slot): the hash scaled to
 * the table, (hash × size) >> 32, a multiply and a shift where `%` by a
 * size known only at run time is a division. Exact here: the product is
 * below 2^49.
 */
export function maglevSlot(hash: number, size: number): number {
  return Math.floor(((hash >>> 0) * size) / 4294967296);
}
