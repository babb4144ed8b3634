/**
 * An in-memory Dataplane for unit tests: same interface as the native one,
 * no kernel. It keeps maps as the kernel would (keyed by the encoded bytes,
 * so two keys that encode alike collide as they would in BPF) and records
 * every operation so tests can assert the order of writes.
 */
import {
  encodeConntrackKey,
  encodeConntrackValue,
  encodeServiceKey,
  encodeVipKey,
  type AffinityValue,
  type BackendValue,
  type ConntrackKey,
  type ConntrackValue,
  type EndpointKey,
  type GlobalCounter,
  type LbStats,
  type ServiceKey,
  type ServiceValue,
  GLOBAL_COUNTERS,
  CONNTRACK_TABLES,
  addressFamily,
  type IpFamily,
} from './codec.js';
import { ConntrackRows } from './conntrack-rows.js';
import { hostPort } from '../model/address.js';
import { StatsTable } from './stats-table.js';
import type { AttachTarget, ConntrackBatch, ConntrackCursor, ConntrackEntry, Dataplane, FlowDecision, FlowPacket, MapOccupancy } from './dataplane.js';

/** One recorded write. */
export interface FakeOp {
  op: string;
  id: string;
}

/** The bucket of a conntrack key (its hex) among n: FNV-1a over the hex digits. */
function bucketOf(hex: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < hex.length; i++) h = Math.imul(h ^ hex.charCodeAt(i), 0x01000193);
  return (h >>> 0) % n;
}

function cursorOf(bucket: number): ConntrackCursor {
  const c = Buffer.alloc(4);
  c.writeUInt32LE(bucket, 0);
  return c;
}

const zeroStats = (): LbStats => ({ packets: 0n, bytes: 0n, newConnections: 0n, replyPackets: 0n });

/** A packet's tuple as a key: the IPv4 conntrack key's bytes, or an IPv6 tuple's one text. */
const flowKey = (p: FlowPacket): string =>
  `${p.saddr.includes(':') ? `${hostPort(p.saddr, p.sport)}>${hostPort(p.daddr, p.dport)}/${p.protocol}` : encodeConntrackKey(p).toString('hex')}${p.syn ? '/syn' : ''}`;

/** A Dataplane in memory. */
export class FakeDataplane implements Dataplane {
  /** Every write, in order. */
  readonly ops: FakeOp[] = [];
  /** Interfaces attached now. */
  readonly attached = new Map<string, AttachTarget>();
  readonly services = new Map<string, { key: ServiceKey; value: ServiceValue }>();
  readonly vips = new Map<string, { address: string; services: number }>();
  readonly backends = new Map<number, BackendValue>();
  /** reply_nat: endpoint key -> backend id (0: ambiguous). */
  readonly replies = new Map<EndpointKey, number>();
  /** svc_frontends: service id -> frontend. */
  readonly frontends = new Map<number, ServiceKey>();
  /** Regions written to the table array, by base slot. */
  readonly tables = new Map<number, Uint32Array>();
  /** Slots of the table array. */
  capacity = 1 << 22;
  /** Conntrack entries by the hex of their encoded key. */
  readonly conntrack = new Map<string, ConntrackEntry>();
  /** Hash buckets readConntrack spreads conntrack over (the kernel has about one per entry). */
  conntrackBuckets = 1024;
  readonly affinity = new Map<string, AffinityValue>();
  readonly svcStats = new Map<number, LbStats>();
  readonly beStats = new Map<number, LbStats>();
  closed = false;

  private record(op: string, id: string): void {
    if (this.closed) throw new Error('FakeDataplane: closed');
    this.ops.push({ op, id });
  }

  putService(key: ServiceKey, value: ServiceValue): void {
    const id = encodeServiceKey(key).toString('hex');
    this.record('putService', id);
    this.services.set(id, { key, value: { ...value } });
    this.frontends.set(value.id, { ...key });
  }

  deleteService(key: ServiceKey): boolean {
    const id = encodeServiceKey(key).toString('hex');
    this.record('deleteService', id);
    return this.services.delete(id);
  }

  listServices(): Array<{ key: ServiceKey; value: ServiceValue }> {
    return [...this.services.values()];
  }

  putVips(entries: ReadonlyArray<{ address: string; services: number }>): void {
    for (const { address, services } of entries) {
      this.record('putVip', address);
      this.vips.set(encodeVipKey(address).toString('hex'), { address, services });
    }
  }

  deleteVip(address: string): boolean {
    this.record('deleteVip', address);
    return this.vips.delete(encodeVipKey(address).toString('hex'));
  }

  listVips(): string[] {
    return [...this.vips.values()].map((v) => v.address);
  }

  putBackend(id: number, value: BackendValue): void {
    this.record('putBackend', String(id));
    this.backends.set(id, { ...value });
  }

  putBackends(entries: ReadonlyArray<readonly [number, BackendValue]>): void {
    for (const [id, v] of entries) this.putBackend(id, v);
  }

