/**
 * Build and parse Ethernet/IPv4/TCP/UDP frames for BPF_PROG_TEST_RUN tables,
 * with checksums computed from scratch (never incrementally), so that the
 * dataplane's incremental updates are checked against an independent sum.
 */

import ipaddr from 'ipaddr.js';

export interface PacketSpec {
  saddr: string;
  daddr: string;
  proto: 'tcp' | 'udp';
  sport: number;
  dport: number;
  /** TCP flags, default SYN. */
  tcpFlags?: { syn?: boolean; ack?: boolean; fin?: boolean; rst?: boolean; psh?: boolean };
  /** TCP sequence number, default 1000. */
  seq?: number;
  payload?: Buffer;
  /** Raw IPv4 options (padded to a multiple of 4 by the caller). */
  ipOptions?: Buffer;
  /** Set the more-fragments bit. */
  moreFragments?: boolean;
  /** Fragment offset in 8-byte units. */
  fragOffset?: number;
  /** IP identification, default 0x1234 (the fragments of a datagram share it). */
  ipId?: number;
  /** Set don't-fragment. */
  dontFragment?: boolean;
  /** For UDP: false sends a checksum of 0 ("none"). Default true. */
  udpChecksum?: boolean;
  ttl?: number;
  srcMac?: string;
  dstMac?: string;
}

/** The verdicts a test run returns: XDP's, and tc's direct-action ones. */
export const XDP_DROP = 1;
export const XDP_PASS = 2;
export const XDP_TX = 3;
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;
export const TC_ACT_REDIRECT = 7;

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;

function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

