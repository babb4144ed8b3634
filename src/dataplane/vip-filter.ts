/**
 * The VIP filter (bpf/include/maps.h vip_filter): one bit per hash of a
 * VIP's address, set while some VIP hashes there, so that the dataplane
 * tells most addresses that are no VIP from an array load. This side keeps
 * how many VIPs each bit stands for, sets a bit before its first VIP is
 * written and clears it after its last is deleted: the filter may say
 * "maybe" of an address that is no VIP, never "no" of one.
 */
import { parseIPv4, writeAddr } from './codec.js';

/** SLUICE_AF_INET6, as writeAddr returns it. */
const AF_INET6 = 10;

/** 64-bit words of the filter (SLUICE_VIP_FILTER_WORDS). */
export const VIP_FILTER_WORDS = 1024;

/**
 * The filter's bit of a VIP: bpf/include/lb.h vip_filter_hash for IPv4,
 * bpf/include/lb6.h vip6_filter_hash for IPv6 (the four words folded by
 * xor, then the same multiplication), both into the one bitmap.
 */
export function vipFilterBit(address: string): number {
  const v = parseIPv4(address);
  if (v >= 0) {
    // The dataplane multiplies the address as it lies in memory: network
    // order read as a little-endian word.
    const le = (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
    return Math.imul(le, 0x9e3779b1) >>> 16;
  }
  const b = Buffer.alloc(16);
  let family: number;
  try {
    family = writeAddr(b, 0, address);
  } catch {
    family = 0;
  }
  if (family !== AF_INET6) throw new RangeError(`vip filter: not an IP address: ${address}`);
  const folded = b.readUInt32LE(0) ^ b.readUInt32LE(4) ^ b.readUInt32LE(8) ^ b.readUInt32LE(12);
  return Math.imul(folded, 0x9e3779b1) >>> 16;
}

/** The counts behind the bits, and the words they make. */
export class VipFilter {
  private readonly counts = new Map<number, number>();
  private readonly vips = new Set<string>();
  readonly words = new BigUint64Array(VIP_FILTER_WORDS);

  /** Whether `address` is counted in. */
  has(address: string): boolean {
    return this.vips.has(address);
  }

  /** Count `address` in, if it is new: the word to write first, if its bit was clear. */
  add(address: string): number | undefined {
    if (this.vips.has(address)) return undefined;
    this.vips.add(address);
    const bit = vipFilterBit(address);
    const n = this.counts.get(bit) ?? 0;
    this.counts.set(bit, n + 1);
    if (n > 0) return undefined;
    this.words[bit >>> 6]! |= 1n << BigInt(bit & 63);
    return bit >>> 6;
  }

  /** Count `address` out: the word to write after it is gone, if its bit is now clear. */
  remove(address: string): number | undefined {
    if (!this.vips.delete(address)) return undefined;
    const bit = vipFilterBit(address);
    const n = (this.counts.get(bit) ?? 1) - 1;
    if (n > 0) {
      this.counts.set(bit, n);
      return undefined;
    }
    this.counts.delete(bit);
    this.words[bit >>> 6]! &= ~(1n << BigInt(bit & 63));
    return bit >>> 6;
  }
}
