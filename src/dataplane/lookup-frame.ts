/**
 * The frame sluice_lookup (bpf/lookup.bpf.c) is test-run on, and its answer
 * in that frame: struct lookup_result at SLUICE_LOOKUP_OFF (both in
 * bpf/include/sluice_shared.h; test/unit/layout.test.ts checks them against
 * the addon). The headers only need what lb_decide() reads: no checksums.
 */
import { CodecError, LAYOUTS, checkPort, protoNumber, readAddr, writeAddr, writeIPv4Field } from './codec.js';
import type { FlowDecision, FlowOutcome, FlowPacket } from './dataplane.js';

/** Offset of struct lookup_result in the frame (SLUICE_LOOKUP_OFF). */
export const LOOKUP_RESULT_OFFSET = 136;

/** Length of a lookup frame: headers, padding, and room for the answer. */
export const LOOKUP_FRAME_SIZE = LOOKUP_RESULT_OFFSET + LAYOUTS.lookup_result.size;

/**
 * lb_decide()'s outcomes that a lookup frame can get, as lookup_result.rc
 * holds them (bpf/include/errors.h; test/unit/layout.test.ts checks them
 * against the addon).
 */
export const LOOKUP_RC = {
  SLUICE_PASS: 0,
  SLUICE_NAT_FWD: 1,
  SLUICE_NAT_REPLY: 2,
  SLUICE_ERR_NO_SERVICE: -4,
  SLUICE_ERR_NO_BACKEND: -5,
  SLUICE_ERR_CT_CLASH: -9,
} as const;

const ETH_HLEN = 14;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const IP_HLEN = 20;
const IP6_HLEN = 40;
const AF_INET6 = 10;
const TCP_HLEN = 20;
const UDP_HLEN = 8;
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

/**
 * Ethernet, IPv4 (no options) or IPv6 (no extension headers: when the
 * addresses are IPv6 ones) and TCP or UDP headers of `p`, then zeros up to
 * and over the answer's room. A TCP packet is a SYN without ACK when
 * `p.syn`, else an ACK (a packet of an established flow). The IPv6 frame's
 * UDP checksum is set nonzero (the dataplane refuses 0 over IPv6), not
 * summed: nothing checks it.
 */
export function encodeLookupFrame(p: FlowPacket): Buffer {
  const f = Buffer.alloc(LOOKUP_FRAME_SIZE);
  const proto = protoNumber(p.protocol);
  checkPort(p.sport, 'sport');
  checkPort(p.dport, 'dport');
  const l4len = p.protocol === 'tcp' ? TCP_HLEN : UDP_HLEN;
  const ip = ETH_HLEN;
  let l4: number;
  if (p.saddr.includes(':') || p.daddr.includes(':')) {
    f.writeUInt16BE(ETH_P_IPV6, 12);
    f[ip] = 0x60; // version 6
    f.writeUInt16BE(l4len, ip + 4);
    f[ip + 6] = proto;
    f[ip + 7] = 64; // hop limit
    if (writeAddr(f, ip + 8, p.saddr, 'saddr') !== AF_INET6) throw new CodecError('saddr', `not an IPv6 address like daddr: ${p.saddr}`);
    if (writeAddr(f, ip + 24, p.daddr, 'daddr') !== AF_INET6) throw new CodecError('daddr', `not an IPv6 address like saddr: ${p.daddr}`);
    l4 = ip + IP6_HLEN;
    if (p.protocol === 'udp') f.writeUInt16BE(0xffff, l4 + 6);
  } else {
    f.writeUInt16BE(ETH_P_IP, 12);
    f[ip] = 0x45; // version 4, 5 words
    f.writeUInt16BE(IP_HLEN + l4len, ip + 2);
    f[ip + 8] = 64; // TTL
    f[ip + 9] = proto;
    writeIPv4Field(f, ip + 12, p.saddr, 'saddr');
    writeIPv4Field(f, ip + 16, p.daddr, 'daddr');
    l4 = ip + IP_HLEN;
  }
  f.writeUInt16BE(p.sport, l4);
  f.writeUInt16BE(p.dport, l4 + 2);
  if (p.protocol === 'tcp') {
    f[l4 + 12] = (TCP_HLEN / 4) << 4;
    f[l4 + 13] = p.syn ? TCP_SYN : TCP_ACK;
  } else {
    f.writeUInt16BE(l4len, l4 + 4);
  }
  return f;
}

function outcomeOf(rc: number, newFlow: boolean, affinityHit: boolean): FlowOutcome {
  switch (rc) {
    case LOOKUP_RC.SLUICE_NAT_FWD:
      if (!newFlow) return 'CONNTRACK';
      return affinityHit ? 'AFFINITY' : 'MAGLEV';
    case LOOKUP_RC.SLUICE_NAT_REPLY: return 'REPLY';
    case LOOKUP_RC.SLUICE_PASS: return 'PASS';
    case LOOKUP_RC.SLUICE_ERR_NO_BACKEND: return 'NO_BACKEND';
    case LOOKUP_RC.SLUICE_ERR_NO_SERVICE: return 'NO_SERVICE';
    case LOOKUP_RC.SLUICE_ERR_CT_CLASH: return 'TUPLE_CLASH';
    default:
      // A fragment, a malformed header or a failed insert: none can come
      // from a frame built above by a decision that writes nothing.
      throw new CodecError('rc', `sluice_lookup answered ${rc}, which a lookup frame cannot give`);
  }
}

/** Decode the answer in a frame sluice_lookup returned. */
export function decodeLookupResult(frame: Buffer): FlowDecision {
  if (frame.length < LOOKUP_FRAME_SIZE) throw new CodecError('frame', `${frame.length} bytes, want ${LOOKUP_FRAME_SIZE}`);
  const b = frame.subarray(LOOKUP_RESULT_OFFSET, LOOKUP_FRAME_SIZE);
  const L = LAYOUTS.lookup_result.offsets;
  const outcome = outcomeOf(b.readInt32LE(L.rc), b[L.new_flow] !== 0, b[L.affinity_hit] !== 0);
  const svcId = b.readUInt32LE(L.svc_id);
  const d: FlowDecision = {
    outcome,
    serviceId: svcId !== 0 ? svcId : b.readUInt32LE(L.dst_svc_id),
    backendId: b.readUInt32LE(L.backend_id),
    rescheduled: b[L.rescheduled] !== 0,
    replyRestored: b[L.reply_restored] !== 0,
    replyAmbiguous: b[L.reply_ambiguous] !== 0,
    ctExpired: b[L.ct_dead] === 1,
    replyStale: b[L.ct_dead] === 2,
    hash: b.readUInt32LE(L.hash),
    tableSize: b.readUInt32LE(L.table_size),
    slot: b.readUInt32LE(L.slot),
  };
  if (outcome === 'CONNTRACK' || outcome === 'AFFINITY' || outcome === 'MAGLEV' || outcome === 'REPLY') {
    d.rewrite = { address: readAddr(b, L.new_addr, b[L.family]!), port: b.readUInt16BE(L.new_port) };
  }
  return d;
}
