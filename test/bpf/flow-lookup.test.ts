/**
 * Dataplane.lookupFlow (sluice_lookup: lb.h's decision, read-only, through
 * BPF_PROG_TEST_RUN) against what the programs then do with the same
 * packet. Random flows over services with and without ClientIP affinity,
 * without backends, with backends drained, deleted and added back, with
 * SYNs and ACKs, replies tracked, restored through reply_nat and ambiguous,
 * traffic for no VIP: for each packet the lookup's answer must be what
 * sluice_xdp (or sluice_tc) does next (the rewrite, the verdict and every
 * counter that moves), and the lookup itself must move nothing: every map
 * but the clock cache is compared before and after it.
 *
 * fibRedirect is off (as in packets.test.ts): a rewritten packet's verdict
 * is "to the stack".
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import {
  CT_REPLY,
  LAYOUTS,
  encodeAffinityValue,
  encodeConntrackKey,
  encodeConntrackValue,
  type LbStats,
} from '../../src/dataplane/codec.js';
import type { FlowDecision, FlowPacket } from '../../src/dataplane/dataplane.js';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { native } from '../../src/dataplane/native.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import type { ServiceSpec } from '../../src/model/service.js';
import { packageRoot } from '../../src/package-root.js';
import { TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, XDP_DROP, XDP_PASS, XDP_TX, buildPacket, buildPacket6, ip6Bytes, parsePacket, parsePacket6 } from '../helpers/packet.js';
import { canonicalAddress, familyOf, hostPort } from '../../src/model/address.js';
import { rng } from '../helpers/rng.js';
import { globalDelta, type Delta } from '../helpers/test-run.js';
import { maglevSlot } from '../../src/maglev/flow-hash.js';
import { conntrackEntries, deleteConntrackWhere } from '../helpers/conntrack.js';

const BACKENDS = ['10.1.0.11', '10.1.0.12', '10.1.0.13', '10.1.0.14'];
const CLIENTS = ['192.168.50.1', '192.168.50.2', '192.168.50.3', '192.168.60.4', '172.16.0.5', '10.9.9.9'];
const CLIENT_PORTS = [1024, 2000, 33333, 40000, 40001, 50505, 60000, 65535];

const web: ServiceSpec = { name: 'web', address: '10.96.0.10', port: 80, protocol: 'tcp', backends: BACKENDS.map((address) => ({ address, port: 8080 })) };
const dns: ServiceSpec = { name: 'dns', address: '10.96.0.10', port: 53, protocol: 'udp', backends: BACKENDS.slice(0, 2).map((address) => ({ address, port: 5353 })) };
const sticky: ServiceSpec = {
  name: 'sticky', address: '10.96.0.20', port: 443, protocol: 'tcp',
  backends: BACKENDS.map((address) => ({ address, port: 8443 })), sessionAffinity: { timeoutSeconds: 30 },
};
const stickyUdp: ServiceSpec = {
  name: 'sticky-udp', address: '10.96.0.20', port: 443, protocol: 'udp',
  backends: BACKENDS.slice(1).map((address) => ({ address, port: 8443 })), sessionAffinity: { timeoutSeconds: 30 },
};
const empty: ServiceSpec = { name: 'empty', address: '10.96.0.30', port: 80, protocol: 'tcp', backends: [] };
/* Shares web's first two endpoints: their replies without an entry are ambiguous. */
const alt: ServiceSpec = { name: 'alt', address: '10.96.0.40', port: 80, protocol: 'tcp', backends: BACKENDS.slice(0, 2).map((address) => ({ address, port: 8080 })) };
const SPECS = [web, dns, sticky, stickyUdp, empty, alt];
/** Services whose backends the random walk drains, deletes and adds back. */
const CHANGING = [web, sticky, stickyUdp];