  putServices(entries: ReadonlyArray<{ key: ServiceKey; value: ServiceValue }>): void {
    for (const e of entries) this.putService(e.key, e.value);
  }

  deleteBackend(id: number): boolean {
    this.record('deleteBackend', String(id));
    return this.backends.delete(id);
  }

  listBackends(): Map<number, BackendValue> {
    return new Map(this.backends);
  }

  putReplies(entries: ReadonlyArray<readonly [EndpointKey, number]>): void {
    for (const [endpoint, backendId] of entries) {
      this.record('putReply', String(endpoint));
      this.replies.set(endpoint, backendId);
    }
  }

  deleteReply(endpoint: EndpointKey): boolean {
    this.record('deleteReply', String(endpoint));
    return this.replies.delete(endpoint);
  }

  listReplies(): Map<EndpointKey, number> {
    return new Map(this.replies);
  }

  /** Exclusive bound of service ids and of backend ids. */
  maxIds = { services: 65536, backends: 131072 };

  idCapacity(): { services: number; backends: number } {
    return { services: this.maxIds.services - 1, backends: this.maxIds.backends - 1 };
  }

  isAttached(target: AttachTarget): boolean {
    return this.attached.has(`${target.netns ?? ''}/${target.ifname}`);
  }

  tableCapacity(): number {
    return this.capacity;
  }

  writeTables(tables: ReadonlyArray<{ base: number; table: Uint32Array }>): void {
    // As the addon does: every region checked before anything is written.
    for (const { base, table } of tables) {
      if (base + table.length > this.capacity) throw new Error(`region [${base}, ${base + table.length}) out of range`);
    }
    for (const { base, table } of tables) {
      this.record('writeTable', String(base));
      this.tables.set(base, Uint32Array.from(table));
    }
  }

  readTable(base: number, size: number): Uint32Array {
    const t = this.tables.get(base);
    if (!t || t.length !== size) throw new Error(`no region of ${size} slots at ${base}`);
    return Uint32Array.from(t);
  }

  getMaglevTable(serviceId: number): Uint32Array | null {
    const svc = [...this.services.values()].find((s) => s.value.id === serviceId);
    if (!svc || svc.value.tableSize === 0) return null;
    const t = this.tables.get(svc.value.tableBase);
    return t ? Uint32Array.from(t) : null;
  }

  getConntrack(key: ConntrackKey): ConntrackValue | null {
    return this.conntrack.get(encodeConntrackKey(key).toString('hex'))?.value ?? null;
  }

  lookupConntrack(key: Buffer): Buffer | null {
    const e = this.conntrack.get(key.toString('hex'));
    return e ? encodeConntrackValue(e.value) : null;
  }

  getAffinity(client: string, serviceId: number): AffinityValue | null {
    return this.affinity.get(`${client}|${serviceId}`) ?? null;
  }

  /** Test helper: set an affinity entry as the dataplane would. */
  setAffinity(client: string, serviceId: number, value: AffinityValue): void {
    this.affinity.set(`${client}|${serviceId}`, value);
  }

  /** Test helper: insert a conntrack entry as the dataplane would. */
  addConntrack(e: ConntrackEntry): void {
    this.conntrack.set(encodeConntrackKey(e.key).toString('hex'), e);
  }

  /** Decisions lookupFlow gives, set by tests (decideFlow). */
  readonly flowDecisions = new Map<string, FlowDecision>();
  /** Every packet lookupFlow was asked about, in order. */
  readonly lookups: FlowPacket[] = [];

  /** Test helper: the decision lookupFlow gives for this packet (its tuple and `syn`). */
  decideFlow(packet: FlowPacket, decision: FlowDecision): void {
    this.flowDecisions.set(flowKey(packet), decision);
  }

  /**
   * The decision a test set with decideFlow. The fake decides nothing
   * itself (the dataplane's decision is bpf/include/lb.h's, tested through
   * the kernel in test/bpf/flow-lookup.test.ts): any other packet is
   * NO_SERVICE.
   */
  lookupFlow(packet: FlowPacket): FlowDecision {
    if (this.closed) throw new Error('FakeDataplane: closed');
    this.lookups.push({ ...packet });
    const d = this.flowDecisions.get(flowKey(packet));
    if (d) return { ...d };
    return { outcome: 'NO_SERVICE', serviceId: 0, backendId: 0, rescheduled: false, replyRestored: false, replyAmbiguous: false, ctExpired: false, replyStale: false, hash: 0, tableSize: 0, slot: 0 };
  }

