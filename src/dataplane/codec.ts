/**
 * Codecs between the TypeScript model and the byte layouts of the structs in
 * bpf/include/sluice_shared.h. The offsets below are declared by hand and
 * checked against the addon's sizeof/offsetof table by
 * test/unit/layout.test.ts, so a change on either side fails a test instead
 * of silently corrupting a map.
 *
 * Addresses and ports are written in network order; everything else in host
 * (little-endian) order, as the C structs say.
 */
import { isIPv6 } from 'node:net';
import { canonicalAddress, formatIPv6Parts, hostPort, ipv6Bytes } from '../model/address.js';

/** Field offsets and total size of each shared struct, as the C compiler lays them out. */
export const LAYOUTS = {
  svc_key: { size: 20, offsets: { addr: 0, port: 16, proto: 18, family: 19 } },
  svc_value: { size: 24, offsets: { id: 0, flags: 4, affinity_timeout: 8, table_size: 12, table_base: 16, pad: 20 } },
  vip_key: { size: 20, offsets: { addr: 0, family: 16, pad: 17 } },
  vip_value: { size: 4, offsets: { services: 0 } },
  backend_value: { size: 24, offsets: { addr: 0, port: 16, family: 18, flags: 19, svc_id: 20 } },
  ct_key: { size: 16, offsets: { saddr: 0, daddr: 4, sport: 8, dport: 10, proto: 12, pad: 13 } },
  ct_value: {
    size: 24,
    offsets: {
      nat_addr: 0, nat_port: 4, state: 6, flags: 7, backend_id: 8, svc_id: 12, created: 16, expires: 20,
    },
  },
  ct6_key: { size: 40, offsets: { saddr: 0, daddr: 16, sport: 32, dport: 34, proto: 36, pad: 37 } },
  ct6_value: {
    size: 36,
    offsets: {
      nat_addr: 0, nat_port: 16, state: 18, flags: 19, backend_id: 20, svc_id: 24, created: 28, expires: 32,
    },
  },
  rnat_key: { size: 20, offsets: { addr: 0, port: 16, proto: 18, family: 19 } },
  rnat_value: { size: 8, offsets: { backend_id: 0, flags: 4 } },
  affinity_key: { size: 24, offsets: { client: 0, svc_id: 16, family: 20, pad: 21 } },
  affinity_value: { size: 16, offsets: { backend_id: 0, pad: 4, last_seen_ns: 8 } },
  lb_stats: { size: 32, offsets: { packets: 0, bytes: 8, new_conns: 16, reply_packets: 24 } },
  global_stats: {
    size: 232,
    offsets: {
      rx_packets: 0, passed_other: 8, forwarded: 16, forwarded_stack: 24, replies: 32,
      drop_malformed: 40, drop_fragment: 48, drop_no_service: 56, drop_no_backend: 64,
      drop_ct_full: 72, passed_malformed: 80, ct_rescheduled: 88, affinity_hits: 96,
      fib_miss: 104, reply_restored: 112, reply_ambiguous: 120, hairpin_flows: 128,
      sock_translated: 136, reject_tcp_rst: 144, reject_icmp_unreach: 152,
      reject_rate_limited: 160, ct_expired: 168, ct_untracked: 176, ct_reply_clash: 184,
      ct_reply_recreated: 192, ct_reply_stale: 200, frag_translated: 208, icmp_translated: 216,
      icmp_frag_needed: 224,
    },
  },
  node_config: { size: 16, offsets: { hairpin_addr: 0, pad: 4, sock_netns_cookie: 8 } },
  sock_rnat_key: { size: 16, offsets: { cookie: 0, addr: 8, port: 12, proto: 14, pad: 15 } },
  sock_rnat_value: { size: 8, offsets: { addr: 0, port: 4, pad: 6 } },
  node_config6: { size: 16, offsets: { hairpin_addr: 0 } },
  sock_rnat6_key: { size: 32, offsets: { cookie: 0, addr: 8, port: 24, proto: 26, pad: 27 } },
  sock_rnat6_value: { size: 20, offsets: { addr: 0, port: 16, pad: 18 } },
  lookup_result: {
    size: 56,
    offsets: {
      rc: 0, svc_id: 4, backend_id: 8, new_addr: 12, new_port: 28, new_flow: 30, affinity_hit: 31,
      rescheduled: 32, reply_restored: 33, reply_ambiguous: 34, ct_dead: 35, dst_svc_id: 36, hash: 40,
      table_size: 44, slot: 48, family: 52, pad: 53,
    },
  },
} as const;