const BACKENDS6 = ['fd01::11', 'fd01::12', 'fd01::13'];
const CLIENTS6 = ['2001:db8:50::1', '2001:db8:50::2', '2001:db8:60::4', 'fd00:5::5'];
const web6: ServiceSpec = { name: 'web6', address: 'fd96::10', port: 80, protocol: 'tcp', backends: BACKENDS6.map((address) => ({ address, port: 8080 })) };
const dns6: ServiceSpec = { name: 'dns6', address: 'fd96::10', port: 53, protocol: 'udp', backends: BACKENDS6.slice(0, 2).map((address) => ({ address, port: 5353 })) };
const sticky6: ServiceSpec = {
  name: 'sticky6', address: 'fd96::20', port: 443, protocol: 'tcp',
  backends: BACKENDS6.map((address) => ({ address, port: 8443 })), sessionAffinity: { timeoutSeconds: 30 },
};
const empty6: ServiceSpec = { name: 'empty6', address: 'fd96::30', port: 80, protocol: 'tcp', backends: [] };
const SPECS6 = [web6, dns6, sticky6, empty6];

let dp: NativeDataplane;
let lb: LoadBalancer;

/** A reply_nat row for an IPv6 backend endpoint (struct rnat_key, family 10). */
function putReply6(address: string, port: number, proto: 'tcp' | 'udp', backendId: number): void {
  const L = LAYOUTS.rnat_key.offsets;
  const key = Buffer.alloc(LAYOUTS.rnat_key.size);
  ip6Bytes(address).copy(key, L.addr);
  key.writeUInt16BE(port, L.port);
  key[L.proto] = proto === 'tcp' ? 6 : 17;
  key[L.family] = 10;
  const value = Buffer.alloc(LAYOUTS.rnat_value.size);
  value.writeUInt32LE(backendId, LAYOUTS.rnat_value.offsets.backend_id);
  dp.raw.mapUpdate('reply_nat', key, value);
}

test.before(async () => {
  dp = await NativeDataplane.open({
    fibRedirect: false,
    // Every SYN and datagram for a service without backends is answered
    // (none of SPECS says drop): no answer may be held back by the rate
    // limit, whatever the random walk sends.
    rejectBurst: 0xffffffff,
    capacity: { conntrack: 65536, affinity: 4096, frontends: 63, backends: 1023, maglevSlots: 1 << 16 },
  });
  lb = new LoadBalancer(dp);
  for (const s of SPECS) await lb.apply(s);
  // The model takes IPv6 addresses in another part of the work: these are
  // applied as valid, and their reply_nat rows written here.
  await lb.applyMany(SPECS6, { validated: true });
  for (const s of [web6, dns6]) {
    const ids = lb.ids(s.name);
    for (const b of s.backends) putReply6(b.address, b.port, s.protocol, ids.backends.get(`${b.address}:${b.port}`)!);
  }
});

test.after.always(() => {
  dp?.close();
});


/**
 * The lookup touches one map by design, as any packet does: lb_now()'s
 * per-CPU clock cache; and an IPv6 lookup its own slot of the IPv6 path's
 * per-CPU working memory (bpf/include/lb6.h struct lb6_scratch), which no
 * decision reads before writing.
 */
const CLOCK_CACHE = 'lb_clock';
const SCRATCH6 = 'lb6_scratch';

/**
 * Every map of the object (mapUsage lists them all, so a new one is
 * covered too), as the lookup must leave it: the entries of a hash map as
 * sorted hex records, so that a difference shows; an array (backends, the
 * Maglev slots, every per-CPU counter summed) as a digest of its contents.
 */
