/**
 * Ethernet/IPv6/TCP/UDP frames for the per-packet stage, built and parsed
 * with checksums summed from scratch: the same frame as test/helpers/packet.ts
 * builds for IPv4 (MACs, TCP header without options, flags, sequence numbers,
 * window, the payload "sluice"), with the fixed 40-byte IPv6 header and no
 * extension headers in place of the 20-byte IPv4 one, so that the two
 * families' figures differ by the header alone.
 */
import ipaddr from 'ipaddr.js';
import { onesSum, type PacketSpec } from '../../test/helpers/packet.js';

/** What a frame carries: PacketSpec's fields that mean the same for IPv6. */
export type Packet6Spec = Pick<PacketSpec, 'saddr' | 'daddr' | 'proto' | 'sport' | 'dport' | 'tcpFlags' | 'seq' | 'payload'> & {
  /** Hop limit, default 64. */
  hopLimit?: number;
};

const ETH_P_IPV6 = 0x86dd;
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;

/** The 16 bytes of an IPv6 address; throws on anything else (an IPv4 address included). */
export function ip6Bytes(ip: string): Buffer {
  if (!ipaddr.IPv6.isValid(ip)) throw new Error(`not an IPv6 address: ${ip}`);
  return Buffer.from(ipaddr.IPv6.parse(ip).toByteArray());
}

/** The IPv6 pseudo-header's sum (RFC 8200 8.1): addresses, upper-layer length, next header. */
function pseudoSum6(saddr: Buffer, daddr: Buffer, proto: number, len: number): number {
  const p = Buffer.alloc(40);
  saddr.copy(p, 0);
  daddr.copy(p, 16);
  p.writeUInt32BE(len, 32);
  p[39] = proto;
  return onesSum(p);
}

/** Build an Ethernet + IPv6 + TCP/UDP frame with a correct L4 checksum. */
export function buildPacket6(s: Packet6Spec): Buffer {
  const payload = s.payload ?? Buffer.from('sluice');
  const proto = s.proto === 'tcp' ? 6 : 17;
  const l4len = (s.proto === 'tcp' ? 20 : 8) + payload.length;
  const eth = Buffer.from([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0, 0]);
  eth.writeUInt16BE(ETH_P_IPV6, 12);
  const saddr = ip6Bytes(s.saddr);
  const daddr = ip6Bytes(s.daddr);
  const ip = Buffer.alloc(40);
  ip.writeUInt32BE(0x6000_0000, 0);
  ip.writeUInt16BE(l4len, 4);
  ip[6] = proto;
  ip[7] = s.hopLimit ?? 64;
  saddr.copy(ip, 8);
  daddr.copy(ip, 24);

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
  const check = ~onesSum(l4, pseudoSum6(saddr, daddr, proto, l4len)) & 0xffff;
  // A UDP checksum is mandatory over IPv6: a computed 0 is sent as 0xffff.
  if (s.proto === 'udp') l4.writeUInt16BE(check === 0 ? 0xffff : check, 6);
  else l4.writeUInt16BE(check, 16);
  return Buffer.concat([eth, ip, l4]);
}

/** What the stage reads back from a frame: the 5-tuple (addresses in RFC 5952 text) and whether the L4 checksum is right. */
export interface Parsed6 {
  saddr: string;
  daddr: string;
  proto: number;
  sport: number;
  dport: number;
  l4ChecksumOk: boolean;
}

/** Parse a frame built above (or rewritten by a program), re-summing its L4 checksum. */
export function parsePacket6(buf: Buffer): Parsed6 {
  if (buf.length < 54 || buf.readUInt16BE(12) !== ETH_P_IPV6) throw new Error('not an Ethernet + IPv6 frame');
  const ip = buf.subarray(14, 54);
  const l4 = buf.subarray(54, 54 + ip.readUInt16BE(4));
  const proto = ip[6]!;
  const saddr = ip.subarray(8, 24);
  const daddr = ip.subarray(24, 40);
  const text = (b: Buffer): string => new ipaddr.IPv6([...b]).toRFC5952String();
  return {
    saddr: text(saddr),
    daddr: text(daddr),
    proto,
    sport: l4.readUInt16BE(0),
    dport: l4.readUInt16BE(2),
    l4ChecksumOk: onesSum(l4, pseudoSum6(saddr, daddr, proto, l4.length)) === 0xffff,
  };
}