/** Protocols the dataplane balances. */
import type { Protocol } from '../model/service.js';
export type { Protocol };

/** IP protocol numbers as they appear in the IPv4 header. */
export const IPPROTO: Readonly<Record<Protocol, number>> = { tcp: 6, udp: 17 };

const AF_INET = 2;
const AF_INET6 = 10;

/** Service flag: ClientIP session affinity (SLUICE_SVC_AFFINITY). */
export const SVC_FLAG_AFFINITY = 1;
/** Service flag: without a usable backend, drop its packets instead of answering them (SLUICE_SVC_DROP_NO_BACKEND). */
export const SVC_FLAG_DROP_NO_BACKEND = 2;
/** Backend flag: removed from the Maglev table, existing flows stay (SLUICE_BE_DRAINING). */
export const BACKEND_FLAG_DRAINING = 1;
/** Reply NAT flag: the endpoint serves several service ports (SLUICE_RNAT_AMBIGUOUS). */
export const RNAT_FLAG_AMBIGUOUS = 1;
/** Conntrack entry kinds (SLUICE_CT_F_REPLY in struct ct_value.flags). */
export const CT_FORWARD = 0 as const;
export const CT_REPLY = 1 as const;
/** Conntrack flag: the client is its own backend, source-NATed to the hairpin address (SLUICE_CT_F_HAIRPIN). */
export const CT_FLAG_HAIRPIN = 1;
/** Conntrack flag: a reply entry (SLUICE_CT_F_REPLY). */
export const CT_FLAG_REPLY = 2;
/**
 * The longest idle timeout of a flow, in seconds: the dataplane's clock is
 * a u32 of seconds compared wrap-safe (ct_live), so an expiry must stay
 * within 2^31 s of now; a year is far inside that, and past any sensible
 * timeout.
 */
export const FLOW_TIMEOUT_MAX_S = 365 * 24 * 3600;

/** A flow's state (struct ct_value.state; bpf/include/ct.h), by its number. */
export const CT_STATES = ['established', 'new', 'closing'] as const;
/** A flow's state. */
export type ConntrackState = (typeof CT_STATES)[number];

/** Thrown when a value cannot be encoded; `field` names what was wrong. */
export class CodecError extends Error {
  /** The offending field, e.g. "address". */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'CodecError';
    this.field = field;
  }
}

/** The IP protocol number of `protocol`; CodecError otherwise. */
export function protoNumber(protocol: Protocol): number {
  const n = IPPROTO[protocol];
  if (n === undefined) throw new CodecError('protocol', `unknown protocol ${String(protocol)}`);
  return n;
}

function protoName(n: number): Protocol {
  if (n === 6) return 'tcp';
  if (n === 17) return 'udp';
  throw new CodecError('protocol', `unknown protocol number ${n}`);
}

/**
 * A dotted-quad IPv4 address as a uint32 (10.0.0.1 is 0x0a000001), or -1 if
 * it is not one: four octets, each ≤ 255, no leading zeros. A hand parser:
 * this runs for every backend of every change.
 */
export function parseIPv4(a: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i <= a.length; i++) {
    const c = i < a.length ? a.charCodeAt(i) : 46; /* '.' ends the last octet */
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1; /* no leading zeros */
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else if (c === 46) {
      if (digits === 0 || dots === 4) return -1;
      value = value * 256 + octet;
      dots++;
      octet = 0;
      digits = 0;
    } else {
      return -1;
    }
  }
  return dots === 4 ? value : -1;
}

/** A uint32 (as parseIPv4 gives) as a dotted quad. */
export function formatIPv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Write a dotted-quad IPv4 address at `off` (4 bytes); false if it is not one. */
function writeIPv4(buf: Buffer, off: number, a: string): boolean {
  const v = parseIPv4(a);
  if (v < 0) return false;
  buf.writeUInt32BE(v, off);
  return true;
}