function fingerprint(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const { map } of dp.mapUsage()) {
    if (map === CLOCK_CACHE || map === SCRATCH6) continue;
    const info = dp.raw.mapInfo(map);
    let records: string[];
    if (info.perCpu) {
      records = [digest(dp.raw.perCpuSumAll(map))];
    } else if (map === 'maglev_slots') {
      const slots = dp.raw.arrayRead(map, 0, info.maxEntries * 2);
      records = [digest(Buffer.from(slots.buffer, slots.byteOffset, slots.byteLength))];
    } else {
      const { keys, values, count } = dp.raw.mapDump(map);
      const ks = info.keySize;
      const vs = info.valueSize;
      records = [];
      for (let i = 0; i < count; i++) {
        records.push(`${keys.subarray(i * ks, (i + 1) * ks).toString('hex')}=${values.subarray(i * vs, (i + 1) * vs).toString('hex')}`);
      }
      records = info.type === BPF_MAP_TYPE_ARRAY ? [digest(Buffer.from(records.join()))] : records.sort();
    }
    out[map] = records;
  }
  return out;
}

const BPF_MAP_TYPE_ARRAY = 2;
const digest = (b: Buffer): string => createHash('sha1').update(b).digest('hex');

/** The lookup, checked to have written nothing. */
function lookup(t: ExecutionContext, p: FlowPacket, what: string): FlowDecision {
  const before = fingerprint();
  const d = dp.lookupFlow(p);
  const after = fingerprint();
  for (const m of Object.keys(before)) {
    t.deepEqual(after[m], before[m], `${what}: the lookup changed ${m}`);
  }
  return d;
}

/** The frame of a packet of either family. */
function frameOf(p: FlowPacket): Buffer {
  const spec = {
    saddr: p.saddr, daddr: p.daddr, sport: p.sport, dport: p.dport, proto: p.protocol,
    ...(p.protocol === 'tcp' ? { tcpFlags: p.syn ? { syn: true } : { ack: true } } : {}),
  };
  return familyOf(p.saddr) === 6 ? buildPacket6(spec) : buildPacket(spec);
}

function statsDelta(before: LbStats, after: LbStats): [number, number, number] {
  return [Number(after.packets - before.packets), Number(after.newConnections - before.newConnections), Number(after.replyPackets - before.replyPackets)];
}

/** Whether a packet the lookup says NO_BACKEND for is answered: a SYN, or UDP (no service of SPECS says drop). */
const answered = (p: FlowPacket): boolean => p.protocol === 'udp' || p.syn === true;

/** The global counters a packet with decision `d` moves (lb_account's, or the XDP fast path's alike). */
function expectedGlobal(p: FlowPacket, d: FlowDecision): Delta {
  const e: Delta = { rx_packets: 1 };
  if (d.rescheduled) e.ct_rescheduled = 1;
  if (d.outcome === 'AFFINITY') e.affinity_hits = 1;
  if (d.replyRestored) e.reply_restored = 1;
  if (d.replyAmbiguous) e.reply_ambiguous = 1;
  if (d.ctExpired) e.ct_expired = 1;
  if (d.replyStale) e.ct_reply_stale = 1;
  switch (d.outcome) {
    case 'CONNTRACK': case 'AFFINITY': case 'MAGLEV': e.forwarded_stack = 1; break;
    case 'REPLY': e.replies = 1; e.forwarded_stack = 1; break;
    case 'NO_BACKEND':
      if (!answered(p)) e.drop_no_backend = 1;
      else if (p.protocol === 'tcp') e.reject_tcp_rst = 1;
      else e.reject_icmp_unreach = 1;
      break;
    case 'NO_SERVICE': e.drop_no_service = 1; break;
    case 'TUPLE_CLASH': e.ct_reply_clash = 1; break;
    case 'PASS': e.passed_other = 1; break;
  }
  return e;
}

const show = (p: FlowPacket): string =>
  `${hostPort(p.saddr, p.sport)} -> ${hostPort(p.daddr, p.dport)}/${p.protocol}${p.protocol === 'tcp' ? (p.syn ? ' SYN' : ' ACK') : ''}`;

/** "address:port" in the one text of the address, to compare what a program wrote with what the lookup said. */
const at = (address: string, port: number): string => hostPort(canonicalAddress(address)!, port);