  /**
   * As the kernel's LRU hash: entries hashed into conntrackBuckets
   * buckets (FNV-1a of the key, so a test sees the same order every run),
   * read in whole buckets, the cursor a little-endian bucket index. One
   * table per family, as the kernel's: an IPv6 key is 40 bytes.
   */
  readConntrack(cursor: ConntrackCursor | null, max: number, family: IpFamily = 4): ConntrackBatch {
    const start = cursor === null ? 0 : cursor.readUInt32LE(0);
    const buckets = new Map<number, ConntrackEntry[]>();
    const keyHex = 2 * CONNTRACK_TABLES[family].key.size;
    for (const [hex, e] of this.conntrack) {
      if (hex.length !== keyHex) continue;
      const b = bucketOf(hex, this.conntrackBuckets);
      if (b < start) continue;
      const list = buckets.get(b);
      if (list) list.push(e);
      else buckets.set(b, [e]);
    }
    const out: ConntrackEntry[] = [];
    for (const b of [...buckets.keys()].sort((x, y) => x - y)) {
      const list = buckets.get(b)!;
      if (out.length > 0 && out.length + list.length > max) return { rows: ConntrackRows.of(out, family), next: cursorOf(b) };
      out.push(...list);
    }
    return { rows: ConntrackRows.of(out, family), next: null };
  }

  deleteConntrack(keys: readonly Buffer[]): number {
    let n = 0;
    for (const k of keys) if (this.conntrack.delete(k.toString('hex'))) n++;
    this.record('deleteConntrack', String(n));
    return n;
  }

  serviceStats(serviceId: number): LbStats {
    return this.svcStats.get(serviceId) ?? zeroStats();
  }

  backendStats(backendId: number): LbStats {
    return this.beStats.get(backendId) ?? zeroStats();
  }

  allStats(kind: 'service' | 'backend'): StatsTable {
    return kind === 'service' ? StatsTable.of(this.maxIds.services, this.svcStats) : StatsTable.of(this.maxIds.backends, this.beStats);
  }

  resetStats(kind: 'service' | 'backend', ids: readonly number[]): void {
    const m = kind === 'service' ? this.svcStats : this.beStats;
    for (const id of ids) m.delete(id);
  }

  /** Global counters, for tests to set (absent: 0). */
  readonly global = new Map<GlobalCounter, bigint>();

  globalStats(): Record<GlobalCounter, bigint> {
    const out = {} as Record<GlobalCounter, bigint>;
    for (const n of GLOBAL_COUNTERS) out[n] = this.global.get(n) ?? 0n;
    return out;
  }

  /** The hairpin SNAT address (node_config). */
  /** Sizes mapOccupancy reports for the maps the fake does not size (defaults: the daemon's). */
  mapMaxEntries = { conntrack: 262_144, affinity: 65_536, sock_rnat: 16_384 };

  /** Each map as mapOccupancy finds it; kernel memory is made up: 64 bytes an entry. */
  async mapOccupancy(): Promise<MapOccupancy[]> {
    const slots = [...this.services.values()].reduce((a, s) => a + s.value.tableSize, 0);
    const rows: Array<[string, number, number, string?]> = [
      ['services', this.services.size, this.maxIds.services, 'frontends'],
      ['vips', this.vips.size, this.maxIds.services, 'frontends'],
      ['svc_frontends', this.services.size, this.maxIds.services, 'frontends'],
      ['backends', this.backends.size, this.maxIds.backends, 'backends'],
      ['reply_nat', this.replies.size, this.maxIds.backends, 'backends'],
      ['maglev_slots', slots, this.capacity, 'maglevSlots'],
      ['conntrack', this.conntrack.size, this.mapMaxEntries.conntrack, 'conntrack'],
      ['affinity', this.affinity.size, this.mapMaxEntries.affinity, 'affinity'],
      ['svc_stats', this.services.size, this.maxIds.services, 'frontends'],
      ['backend_stats', this.backends.size, this.maxIds.backends, 'backends'],
      ['global_stats', 1, 1],
      ['sock_rnat', 0, this.mapMaxEntries.sock_rnat, 'sockets'],
    ];
    return rows.map(([map, entries, maxEntries, capacity]) => ({ map, entries, maxEntries, bytes: maxEntries * 64, ...(capacity ? { capacity } : {}) }));
  }

  hairpin: string | null = null;

  /** The IPv6 hairpin SNAT address (node_config6). */
  hairpin6: string | null = null;

  hairpinAddress(family: IpFamily = 4): string | null {
    return family === 6 ? this.hairpin6 : this.hairpin;
  }

  setHairpinAddress(address: string | null, family: IpFamily = address === null ? 4 : addressFamily(address)): void {
    this.record('setHairpinAddress', address ?? '');
    if (family === 6) this.hairpin6 = address;
    else this.hairpin = address;
  }

  attach(target: AttachTarget): void {
    this.record('attach', `${target.netns ?? ''}/${target.ifname}`);
    this.attached.set(`${target.netns ?? ''}/${target.ifname}`, target);
  }

  detach(target: AttachTarget): void {
    this.record('detach', `${target.netns ?? ''}/${target.ifname}`);
    this.attached.delete(`${target.netns ?? ''}/${target.ifname}`);
  }

  close(): void {
    this.closed = true;
  }
}