/** Write an address into 16 bytes at `off`; returns its AF_* family. */
export function writeAddr(buf: Buffer, off: number, address: string, field = 'address'): number {
  if (typeof address === 'string' && writeIPv4(buf, off, address)) {
    buf.fill(0, off + 4, off + 16);
    return AF_INET;
  }
  const bytes = ipv6Bytes(address);
  if (bytes !== undefined) {
    for (let i = 0; i < 16; i++) buf[off + i] = bytes[i]!;
    return AF_INET6;
  }
  throw new CodecError(field, `not an IP address: ${JSON.stringify(address)}`);
}

/**
 * Read an address of the given family from 16 bytes at `off`: IPv4 in
 * dotted decimal, IPv6 in its RFC 5952 form (the one text the model keeps,
 * so that what is read back compares equal to what was written).
 */
export function readAddr(buf: Buffer, off: number, family: number): string {
  if (family === AF_INET) return formatIPv4(buf.readUInt32BE(off));
  if (family === AF_INET6) return formatIPv6(buf, off);
  throw new CodecError('family', `unknown address family ${family}`);
}

/** The one text (model/address.ts) of the 16 network-order bytes at `off`. */
export function formatIPv6(buf: Uint8Array, off = 0): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((buf[off + 2 * i]! << 8) | buf[off + 2 * i + 1]!);
  return formatIPv6Parts(words);
}

/** A port in 1..65535; CodecError naming `field` otherwise. */
export function checkPort(port: number, field: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new CodecError(field, `port must be an integer in 1..65535, got ${port}`);
  }
}

function checkU32(v: number, field: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new CodecError(field, `must be an integer in 0..4294967295, got ${v}`);
  }
}

/** The (VIP, port, protocol) that names one service port. */
export interface ServiceKey {
  address: string;
  port: number;
  protocol: Protocol;
}

/** The canonical text of a service key, "VIP:port/protocol" (a map key, and how errors name it). */
export function serviceKeyString(k: ServiceKey): string {
  return `${hostPort(k.address, k.port)}/${k.protocol}`;
}

/** Encode a struct svc_key. */
export function encodeServiceKey(k: ServiceKey): Buffer {
  return encodeServiceKeyInto(Buffer.alloc(LAYOUTS.svc_key.size), 0, k);
}

/** Encode a struct svc_key into `b` at `o` (zeroed bytes); returns `b`. */
export function encodeServiceKeyInto(b: Buffer, o: number, k: ServiceKey): Buffer {
  const L = LAYOUTS.svc_key.offsets;
  checkPort(k.port, 'port');
  const family = writeAddr(b, o + L.addr, k.address, 'address');
  b.writeUInt16BE(k.port, o + L.port);
  b[o + L.proto] = protoNumber(k.protocol);
  b[o + L.family] = family;
  return b;
}

/** Decode a struct svc_key. */
export function decodeServiceKey(b: Buffer): ServiceKey {
  const L = LAYOUTS.svc_key.offsets;
  return {
    address: readAddr(b, L.addr, b[L.family] ?? 0),
    port: b.readUInt16BE(L.port),
    protocol: protoName(b[L.proto] ?? 0),
  };
}

/** What the dataplane knows of one service port. */
export interface ServiceValue {
  id: number;
  flags: number;
  affinityTimeoutSec: number;
  /** Slots of the Maglev table; 0: no usable backend. */
  tableSize: number;
  /** First slot of the table in maglev_slots. */
  tableBase: number;
}

/** Encode a struct svc_value. */
export function encodeServiceValue(v: ServiceValue): Buffer {
  return encodeServiceValueInto(Buffer.alloc(LAYOUTS.svc_value.size), 0, v);
}

/** Encode a struct svc_value into `b` at `o` (zeroed bytes); returns `b`. */
export function encodeServiceValueInto(b: Buffer, o: number, v: ServiceValue): Buffer {
  const L = LAYOUTS.svc_value.offsets;
  checkU32(v.id, 'id');
  checkU32(v.affinityTimeoutSec, 'affinityTimeoutSec');
  checkU32(v.tableSize, 'tableSize');
  checkU32(v.tableBase, 'tableBase');
  b.writeUInt32LE(v.id, o + L.id);
  b.writeUInt32LE(v.flags, o + L.flags);
  b.writeUInt32LE(v.affinityTimeoutSec, o + L.affinity_timeout);
  b.writeUInt32LE(v.tableSize, o + L.table_size);
  b.writeUInt32LE(v.tableBase, o + L.table_base);
  return b;
}