/**
 * Look the packet (of either family) up, then send it through `prog` and
 * check that the program did what the lookup said. Returns the decision.
 */
function lookupThenSend(t: ExecutionContext, p: FlowPacket, prog: 'xdp' | 'tc', what = show(p)): FlowDecision {
  const d = lookup(t, p, what);
  const frame = frameOf(p);
  const g0 = dp.globalStats();
  const s0 = dp.serviceStats(d.serviceId);
  const b0 = dp.backendStats(d.backendId);
  const r = dp.raw.testRun(prog, frame);
  const g = globalDelta(g0, dp.globalStats());
  // A packet that refreshes its flow (its first in a second) writes the
  // reply entry again if it is gone; whether a second turned between the
  // lookup and the packet is no part of the decision. What must hold: a
  // reply entry it wrote is the flow's.
  const v6 = familyOf(p.saddr) === 6;
  if (g.ct_reply_recreated !== undefined) {
    t.is(d.outcome, 'CONNTRACK', `${what}: only a tracked flow's packet writes its reply entry again`);
    // conntrackEntries reads the IPv4 table.
    const back = v6 ? undefined : conntrackEntries(dp).find((e) => e.value.dir === CT_REPLY && e.key.saddr === d.rewrite?.address &&
      e.key.sport === d.rewrite?.port && e.key.daddr === p.saddr && e.key.dport === p.sport);
    if (!v6) {
      t.truthy(back, `${what}: the reply entry written again is there`);
      t.is(back?.value.natAddress, p.daddr, `${what}: and restores to the VIP`);
    }
    delete g.ct_reply_recreated;
  }
  const s = statsDelta(s0, dp.serviceStats(d.serviceId));
  const b = statsDelta(b0, dp.backendStats(d.backendId));
  const where = `${what} through ${prog}, looked up as ${d.outcome}`;
  const pass = prog === 'xdp' ? XDP_PASS : TC_ACT_OK;
  const drop = prog === 'xdp' ? XDP_DROP : TC_ACT_SHOT;
  const parse = (): { saddr: string; sport: number; daddr: string; dport: number; l4ChecksumOk: boolean | null } => (v6 ? parsePacket6(r.data) : parsePacket(r.data));
  switch (d.outcome) {
    case 'CONNTRACK':
    case 'AFFINITY':
    case 'MAGLEV': {
      const o = parse();
      t.is(r.retval, pass, `${where}: verdict`);
      t.is(at(o.daddr, o.dport), at(d.rewrite!.address, d.rewrite!.port), `${where}: the destination the program wrote`);
      t.is(at(o.saddr, o.sport), at(p.saddr, p.sport), `${where}: the source must not change`);
      t.not(o.l4ChecksumOk, false, `${where}: checksum`);
      const isNew = d.outcome === 'CONNTRACK' ? 0 : 1;
      t.deepEqual(s, [1, isNew, 0], `${where}: service ${d.serviceId}'s counters (packets, new, replies)`);
      t.deepEqual(b, [1, isNew, 0], `${where}: backend ${d.backendId}'s counters (packets, new, replies)`);
      break;
    }
    case 'REPLY': {
      const o = parse();
      t.is(r.retval, pass, `${where}: verdict`);
      t.is(at(o.saddr, o.sport), at(d.rewrite!.address, d.rewrite!.port), `${where}: the source the program restored`);
      t.is(at(o.daddr, o.dport), at(p.daddr, p.dport), `${where}: the destination must not change`);
      t.not(o.l4ChecksumOk, false, `${where}: checksum`);
      t.deepEqual(b, [0, 0, 1], `${where}: backend ${d.backendId}'s counters (packets, new, replies)`);
      break;
    }
    case 'NO_BACKEND':
      t.is(r.retval, answered(p) ? (prog === 'xdp' ? XDP_TX : TC_ACT_REDIRECT) : drop, `${where}: verdict`);
      break;
    case 'NO_SERVICE':
    case 'TUPLE_CLASH':
      t.is(r.retval, drop, `${where}: verdict`);
      break;
    case 'PASS':
      t.is(r.retval, pass, `${where}: verdict`);
      t.true(r.data.equals(frame), `${where}: a passed packet must be untouched`);
      break;
  }
  t.deepEqual(g, expectedGlobal(p, d), `${where}: global counters`);
  return d;
}

