/**
 * The packet fuzzer's frames: a concrete description of one Ethernet frame
 * (FrameSpec), its bytes (buildFrame), and the kernel's own reading of them
 * (readFrame: which lengths are valid, as ip_rcv_core, tcp_v4_rcv and
 * __udp4_lib_rcv judge them; for IPv6 as ipv6_rcv, tcp_v6_rcv and
 * __udp6_lib_rcv do, and the extension headers as the dataplane's
 * parse_ipv6hdr walks them), with checksums summed from scratch.
 *
 * The spec is built first with every length and checksum right, then its
 * mutations are applied in order to the bytes: a field set to any value,
 * a checksum spoiled, bytes appended or cut. What is generated (random
 * flows against random services) is in fuzz-scenario.ts.
 */
import { fmtIp6, ip6Bytes, onesSum } from './packet.js';

export const ETH_LEN = 14;
export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const IPV6_LEN = 40;
export const IPPROTO_ICMP = 1;
export const IPPROTO_ICMPV6 = 58;
/** IPv6 extension headers the dataplane walks (bpf/include/parsing.h), and the upper layers it passes. */
export const NEXTHDR_HOP = 0;
export const NEXTHDR_ROUTING = 43;
export const NEXTHDR_FRAGMENT = 44;
export const NEXTHDR_DEST = 60;
export const NEXTHDR_ESP = 50;
export const NEXTHDR_AUTH = 51;
export const NEXTHDR_NONE = 59;
/** parse_ipv6hdr's bounds (SLUICE_IPV6_MAX_EXT, SLUICE_IPV6_EXT_MAX_BYTES in bpf/include/sluice_shared.h). */
export const IPV6_MAX_EXT = 4;
export const IPV6_EXT_MAX_BYTES = 256;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** TCP flag bits (byte 13 of the header). */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export type L4Spec =
  | { kind: 'tcp'; sport: number; dport: number; seq: number; flags: number; options: number[]; payload: number[] }
  | { kind: 'udp'; sport: number; dport: number; zeroChecksum: boolean; payload: number[] }
  /** An ICMP error (type 3, 11, or any), quoting `quote` (an inner IP header and what follows); over IPv6 an ICMPv6 message, its checksum with the pseudo-header. */
  | { kind: 'icmp'; type: number; code: number; quote: number[] }
  /** Any other protocol: its number and bytes. */
  | { kind: 'raw'; proto: number; payload: number[] };

/** A change to a built frame's bytes. Field changes keep the IPv4 header checksum right unless `ipCsum` follows. */
export type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'totLen'; value: number }
  | { kind: 'ihl'; value: number }
  | { kind: 'version'; value: number }
  | { kind: 'doff'; value: number }
  | { kind: 'udpLen'; value: number; fixChecksum: boolean }
  | { kind: 'ipCsum'; xor: number }
  | { kind: 'l4Csum'; xor: number }
  | { kind: 'pad'; bytes: number[] }
  | { kind: 'flip'; pos: number; xor: number }
  | { kind: 'ethType'; value: number }
  /* IPv6 frames only (no-ops on IPv4 ones; the IPv4 field mutations above are no-ops on IPv6 ones, but for version, doff, udpLen, l4Csum, which find their field in either). */
  | { kind: 'payloadLen'; value: number }
  /** The next header field of the fixed header (at 0) or of the at-th extension header (at > 0; past the last: the last's). */
  | { kind: 'nextHeader'; at: number; value: number }
  /** The length byte of the at-th extension header (1-based as nextHeader's; a fragment header's reserved byte). */
  | { kind: 'extLen'; at: number; value: number }
  /** Cut the frame at one of its header boundaries (Ethernet, the fixed header, each extension header, the L4 header), `delta` bytes from it. */
  | { kind: 'cut'; boundary: number; delta: number };

/** One IPv6 extension header: its type and the bytes past its next header and length bytes (padded with zeros to a multiple of 8). */
export interface Ext6Spec { type: number; bytes: number[] }

/** An IPv6 frame's fixed header fields and extension headers (the addresses are FrameSpec.ip's). */
export interface Ip6Spec {
  hopLimit: number;
  /** 20 bits. */
  flowLabel: number;
  ext: Ext6Spec[];
  /** A fragment header, inserted before the `at`-th extension header (at >= ext.length: last). */
  frag?: { offset: number; more: boolean; id: number; at: number };
}

export interface FrameSpec {
  dstMac: number[];
  srcMac: number[];
  /** The IPv4 header; with `ip6`, only its addresses are used (IPv6 ones, RFC 5952). */
  ip: {
    saddr: string;
    daddr: string;
    ttl: number;
    id: number;
    df: boolean;
    mf: boolean;
    fragOffset: number;
    /** Raw options, padded here with EOL to a multiple of 4. */
    options: number[];
  };
  /** Set: an IPv6 frame. */
  ip6?: Ip6Spec;
  l4: L4Spec;
  mutations: Mutation[];
}