/** Decode a struct svc_value. */
export function decodeServiceValue(b: Buffer): ServiceValue {
  const L = LAYOUTS.svc_value.offsets;
  return {
    id: b.readUInt32LE(L.id),
    flags: b.readUInt32LE(L.flags),
    affinityTimeoutSec: b.readUInt32LE(L.affinity_timeout),
    tableSize: b.readUInt32LE(L.table_size),
    tableBase: b.readUInt32LE(L.table_base),
  };
}

/** Encode a struct vip_key. */
export function encodeVipKey(address: string): Buffer {
  const L = LAYOUTS.vip_key.offsets;
  const b = Buffer.alloc(LAYOUTS.vip_key.size);
  b[L.family] = writeAddr(b, L.addr, address, 'address');
  return b;
}

/** Decode a struct vip_key. */
export function decodeVipKey(b: Buffer): string {
  const L = LAYOUTS.vip_key.offsets;
  return readAddr(b, L.addr, b[L.family] ?? 0);
}

/** Encode a struct vip_value. */
export function encodeVipValue(services: number): Buffer {
  const b = Buffer.alloc(LAYOUTS.vip_value.size);
  b.writeUInt32LE(services, LAYOUTS.vip_value.offsets.services);
  return b;
}

/** A backend as the dataplane stores it. */
export interface BackendValue {
  address: string;
  port: number;
  flags: number;
  /** The service this backend id belongs to (a flow's entry is only good while they match). */
  serviceId: number;
}

/** Encode a struct backend_value. */
export function encodeBackendValue(v: BackendValue): Buffer {
  return encodeBackendValueInto(Buffer.alloc(LAYOUTS.backend_value.size), 0, v);
}

/** Encode a struct backend_value into `b` at `o` (zeroed bytes); returns `b`. */
export function encodeBackendValueInto(b: Buffer, o: number, v: BackendValue): Buffer {
  const L = LAYOUTS.backend_value.offsets;
  checkPort(v.port, 'backend.port');
  b[o + L.family] = writeAddr(b, o + L.addr, v.address, 'backend.address');
  b.writeUInt16BE(v.port, o + L.port);
  b[o + L.flags] = v.flags;
  b.writeUInt32LE(v.serviceId, o + L.svc_id);
  return b;
}

/** Decode a struct backend_value. */
export function decodeBackendValue(b: Buffer): BackendValue {
  const L = LAYOUTS.backend_value.offsets;
  return {
    address: readAddr(b, L.addr, b[L.family] ?? 0),
    port: b.readUInt16BE(L.port),
    flags: b[L.flags] ?? 0,
    serviceId: b.readUInt32LE(L.svc_id),
  };
}

/** Encode a backend id (the key of `backends`, `backend_stats`). */
export function encodeU32(v: number): Buffer {
  checkU32(v, 'id');
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v, 0);
  return b;
}

/** An address family as the tables split flows: IPv4 (conntrack) or IPv6 (conntrack6). */
export type IpFamily = 4 | 6;

/** The family of an address in text: 6 if it holds a colon (the codecs check the rest). */
export function addressFamily(address: string): IpFamily {
  return address.includes(':') ? 6 : 4;
}

/**
 * The two conntrack tables: IPv4 flows in `conntrack` (struct ct_key,
 * ct_value: 4-byte addresses), IPv6 flows in `conntrack6` (ct6_key,
 * ct6_value: 16-byte ones). A key's length says its table.
 */
export const CONNTRACK_TABLES = {
  4: { family: 4, map: 'conntrack', key: LAYOUTS.ct_key, value: LAYOUTS.ct_value, addrBytes: 4 },
  6: { family: 6, map: 'conntrack6', key: LAYOUTS.ct6_key, value: LAYOUTS.ct6_value, addrBytes: 16 },
} as const;