/** A random packet: mostly clients to VIPs (and a VIP port no service has, and no VIP), some backends' replies. */
function randomPacket(r: () => number): FlowPacket {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const x = r();
  if (x < 0.7) {
    const dst = pick<[string, number, 'tcp' | 'udp']>([
      ...SPECS.map((s) => [s.address, s.port, s.protocol] as [string, number, 'tcp' | 'udp']),
      ['10.96.0.10', 81, 'tcp'],
      ['10.200.0.1', 80, 'tcp'],
    ]);
    return { saddr: pick(CLIENTS), sport: pick(CLIENT_PORTS), daddr: dst[0], dport: dst[1], protocol: dst[2], syn: r() < 0.35 };
  }
  // web's endpoints twice as often: half of them are alt's too (ambiguous).
  const from = pick<[number, 'tcp' | 'udp']>([[8080, 'tcp'], [8080, 'tcp'], [8443, 'tcp'], [5353, 'udp'], [8443, 'udp']]);
  return { saddr: pick(BACKENDS), sport: from[0], daddr: pick(CLIENTS), dport: pick(CLIENT_PORTS), protocol: from[1], syn: r() < 0.1 };
}

/** The coarse clock the dataplane reads, near enough: CLOCK_MONOTONIC. */
const nowNs = (): bigint => process.hrtime.bigint();

/** Change the state under the flows at random: drain, delete, add back, age entries, forget flows. */
async function randomChange(r: () => number): Promise<string> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const x = r();
  const svc = pick(CHANGING);
  const cur = lb.get(svc.name)!;
  if (x < 0.3) {
    const b = pick(cur.backends.length ? cur.backends : svc.backends);
    if (!cur.backends.some((c) => c.address === b.address)) return 'nothing';
    const state = b.state === 'draining' ? 'active' : 'draining';
    await lb.setBackendState(svc.name, b.address, b.port, state);
    return `${svc.name}: ${b.address} ${state}`;
  }
  if (x < 0.5) {
    if (cur.backends.length === 0) return 'nothing';
    const b = pick(cur.backends);
    await lb.removeBackend(svc.name, b.address, b.port);
    return `${svc.name}: ${b.address} deleted`;
  }
  if (x < 0.65) {
    const missing = svc.backends.filter((b) => !cur.backends.some((c) => c.address === b.address));
    if (missing.length === 0) return 'nothing';
    const b = pick(missing);
    await lb.apply({ ...cur, backends: [...cur.backends, { ...b }] });
    return `${svc.name}: ${b.address} added back`;
  }
  if (x < 0.8) {
    // Age a flow's entry: dead (a packet and a lookup both place the flow
    // afresh), or a second older (a packet would refresh it, a lookup must not).
    const all = conntrackEntries(dp);
    if (all.length === 0) return 'nothing';
    const e = pick(all);
    const dead = r() < 0.5;
    dp.raw.mapUpdate('conntrack', encodeConntrackKey(e.key), encodeConntrackValue({ ...e.value, expires: dead ? 1 : e.value.expires - 1 }));
    return dead ? 'a conntrack entry expired' : 'a conntrack entry aged';
  }
  if (x < 0.92) {
    // An affinity entry: long expired, or 10 s old (fresh, and a hit would refresh it).
    const { keys, values, count } = dp.raw.mapDump('affinity');
    if (count === 0) return 'nothing';
    const i = Math.floor(r() * count);
    const ks = LAYOUTS.affinity_key.size;
    const v = values.subarray(i * LAYOUTS.affinity_value.size, (i + 1) * LAYOUTS.affinity_value.size);
    const lastSeenNs = r() < 0.5 ? 1n : nowNs() - 10_000_000_000n;
    dp.raw.mapUpdate('affinity', keys.subarray(i * ks, (i + 1) * ks), encodeAffinityValue({ backendId: v.readUInt32LE(0), lastSeenNs }));
    return lastSeenNs === 1n ? 'an affinity entry expired' : 'an affinity entry 10 s old';
  }
  const client = pick(CLIENTS);
  const n = deleteConntrackWhere(dp, (e) => e.key.saddr === client || e.key.daddr === client);
  return `${n} conntrack entries of ${client} flushed`;
}