/** One's complement sum of 16-bit big-endian words, folded. */
export function onesSum(buf: Buffer, init = 0): number {
  let sum = init;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += (buf[buf.length - 1] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function pseudoSum(saddr: Buffer, daddr: Buffer, proto: number, len: number): number {
  const p = Buffer.alloc(12);
  saddr.copy(p, 0);
  daddr.copy(p, 4);
  p[9] = proto;
  p.writeUInt16BE(len, 10);
  return onesSum(p);
}

/** Build a frame with correct checksums. */
export function buildPacket(s: PacketSpec): Buffer {
  const payload = s.payload ?? Buffer.from('sluice');
  const opts = s.ipOptions ?? Buffer.alloc(0);
  if (opts.length % 4) throw new Error('ipOptions must be a multiple of 4 bytes');
  const ihl = 5 + opts.length / 4;
  const proto = s.proto === 'tcp' ? 6 : 17;
  const l4len = (s.proto === 'tcp' ? 20 : 8) + payload.length;
  const eth = Buffer.alloc(14);
  macBytes(s.dstMac ?? '02:00:00:00:00:02').copy(eth, 0);
  macBytes(s.srcMac ?? '02:00:00:00:00:01').copy(eth, 6);
  eth.writeUInt16BE(0x0800, 12);

  const ip = Buffer.alloc(ihl * 4);
  ip[0] = 0x40 | ihl;
  ip.writeUInt16BE(ihl * 4 + l4len, 2);
  ip.writeUInt16BE(s.ipId ?? 0x1234, 4);
  ip.writeUInt16BE((s.dontFragment ? 0x4000 : 0) | (s.moreFragments ? 0x2000 : 0) | (s.fragOffset ?? 0), 6);
  ip[8] = s.ttl ?? 64;
  ip[9] = proto;
  ipBytes(s.saddr).copy(ip, 12);
  ipBytes(s.daddr).copy(ip, 16);
  opts.copy(ip, 20);
  ip.writeUInt16BE(~onesSum(ip) & 0xffff, 10);

  const l4 = Buffer.alloc(l4len);
  l4.writeUInt16BE(s.sport, 0);
  l4.writeUInt16BE(s.dport, 2);
  if (s.proto === 'tcp') {
    const f = s.tcpFlags ?? { syn: true };
    l4.writeUInt32BE(s.seq ?? 1000, 4);
    l4.writeUInt32BE(f.ack ? 2000 : 0, 8);
    l4[12] = 5 << 4;
    l4[13] = (f.fin ? TCP_FIN : 0) | (f.syn ? TCP_SYN : 0) | (f.rst ? TCP_RST : 0) |
      (f.psh ? TCP_PSH : 0) | (f.ack ? TCP_ACK : 0);
    l4.writeUInt16BE(65535, 14);
    payload.copy(l4, 20);
  } else {
    l4.writeUInt16BE(l4len, 4);
    payload.copy(l4, 8);
  }
  const sum = onesSum(l4, pseudoSum(ipBytes(s.saddr), ipBytes(s.daddr), proto, l4len));
  let check = ~sum & 0xffff;
  if (s.proto === 'udp') {
    if (s.udpChecksum === false) check = 0;
    else if (check === 0) check = 0xffff;
    l4.writeUInt16BE(check, 6);
  } else {
    l4.writeUInt16BE(check, 16);
  }
  return Buffer.concat([eth, ip, l4]);
}

export interface ParsedPacket {
  srcMac: string;
  dstMac: string;
  saddr: string;
  daddr: string;
  ttl: number;
  proto: number;
  sport: number;
  dport: number;
  ipChecksumOk: boolean;
  /** null when a UDP checksum is 0 ("none"). */
  l4ChecksumOk: boolean | null;
  l4Checksum: number;
  payload: Buffer;
}

const fmtMac = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
const fmtIp = (b: Buffer): string => [...b].join('.');

/** Parse a frame built above (or rewritten by the dataplane) and verify its checksums. */
export function parsePacket(buf: Buffer): ParsedPacket {
  const ihl = (buf[14]! & 0x0f) * 4;
  const ip = buf.subarray(14, 14 + ihl);
  const totLen = ip.readUInt16BE(2);
  const l4 = buf.subarray(14 + ihl, 14 + totLen);
  const proto = ip[9]!;
  const saddr = ip.subarray(12, 16);
  const daddr = ip.subarray(16, 20);
  const l4Checksum = proto === 6 ? l4.readUInt16BE(16) : l4.readUInt16BE(6);
  let l4ChecksumOk: boolean | null;
  if (proto === 17 && l4Checksum === 0) l4ChecksumOk = null;
  else l4ChecksumOk = onesSum(l4, pseudoSum(saddr, daddr, proto, l4.length)) === 0xffff;
  return {
    dstMac: fmtMac(buf.subarray(0, 6)),
    srcMac: fmtMac(buf.subarray(6, 12)),
    saddr: fmtIp(saddr),
    daddr: fmtIp(daddr),
    ttl: ip[8]!,
    proto,
    sport: l4.readUInt16BE(0),
    dport: l4.readUInt16BE(2),
    ipChecksumOk: onesSum(ip) === 0xffff,
    l4ChecksumOk,
    l4Checksum,
    payload: l4.subarray(proto === 6 ? 20 : 8),
  };
}

/** An Ethernet + IPv4 frame (no options, TTL 64, IP id 0) around `l4`, its IP checksum computed. */
function ipv4Frame(o: { dstMac: Buffer; srcMac: Buffer; saddr: Buffer; daddr: Buffer; proto: number; df: boolean }, l4: Buffer): Buffer {
  const eth = Buffer.alloc(14);
  o.dstMac.copy(eth, 0);
  o.srcMac.copy(eth, 6);
  eth.writeUInt16BE(0x0800, 12);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + l4.length, 2);
  ip.writeUInt16BE(o.df ? 0x4000 : 0, 6);
  ip[8] = 64;
  ip[9] = o.proto;
  o.saddr.copy(ip, 12);
  o.daddr.copy(ip, 16);
  ip.writeUInt16BE(~onesSum(ip) & 0xffff, 10);
  return Buffer.concat([eth, ip, l4]);
}

/** The parts of a frame an answer is made from: MACs, the IP header, the L4 bytes. */
function frameParts(frame: Buffer): { dstMac: Buffer; srcMac: Buffer; ip: Buffer; l4: Buffer } {
  const ihl = (frame[14]! & 0x0f) * 4;
  const totLen = frame.readUInt16BE(16);
  return {
    dstMac: frame.subarray(0, 6),
    srcMac: frame.subarray(6, 12),
    ip: frame.subarray(14, 14 + ihl),
    l4: frame.subarray(14 + ihl, 14 + totLen),
  };
}

/**
 * The RST that answers a SYN (without ACK) in `frame`, as Linux answers one
 * to a closed port, built here from scratch: back to its sender's MAC and
 * address from its destination's, RST|ACK, sequence number 0, acknowledging
 * the SYN's sequence number plus one (and its payload, and a FIN), window 0,
 * no options; IPv4 with DF, TTL 64, id 0.
 */
export function rstFor(frame: Buffer): Buffer {
  const { dstMac, srcMac, ip, l4 } = frameParts(frame);
  const doff = (l4[12]! >> 4) * 4;
  const fin = l4[13]! & TCP_FIN ? 1 : 0;
  const tcp = Buffer.alloc(20);
  l4.copy(tcp, 0, 2, 4); // source port: the SYN's destination
  l4.copy(tcp, 2, 0, 2);
  tcp.writeUInt32BE((l4.readUInt32BE(4) + 1 + fin + l4.length - doff) >>> 0, 8);
  tcp[12] = 5 << 4;
  tcp[13] = TCP_RST | TCP_ACK;
  const saddr = ip.subarray(16, 20);
  const daddr = ip.subarray(12, 16);
  tcp.writeUInt16BE(~onesSum(tcp, pseudoSum(saddr, daddr, 6, 20)) & 0xffff, 16);
  return ipv4Frame({ dstMac: srcMac, srcMac: dstMac, saddr, daddr, proto: 6, df: true }, tcp);
}

/**
 * The ICMP destination unreachable, port unreachable (type 3, code 3) that
 * answers the UDP datagram in `frame`, built here from scratch: back to its
 * sender from its destination, quoting its IP header (options too) and
 * `quoteL4` bytes of what follows (or all there is); IPv4 without DF, TTL
 * 64, id 0.
 */
export function portUnreachableFor(frame: Buffer, quoteL4 = 64): Buffer {
  const { dstMac, srcMac, ip, l4 } = frameParts(frame);
  const quote = Buffer.concat([ip, l4.subarray(0, quoteL4)]);
  const icmp = Buffer.concat([Buffer.from([3, 3, 0, 0, 0, 0, 0, 0]), quote]);
  icmp.writeUInt16BE(~onesSum(icmp) & 0xffff, 2);
  return ipv4Frame({ dstMac: srcMac, srcMac: dstMac, saddr: ip.subarray(16, 20), daddr: ip.subarray(12, 16), proto: 1, df: false }, icmp);
}

/**
 * Whether a frame's IPv4 header checksum and its L4 checksum (TCP or UDP
 * with the pseudo-header, ICMP without) sum right: summed here, not taken
 * from the frame's builder.
 */
export function checksumsOk(frame: Buffer): { ip: boolean; l4: boolean } {
  const { ip, l4 } = frameParts(frame);
  const proto = ip[9]!;
  const l4Sum = proto === 1 ? onesSum(l4) : onesSum(l4, pseudoSum(ip.subarray(12, 16), ip.subarray(16, 20), proto, l4.length));
  return { ip: onesSum(ip) === 0xffff, l4: l4Sum === 0xffff };
}

/**
 * An ICMP error (type, code, and the 32 bits after the checksum: for
 * fragmentation needed, the next-hop MTU) from `saddr` to `daddr` about the
 * packet in `about`: quoting its IP header and `quoteL4` bytes of what
 * follows (or all there is), built from scratch; IPv4 without DF, TTL 64,
 * id 0, MACs as given (default buildPacket's).
 */
export function icmpError(o: {
  saddr: string; daddr: string; type: number; code: number; mtu?: number;
  about: Buffer; quoteL4?: number; srcMac?: string; dstMac?: string;
}): Buffer {
  const { ip, l4 } = frameParts(o.about);
  const quote = Buffer.concat([ip, l4.subarray(0, o.quoteL4 ?? 64)]);
  const icmp = Buffer.concat([Buffer.from([o.type, o.code, 0, 0, 0, 0, 0, 0]), quote]);
  icmp.writeUInt16BE(o.mtu ?? 0, 6);
  icmp.writeUInt16BE(~onesSum(icmp) & 0xffff, 2);
  return ipv4Frame({
    dstMac: macBytes(o.dstMac ?? '02:00:00:00:00:02'), srcMac: macBytes(o.srcMac ?? '02:00:00:00:00:01'),
    saddr: ipBytes(o.saddr), daddr: ipBytes(o.daddr), proto: 1, df: false,
  }, icmp);
}

/**
 * Cut the datagram in `frame` into fragments of at most `maxData` bytes of
 * L4 data each (a multiple of 8), as a router would: the IP header copied
 * (its id kept), total length, MF and offset set, its checksum recomputed.
 */
export function fragmentPacket(frame: Buffer, maxData: number): Buffer[] {
  if (maxData % 8) throw new Error('fragment data must be a multiple of 8 bytes');
  const { dstMac, srcMac, ip, l4 } = frameParts(frame);
  const out: Buffer[] = [];
  for (let off = 0; off < l4.length; off += maxData) {
    const data = l4.subarray(off, off + maxData);
    const h = Buffer.from(ip);
    h.writeUInt16BE(ip.length + data.length, 2);
    const more = off + maxData < l4.length;
    h.writeUInt16BE((ip.readUInt16BE(6) & 0x4000) | (more ? 0x2000 : 0) | (off / 8), 6);
    h.writeUInt16BE(0, 10);
    h.writeUInt16BE(~onesSum(h) & 0xffff, 10);
    const eth = Buffer.alloc(14);
    dstMac.copy(eth, 0);
    srcMac.copy(eth, 6);
    eth.writeUInt16BE(0x0800, 12);
    out.push(Buffer.concat([eth, h, data]));
  }
  return out;
}

/** Reassemble fragments (any order) into one frame, the first fragment's headers with MF and offset cleared. */
export function reassemble(frags: Buffer[]): Buffer {
  const parts = frags.map((f) => {
    const { dstMac, srcMac, ip, l4 } = frameParts(f);
    return { dstMac, srcMac, ip, l4, off: (ip.readUInt16BE(6) & 0x1fff) * 8 };
  }).sort((a, b) => a.off - b.off);
  const first = parts[0]!;
  const data = Buffer.concat(parts.map((p) => p.l4));
  const h = Buffer.from(first.ip);
  h.writeUInt16BE(h.length + data.length, 2);
  h.writeUInt16BE(h.readUInt16BE(6) & 0x4000, 6);
  h.writeUInt16BE(0, 10);
  h.writeUInt16BE(~onesSum(h) & 0xffff, 10);
  const eth = Buffer.alloc(14);
  first.dstMac.copy(eth, 0);
  first.srcMac.copy(eth, 6);
  eth.writeUInt16BE(0x0800, 12);
  return Buffer.concat([eth, h, data]);
}

/*
 * IPv6 (RFC 8200). buildPacket6/parsePacket6 are buildPacket/parsePacket's
 * twins: a frame with the extension headers asked for, checksums summed
 * from scratch with the IPv6 pseudo-header (§8.1: both addresses, the
 * upper-layer length as 32 bits, three zero bytes, the next header).
 * Fragments and ICMPv6 errors build on Ext6 (a fragment header) and
 * `proto: 'icmp6'`.
 */

/** One extension header between the fixed header and the upper layer. */
export interface Ext6 {
  /** 0 hop-by-hop options, 60 destination options, 43 routing, 44 fragment. */
  type: number;
  /** Its bytes, a multiple of 8 (hop-by-hop, destination options, routing; at least 8); a fragment header is 8. Default 8. */
  length?: number;
  /** Routing: segments left, default 0. */
  segmentsLeft?: number;
  /** Fragment: the offset in bytes (a multiple of 8), default 0. */
  fragOffset?: number;
  /** Fragment: M, default false. */
  more?: boolean;
  /** Fragment: the identification, default 0x12345678. */
  id?: number;
}

export interface Packet6Spec {
  saddr: string;
  daddr: string;
  /** TCP, UDP, ICMPv6, or any next header number: then `payload` is all its bytes. */
  proto: 'tcp' | 'udp' | 'icmp6' | number;
  sport?: number;
  dport?: number;
  /** TCP flags, default SYN. */
  tcpFlags?: PacketSpec['tcpFlags'];
  /** TCP sequence number, default 1000. */
  seq?: number;
  payload?: Buffer;
  /** ICMPv6: type, code and the 32 bits after the checksum; `payload` follows. */
  icmp?: { type: number; code: number; rest?: number };
  ext?: Ext6[];
  /** UDP: this checksum instead of the right one (0: "none", invalid over IPv6). */
  udpChecksum?: number;
  hopLimit?: number;
  flowLabel?: number;
  trafficClass?: number;
  srcMac?: string;
  dstMac?: string;
}

/** An IPv6 address as its 16 bytes. */
export function ip6Bytes(ip: string): Buffer {
  return Buffer.from(ipaddr.IPv6.parse(ip).toByteArray());
}

/** 16 bytes as an IPv6 address, RFC 5952 text. */
export function fmtIp6(b: Buffer): string {
  return (ipaddr.fromByteArray([...b]) as ipaddr.IPv6).toRFC5952String();
}

function pseudoSum6(saddr: Buffer, daddr: Buffer, proto: number, len: number): number {
  const p = Buffer.alloc(40);
  saddr.copy(p, 0);
  daddr.copy(p, 16);
  p.writeUInt32BE(len, 32);
  p[39] = proto;
  return onesSum(p);
}

const protoNum6 = (p: Packet6Spec['proto']): number => (p === 'tcp' ? 6 : p === 'udp' ? 17 : p === 'icmp6' ? 58 : p);

/** The extension headers' bytes, each naming the next; the last names `upper`. */
function extBytes(ext: readonly Ext6[], upper: number): Buffer {
  return Buffer.concat(ext.map((e, i) => {
    const next = i + 1 < ext.length ? ext[i + 1]!.type : upper;
    if (e.type === 44) {
      const h = Buffer.alloc(8);
      h[0] = next;
      h.writeUInt16BE(((e.fragOffset ?? 0) & 0xfff8) | (e.more ? 1 : 0), 2);
      h.writeUInt32BE(e.id ?? 0x12345678, 4);
      return h;
    }
    const len = e.length ?? 8;
    if (len < 8 || len % 8) throw new Error('an extension header is a multiple of 8 bytes, at least 8');
    const h = Buffer.alloc(len);
    h[0] = next;
    h[1] = len / 8 - 1;
    if (e.type === 43) {
      h[2] = 4; // segment routing header type; its contents are not read
      h[3] = e.segmentsLeft ?? 0;
    } else {
      // Options: PadN over the rest (type 1, length), as Linux pads.
      h[2] = 1;
      h[3] = len - 4;
    }
    return h;
  }));
}

/** Build an Ethernet + IPv6 frame with correct checksums. */
export function buildPacket6(s: Packet6Spec): Buffer {
  const payload = s.payload ?? Buffer.from('sluice');
  const proto = protoNum6(s.proto);
  let l4: Buffer;
  if (s.proto === 'tcp') {
    const f = s.tcpFlags ?? { syn: true };
    l4 = Buffer.alloc(20 + payload.length);
    l4.writeUInt16BE(s.sport ?? 0, 0);
    l4.writeUInt16BE(s.dport ?? 0, 2);
    l4.writeUInt32BE(s.seq ?? 1000, 4);
    l4.writeUInt32BE(f.ack ? 2000 : 0, 8);
    l4[12] = 5 << 4;
    l4[13] = (f.fin ? TCP_FIN : 0) | (f.syn ? TCP_SYN : 0) | (f.rst ? TCP_RST : 0) | (f.psh ? TCP_PSH : 0) | (f.ack ? TCP_ACK : 0);
    l4.writeUInt16BE(65535, 14);
    payload.copy(l4, 20);
  } else if (s.proto === 'udp') {
    l4 = Buffer.alloc(8 + payload.length);
    l4.writeUInt16BE(s.sport ?? 0, 0);
    l4.writeUInt16BE(s.dport ?? 0, 2);
    l4.writeUInt16BE(l4.length, 4);
    payload.copy(l4, 8);
  } else if (s.proto === 'icmp6') {
    const i = s.icmp ?? { type: 128, code: 0 };
    l4 = Buffer.alloc(8 + payload.length);
    l4[0] = i.type;
    l4[1] = i.code;
    l4.writeUInt32BE((i.rest ?? 0) >>> 0, 4);
    payload.copy(l4, 8);
  } else {
    l4 = Buffer.from(payload);
  }
  const saddr = ip6Bytes(s.saddr);
  const daddr = ip6Bytes(s.daddr);
  const checkAt = s.proto === 'tcp' ? 16 : s.proto === 'udp' ? 6 : s.proto === 'icmp6' ? 2 : -1;
  if (checkAt >= 0) {
    let check = ~onesSum(l4, pseudoSum6(saddr, daddr, proto, l4.length)) & 0xffff;
    if (s.proto === 'udp') check = s.udpChecksum ?? (check === 0 ? 0xffff : check);
    l4.writeUInt16BE(check, checkAt);
  }
  const ext = extBytes(s.ext ?? [], proto);
  const ip = Buffer.alloc(40);
  ip.writeUInt32BE(((6 << 28) | ((s.trafficClass ?? 0) << 20) | (s.flowLabel ?? 0)) >>> 0, 0);
  ip.writeUInt16BE(ext.length + l4.length, 4);
  ip[6] = s.ext?.length ? s.ext[0]!.type : proto;
  ip[7] = s.hopLimit ?? 64;
  saddr.copy(ip, 8);
  daddr.copy(ip, 24);
  const eth = Buffer.alloc(14);
  macBytes(s.dstMac ?? '02:00:00:00:00:02').copy(eth, 0);
  macBytes(s.srcMac ?? '02:00:00:00:00:01').copy(eth, 6);
  eth.writeUInt16BE(0x86dd, 12);
  return Buffer.concat([eth, ip, ext, l4]);
}

export interface ParsedPacket6 {
  srcMac: string;
  dstMac: string;
  /** RFC 5952 text. */
  saddr: string;
  daddr: string;
  hopLimit: number;
  /** The upper-layer protocol, past the extension headers. */
  proto: number;
  /** Offset of the upper-layer header in the frame. */
  l4Offset: number;
  sport: number;
  dport: number;
  /** TCP, UDP or ICMPv6 checksum summed from scratch with the pseudo-header (a UDP checksum of 0 is not ok). */
  l4ChecksumOk: boolean;
  l4Checksum: number;
  payload: Buffer;
}

/** The parts of an IPv6 frame: MACs, the fixed header, the extension headers, the upper layer and its protocol. */
function frameParts6(frame: Buffer): { dstMac: Buffer; srcMac: Buffer; ip: Buffer; ext: Buffer; l4: Buffer; proto: number } {
  const ip = frame.subarray(14, 54);
  const end = 54 + ip.readUInt16BE(4);
  let nh = ip[6]!;
  let off = 54;
  while (nh === 0 || nh === 43 || nh === 60 || nh === 44) {
    const len = nh === 44 ? 8 : (frame[off + 1]! + 1) * 8;
    nh = frame[off]!;
    off += len;
  }
  return { dstMac: frame.subarray(0, 6), srcMac: frame.subarray(6, 12), ip, ext: frame.subarray(54, off), l4: frame.subarray(off, end), proto: nh };
}

/** Parse an IPv6 frame (built above or rewritten by the dataplane) and check its L4 checksum from scratch. */
export function parsePacket6(buf: Buffer): ParsedPacket6 {
  const { ip, ext, l4, proto } = frameParts6(buf);
  const saddr = ip.subarray(8, 24);
  const daddr = ip.subarray(24, 40);
  const checkAt = proto === 6 ? 16 : proto === 17 ? 6 : 2;
  const l4Checksum = l4.readUInt16BE(checkAt);
  const sumOk = onesSum(l4, pseudoSum6(saddr, daddr, proto, l4.length)) === 0xffff;
  return {
    dstMac: fmtMac(buf.subarray(0, 6)),
    srcMac: fmtMac(buf.subarray(6, 12)),
    saddr: fmtIp6(saddr),
    daddr: fmtIp6(daddr),
    hopLimit: ip[7]!,
    proto,
    l4Offset: 54 + ext.length,
    sport: proto === 58 ? 0 : l4.readUInt16BE(0),
    dport: proto === 58 ? 0 : l4.readUInt16BE(2),
    l4ChecksumOk: sumOk && !(proto === 17 && l4Checksum === 0),
    l4Checksum,
    payload: l4.subarray(proto === 6 ? (l4[12]! >> 4) * 4 : 8),
  };
}

/** An Ethernet + IPv6 frame (traffic class and flow label 0, hop limit 64, no extension headers) around `l4`, its checksum at `checkAt` summed. */
function ipv6Frame(o: { dstMac: Buffer; srcMac: Buffer; saddr: Buffer; daddr: Buffer; proto: number; checkAt: number }, l4: Buffer): Buffer {
  l4.writeUInt16BE(0, o.checkAt);
  l4.writeUInt16BE(~onesSum(l4, pseudoSum6(o.saddr, o.daddr, o.proto, l4.length)) & 0xffff, o.checkAt);
  const eth = Buffer.alloc(14);
  o.dstMac.copy(eth, 0);
  o.srcMac.copy(eth, 6);
  eth.writeUInt16BE(0x86dd, 12);
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(l4.length, 4);
  ip[6] = o.proto;
  ip[7] = 64;
  o.saddr.copy(ip, 8);
  o.daddr.copy(ip, 24);
  return Buffer.concat([eth, ip, l4]);
}

/** rstFor() for an IPv6 SYN: RST|ACK from its destination, hop limit 64, the TCP checksum with the IPv6 pseudo-header. */
export function rst6For(frame: Buffer): Buffer {
  const { dstMac, srcMac, ip, l4 } = frameParts6(frame);
  const doff = (l4[12]! >> 4) * 4;
  const fin = l4[13]! & TCP_FIN ? 1 : 0;
  const tcp = Buffer.alloc(20);
  l4.copy(tcp, 0, 2, 4);
  l4.copy(tcp, 2, 0, 2);
  tcp.writeUInt32BE((l4.readUInt32BE(4) + 1 + fin + l4.length - doff) >>> 0, 8);
  tcp[12] = 5 << 4;
  tcp[13] = TCP_RST | TCP_ACK;
  return ipv6Frame({ dstMac: srcMac, srcMac: dstMac, saddr: ip.subarray(24, 40), daddr: ip.subarray(8, 24), proto: 6, checkAt: 16 }, tcp);
}

/**
 * portUnreachableFor() for an IPv6 datagram: ICMPv6 destination
 * unreachable, port unreachable (type 1, code 4), from its destination,
 * quoting it from its IPv6 header: the extension headers and `quoteL4`
 * bytes of what follows, at most `max` bytes in all (or all there is).
 */
export function portUnreachable6For(frame: Buffer, quoteL4 = 64, max = 128): Buffer {
  const { dstMac, srcMac, ip, ext, l4 } = frameParts6(frame);
  const quote = Buffer.concat([ip, ext, l4.subarray(0, quoteL4)]).subarray(0, max);
  const icmp = Buffer.concat([Buffer.from([1, 4, 0, 0, 0, 0, 0, 0]), quote]);
  return ipv6Frame({ dstMac: srcMac, srcMac: dstMac, saddr: ip.subarray(24, 40), daddr: ip.subarray(8, 24), proto: 58, checkAt: 2 }, icmp);
}

/**
 * Cut the IPv6 datagram in `frame` (no extension headers) into fragments of
 * at most `maxData` bytes of its upper-layer bytes each (a multiple of 8),
 * as its sender would (RFC 8200 §4.5): the fixed header copied, then a
 * fragment header (identification `id`, the offset, M on all but the last)
 * naming the upper layer, then the piece.
 */
export function fragmentPacket6(frame: Buffer, maxData: number, id = 0x12345678): Buffer[] {
  if (maxData % 8) throw new Error('fragment data must be a multiple of 8 bytes');
  const { dstMac, srcMac, ip, ext, l4, proto } = frameParts6(frame);
  if (ext.length) throw new Error('fragmentPacket6 takes a datagram without extension headers');
  const out: Buffer[] = [];
  for (let off = 0; off < l4.length; off += maxData) {
    const data = l4.subarray(off, off + maxData);
    const h = Buffer.from(ip);
    h.writeUInt16BE(8 + data.length, 4);
    h[6] = 44;
    const fh = Buffer.alloc(8);
    fh[0] = proto;
    fh.writeUInt16BE(off | (off + maxData < l4.length ? 1 : 0), 2);
    fh.writeUInt32BE(id >>> 0, 4);
    const eth = Buffer.alloc(14);
    dstMac.copy(eth, 0);
    srcMac.copy(eth, 6);
    eth.writeUInt16BE(0x86dd, 12);
    out.push(Buffer.concat([eth, h, fh, data]));
  }
  return out;
}

/** A fragment's header fields, read from the frame (the fragment header right after the fixed one). */
export function fragInfo6(frag: Buffer): { next: number; offset: number; more: boolean; id: number } {
  if (frag[14 + 6] !== 44) throw new Error('not a fragment: its next header is not 44');
  const f = frag.subarray(54, 62);
  return { next: f[0]!, offset: f.readUInt16BE(2) & 0xfff8, more: (f.readUInt16BE(2) & 1) === 1, id: f.readUInt32BE(4) };
}

/** Reassemble IPv6 fragments (any order; as fragmentPacket6 makes them) into one frame: the first's fixed header, the upper layer named by the fragment header. */
export function reassemble6(frags: Buffer[]): Buffer {
  const parts = frags.map((f) => ({ f, ...fragInfo6(f), data: f.subarray(62, 54 + f.readUInt16BE(18)) }))
    .sort((a, b) => a.offset - b.offset);
  const first = parts[0]!;
  const data = Buffer.concat(parts.map((p) => p.data));
  const ip = Buffer.from(first.f.subarray(14, 54));
  ip.writeUInt16BE(data.length, 4);
  ip[6] = first.next;
  return Buffer.concat([first.f.subarray(0, 14), ip, data]);
}

/**
 * An ICMPv6 error (RFC 4443: type, code, and the 32 bits after the
 * checksum: packet too big's MTU, parameter problem's pointer) from
 * `saddr` to `daddr` about the packet in `about`, quoting it from its IPv6
 * header on, at most `quote` bytes (default all of it up to the minimum
 * MTU, 1,232 bytes), built from scratch: hop limit 64, the checksum with
 * the pseudo-header, MACs as given (default buildPacket6's).
 */
export function icmp6Error(o: {
  saddr: string; daddr: string; type: number; code: number; rest?: number;
  about: Buffer; quote?: number; srcMac?: string; dstMac?: string;
}): Buffer {
  const end = 54 + o.about.readUInt16BE(18);
  const quote = o.about.subarray(14, Math.min(end, 14 + (o.quote ?? 1232)));
  const icmp = Buffer.concat([Buffer.alloc(8), quote]);
  icmp[0] = o.type;
  icmp[1] = o.code;
  icmp.writeUInt32BE((o.rest ?? 0) >>> 0, 4);
  return ipv6Frame({
    dstMac: macBytes(o.dstMac ?? '02:00:00:00:00:02'), srcMac: macBytes(o.srcMac ?? '02:00:00:00:00:01'),
    saddr: ip6Bytes(o.saddr), daddr: ip6Bytes(o.daddr), proto: 58, checkAt: 2,
  }, icmp);
}

/**
 * The ICMPv6 packet too big (type 2, code 0, `mtu`) a router answers the
 * packet in `frame` with, built from scratch as portUnreachable6For builds
 * its answer: back to its sender from its destination, quoting it from
 * its IPv6 header (the extension headers and `quoteL4` bytes of what
 * follows, at most `max` bytes in all).
 */
export function packetTooBig6For(frame: Buffer, mtu: number, quoteL4 = 64, max = 128): Buffer {
  const { dstMac, srcMac, ip, ext, l4 } = frameParts6(frame);
  const quote = Buffer.concat([ip, ext, l4.subarray(0, quoteL4)]).subarray(0, max);
  const icmp = Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), quote]);
  icmp.writeUInt32BE(mtu >>> 0, 4);
  return ipv6Frame({ dstMac: srcMac, srcMac: dstMac, saddr: ip.subarray(24, 40), daddr: ip.subarray(8, 24), proto: 58, checkAt: 2 }, icmp);
}