/** One of CONNTRACK_TABLES. */
export type ConntrackTable = (typeof CONNTRACK_TABLES)[IpFamily];

/** The table an encoded conntrack key belongs to, by its length; CodecError for any other length. */
export function conntrackTableOfKey(key: Buffer): ConntrackTable {
  if (key.length === LAYOUTS.ct_key.size) return CONNTRACK_TABLES[4];
  if (key.length === LAYOUTS.ct6_key.size) return CONNTRACK_TABLES[6];
  throw new CodecError('key', `a conntrack key is ${LAYOUTS.ct_key.size} (IPv4) or ${LAYOUTS.ct6_key.size} (IPv6) bytes, got ${key.length}`);
}

/**
 * One conntrack key: a packet's 5-tuple, as it arrives (the direction is in
 * the value). IPv4 flows are keyed in `conntrack` (struct ct_key), IPv6
 * ones in `conntrack6` (struct ct6_key); both addresses are of one family.
 */
export interface ConntrackKey {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  protocol: Protocol;
}

/** Write an IPv4 address (4 bytes) at `off`; CodecError naming `field` otherwise. */
export function writeIPv4Field(buf: Buffer, off: number, address: string, field: string): void {
  if (typeof address === 'string' && writeIPv4(buf, off, address)) return;
  throw new CodecError(field, isIPv6(address)
    ? `the conntrack table holds IPv4 flows, got ${JSON.stringify(address)}`
    : `not an IPv4 address: ${JSON.stringify(address)}`);
}

/** Write an IPv6 address (16 bytes) at `off`; CodecError naming `field` otherwise. */
function writeIPv6Field(buf: Buffer, off: number, address: string, field: string): void {
  if (typeof address !== 'string' || !isIPv6(address)) throw new CodecError(field, `not an IPv6 address: ${JSON.stringify(address)}`);
  writeAddr(buf, off, address, field);
}

/** Write a conntrack address of the table's family. */
function writeFlowAddr(table: ConntrackTable, buf: Buffer, off: number, address: string, field: string): void {
  if (table.family === 4) writeIPv4Field(buf, off, address, field);
  else writeIPv6Field(buf, off, address, field);
}

/** The conntrack table of a key, by its source's family; CodecError if its destination is of the other. */
export function conntrackTableOf(k: ConntrackKey): ConntrackTable {
  const family = addressFamily(String(k.saddr));
  if (addressFamily(String(k.daddr)) !== family) {
    throw new CodecError('daddr', `a flow's addresses are of one family: saddr ${JSON.stringify(k.saddr)}, daddr ${JSON.stringify(k.daddr)}`);
  }
  return CONNTRACK_TABLES[family];
}

/** Encode a struct ct_key (IPv4) or ct6_key (IPv6), by the key's addresses. */
export function encodeConntrackKey(k: ConntrackKey): Buffer {
  const t = conntrackTableOf(k);
  const L = t.key.offsets;
  const b = Buffer.alloc(t.key.size);
  writeFlowAddr(t, b, L.saddr, k.saddr, 'saddr');
  writeFlowAddr(t, b, L.daddr, k.daddr, 'daddr');
  b.writeUInt16BE(k.sport, L.sport);
  b.writeUInt16BE(k.dport, L.dport);
  b[L.proto] = protoNumber(k.protocol);
  return b;
}

/** Decode a struct ct_key or ct6_key, by its length. */
export function decodeConntrackKey(b: Buffer): ConntrackKey {
  const t = conntrackTableOfKey(b);
  const L = t.key.offsets;
  const af = t.family === 4 ? AF_INET : AF_INET6;
  return {
    saddr: readAddr(b, L.saddr, af),
    daddr: readAddr(b, L.daddr, af),
    sport: b.readUInt16BE(L.sport),
    dport: b.readUInt16BE(L.dport),
    protocol: protoName(b[L.proto] ?? 0),
  };
}