test.serial('random flows: the lookup says what sluice_xdp (and sluice_tc) then does, and changes nothing', async (t) => {
  const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);
  t.log(`SEED=${seed}`);
  const r = rng(seed);
  const seen = new Map<string, number>();
  const count = (k: string): void => {
    seen.set(k, (seen.get(k) ?? 0) + 1);
  };
  let change = 'start';
  for (let step = 0; step < 2500; step++) {
    if (r() < 0.08) {
      change = await randomChange(r);
      continue;
    }
    const p = randomPacket(r);
    const prog = r() < 0.8 ? 'xdp' : 'tc';
    const d = lookupThenSend(t, p, prog, `seed ${seed}, step ${step} (after: ${change}): ${show(p)}`);
    count(d.outcome);
    if (d.rescheduled) count(p.syn ? 'rescheduled SYN' : 'rescheduled');
    if (d.replyRestored) count('reply restored');
    if (d.replyAmbiguous) count('reply ambiguous');
  }
  t.log([...seen].map(([k, v]) => `${k} ${v}`).join(', '));
  // The walk must have met every outcome, or it proves less than it says.
  for (const o of ['CONNTRACK', 'AFFINITY', 'MAGLEV', 'NO_BACKEND', 'NO_SERVICE', 'REPLY', 'PASS', 'rescheduled', 'reply restored', 'reply ambiguous'] as const) {
    t.true((seen.get(o) ?? 0) > 0, `no packet was ${o} (seed ${seed})`);
  }
});

/* IPv6: the same walk over IPv6 services, through lb6.h. */