/** An address's bytes: 4 for IPv4, 16 for IPv6. */
export function ipToBytes(ip: string): Buffer {
  return ip.includes(':') ? ip6Bytes(ip) : Buffer.from(ip.split('.').map(Number));
}

/** 16 bytes as an IPv6 address, RFC 5952 text. */
export function bytesToIp6(b: Buffer, off = 0): string {
  return fmtIp6(b.subarray(off, off + 16));
}

export function bytesToIp(b: Buffer, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

export function pseudoSum(saddr: Buffer, daddr: Buffer, proto: number, len: number): number {
  const p = Buffer.alloc(12);
  saddr.copy(p, 0);
  daddr.copy(p, 4);
  p[9] = proto;
  p.writeUInt16BE(len & 0xffff, 10);
  return onesSum(p);
}

/** The IPv6 pseudo-header's sum (RFC 8200 §8.1: both addresses, a 32-bit length, three zeros, the next header). */
export function pseudoSum6(saddr: Buffer, daddr: Buffer, proto: number, len: number): number {
  const p = Buffer.alloc(40);
  saddr.copy(p, 0);
  daddr.copy(p, 16);
  p.writeUInt32BE(len >>> 0, 32);
  p[39] = proto;
  return onesSum(p);
}

/** The pseudo-header's sum of either family, by the addresses' lengths. */
const pseudo = (saddr: Buffer, daddr: Buffer, proto: number, len: number): number =>
  saddr.length === 16 ? pseudoSum6(saddr, daddr, proto, len) : pseudoSum(saddr, daddr, proto, len);

const protoOf = (l4: L4Spec, six = false): number =>
  l4.kind === 'tcp' ? IPPROTO_TCP : l4.kind === 'udp' ? IPPROTO_UDP : l4.kind === 'icmp' ? (six ? IPPROTO_ICMPV6 : IPPROTO_ICMP) : l4.proto;

/** The L4 bytes of a spec, its checksum computed over them (with the pseudo-header for TCP and UDP). */
function buildL4(l4: L4Spec, saddr: Buffer, daddr: Buffer): Buffer {
  switch (l4.kind) {
    case 'tcp': {
      const opts = Buffer.from(l4.options);
      const optLen = Math.ceil(opts.length / 4) * 4;
      const b = Buffer.alloc(20 + optLen + l4.payload.length);
      b.writeUInt16BE(l4.sport, 0);
      b.writeUInt16BE(l4.dport, 2);
      b.writeUInt32BE(l4.seq >>> 0, 4);
      b.writeUInt32BE(l4.flags & TCP_ACK ? 0x01020304 : 0, 8);
      b[12] = ((20 + optLen) / 4) << 4;
      b[13] = l4.flags;
      b.writeUInt16BE(65535, 14);
      opts.copy(b, 20);
      Buffer.from(l4.payload).copy(b, 20 + optLen);
      b.writeUInt16BE(~onesSum(b, pseudo(saddr, daddr, IPPROTO_TCP, b.length)) & 0xffff, 16);
      return b;
    }
    case 'udp': {
      const b = Buffer.alloc(8 + l4.payload.length);
      b.writeUInt16BE(l4.sport, 0);
      b.writeUInt16BE(l4.dport, 2);
      b.writeUInt16BE(b.length, 4);
      Buffer.from(l4.payload).copy(b, 8);
      let c = ~onesSum(b, pseudo(saddr, daddr, IPPROTO_UDP, b.length)) & 0xffff;
      if (c === 0) c = 0xffff;
      b.writeUInt16BE(l4.zeroChecksum ? 0 : c, 6);
      return b;
    }
    case 'icmp': {
      const b = Buffer.concat([Buffer.from([l4.type, l4.code, 0, 0, 0, 0, 0, 0]), Buffer.from(l4.quote)]);
      /* ICMPv6's checksum covers a pseudo-header (RFC 4443 §2.3); ICMPv4's does not. */
      b.writeUInt16BE(~onesSum(b, saddr.length === 16 ? pseudoSum6(saddr, daddr, IPPROTO_ICMPV6, b.length) : 0) & 0xffff, 2);
      return b;
    }
    case 'raw':
      return Buffer.from(l4.payload);
  }
}

/** Recompute the IPv4 header checksum of a frame in place (if its header is all there). */
export function fixIpChecksum(f: Buffer): void {
  if (f.length < ETH_LEN + 20) return;
  const ihl = (f[ETH_LEN]! & 0x0f) * 4;
  const end = Math.min(f.length, ETH_LEN + Math.max(ihl, 20));
  f.writeUInt16BE(0, ETH_LEN + 10);
  f.writeUInt16BE(~onesSum(f.subarray(ETH_LEN, end)) & 0xffff, ETH_LEN + 10);
}

/** An IPv6 spec's extension headers (the fragment header among them), each naming the next; the last names `upper`. */
export function ext6Bytes(ip6: Ip6Spec, upper: number): Buffer {
  const hdrs: Array<{ type: number; body: Buffer }> = ip6.ext.map((e) => {
    const len = e.type === NEXTHDR_FRAGMENT ? 8 : Math.max(8, Math.ceil((2 + e.bytes.length) / 8) * 8);
    const body = Buffer.alloc(len - 2);
    Buffer.from(e.bytes).copy(body, 0, 0, Math.min(e.bytes.length, body.length));
    return { type: e.type, body };
  });
  if (ip6.frag) {
    const body = Buffer.alloc(6);
    body.writeUInt16BE((ip6.frag.offset & 0xfff8) | (ip6.frag.more ? 1 : 0), 0);
    body.writeUInt32BE(ip6.frag.id >>> 0, 2);
    hdrs.splice(Math.min(ip6.frag.at, hdrs.length), 0, { type: NEXTHDR_FRAGMENT, body });
  }
  return Buffer.concat(hdrs.map((h, i) => {
    const b = Buffer.alloc(2 + h.body.length);
    b[0] = i + 1 < hdrs.length ? hdrs[i + 1]!.type : upper;
    /* A fragment header's second byte is reserved (0); the others' is the length in 8 bytes, less one. */
    b[1] = h.type === NEXTHDR_FRAGMENT ? 0 : b.length / 8 - 1;
    h.body.copy(b, 2);
    return b;
  }));
}

/** The first header type of an IPv6 spec's chain (the fixed header's next header). */
function firstNext6(ip6: Ip6Spec, upper: number): number {
  if (ip6.frag && ip6.frag.at <= 0) return NEXTHDR_FRAGMENT;
  return ip6.ext[0]?.type ?? (ip6.frag ? NEXTHDR_FRAGMENT : upper);
}

/** The bytes of an IPv6 spec, before mutations. */
function buildFrame6(s: FrameSpec, ip6: Ip6Spec): Buffer {
  const saddr = ip6Bytes(s.ip.saddr);
  const daddr = ip6Bytes(s.ip.daddr);
  const upper = protoOf(s.l4, true);
  const l4 = buildL4(s.l4, saddr, daddr);
  const ext = ext6Bytes(ip6, upper);
  const ip = Buffer.alloc(IPV6_LEN);
  ip.writeUInt32BE(((6 << 28) | (ip6.flowLabel & 0xfffff)) >>> 0, 0);
  ip.writeUInt16BE((ext.length + l4.length) & 0xffff, 4);
  ip[6] = firstNext6(ip6, upper);
  ip[7] = ip6.hopLimit & 0xff;
  saddr.copy(ip, 8);
  daddr.copy(ip, 24);
  const eth = Buffer.alloc(ETH_LEN);
  Buffer.from(s.dstMac).copy(eth, 0);
  Buffer.from(s.srcMac).copy(eth, 6);
  eth.writeUInt16BE(ETH_P_IPV6, 12);
  return Buffer.concat([eth, ip, ext, l4]);
}

/** The bytes of a spec, mutations applied. */
export function buildFrame(s: FrameSpec): Buffer {
  if (s.ip6) {
    let f = buildFrame6(s, s.ip6);
    for (const m of s.mutations) f = mutate(f, m, 6);
    return f;
  }
  const saddr = ipToBytes(s.ip.saddr);
  const daddr = ipToBytes(s.ip.daddr);
  const opts = Buffer.from(s.ip.options);
  const optLen = Math.min(40, Math.ceil(opts.length / 4) * 4);
  const l4 = buildL4(s.l4, saddr, daddr);
  const ip = Buffer.alloc(20 + optLen);
  ip[0] = 0x40 | (5 + optLen / 4);
  ip.writeUInt16BE(ip.length + l4.length, 2);
  ip.writeUInt16BE(s.ip.id, 4);
  ip.writeUInt16BE((s.ip.df ? 0x4000 : 0) | (s.ip.mf ? 0x2000 : 0) | (s.ip.fragOffset & 0x1fff), 6);
  ip[8] = s.ip.ttl;
  ip[9] = protoOf(s.l4);
  saddr.copy(ip, 12);
  daddr.copy(ip, 16);
  opts.copy(ip, 20, 0, optLen);
  ip.writeUInt16BE(~onesSum(ip) & 0xffff, 10);
  const eth = Buffer.alloc(ETH_LEN);
  Buffer.from(s.dstMac).copy(eth, 0);
  Buffer.from(s.srcMac).copy(eth, 6);
  eth.writeUInt16BE(ETH_P_IP, 12);
  let f: Buffer = Buffer.concat([eth, ip, l4]);
  for (const m of s.mutations) f = mutate(f, m);
  return f;
}

/** Where the L4 header starts, by the frame's own IHL. */
const l4Off = (f: Buffer): number => ETH_LEN + (f[ETH_LEN]! & 0x0f) * 4;

/**
 * An IPv6 frame's chain as its bytes say (as far as the frame holds it):
 * the offset of each header's next header byte (the fixed header's first),
 * the extension headers' offsets, and the upper layer's offset and type.
 * Walks every extension header type parse_ipv6hdr walks, without its
 * bounds: a mutation finds its field in any frame.
 */
export function chain6(f: Buffer): { next: number[]; ext: number[]; l4: number; proto: number } {
  const next = [ETH_LEN + 6];
  const ext: number[] = [];
  let nh = f.length > ETH_LEN + 6 ? f[ETH_LEN + 6]! : -1;
  let off = ETH_LEN + IPV6_LEN;
  while ((nh === NEXTHDR_HOP || nh === NEXTHDR_DEST || nh === NEXTHDR_ROUTING || nh === NEXTHDR_FRAGMENT) && off + 2 <= f.length && ext.length < 16) {
    ext.push(off);
    next.push(off);
    const later = nh === NEXTHDR_FRAGMENT && off + 4 <= f.length && (f.readUInt16BE(off + 2) & 0xfff8) !== 0;
    const len = nh === NEXTHDR_FRAGMENT ? 8 : (f[off + 1]! + 1) * 8;
    nh = f[off]!;
    off += len;
    if (later) break;
  }
  return { next, ext, l4: off, proto: nh };
}

/** Where a frame's L4 header is and which it is, of either family. */
function l4Of(f: Buffer, family: 4 | 6): { off: number; proto: number | undefined } {
  if (family === 6) {
    const c = chain6(f);
    return { off: c.l4, proto: c.proto };
  }
  return { off: l4Off(f), proto: f[ETH_LEN + 9] };
}

/** Apply one mutation to a frame of `family`; bytes it would write past the end are not written. */
export function mutate(frame: Buffer, m: Mutation, family: 4 | 6 = 4): Buffer {
  const f = Buffer.from(frame);
  const put16 = (off: number, v: number): void => {
    if (off + 2 <= f.length) f.writeUInt16BE(v & 0xffff, off);
  };
  if (family === 6) return mutate6(f, m, put16);
  switch (m.kind) {
    case 'truncate':
      /* The kernel refuses a test frame shorter than an Ethernet header. */
      return f.subarray(0, ETH_LEN + (m.at % (f.length - ETH_LEN + 1)));
    case 'pad':
      return Buffer.concat([f, Buffer.from(m.bytes)]);
    case 'ethType':
      put16(12, m.value);
      return f;
    case 'flip':
      f[m.pos % f.length]! ^= m.xor || 1;
      return f;
    case 'totLen':
      put16(ETH_LEN + 2, m.value);
      fixIpChecksum(f);
      return f;
    case 'ihl':
      if (f.length > ETH_LEN) f[ETH_LEN] = (f[ETH_LEN]! & 0xf0) | (m.value & 0x0f);
      fixIpChecksum(f);
      return f;
    case 'version':
      if (f.length > ETH_LEN) f[ETH_LEN] = ((m.value & 0x0f) << 4) | (f[ETH_LEN]! & 0x0f);
      fixIpChecksum(f);
      return f;
    case 'ipCsum':
      if (f.length >= ETH_LEN + 12) f[ETH_LEN + 10]! ^= m.xor || 1;
      return f;
    case 'doff': {
      const o = l4Off(f) + 12;
      if (f[ETH_LEN + 9] === IPPROTO_TCP && o < f.length) f[o] = ((m.value & 0x0f) << 4) | (f[o]! & 0x0f);
      return f;
    }
    case 'udpLen': {
      const o = l4Off(f);
      if (f[ETH_LEN + 9] !== IPPROTO_UDP) return f;
      put16(o + 4, m.value);
      if (m.fixChecksum && o + 8 <= f.length && f.readUInt16BE(o + 6) !== 0) {
        /* The checksum over the datagram as its new length says it is, where the frame holds it. */
        const ulen = Math.min(m.value, f.length - o);
        if (ulen >= 8) {
          f.writeUInt16BE(0, o + 6);
          let c = ~onesSum(f.subarray(o, o + ulen), pseudoSum(f.subarray(ETH_LEN + 12, ETH_LEN + 16), f.subarray(ETH_LEN + 16, ETH_LEN + 20), IPPROTO_UDP, m.value)) & 0xffff;
          if (c === 0) c = 0xffff;
          f.writeUInt16BE(c, o + 6);
        }
      }
      return f;
    }
    case 'l4Csum': {
      const o = l4Off(f);
      const proto = f[ETH_LEN + 9];
      const at = proto === IPPROTO_TCP ? o + 16 : proto === IPPROTO_UDP ? o + 6 : o + 2;
      if (at < f.length) f[at]! ^= m.xor || 1;
      return f;
    }
    case 'payloadLen':
    case 'nextHeader':
    case 'extLen':
    case 'cut':
      return f;
  }
}

/** The boundaries of an IPv6 frame's headers: Ethernet, the fixed header, each extension header, the L4 header (TCP by its data offset). */
function boundaries6(f: Buffer): number[] {
  const c = chain6(f);
  const out = [ETH_LEN, ETH_LEN + IPV6_LEN, ...c.ext.slice(1), c.l4];
  /* Inside each extension header: its first two bytes, its length byte. */
  for (const e of c.ext) out.push(e + 1, e + 2, e + 8);
  if (c.proto === IPPROTO_TCP) out.push(c.l4 + 20, c.l4 + 12, c.l4 + (c.l4 + 12 < f.length ? (f[c.l4 + 12]! >> 4) * 4 : 20));
  else if (c.proto === IPPROTO_UDP || c.proto === IPPROTO_ICMPV6) out.push(c.l4 + 8, c.l4 + 4);
  return [...new Set(out)].sort((a, b) => a - b);
}

function mutate6(f: Buffer, m: Mutation, put16: (off: number, v: number) => void): Buffer {
  const ip = ETH_LEN;
  switch (m.kind) {
    case 'truncate':
      return f.subarray(0, ETH_LEN + (m.at % (f.length - ETH_LEN + 1)));
    case 'cut': {
      const b = boundaries6(f);
      const at = b[m.boundary % b.length]! + m.delta;
      /* Never shorter than an Ethernet header (the kernel refuses the test run), never longer than the frame. */
      return f.subarray(0, Math.max(ETH_LEN, Math.min(f.length, at)));
    }
    case 'pad':
      return Buffer.concat([f, Buffer.from(m.bytes)]);
    case 'ethType':
      put16(12, m.value);
      return f;
    case 'flip':
      f[m.pos % f.length]! ^= m.xor || 1;
      return f;
    case 'version':
      if (f.length > ip) f[ip] = ((m.value & 0x0f) << 4) | (f[ip]! & 0x0f);
      return f;
    case 'payloadLen':
      put16(ip + 4, m.value);
      return f;
    case 'nextHeader': {
      const c = chain6(f);
      const at = c.next[Math.min(m.at, c.next.length - 1)]!;
      if (at < f.length) f[at] = m.value & 0xff;
      return f;
    }
    case 'extLen': {
      const c = chain6(f);
      if (!c.ext.length) return f;
      const at = c.ext[(Math.max(1, m.at) - 1) % c.ext.length]! + 1;
      if (at < f.length) f[at] = m.value & 0xff;
      return f;
    }
    case 'doff': {
      const { off, proto } = l4Of(f, 6);
      if (proto === IPPROTO_TCP && off + 12 < f.length) f[off + 12] = ((m.value & 0x0f) << 4) | (f[off + 12]! & 0x0f);
      return f;
    }
    case 'udpLen': {
      const { off: o, proto } = l4Of(f, 6);
      if (proto !== IPPROTO_UDP) return f;
      put16(o + 4, m.value);
      if (m.fixChecksum && o + 8 <= f.length && f.readUInt16BE(o + 6) !== 0) {
        const ulen = Math.min(m.value, f.length - o);
        if (ulen >= 8) {
          f.writeUInt16BE(0, o + 6);
          let c = ~onesSum(f.subarray(o, o + ulen), pseudoSum6(f.subarray(ip + 8, ip + 24), f.subarray(ip + 24, ip + 40), IPPROTO_UDP, m.value)) & 0xffff;
          if (c === 0) c = 0xffff;
          f.writeUInt16BE(c, o + 6);
        }
      }
      return f;
    }
    case 'l4Csum': {
      const { off: o, proto } = l4Of(f, 6);
      const at = proto === IPPROTO_TCP ? o + 16 : proto === IPPROTO_UDP ? o + 6 : o + 2;
      if (at < f.length) f[at]! ^= m.xor || 1;
      return f;
    }
    case 'totLen':
    case 'ihl':
    case 'ipCsum':
      return f;
  }
}

/**
 * What the kernel makes of a frame: ip_rcv_core, tcp_v4_rcv and
 * __udp4_lib_rcv's length checks; for IPv6 ipv6_rcv's, tcp_v6_rcv's and
 * __udp6_lib_rcv's (a UDP checksum of 0 is invalid), with the extension
 * headers judged as parse_ipv6hdr judges them (at most IPV6_MAX_EXT of
 * at most IPV6_EXT_MAX_BYTES in all, hop-by-hop only first, within the
 * payload length; a payload length of 0, a jumbogram's, refused): the
 * dataplane's bounds, stricter than the kernel's, are its decision.
 * For IPv6, `ihl` is the fixed header and the extension headers walked
 * (where the upper layer starts) and `totLen` the fixed header plus the
 * payload length, so that both families' lengths read alike.
 */
export interface FrameReading {
  ethType: number;
  /** 4: an IPv4 frame (ethertype 0x0800), 6: IPv6 (0x86dd); absent for any other. */
  family?: 4 | 6;
  /** The 20-byte IPv4 header (IPv6: the 40-byte fixed header) is all in the frame (its addresses can be read). */
  ipHeader: boolean;
  saddr?: string;
  daddr?: string;
  proto?: number;
  /** Why the IPv4 header is invalid: version, IHL, total length; undefined when it is valid (or absent). */
  ipInvalid?: string;
  ihl?: number;
  totLen?: number;
  /** A fragment: MF set, or an offset. */
  fragment?: boolean;
  /** A datagram's first fragment (MF, offset 0): decided as an unfragmented packet, its UDP length the whole datagram's. */
  firstFragment?: boolean;
  /** A later fragment (offset > 0): no L4 header. */
  laterFragment?: boolean;
  /** The IP identification. */
  id?: number;
  /** Why the TCP or UDP header is invalid (judged for a valid IPv4 packet that is not a later fragment). */
  l4Invalid?: string;
  sport?: number;
  dport?: number;
  tcpFlags?: number;
  /** UDP: the length field, when valid. */
  udpLen?: number;
  udpChecksum?: number;
  /** IPv6: a routing header with segments left ends the walk: the destination is a waypoint, not the balancer's (passed). */
  waypoint?: boolean;
  /** IPv6: the extension headers walked (a fragment header among them). */
  extCount?: number;
}

/** An IPv6 source the dataplane never forwards nor answers (lb6.h addr6_unforwardable): ::, ::1, ff00::/8, fe80::/10. */
export function unforwardable6(b: Buffer, off = 0): boolean {
  const w0 = b.readUInt32BE(off);
  if (w0 >>> 24 === 0xff || (w0 & 0xffc00000) >>> 0 === 0xfe800000) return true;
  return w0 === 0 && b.readUInt32BE(off + 4) === 0 && b.readUInt32BE(off + 8) === 0 && b.readUInt32BE(off + 12) <= 1;
}

/** An IPv6 frame read as ipv6_rcv and parse_ipv6hdr read it, then its upper layer as readFrame reads IPv4's. */
function readFrame6(f: Buffer, r: FrameReading): FrameReading {
  r.family = 6;
  if (f.length < ETH_LEN + IPV6_LEN) return r;
  const ip = f.subarray(ETH_LEN);
  r.ipHeader = true;
  r.saddr = bytesToIp6(ip, 8);
  r.daddr = bytesToIp6(ip, 24);
  r.proto = ip[6]!;
  const version = ip[0]! >> 4;
  const payload = ip.readUInt16BE(4);
  const avail = f.length - ETH_LEN;
  r.ihl = IPV6_LEN;
  r.totLen = IPV6_LEN + payload;
  if (version !== 6) r.ipInvalid = `version ${version}`;
  else if (payload === 0) r.ipInvalid = 'payload length 0 (a jumbogram, RFC 2675)';
  else if (payload > avail - IPV6_LEN) r.ipInvalid = `payload length ${payload} > ${avail - IPV6_LEN} bytes after the fixed header`;
  if (r.ipInvalid) return r;
  /* parse_ipv6hdr's walk, step for step (bpf/include/parsing.h). */
  let nh = ip[6]!;
  let total = 0;
  let count = 0;
  for (let i = 0; i <= IPV6_MAX_EXT; i++) {
    if (nh !== NEXTHDR_HOP && nh !== NEXTHDR_DEST && nh !== NEXTHDR_ROUTING && nh !== NEXTHDR_FRAGMENT) break;
    if (i === IPV6_MAX_EXT) return { ...r, ipInvalid: `more than ${IPV6_MAX_EXT} extension headers` };
    if (nh === NEXTHDR_HOP && i !== 0) return { ...r, ipInvalid: `hop-by-hop options as extension header ${i + 1}, not first` };
    const e = IPV6_LEN + total;
    if (ETH_LEN + e + 8 > f.length) return { ...r, ipInvalid: `extension header ${i + 1} (${nh}) cut: its 8 bytes beyond the frame` };
    total += nh === NEXTHDR_FRAGMENT ? 8 : (ip[e + 1]! + 1) * 8;
    count++;
    if (total > IPV6_EXT_MAX_BYTES) return { ...r, ipInvalid: `extension headers of ${total} bytes > ${IPV6_EXT_MAX_BYTES}` };
    if (total > payload) return { ...r, ipInvalid: `extension headers of ${total} bytes beyond the payload length ${payload}` };
    if (nh === NEXTHDR_ROUTING && ip[e + 3] !== 0) {
      r.waypoint = true;
      r.extCount = count;
      return r;
    }
    if (nh === NEXTHDR_FRAGMENT) {
      const off = ip.readUInt16BE(e + 2);
      r.id = ip.readUInt32BE(e + 4);
      r.laterFragment = (off & 0xfff8) !== 0;
      r.fragment = r.laterFragment || (off & 1) !== 0;
      r.firstFragment = r.fragment && !r.laterFragment;
      if (r.laterFragment) {
        nh = ip[e]!;
        break;
      }
    }
    nh = ip[e]!;
  }
  r.proto = nh;
  r.ihl = IPV6_LEN + total;
  r.extCount = count;
  /* Sources it never forwards pass before their upper layer is read; so do later fragments (no upper-layer header). */
  if (unforwardable6(ip, 8) || r.laterFragment) return r;
  const l4 = ip.subarray(r.ihl, r.totLen);
  if (nh === IPPROTO_TCP) {
    if (l4.length < 20) return { ...r, l4Invalid: `TCP header cut: ${l4.length} bytes in the payload length` };
    const doff = (l4[12]! >> 4) * 4;
    r.sport = l4.readUInt16BE(0);
    r.dport = l4.readUInt16BE(2);
    r.tcpFlags = l4[13]!;
    if (doff < 20) r.l4Invalid = `TCP data offset ${doff / 4} < 5`;
    else if (doff > l4.length) r.l4Invalid = `TCP data offset ${doff / 4} (${doff} bytes) beyond the ${l4.length} bytes of the payload length`;
  } else if (nh === IPPROTO_UDP) {
    if (l4.length < 8) return { ...r, l4Invalid: `UDP header cut: ${l4.length} bytes in the payload length` };
    const ulen = l4.readUInt16BE(4);
    r.sport = l4.readUInt16BE(0);
    r.dport = l4.readUInt16BE(2);
    r.udpChecksum = l4.readUInt16BE(6);
    /* A first fragment's UDP length is the whole datagram's: only >= 8 is asked of it. */
    if (ulen < 8) r.l4Invalid = `UDP length ${ulen} < 8`;
    else if (!r.firstFragment && ulen > l4.length) r.l4Invalid = `UDP length ${ulen} beyond the ${l4.length} bytes of the payload length`;
    else if (r.udpChecksum === 0) r.l4Invalid = 'UDP checksum 0 (none), which IPv6 forbids (RFC 8200 §8.1)';
    else r.udpLen = ulen;
  }
  return r;
}

export function readFrame(f: Buffer): FrameReading {
  const r: FrameReading = { ethType: f.length >= ETH_LEN ? f.readUInt16BE(12) : 0, ipHeader: false };
  if (r.ethType === ETH_P_IPV6) return readFrame6(f, r);
  if (r.ethType === ETH_P_IP) r.family = 4;
  if (r.ethType !== ETH_P_IP || f.length < ETH_LEN + 20) return r;
  const ip = f.subarray(ETH_LEN);
  r.ipHeader = true;
  r.saddr = bytesToIp(ip, 12);
  r.daddr = bytesToIp(ip, 16);
  r.proto = ip[9]!;
  const version = ip[0]! >> 4;
  const ihl = (ip[0]! & 0x0f) * 4;
  const totLen = ip.readUInt16BE(2);
  const avail = f.length - ETH_LEN;
  r.ihl = ihl;
  r.totLen = totLen;
  if (version !== 4) r.ipInvalid = `version ${version}`;
  else if (ihl < 20) r.ipInvalid = `IHL ${ihl / 4} < 5`;
  else if (ihl > avail) r.ipInvalid = `IHL ${ihl / 4}: header beyond the frame (${avail} bytes)`;
  else if (totLen < ihl) r.ipInvalid = `total length ${totLen} < IHL*4 ${ihl}`;
  else if (totLen > avail) r.ipInvalid = `total length ${totLen} > ${avail} bytes after Ethernet`;
  if (r.ipInvalid) return r;
  const frag = ip.readUInt16BE(6);
  r.id = ip.readUInt16BE(4);
  r.fragment = (frag & 0x3fff) !== 0;
  r.laterFragment = (frag & 0x1fff) !== 0;
  r.firstFragment = r.fragment && !r.laterFragment;
  if (r.laterFragment) return r;
  const l4 = ip.subarray(ihl, totLen);
  if (r.firstFragment && r.proto === IPPROTO_UDP) {
    /* The UDP length is the whole datagram's: only >= 8 is asked of it; the header itself must lie within the total length, as any. */
    const h = ip.subarray(ihl);
    if (l4.length < 8) return { ...r, l4Invalid: `UDP header cut: ${l4.length} bytes in the total length (a first fragment)` };
    const ulen = h.readUInt16BE(4);
    r.sport = h.readUInt16BE(0);
    r.dport = h.readUInt16BE(2);
    r.udpChecksum = h.readUInt16BE(6);
    if (ulen < 8) r.l4Invalid = `UDP length ${ulen} < 8 (a first fragment)`;
    else r.udpLen = ulen;
    return r;
  }
  if (r.proto === IPPROTO_TCP) {
    if (l4.length < 20) return { ...r, l4Invalid: `TCP header cut: ${l4.length} bytes in the total length` };
    const doff = (l4[12]! >> 4) * 4;
    r.sport = l4.readUInt16BE(0);
    r.dport = l4.readUInt16BE(2);
    r.tcpFlags = l4[13]!;
    if (doff < 20) r.l4Invalid = `TCP data offset ${doff / 4} < 5`;
    else if (doff > l4.length) r.l4Invalid = `TCP data offset ${doff / 4} (${doff} bytes) beyond the ${l4.length} bytes of the total length`;
  } else if (r.proto === IPPROTO_UDP) {
    if (l4.length < 8) return { ...r, l4Invalid: `UDP header cut: ${l4.length} bytes in the total length` };
    const ulen = l4.readUInt16BE(4);
    r.sport = l4.readUInt16BE(0);
    r.dport = l4.readUInt16BE(2);
    r.udpChecksum = l4.readUInt16BE(6);
    if (ulen < 8) r.l4Invalid = `UDP length ${ulen} < 8`;
    else if (ulen > l4.length) r.l4Invalid = `UDP length ${ulen} beyond the ${l4.length} bytes of the total length`;
    else r.udpLen = ulen;
  }
  return r;
}

/**
 * The one's complement sums a receiver checks, over a frame the reading
 * says is valid IPv4: the header's, and the L4 one (TCP over the total
 * length, UDP over its own length, both with the pseudo-header; ICMP over
 * the total length). 0xffff is a right checksum; anything else is the
 * error it carries, which an incremental rewrite keeps.
 */
export function checksumSums(f: Buffer, r: FrameReading): { ip: number; l4?: number } {
  if (r.family === 6) return checksumSums6(f, r);
  const ip = f.subarray(ETH_LEN, ETH_LEN + r.ihl!);
  const out: { ip: number; l4?: number } = { ip: onesSum(ip) };
  const l4 = f.subarray(ETH_LEN + r.ihl!, ETH_LEN + r.totLen!);
  const s = ip.subarray(12, 16);
  const d = ip.subarray(16, 20);
  if (r.laterFragment) return out;
  if (r.firstFragment) {
    /*
     * The L4 checksum covers the whole datagram, of which the first
     * fragment holds the start: the partial sum over the bytes it holds
     * (and a pseudo-header of a length that does not change) is what an
     * incremental rewrite keeps, as it keeps a whole packet's sum.
     */
    if ((r.proto === IPPROTO_TCP || r.proto === IPPROTO_UDP) && r.l4Invalid === undefined && l4.length >= (r.proto === IPPROTO_TCP ? 20 : 8)) {
      out.l4 = onesSum(l4, pseudoSum(s, d, r.proto, r.proto === IPPROTO_UDP ? r.udpLen! : l4.length));
    }
    return out;
  }
  if (r.proto === IPPROTO_TCP && r.l4Invalid === undefined) out.l4 = onesSum(l4, pseudoSum(s, d, IPPROTO_TCP, l4.length));
  else if (r.proto === IPPROTO_UDP && r.udpLen !== undefined) {
    out.l4 = onesSum(l4.subarray(0, r.udpLen), pseudoSum(s, d, IPPROTO_UDP, r.udpLen));
  } else if (r.proto === IPPROTO_ICMP) out.l4 = onesSum(l4);
  return out;
}

/**
 * checksumSums() for IPv6: there is no header checksum (`ip` is always
 * right); the L4 sums have the IPv6 pseudo-header, ICMPv6's too. A first
 * fragment's partial sum is kept as IPv4's is.
 */
function checksumSums6(f: Buffer, r: FrameReading): { ip: number; l4?: number } {
  const out: { ip: number; l4?: number } = { ip: 0xffff };
  const ip = f.subarray(ETH_LEN);
  const s = ip.subarray(8, 24);
  const d = ip.subarray(24, 40);
  const l4 = ip.subarray(r.ihl!, r.totLen!);
  if (r.laterFragment || r.waypoint) return out;
  if (r.proto === IPPROTO_TCP && r.l4Invalid === undefined && l4.length >= 20) out.l4 = onesSum(l4, pseudoSum6(s, d, IPPROTO_TCP, l4.length));
  else if (r.proto === IPPROTO_UDP && r.udpLen !== undefined) {
    const len = r.firstFragment ? l4.length : r.udpLen;
    out.l4 = onesSum(l4.subarray(0, len), pseudoSum6(s, d, IPPROTO_UDP, r.udpLen));
  } else if (r.proto === IPPROTO_ICMPV6 && !r.fragment) out.l4 = onesSum(l4, pseudoSum6(s, d, IPPROTO_ICMPV6, l4.length));
  return out;
}

/**
 * An unfragmented IPv6 frame (no extension headers) cut into fragments of
 * `piece` bytes of its upper layer (a multiple of 8), each with a fragment
 * header of identification `id`: fragmentPacket()'s IPv6 twin.
 */
export function fragmentFrame6(frame: Buffer, piece: number, id: number): Buffer[] {
  const head = frame.subarray(0, ETH_LEN + IPV6_LEN);
  const upper = head[ETH_LEN + 6]!;
  const data = frame.subarray(ETH_LEN + IPV6_LEN, ETH_LEN + IPV6_LEN + head.readUInt16BE(ETH_LEN + 4));
  const size = Math.max(8, piece & ~7);
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += size) {
    const part = data.subarray(off, off + size);
    const fh = Buffer.alloc(8);
    fh[0] = upper;
    fh.writeUInt16BE(off | (off + size < data.length ? 1 : 0), 2);
    fh.writeUInt32BE(id >>> 0, 4);
    const h = Buffer.from(head);
    h[ETH_LEN + 6] = NEXTHDR_FRAGMENT;
    h.writeUInt16BE(8 + part.length, ETH_LEN + 4);
    out.push(Buffer.concat([h, fh, part]));
  }
  return out;
}

export const hex = (b: Buffer): string => b.toString('hex');