/** One conntrack value. */
export interface ConntrackValue {
  /** CT_FORWARD: client -> VIP, nat names the backend; CT_REPLY: backend -> client, nat names the VIP. */
  dir: typeof CT_FORWARD | typeof CT_REPLY;
  natAddress: string;
  natPort: number;
  backendId: number;
  serviceId: number;
  /** The flow's state; the same in both of its entries. */
  state: ConntrackState;
  /** Second (CLOCK_MONOTONIC) of the flow's first packet. */
  created: number;
  /** First second (CLOCK_MONOTONIC) the entry is dead: its last packet's second plus its state's idle timeout. */
  expires: number;
  /**
   * A hairpin flow (CT_FLAG_HAIRPIN): its client is its own backend; the
   * forward entry also rewrites the source to the hairpin address, the
   * reply entry (keyed by that address) the destination back to the
   * client. Decoded as present only when set.
   */
  hairpin?: boolean;
}

/** Decode a struct ct_value (24 bytes) or ct6_value (36), by its length. */
export function decodeConntrackValue(b: Buffer): ConntrackValue {
  const six = b.length === LAYOUTS.ct6_value.size;
  if (!six && b.length !== LAYOUTS.ct_value.size) {
    throw new CodecError('value', `a conntrack value is ${LAYOUTS.ct_value.size} (IPv4) or ${LAYOUTS.ct6_value.size} (IPv6) bytes, got ${b.length}`);
  }
  const L = six ? LAYOUTS.ct6_value.offsets : LAYOUTS.ct_value.offsets;
  return {
    dir: ((b[L.flags] ?? 0) & CT_FLAG_REPLY) !== 0 ? CT_REPLY : CT_FORWARD,
    natAddress: readAddr(b, L.nat_addr, six ? AF_INET6 : AF_INET),
    natPort: b.readUInt16BE(L.nat_port),
    backendId: b.readUInt32LE(L.backend_id),
    serviceId: b.readUInt32LE(L.svc_id),
    state: CT_STATES[b[L.state] ?? 0] ?? 'established',
    created: b.readUInt32LE(L.created),
    expires: b.readUInt32LE(L.expires),
    ...(((b[L.flags] ?? 0) & CT_FLAG_HAIRPIN) !== 0 ? { hairpin: true } : {}),
  };
}

/** Encode a struct ct_value, or ct6_value for an IPv6 natAddress (tests and state import use it). */
export function encodeConntrackValue(v: ConntrackValue): Buffer {
  const t = CONNTRACK_TABLES[addressFamily(String(v.natAddress))];
  const L = t.value.offsets;
  const b = Buffer.alloc(t.value.size);
  writeFlowAddr(t, b, L.nat_addr, v.natAddress, 'natAddress');
  b.writeUInt16BE(v.natPort, L.nat_port);
  b[L.state] = CT_STATES.indexOf(v.state);
  b[L.flags] = (v.hairpin ? CT_FLAG_HAIRPIN : 0) | (v.dir === CT_REPLY ? CT_FLAG_REPLY : 0);
  b.writeUInt32LE(v.backendId, L.backend_id);
  b.writeUInt32LE(v.serviceId, L.svc_id);
  b.writeUInt32LE(v.created >>> 0, L.created);
  b.writeUInt32LE(v.expires >>> 0, L.expires);
  return b;
}

/** A backend endpoint: the key of `reply_nat`. */
export interface Endpoint {
  address: string;
  port: number;
  protocol: Protocol;
}

const PORT_SPAN = 65536 * 2;

/**
 * A reply_nat key as the control plane holds it: an IPv4 endpoint as its
 * number (endpointCode), an IPv6 one as "<RFC 5952 address>|<port>|<tcp|udp>"
 * (few, so a string each costs little).
 */
export type EndpointKey = number | string;

/**
 * An IPv4 endpoint as one number, address × 2^17 + port × 2 + (UDP ? 1 : 0):
 * below 2^49, so exact in a double, and no string per endpoint where the
 * control plane keeps 100,000 of them. -1 if the address is not IPv4
 * (endpointKey covers IPv6).
 */
export function endpointCode(address: string, port: number, protocol: Protocol): number {
  const a = parseIPv4(address);
  if (a < 0 || !Number.isInteger(port) || port < 0 || port > 65535) return -1;
  return a * PORT_SPAN + port * 2 + (protocol === 'udp' ? 1 : 0);
}