test.serial('random IPv6 flows: the lookup says what sluice_xdp (and sluice_tc) then does, and changes nothing', async (t) => {
  const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);
  t.log(`SEED=${seed}`);
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const seen = new Map<string, number>();
  const count = (k: string): void => {
    seen.set(k, (seen.get(k) ?? 0) + 1);
  };
  // The backends each changing service has now, as this walk sets them.
  const current = new Map<string, ServiceSpec>([web6, sticky6].map((s) => [s.name, { ...s, backends: s.backends.map((b) => ({ ...b })) }]));
  t.teardown(() => lb.applyMany([web6, sticky6], { validated: true }));
  let change = 'start';
  for (let step = 0; step < 800; step++) {
    const x = r();
    if (x < 0.06) {
      const svc = current.get(pick([web6.name, sticky6.name]))!;
      const orig = svc.name === web6.name ? web6 : sticky6;
      const b = pick(orig.backends);
      const cur = svc.backends.find((c) => c.address === b.address);
      const y = r();
      if (!cur) svc.backends.push({ ...b });
      else if (y < 0.5) cur.state = cur.state === 'draining' ? 'active' : 'draining';
      else svc.backends = svc.backends.filter((c) => c !== cur);
      await lb.applyMany([svc], { validated: true });
      change = `${svc.name}: ${b.address} ${!cur ? 'added back' : y < 0.5 ? cur.state : 'deleted'}`;
      continue;
    }
    if (x < 0.09) {
      // A conntrack6 entry dead: a packet and a lookup both place its flow afresh.
      const { keys, values, count: n } = dp.raw.mapDump('conntrack6');
      if (n === 0) continue;
      const i = Math.floor(r() * n);
      const v = Buffer.from(values.subarray(i * 36, (i + 1) * 36));
      v.writeUInt32LE(1, 32);
      dp.raw.mapUpdate('conntrack6', keys.subarray(i * 40, (i + 1) * 40), v);
      change = 'a conntrack6 entry expired';
      continue;
    }
    let p: FlowPacket;
    if (x < 0.72) {
      const dst = pick<[string, number, 'tcp' | 'udp']>([
        ...SPECS6.map((s) => [s.address, s.port, s.protocol] as [string, number, 'tcp' | 'udp']),
        ['fd96::10', 81, 'tcp'],
        ['fd97::1', 80, 'tcp'],
      ]);
      p = { saddr: pick(CLIENTS6), sport: pick(CLIENT_PORTS), daddr: dst[0], dport: dst[1], protocol: dst[2], syn: r() < 0.35 };
    } else {
      const from = pick<[number, 'tcp' | 'udp']>([[8080, 'tcp'], [8443, 'tcp'], [5353, 'udp']]);
      p = { saddr: pick(BACKENDS6), sport: from[0], daddr: pick(CLIENTS6), dport: pick(CLIENT_PORTS), protocol: from[1], syn: r() < 0.1 };
    }
    const prog = r() < 0.7 ? 'xdp' : 'tc';
    const d = lookupThenSend(t, p, prog, `seed ${seed}, step ${step} (after: ${change}): ${show(p)}`);
    count(d.outcome);
    if (d.rescheduled) count('rescheduled');
    if (d.replyRestored) count('reply restored');
    if (d.outcome !== 'PASS' && d.outcome !== 'NO_SERVICE' && d.tableSize) t.is(d.slot, maglevSlot(d.hash, d.tableSize));
  }
  t.log([...seen].map(([k, v]) => `${k} ${v}`).join(', '));
  for (const o of ['CONNTRACK', 'AFFINITY', 'MAGLEV', 'NO_BACKEND', 'NO_SERVICE', 'REPLY', 'PASS', 'reply restored'] as const) {
    t.true((seen.get(o) ?? 0) > 0, `no IPv6 packet was ${o} (seed ${seed})`);
  }
});

test.serial('a draining backend: an ACK follows its flow, a SYN on the same tuple is placed again', async (t) => {
  await lb.apply(web);
  const p: FlowPacket = { saddr: '192.168.70.1', sport: 41000, daddr: web.address, dport: 80, protocol: 'tcp' };
  const first = lookupThenSend(t, { ...p, syn: true }, 'xdp');
  t.is(first.outcome, 'MAGLEV');
  const be = first.rewrite!.address;
  await lb.setBackendState('web', be, 8080, 'draining');
  t.teardown(() => lb.apply(web));

  const ack = lookup(t, p, 'ACK');
  const syn = lookup(t, { ...p, syn: true }, 'SYN');
  t.deepEqual([ack.outcome, ack.rewrite?.address], ['CONNTRACK', be]);
  t.is(syn.outcome, 'MAGLEV');
  t.true(syn.rescheduled);
  t.not(syn.rewrite?.address, be, 'a SYN must leave the draining backend');
  // Both, as the program does them (the ACK first: the SYN replaces the entry).
  t.deepEqual(lookupThenSend(t, p, 'xdp'), ack);
  t.deepEqual(lookupThenSend(t, { ...p, syn: true }, 'xdp'), syn);
});

