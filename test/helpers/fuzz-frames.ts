/**
 * The packet fuzzer's frames: a concrete description of one Ethernet frame
 * (FrameSpec), its bytes (buildFrame), and the kernel's own reading of them
 * (readFrame: which lengths are valid, as ip_rcv_core, tcp_v4_rcv and
 * __udp4_lib_rcv judge them), with checksums summed from scratch.
 *
 * The spec is built first with every length and checksum right, then its
 * mutations are applied in order to the bytes: a field set to any value,
 * a checksum spoiled, bytes appended or cut. What is generated (random
 * flows against random services) is in fuzz-scenario.ts.
 */
import { onesSum } from './packet.js';

export const ETH_LEN = 14;
export const ETH_P_IP = 0x0800;
export const IPPROTO_ICMP = 1;
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
  /** An ICMP error (type 3, 11, or any), quoting `quote` (an inner IP header and what follows). */
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
  | { kind: 'ethType'; value: number };

export interface FrameSpec {
  dstMac: number[];
  srcMac: number[];
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
  l4: L4Spec;
  mutations: Mutation[];
}

export function ipToBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
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

const protoOf = (l4: L4Spec): number =>
  l4.kind === 'tcp' ? IPPROTO_TCP : l4.kind === 'udp' ? IPPROTO_UDP : l4.kind === 'icmp' ? IPPROTO_ICMP : l4.proto;

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
      b.writeUInt16BE(~onesSum(b, pseudoSum(saddr, daddr, IPPROTO_TCP, b.length)) & 0xffff, 16);
      return b;
    }
    case 'udp': {
      const b = Buffer.alloc(8 + l4.payload.length);
      b.writeUInt16BE(l4.sport, 0);
      b.writeUInt16BE(l4.dport, 2);
      b.writeUInt16BE(b.length, 4);
      Buffer.from(l4.payload).copy(b, 8);
      let c = ~onesSum(b, pseudoSum(saddr, daddr, IPPROTO_UDP, b.length)) & 0xffff;
      if (c === 0) c = 0xffff;
      b.writeUInt16BE(l4.zeroChecksum ? 0 : c, 6);
      return b;
    }
    case 'icmp': {
      const b = Buffer.concat([Buffer.from([l4.type, l4.code, 0, 0, 0, 0, 0, 0]), Buffer.from(l4.quote)]);
      b.writeUInt16BE(~onesSum(b) & 0xffff, 2);
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

/** The bytes of a spec, mutations applied. */
export function buildFrame(s: FrameSpec): Buffer {
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

/** Apply one mutation; bytes it would write past the end are not written. */
export function mutate(frame: Buffer, m: Mutation): Buffer {
  const f = Buffer.from(frame);
  const put16 = (off: number, v: number): void => {
    if (off + 2 <= f.length) f.writeUInt16BE(v & 0xffff, off);
  };
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
  }
}

/** What the kernel makes of a frame: ip_rcv_core, tcp_v4_rcv and __udp4_lib_rcv's length checks. */
export interface FrameReading {
  ethType: number;
  /** The 20-byte IPv4 header is all in the frame (its addresses can be read). */
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
}

export function readFrame(f: Buffer): FrameReading {
  const r: FrameReading = { ethType: f.length >= ETH_LEN ? f.readUInt16BE(12) : 0, ipHeader: false };
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

export const hex = (b: Buffer): string => b.toString('hex');