/** The endpoint an endpointCode stands for. */
export function endpointOfCode(code: number): Endpoint {
  const a = Math.floor(code / PORT_SPAN);
  const rest = code - a * PORT_SPAN;
  return { address: formatIPv4(a), port: rest >>> 1, protocol: (rest & 1) === 1 ? 'udp' : 'tcp' };
}

/** The reply_nat key of an endpoint of either family (see EndpointKey); -1 if it is no endpoint. */
export function endpointKey(address: string, port: number, protocol: Protocol): EndpointKey {
  const code = endpointCode(address, port, protocol);
  if (code >= 0 || !address.includes(':')) return code;
  const a = canonicalAddress(address);
  if (a === undefined || !Number.isInteger(port) || port < 0 || port > 65535 || (protocol !== 'tcp' && protocol !== 'udp')) return -1;
  return `${a}|${port}|${protocol}`;
}

/** The endpoint an endpointKey stands for. */
export function endpointOfKey(key: EndpointKey): Endpoint {
  if (typeof key === 'number') return endpointOfCode(key);
  const [address = '', port = '', protocol = ''] = key.split('|');
  return { address, port: Number(port), protocol: protocol === 'udp' ? 'udp' : 'tcp' };
}

/** Encode a struct rnat_key (an endpoint, by its key) into `b` at `o` (zeroed bytes). */
export function encodeReplyKeyInto(b: Buffer, o: number, key: EndpointKey): Buffer {
  const L = LAYOUTS.rnat_key.offsets;
  const e = endpointOfKey(key);
  b[o + L.family] = writeAddr(b, o + L.addr, e.address, 'endpoint');
  b.writeUInt16BE(e.port, o + L.port);
  b[o + L.proto] = protoNumber(e.protocol);
  return b;
}

/** Decode a struct rnat_key to its endpoint key (-1 for a key that is not a TCP/UDP endpoint of either family). */
export function decodeReplyKey(b: Buffer): EndpointKey {
  const L = LAYOUTS.rnat_key.offsets;
  const proto = b[L.proto];
  const family = b[L.family];
  if ((family !== AF_INET && family !== AF_INET6) || (proto !== 6 && proto !== 17)) return -1;
  return endpointKey(readAddr(b, L.addr, family), b.readUInt16BE(L.port), protoName(proto));
}

/** Encode a struct rnat_value: the endpoint's backend id, or 0 for an endpoint of several service ports. */
export function encodeReplyValueInto(b: Buffer, o: number, backendId: number): Buffer {
  const L = LAYOUTS.rnat_value.offsets;
  checkU32(backendId, 'backendId');
  b.writeUInt32LE(backendId, o + L.backend_id);
  b.writeUInt32LE(backendId === 0 ? RNAT_FLAG_AMBIGUOUS : 0, o + L.flags);
  return b;
}

/** Decode a struct rnat_value: the backend id, 0 when ambiguous. */
export function decodeReplyValue(b: Buffer): number {
  const L = LAYOUTS.rnat_value.offsets;
  return (b.readUInt32LE(L.flags) & RNAT_FLAG_AMBIGUOUS) !== 0 ? 0 : b.readUInt32LE(L.backend_id);
}

/** Encode a struct affinity_key. */
export function encodeAffinityKey(client: string, serviceId: number): Buffer {
  const L = LAYOUTS.affinity_key.offsets;
  const b = Buffer.alloc(LAYOUTS.affinity_key.size);
  b[L.family] = writeAddr(b, L.client, client, 'client');
  b.writeUInt32LE(serviceId, L.svc_id);
  return b;
}

/** One affinity entry. */
export interface AffinityValue {
  backendId: number;
  lastSeenNs: bigint;
}

/** Encode a struct affinity_value. */
export function encodeAffinityValue(v: AffinityValue): Buffer {
  const L = LAYOUTS.affinity_value.offsets;
  const b = Buffer.alloc(LAYOUTS.affinity_value.size);
  b.writeUInt32LE(v.backendId, L.backend_id);
  b.writeBigUInt64LE(v.lastSeenNs, L.last_seen_ns);
  return b;
}