test.serial('a deleted backend: its flow is placed again; an affinity entry to it is passed over', async (t) => {
  await lb.apply(sticky);
  t.teardown(() => lb.apply(sticky));
  const p: FlowPacket = { saddr: '192.168.70.2', sport: 42000, daddr: sticky.address, dport: 443, protocol: 'tcp', syn: true };
  const first = lookupThenSend(t, p, 'xdp');
  t.is(first.outcome, 'MAGLEV');
  // Another connection of the client: the affinity entry holds, not Maglev.
  const second = lookupThenSend(t, { ...p, sport: 42001 }, 'xdp');
  t.deepEqual([second.outcome, second.rewrite?.address], ['AFFINITY', first.rewrite!.address]);

  await lb.removeBackend('sticky', first.rewrite!.address, 8443);
  const ack = lookupThenSend(t, { ...p, syn: false }, 'xdp');
  t.is(ack.outcome, 'MAGLEV', 'the entry\'s backend is gone, and so is the affinity entry\'s');
  t.true(ack.rescheduled);
  t.not(ack.rewrite!.address, first.rewrite!.address);
  const again = lookupThenSend(t, { ...p, sport: 42002 }, 'tc');
  t.deepEqual([again.outcome, again.rewrite?.address], ['AFFINITY', ack.rewrite!.address], 'the new placement is the affinity entry now');
});

test.serial('the fingerprint sees what a packet writes: the check of the lookups could fail', (t) => {
  const p: FlowPacket = { saddr: '192.168.70.9', sport: 44000, daddr: sticky.address, dport: 443, protocol: 'tcp', syn: true };
  const before = fingerprint();
  t.is(dp.raw.testRun('xdp', frameOf(p)).retval, XDP_PASS);
  const after = fingerprint();
  const changed = Object.keys(before).filter((m) => JSON.stringify(before[m]) !== JSON.stringify(after[m]));
  t.deepEqual(changed.sort(), ['affinity', 'backend_stats', 'conntrack', 'global_stats', 'svc_stats']);
});

test.serial('a service without backends, a VIP port without a service, no VIP: the answer and its Maglev slot', (t) => {
  const none = lookupThenSend(t, { saddr: '192.168.70.3', sport: 43000, daddr: empty.address, dport: 80, protocol: 'tcp' }, 'xdp');
  t.deepEqual([none.outcome, none.serviceId, none.tableSize, none.slot], ['NO_BACKEND', lb.ids('empty').service, 0, 0]);
  const port = lookupThenSend(t, { saddr: '192.168.70.3', sport: 43000, daddr: web.address, dport: 81, protocol: 'tcp' }, 'xdp');
  t.deepEqual([port.outcome, port.serviceId, port.tableSize], ['NO_SERVICE', 0, 0]);
  const other = lookupThenSend(t, { saddr: '192.168.70.3', sport: 43000, daddr: '10.200.0.1', dport: 80, protocol: 'tcp' }, 'xdp');
  t.is(other.outcome, 'PASS');
  // The slot is the destination service's, whatever the outcome; hash and slot agree.
  const d = lookup(t, { saddr: '192.168.70.3', sport: 43000, daddr: web.address, dport: 80, protocol: 'tcp' }, 'web');
  t.is(d.tableSize, lb.tableSizeOf('web')!);
  t.is(d.slot, maglevSlot(d.hash, d.tableSize));
  t.is(d.outcome, 'MAGLEV');
  t.is(d.backendId, dp.getMaglevTable(lb.ids('web').service)![d.slot]!, 'the backend in the slot the lookup names');
});

test.serial('an object without sluice_lookup: testRun refuses with ENOENT', async (t) => {
  const raw = new (native().Dataplane)();
  t.teardown(() => raw.close());
  // The benchmark's baseline objects are loaded this way; they have no lookup program.
  await raw.load({ objectPath: path.join(packageRoot(), 'bpf', 'out', 'bench', 'xdp_floor.bpf.o'), maxEntries: {} });
  const err = t.throws(() => raw.testRun('lookup', Buffer.alloc(200)));
  t.is((err as { code?: string }).code, 'ENOENT');
});

test('the lookup frame: sluice_lookup refuses a frame without room for its answer', (t) => {
  const r = dp.raw.testRun('lookup', Buffer.alloc(100));
  t.is(r.retval, 0 /* XDP_ABORTED */);
});