/** Decode a struct affinity_value. */
export function decodeAffinityValue(b: Buffer): AffinityValue {
  const L = LAYOUTS.affinity_value.offsets;
  return { backendId: b.readUInt32LE(L.backend_id), lastSeenNs: b.readBigUInt64LE(L.last_seen_ns) };
}

/** Per-service or per-backend counters (struct lb_stats), summed over CPUs. */
export interface LbStats {
  packets: bigint;
  bytes: bigint;
  newConnections: bigint;
  replyPackets: bigint;
}

/** Decode a struct lb_stats at `off`. */
export function decodeLbStats(b: Buffer, off = 0): LbStats {
  const L = LAYOUTS.lb_stats.offsets;
  return {
    packets: b.readBigUInt64LE(off + L.packets),
    bytes: b.readBigUInt64LE(off + L.bytes),
    newConnections: b.readBigUInt64LE(off + L.new_conns),
    replyPackets: b.readBigUInt64LE(off + L.reply_packets),
  };
}

/** Names of the global counters, in struct global_stats order. */
export const GLOBAL_COUNTERS = [
  'rx_packets', 'passed_other', 'forwarded', 'forwarded_stack', 'replies',
  'drop_malformed', 'drop_fragment', 'drop_no_service', 'drop_no_backend',
  'drop_ct_full', 'passed_malformed', 'ct_rescheduled', 'affinity_hits', 'fib_miss',
  'reply_restored', 'reply_ambiguous', 'hairpin_flows', 'sock_translated',
  'reject_tcp_rst', 'reject_icmp_unreach', 'reject_rate_limited',
  'ct_expired', 'ct_untracked', 'ct_reply_clash', 'ct_reply_recreated', 'ct_reply_stale',
  'frag_translated', 'icmp_translated', 'icmp_frag_needed',
] as const;

/** One global counter's name. */
export type GlobalCounter = (typeof GLOBAL_COUNTERS)[number];

/** Decode a struct global_stats. */
export function decodeGlobalStats(b: Buffer): Record<GlobalCounter, bigint> {
  const out = {} as Record<GlobalCounter, bigint>;
  for (const name of GLOBAL_COUNTERS) {
    out[name] = b.readBigUInt64LE(LAYOUTS.global_stats.offsets[name]);
  }
  return out;
}

/** This node's run-time settings (struct node_config). */
export interface NodeConfig {
  /** The IPv4 address hairpin flows are source-NATed to; null: off. */
  hairpinAddress: string | null;
  /** The network namespace (SO_NETNS_COOKIE) whose sockets the cgroup programs balance; 0n: none. */
  sockNetnsCookie: bigint;
}

/** Encode a struct node_config. */
export function encodeNodeConfig(c: NodeConfig): Buffer {
  const L = LAYOUTS.node_config.offsets;
  const b = Buffer.alloc(LAYOUTS.node_config.size);
  if (c.hairpinAddress !== null) writeIPv4Field(b, L.hairpin_addr, c.hairpinAddress, 'hairpinAddress');
  b.writeBigUInt64LE(c.sockNetnsCookie, L.sock_netns_cookie);
  return b;
}

/** Decode a struct node_config. */
export function decodeNodeConfig(b: Buffer): NodeConfig {
  const L = LAYOUTS.node_config.offsets;
  const a = b.readUInt32BE(L.hairpin_addr);
  return { hairpinAddress: a === 0 ? null : formatIPv4(a), sockNetnsCookie: b.readBigUInt64LE(L.sock_netns_cookie) };
}

/** Encode a struct node_config6: the IPv6 hairpin address, or all zero (null: off). */
export function encodeNodeConfig6(hairpinAddress: string | null): Buffer {
  const b = Buffer.alloc(LAYOUTS.node_config6.size);
  if (hairpinAddress !== null) writeIPv6Field(b, LAYOUTS.node_config6.offsets.hairpin_addr, hairpinAddress, 'hairpinAddress');
  return b;
}

/** Decode a struct node_config6: its hairpin address, or null when all zero. */
export function decodeNodeConfig6(b: Buffer): string | null {
  const off = LAYOUTS.node_config6.offsets.hairpin_addr;
  return b.subarray(off, off + 16).every((x) => x === 0) ? null : readAddr(b, off, AF_INET6);
}
