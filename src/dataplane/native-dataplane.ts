/**
 * The Dataplane over the real BPF maps, through the addon.
 */
import {
  FLOW_TIMEOUT_MAX_S,
  LAYOUTS,
  decodeAffinityValue,
  decodeBackendValue,
  decodeConntrackValue,
  decodeGlobalStats,
  decodeReplyKey,
  type EndpointKey,
  decodeReplyValue,
  encodeReplyKeyInto,
  encodeReplyValueInto,
  decodeLbStats,
  decodeNodeConfig,
  encodeNodeConfig,
  decodeServiceKey,
  decodeServiceValue,
  decodeVipKey,
  encodeAffinityKey,
  encodeBackendValue,
  encodeBackendValueInto,
  encodeServiceKeyInto,
  encodeServiceValueInto,
  encodeConntrackKey,
  encodeServiceKey,
  CONNTRACK_TABLES,
  addressFamily,
  conntrackTableOfKey,
  decodeNodeConfig6,
  encodeNodeConfig6,
  encodeU32,
  encodeVipKey,
  encodeVipValue,
  type AffinityValue,
  type BackendValue,
  type ConntrackKey,
  type ConntrackValue,
  type IpFamily,
  type GlobalCounter,
  type LbStats,
  type ServiceKey,
  type ServiceValue,
} from './codec.js';
import { SluiceError } from '../errors.js';
import { ConntrackRows } from './conntrack-rows.js';
import { StatsTable } from './stats-table.js';
import type { AttachMode, AttachTarget, ConntrackBatch, ConntrackCursor, Dataplane, FlowDecision, FlowPacket, MapOccupancy } from './dataplane.js';
import { decodeLookupResult, encodeLookupFrame } from './lookup-frame.js';
import { VIP_FILTER_WORDS, VipFilter } from './vip-filter.js';
import { native, type AddonDataplane, type NativeError, type NativeLoadOptions, type SocketHook } from './native.js';

/** Options of NativeDataplane.open. */
export interface NativeDataplaneOptions {
  /** bpffs directory for the maps; an existing one is adopted, not flushed. */
  pinDir?: string;
  /** Redirect after a FIB lookup (default) or always hand packets to the stack. */
  fibRedirect?: boolean;
  /** Restore replies of flows without an entry through reply_nat (default true; see bpf/include/config.h). */
  statelessReplies?: boolean;
  /**
   * The token bucket of answers to packets for services without a usable
   * backend (a RST, ICMP port unreachable), per CPU: tokens a second
   * (default 1,000; 0: the bucket never refills) and the most held (default
   * 100; 0: nothing is answered). See bpf/include/config.h.
   */
  rejectRate?: number;
  rejectBurst?: number;
  /** Idle timeouts of flows by state, in seconds (defaults in FLOW_TIMEOUT_DEFAULTS; see bpf/include/ct.h). */
  flowTimeouts?: Partial<FlowTimeouts>;
  /** New flows a CPU tracks in one second before the rest are balanced untracked (default 125,000; 0: no limit). */
  floodRate?: number;
  /**
   * Open another process's maps to read them (tests, benchmarks, cleanup):
   * the VIP filter is then left as its owner keeps it, never rebuilt from
   * a snapshot that the owner may change meanwhile, and the program arrays
   * (the IPv6 path the owner's programs tail-call) are this load's own,
   * never the pinned ones.
   */
  observer?: boolean;
  /** Map capacities; each must match an adopted pin's (libbpf refuses a pin of another size). */
  capacity?: Partial<DataplaneCapacity>;
}

/** Idle timeouts of a flow by its state, in seconds (bpf/include/config.h). */
export interface FlowTimeouts {
  /** TCP with only the client's SYN seen. */
  tcpSyn: number;
  /** TCP past its SYN. */
  tcpEstablished: number;
  /** TCP after a FIN or a RST. */
  tcpClosing: number;
  /** UDP. */
  udp: number;
}

/** The dataplane's own defaults (bpf/include/config.h explains them). */
export const FLOW_TIMEOUT_DEFAULTS: Readonly<FlowTimeouts> = { tcpSyn: 60, tcpEstablished: 21_600, tcpClosing: 10, udp: 60 };

/** New flows a CPU tracks in a second before the flood guard (bpf/include/config.h cfg_ct_flood_rate). */
export const FLOOD_RATE_DEFAULT = 125_000;

/** The .rodata name of each timeout. */
const FLOW_TIMEOUT_SETTING: Readonly<Record<keyof FlowTimeouts, string>> = {
  tcpSyn: 'ct_tcp_syn', tcpEstablished: 'ct_tcp_established', tcpClosing: 'ct_tcp_closing', udp: 'ct_udp',
};

/** How much the maps hold: what the daemon's capacity flags set (defaults and reasons: src/daemon/capacity.ts). */
export interface DataplaneCapacity {
  /** Conntrack entries, two per flow (preallocated). */
  conntrack: number;
  /** IPv6 conntrack entries, two per flow (preallocated). */
  conntrack6: number;
  /** ClientIP affinity entries (preallocated). */
  affinity: number;
  /** Frontends (VIP, port, protocol), i.e. service ids 1..frontends: services, vips, svc_frontends, svc_stats. */
  frontends: number;
  /** Backend entries, one per backend of each frontend: ids 1..backends: backends, backend_stats, reply_nat. */
  backends: number;
  /** Slots for all Maglev tables; even. */
  maglevSlots: number;
  /** Entries of sock_rnat: sockets of the node's processes sent to a backend in place of a VIP. */
  sockets: number;
}

/**
 * The maps each capacity sizes. Every other map has a fixed size of a few
 * entries (global_stats, node_config, lb_clock, reject_bucket: one;
 * xdp_ports: SLUICE_XDP_PORTS interfaces).
 */
export const CAPACITY_MAPS: Readonly<Record<keyof DataplaneCapacity, readonly string[]>> = {
  conntrack: ['conntrack'],
  conntrack6: ['conntrack6'],
  affinity: ['affinity'],
  frontends: ['services', 'vips', 'svc_frontends', 'svc_stats'],
  backends: ['backends', 'backend_stats', 'reply_nat'],
  maglevSlots: ['maglev_slots'],
  sockets: ['sock_rnat', 'sock_rnat6'],
};

/** The map sizes a capacity gives, by map name. */
export function mapSizes(c: Partial<DataplaneCapacity>): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const name of Object.keys(CAPACITY_MAPS) as Array<keyof DataplaneCapacity>) {
    const v = c[name];
    if (v === undefined) continue;
    for (const m of CAPACITY_MAPS[name]) sizes[m] = mapSizeOf(name, v);
  }
  return sizes;
}

/** max_entries of the maps of one capacity. */
function mapSizeOf(name: keyof DataplaneCapacity, v: number): number {
  switch (name) {
    // Id 0 means "none": id N needs N + 1 entries in the arrays it indexes.
    case 'frontends':
    case 'backends':
      return v + 1;
    // Two slots per element of the array (see bpf/include/maps.h).
    case 'maglevSlots':
      return Math.ceil(v / 2);
    default:
      return v;
  }
}

/** The capacity of a map of `name` with `maxEntries`, as the flag that sets it says it (inverse of mapSizes). */
export function capacityOfMap(name: string, maxEntries: number): [keyof DataplaneCapacity, number] | undefined {
  const cap = (Object.keys(CAPACITY_MAPS) as Array<keyof DataplaneCapacity>).find((c) => CAPACITY_MAPS[c].includes(name));
  if (cap === undefined) return undefined;
  switch (cap) {
    case 'frontends':
    case 'backends':
      return [cap, maxEntries - 1];
    case 'maglevSlots':
      return [cap, maxEntries * 2];
    default:
      return [cap, maxEntries];
  }
}

const ZERO_KEY = encodeU32(0);
const XDP_PASS = 2;

/** BPF_MAP_TYPE_HASH and _LRU_HASH: maps whose entries are counted, not known from their size. */
const HASH_TYPES = new Set([1, 9]);

/**
 * Entries a count of one hash map reads at most: a full conntrack table
 * of the default size is counted exactly (about 100 ms here, ~400 ns an
 * entry in the kernel's batch copy); a larger one is estimated from the
 * share of its buckets read, within about 0.5 % (the hash spreads keys
 * evenly), so that `sluice stats` stays about as quick for any size.
 */
const COUNT_BUDGET = 262_144;

/** The maps of the object, for mapUsage and mapOccupancy. */
const MAP_NAMES = ['services', 'vips', 'svc_frontends', 'backends', 'reply_nat', 'maglev_slots', 'conntrack', 'affinity', 'svc_stats', 'backend_stats', 'global_stats', 'lb_clock', 'node_config', 'sock_rnat', 'reject_bucket', 'xdp_ports', 'frag4', 'vip_filter', 'conntrack6', 'frag6', 'node_config6', 'sock_rnat6', 'lb6_scratch', 'xdp_lb6_prog', 'tc_lb6_prog'] as const;

/** The socket hooks the cgroup programs take (bpf/sock_lb.bpf.c). */
export const SOCKET_HOOKS: readonly SocketHook[] = ['connect4', 'sendmsg4', 'recvmsg4', 'getpeername4', 'connect6', 'sendmsg6', 'recvmsg6', 'getpeername6'];

/** Where the socket programs balance the node's own processes. */
export interface SocketTarget {
  /** A cgroup v2 directory: its processes (and its descendants') are balanced at connect()/sendmsg(). */
  cgroup: string;
  /** Only sockets of this network namespace (a path such as /var/run/netns/node); default the caller's. */
  netns?: string;
}

/** What one hook of an interface holds. */
export interface HookState {
  /** "XDP (native)", "tc ingress (handle 1, priority 1)". */
  hook: string;
  mode: AttachMode;
  /** Program id; 0 for none. */
  id: number;
  /** Whose program it is. */
  owner: 'none' | 'own' | 'sluice' | 'other';
}

/** What attaching to an interface does (NativeDataplane.planAttach). */
export interface AttachPlan {
  target: AttachTarget;
  ifindex: number;
  /** "eth0 (in /var/run/netns/lb)", for messages. */
  where: string;
  /** What the target's hook holds now. */
  current: HookState;
  /** With target.egress: what its tc egress hook holds now. */
  egress?: HookState;
  /** Other hooks whose program is detached first: this dataplane's (an earlier mode), or, with force, someone else's. */
  detach: HookState[];
}

function refused(where: string, h: HookState): SluiceError {
  return new SluiceError('FAILED_PRECONDITION', `${where}: ${h.hook} already runs ${describeProgram(h.id)}, which is not this dataplane's; pass --force to replace it`);
}

/** Is `name` (the kernel's copy, at most 15 characters) one of sluice's attached entry points? */
export function isSluiceProgramName(name: string): boolean {
  return name.startsWith('sluice_');
}

/** "program 'name' (id 42)", or "program 42" if it is gone. */
function describeProgram(id: number): string {
  try {
    const p = native().progInfo(id);
    const sluice = isSluiceProgramName(p.name) ? ' of another sluice dataplane (other pinned maps: is another daemon running with another --pin-dir?)' : '';
    return `program '${p.name}' (id ${id})${sluice}`;
  } catch {
    return `program ${id}`;
  }
}

/** Split a concatenation of fixed-size records. */
function* records(buf: Buffer, size: number, count: number): Generator<Buffer> {
  for (let i = 0; i < count; i++) yield buf.subarray(i * size, (i + 1) * size);
}

function netnsArgs(target: AttachTarget): [] | [string] {
  return target.netns === undefined ? [] : [target.netns];
}

/** The dataplane backed by the addon's BPF maps. */
export class NativeDataplane implements Dataplane {
  /** Maps that an earlier instance had pinned and this one adopted. */
  readonly reused: readonly string[];
  /** The raw addon object, for tests and the benchmark (test runs). */
  readonly raw: AddonDataplane;

  private readonly vipFilter = new VipFilter();

  private constructor(raw: AddonDataplane, reused: string[], observer: boolean) {
    this.raw = raw;
    this.reused = reused;
    if (!observer) this.rebuildVipFilter();
  }

  /** Load the BPF object (adopting pinned maps when pinDir holds them). */
  static async open(opts: NativeDataplaneOptions = {}): Promise<NativeDataplane> {
    const addon = native();
    const raw = new addon.Dataplane();
    const loadOpts: NativeLoadOptions = {};
    if (opts.pinDir !== undefined) loadOpts.pinDir = opts.pinDir;
    if (opts.observer === true) loadOpts.observer = true;
    if (opts.fibRedirect !== undefined) loadOpts.fibRedirect = opts.fibRedirect;
    if (opts.statelessReplies !== undefined) loadOpts.statelessReplies = opts.statelessReplies;
    if (opts.rejectRate !== undefined) loadOpts.rejectRate = opts.rejectRate;
    if (opts.rejectBurst !== undefined) loadOpts.rejectBurst = opts.rejectBurst;
    const settings: Record<string, number> = {};
    for (const [k, v] of Object.entries(opts.flowTimeouts ?? {})) {
      if (v === undefined) continue;
      const setting = FLOW_TIMEOUT_SETTING[k as keyof FlowTimeouts];
      // 0 would make an entry dead as written; past the bound, the
      // dataplane's wrap-safe comparisons would fail.
      if (setting === undefined || !Number.isInteger(v) || v < 1 || v > FLOW_TIMEOUT_MAX_S) {
        throw new SluiceError('INVALID_ARGUMENT', `must be whole seconds in 1..${FLOW_TIMEOUT_MAX_S}, got ${v}`, { field: `flowTimeouts.${k}` });
      }
      settings[setting] = v;
    }
    if (opts.floodRate !== undefined) settings['ct_flood_rate'] = opts.floodRate;
    if (Object.keys(settings).length) loadOpts.settings = settings;
    const sizes = mapSizes(opts.capacity ?? {});
    if (Object.keys(sizes).length) loadOpts.maxEntries = sizes;
    try {
      const { reused } = await raw.load(loadOpts);
      return new NativeDataplane(raw, reused, opts.observer === true);
    } catch (err) {
      raw.close();
      throw err;
    }
  }

  putService(key: ServiceKey, value: ServiceValue): void {
    this.putServices([{ key, value }]);
  }

  deleteService(key: ServiceKey): boolean {
    return this.raw.mapDelete('services', encodeServiceKey(key));
  }

  listServices(): Array<{ key: ServiceKey; value: ServiceValue }> {
    const { keys, values, count } = this.raw.mapDump('services');
    const ks = [...records(keys, LAYOUTS.svc_key.size, count)];
    const vs = [...records(values, LAYOUTS.svc_value.size, count)];
    return ks.map((k, i) => ({ key: decodeServiceKey(k), value: decodeServiceValue(vs[i]!) }));
  }

  putVips(entries: ReadonlyArray<{ address: string; services: number }>): void {
    if (entries.length === 0) return;
    // Each new VIP's filter bit first: the filter never says "no" of a VIP.
    // Counted in only once written: a failed write is tried again whole.
    const added: string[] = [];
    const words = new Set<number>();
    for (const e of entries) {
      const before = this.vipFilter.has(e.address);
      const w = this.vipFilter.add(e.address);
      if (!before) added.push(e.address);
      if (w !== undefined) words.add(w);
    }
    try {
      this.writeFilterWords(words);
    } catch (err) {
      for (const a of added) this.vipFilter.remove(a);
      throw err;
    }
    this.raw.mapUpdateBatch(
      'vips',
      Buffer.concat(entries.map((e) => encodeVipKey(e.address))),
      Buffer.concat(entries.map((e) => encodeVipValue(e.services))),
    );
  }

  deleteVip(address: string): boolean {
    const gone = this.raw.mapDelete('vips', encodeVipKey(address));
    const w = this.vipFilter.remove(address);
    if (w !== undefined) this.writeFilterWords([w]);
    return gone;
  }

  /** Write these words of the VIP filter (bpf/include/maps.h vip_filter). */
  private writeFilterWords(words: Iterable<number>): void {
    const ws = [...words];
    if (ws.length === 0) return;
    const values = Buffer.alloc(ws.length * 8);
    ws.forEach((w, i) => values.writeBigUInt64LE(this.vipFilter.words[w]!, i * 8));
    this.raw.mapUpdateBatch('vip_filter', Buffer.concat(ws.map((w) => encodeU32(w))), values);
  }

  /** The filter from the VIPs the maps hold, every word written: whatever an earlier run (or none) left in it. */
  private rebuildVipFilter(): void {
    for (const a of this.listVips()) this.vipFilter.add(a);
    this.writeFilterWords(Array.from({ length: VIP_FILTER_WORDS }, (_, i) => i));
  }

  listVips(): string[] {
    const { keys, count } = this.raw.mapDump('vips');
    return [...records(keys, LAYOUTS.vip_key.size, count)].map(decodeVipKey);
  }

  putBackend(id: number, value: BackendValue): void {
    this.raw.mapUpdate('backends', encodeU32(id), encodeBackendValue(value));
  }

  putBackends(entries: ReadonlyArray<readonly [number, BackendValue]>): void {
    if (entries.length === 0) return;
    const size = LAYOUTS.backend_value.size;
    const keys = Buffer.alloc(entries.length * 4);
    const values = Buffer.alloc(entries.length * size);
    entries.forEach(([id, v], i) => {
      keys.writeUInt32LE(id, i * 4);
      encodeBackendValueInto(values, i * size, v);
    });
    this.raw.mapUpdateBatch('backends', keys, values);
  }

  putServices(entries: ReadonlyArray<{ key: ServiceKey; value: ServiceValue }>): void {
    if (entries.length === 0) return;
    const ks = LAYOUTS.svc_key.size;
    const vs = LAYOUTS.svc_value.size;
    const keys = Buffer.alloc(entries.length * ks);
    const values = Buffer.alloc(entries.length * vs);
    const ids = Buffer.alloc(entries.length * 4);
    entries.forEach((e, i) => {
      encodeServiceKeyInto(keys, i * ks, e.key);
      encodeServiceValueInto(values, i * vs, e.value);
      ids.writeUInt32LE(e.value.id, i * 4);
    });
    // The frontend of each id first: reply_nat reaches it only through a
    // backend of that id, which the service entry makes live.
    this.raw.mapUpdateBatch('svc_frontends', ids, keys);
    this.raw.mapUpdateBatch('services', keys, values);
  }

  deleteBackend(id: number): boolean {
    // An array slot cannot be removed: a deleted backend is all zeros.
    const key = encodeU32(id);
    const cur = this.raw.mapLookup('backends', key);
    if (!cur || cur[LAYOUTS.backend_value.offsets.family] === 0) return false;
    this.raw.mapUpdate('backends', key, Buffer.alloc(LAYOUTS.backend_value.size));
    return true;
  }

  listBackends(): Map<number, BackendValue> {
    const { keys, values, count } = this.raw.mapDump('backends');
    const size = LAYOUTS.backend_value.size;
    const family = LAYOUTS.backend_value.offsets.family;
    const out = new Map<number, BackendValue>();
    for (let i = 0; i < count; i++) {
      if (values[i * size + family] === 0) continue; // a free slot
      out.set(keys.readUInt32LE(i * 4), decodeBackendValue(values.subarray(i * size, (i + 1) * size)));
    }
    return out;
  }

  putReplies(entries: ReadonlyArray<readonly [EndpointKey, number]>): void {
    if (entries.length === 0) return;
    const ks = LAYOUTS.rnat_key.size;
    const vs = LAYOUTS.rnat_value.size;
    const keys = Buffer.alloc(entries.length * ks);
    const values = Buffer.alloc(entries.length * vs);
    entries.forEach(([endpoint, backendId], i) => {
      encodeReplyKeyInto(keys, i * ks, endpoint);
      encodeReplyValueInto(values, i * vs, backendId);
    });
    this.raw.mapUpdateBatch('reply_nat', keys, values);
  }

  deleteReply(endpoint: EndpointKey): boolean {
    return this.raw.mapDelete('reply_nat', encodeReplyKeyInto(Buffer.alloc(LAYOUTS.rnat_key.size), 0, endpoint));
  }

  listReplies(): Map<EndpointKey, number> {
    const { keys, values, count } = this.raw.mapDump('reply_nat');
    const ks = LAYOUTS.rnat_key.size;
    const vs = LAYOUTS.rnat_value.size;
    const out = new Map<EndpointKey, number>();
    for (let i = 0; i < count; i++) {
      const key = decodeReplyKey(keys.subarray(i * ks, (i + 1) * ks));
      if (key !== -1) out.set(key, decodeReplyValue(values.subarray(i * vs, (i + 1) * vs)));
    }
    return out;
  }

  idCapacity(): { services: number; backends: number } {
    // Every array an id indexes must hold it: the smallest one bounds the ids.
    const room = (maps: readonly string[]): number => Math.min(...maps.map((m) => this.raw.mapInfo(m).maxEntries)) - 1;
    return { services: room(['svc_stats', 'svc_frontends']), backends: room(['backends', 'backend_stats']) };
  }

  /** Entries and kernel memory of each map (fdinfo's memlock), for the start-up log. */
  mapUsage(): Array<{ map: string; entries: number; bytes: number }> {
    return MAP_NAMES.map((map) => {
      const info = this.raw.mapInfo(map);
      return { map, entries: info.maxEntries, bytes: info.memlock };
    });
  }

  async mapOccupancy(): Promise<MapOccupancy[]> {
    const infos = MAP_NAMES.map((map) => ({ map, info: this.raw.mapInfo(map) }));
    const hashes = infos.filter((m) => HASH_TYPES.has(m.info.type)).map((m) => m.map);
    const counted = await this.raw.mapCount(hashes, { budget: COUNT_BUDGET });
    const counts = new Map(hashes.map((m, i) => [m, counted[i]!]));
    // Arrays hold every entry: what is in use is the ids (and slots) the
    // services and backends maps name.
    const services = this.listServices();
    const backends = this.listBackends().size;
    const slots = services.reduce((a, s) => a + s.value.tableSize, 0);
    // The VIP filter's words with a bit set: how much of it says "maybe".
    const filterWords = this.vipFilter.words.reduce((n, w) => n + (w === 0n ? 0 : 1), 0);
    const inUse: Record<string, number> = { svc_frontends: services.length, svc_stats: services.length, backends, backend_stats: backends, maglev_slots: slots, vip_filter: filterWords };
    return infos.map(({ map, info }) => {
      const cap = capacityOfMap(map, info.maxEntries);
      const isSlots = map === 'maglev_slots';
      const c = counts.get(map);
      return {
        map,
        entries: c?.count ?? inUse[map] ?? info.maxEntries,
        ...(c?.estimated ? { estimated: true } : {}),
        maxEntries: isSlots ? info.maxEntries * (info.valueSize / 4) : info.maxEntries,
        bytes: info.memlock,
        ...(cap ? { capacity: cap[0] } : {}),
      };
    });
  }

  tableCapacity(): number {
    const m = this.raw.mapInfo('maglev_slots');
    return m.maxEntries * (m.valueSize / 4);
  }

  writeTables(tables: ReadonlyArray<{ base: number; table: Uint32Array }>): void {
    if (tables.length === 0) return;
    this.raw.arrayWriteRegions('maglev_slots', Uint32Array.from(tables, (t) => t.base), tables.map((t) => t.table));
  }

  readTable(base: number, size: number): Uint32Array {
    return this.raw.arrayRead('maglev_slots', base, size);
  }

  getMaglevTable(serviceId: number): Uint32Array | null {
    const svc = this.listServices().find((s) => s.value.id === serviceId);
    if (!svc || svc.value.tableSize === 0) return null;
    return this.readTable(svc.value.tableBase, svc.value.tableSize);
  }

  getConntrack(key: ConntrackKey): ConntrackValue | null {
    const k = encodeConntrackKey(key);
    const v = this.raw.mapLookup(conntrackTableOfKey(k).map, k);
    return v ? decodeConntrackValue(v) : null;
  }

  lookupConntrack(key: Buffer): Buffer | null {
    return this.raw.mapLookup(conntrackTableOfKey(key).map, key);
  }

  getAffinity(client: string, serviceId: number): AffinityValue | null {
    const v = this.raw.mapLookup('affinity', encodeAffinityKey(client, serviceId));
    return v ? decodeAffinityValue(v) : null;
  }

  readConntrack(cursor: ConntrackCursor | null, max: number, family: IpFamily = 4): ConntrackBatch {
    const map = CONNTRACK_TABLES[family].map;
    // The kernel reads a hash map in whole buckets and refuses (ENOSPC) a
    // first bucket larger than max: ask for one more entry until it fits,
    // so that it comes alone. Buckets hold a few entries (the table has
    // about one bucket per entry).
    for (let want = max; ; want++) {
      try {
        const r = this.raw.mapLookupBatch(map, cursor, want);
        return { rows: new ConntrackRows(r.keys, r.values, r.count, family), next: r.next };
      } catch (err) {
        if ((err as NativeError).code !== 'ENOSPC') throw err;
      }
    }
  }

  lookupFlow(packet: FlowPacket): FlowDecision {
    const r = this.raw.testRun('lookup', encodeLookupFrame(packet));
    // XDP_ABORTED only for a frame without room for the answer, which encodeLookupFrame never builds.
    if (r.retval !== XDP_PASS) throw new SluiceError('INTERNAL', `sluice_lookup returned ${r.retval}, not XDP_PASS`);
    return decodeLookupResult(r.data);
  }

  deleteConntrack(keys: readonly Buffer[]): number {
    if (keys.length === 0) return 0;
    const byMap = new Map<string, Buffer[]>();
    for (const k of keys) {
      const map = conntrackTableOfKey(k).map;
      const list = byMap.get(map);
      if (list) list.push(k);
      else byMap.set(map, [k]);
    }
    let n = 0;
    for (const [map, list] of byMap) n += this.raw.mapDeleteBatch(map, Buffer.concat(list));
    return n;
  }

  serviceStats(serviceId: number): LbStats {
    return decodeLbStats(this.raw.perCpuSum('svc_stats', encodeU32(serviceId)) ?? Buffer.alloc(32));
  }

  backendStats(backendId: number): LbStats {
    return decodeLbStats(this.raw.perCpuSum('backend_stats', encodeU32(backendId)) ?? Buffer.alloc(32));
  }

  allStats(kind: 'service' | 'backend'): StatsTable {
    return new StatsTable(this.raw.perCpuSumAll(kind === 'service' ? 'svc_stats' : 'backend_stats'));
  }

  resetStats(kind: 'service' | 'backend', ids: readonly number[]): void {
    if (ids.length === 0) return;
    const keys = Buffer.alloc(ids.length * 4);
    ids.forEach((id, i) => keys.writeUInt32LE(id, i * 4));
    // Per-CPU values: one 8-byte-aligned slot per possible CPU, all zero.
    const perValue = native().constants()['numCpus']! * Math.ceil(LAYOUTS.lb_stats.size / 8) * 8;
    this.raw.mapUpdateBatch(kind === 'service' ? 'svc_stats' : 'backend_stats', keys, Buffer.alloc(ids.length * perValue));
  }

  globalStats(): Record<GlobalCounter, bigint> {
    return decodeGlobalStats(this.raw.perCpuSum('global_stats', ZERO_KEY) ?? Buffer.alloc(LAYOUTS.global_stats.size));
  }

  hairpinAddress(family: IpFamily = 4): string | null {
    if (family === 6) return decodeNodeConfig6(this.raw.mapLookup('node_config6', ZERO_KEY) ?? Buffer.alloc(LAYOUTS.node_config6.size));
    return this.nodeConfig().hairpinAddress;
  }

  setHairpinAddress(address: string | null, family: IpFamily = address === null ? 4 : addressFamily(address)): void {
    if (address !== null && addressFamily(address) !== family) throw new SluiceError('INVALID_ARGUMENT', `hairpin address ${address} is not an IPv${family} address`);
    if (family === 6) this.raw.mapUpdate('node_config6', ZERO_KEY, encodeNodeConfig6(address));
    else this.raw.mapUpdate('node_config', ZERO_KEY, encodeNodeConfig({ ...this.nodeConfig(), hairpinAddress: address }));
  }

  private nodeConfig(): ReturnType<typeof decodeNodeConfig> {
    return decodeNodeConfig(this.raw.mapLookup('node_config', ZERO_KEY) ?? Buffer.alloc(LAYOUTS.node_config.size));
  }

  /**
   * Balance the sockets of the target's processes in the target's
   * namespace at connect()/sendmsg() (bpf/sock_lb.bpf.c): the namespace's
   * cookie goes to node_config, then each hook of the cgroup gets this
   * dataplane's program, in place of an earlier one of its own (an earlier
   * daemon over the same pins), alongside anyone else's (multi-attach).
   */
  attachSockets(target: SocketTarget): void {
    const addon = native();
    const cookie = addon.netnsCookie(...(target.netns === undefined ? [] : [target.netns]));
    this.raw.mapUpdate('node_config', ZERO_KEY, encodeNodeConfig({ ...this.nodeConfig(), sockNetnsCookie: cookie }));
    const mine = this.raw.programs();
    for (const hook of SOCKET_HOOKS) {
      const ids = addon.cgroupQuery(target.cgroup, hook);
      const own = mine[hook]?.id;
      if (own !== undefined && ids.includes(own)) continue;
      const earlier = ids.find((id) => this.ownerOf(id) === 'own');
      this.raw.attachCgroup(target.cgroup, hook, earlier === undefined ? {} : { replaceProgId: earlier });
    }
  }

  /** Whether every socket hook of the cgroup runs this dataplane's program. */
  socketsAttached(target: SocketTarget): boolean {
    const mine = this.raw.programs();
    return SOCKET_HOOKS.every((hook) => native().cgroupQuery(target.cgroup, hook).includes(mine[hook]?.id ?? -1));
  }

  /** Take the socket programs off the cgroup (those attached) and stop translating. */
  detachSockets(target: SocketTarget): void {
    const mine = this.raw.programs();
    for (const hook of SOCKET_HOOKS) {
      if (native().cgroupQuery(target.cgroup, hook).includes(mine[hook]?.id ?? -1)) this.raw.detachCgroup(target.cgroup, hook);
    }
    this.raw.mapUpdate('node_config', ZERO_KEY, encodeNodeConfig({ ...this.nodeConfig(), sockNetnsCookie: 0n }));
  }

  /**
   * Look at what the interface's hooks hold and say what attaching would
   * do, or refuse. A program that shares no map with this dataplane belongs
   * to someone else: in the target's hook (or, for XDP, in the other XDP
   * mode, which the kernel will not run alongside), or any hook if it is
   * another sluice's, it is refused without `force`. Nothing is changed.
   */
  planAttach(target: AttachTarget, opts: { force?: boolean } = {}): AttachPlan {
    const addon = native();
    const ns = netnsArgs(target);
    const ifindex = addon.ifIndex(target.ifname, ...ns);
    const where = `${target.ifname}${target.netns ? ` (in ${target.netns})` : ''}`;
    if (target.egress && target.mode !== 'tc') {
      throw new SluiceError('INVALID_ARGUMENT', `${where}: egress is a tc hook; --mode ${target.mode} has none`);
    }
    const xdp = addon.xdpQuery(ifindex, ...ns);
    const tc = addon.tcQuery(ifindex, 'ingress', ...ns);
    if (xdp.hwProgId !== 0 && target.mode !== 'tc') {
      throw new SluiceError('FAILED_PRECONDITION', `${where}: an offloaded XDP program (id ${xdp.hwProgId}) is attached; detach it first (ip link set dev ${target.ifname} xdpoffload off)`);
    }
    const hooks: HookState[] = [
      { hook: 'XDP (native)', mode: 'xdp', id: xdp.drvProgId },
      { hook: 'XDP (generic)', mode: 'xdp-generic', id: xdp.skbProgId },
      { hook: 'tc ingress (handle 1, priority 1)', mode: 'tc', id: tc },
      ...(target.egress ? [{ hook: 'tc egress (handle 1, priority 1)', mode: 'tc', id: addon.tcQuery(ifindex, 'egress', ...ns) }] : []),
    ].map((h) => ({ ...h, owner: h.id === 0 ? 'none' : this.ownerOf(h.id) }) as HookState);
    const detach: HookState[] = [];
    for (const h of hooks) {
      if (h.mode === target.mode || h.owner === 'none') continue;
      if (h.owner === 'own') {
        detach.push(h);
        continue;
      }
      // The kernel runs one XDP mode at a time; another sluice anywhere would rewrite the same packets.
      if (!(target.mode !== 'tc' && h.mode !== 'tc') && h.owner !== 'sluice') continue;
      if (!opts.force) throw refused(where, h);
      detach.push(h);
    }
    const [mine, egress] = hooks.filter((h) => h.mode === target.mode) as [HookState, HookState | undefined];
    for (const h of [mine, egress]) {
      if ((h?.owner === 'sluice' || h?.owner === 'other') && !opts.force) throw refused(where, h);
    }
    return { target, ifindex, where, current: mine, detach, ...(egress ? { egress } : {}) };
  }

  /**
   * Attach (see planAttach for what is refused); this dataplane's program
   * in another hook (an earlier --mode) is detached, so that one interface
   * never runs it twice. The attach names the program it expects to
   * replace, so the kernel refuses it if the hook changed since it was
   * looked at. Returns the plan it followed.
   */
  attach(target: AttachTarget, opts: { force?: boolean } = {}): AttachPlan {
    const plan = this.planAttach(target, opts);
    const ns = netnsArgs(target);
    for (const h of plan.detach) {
      if (h.mode === 'tc') this.raw.detachTc(plan.ifindex, 'ingress', ...ns);
      else this.raw.detachXdp(plan.ifindex, h.mode === 'xdp' ? 'native' : 'generic', ...ns);
    }
    const current = plan.current.id;
    if (target.mode === 'tc') {
      this.raw.attachTc(plan.ifindex, 'ingress', ns[0], { replace: current !== 0 });
      if (plan.egress) this.raw.attachTc(plan.ifindex, 'egress', ns[0], { replace: plan.egress.id !== 0 });
    } else {
      try {
        this.raw.attachXdp(plan.ifindex, target.mode === 'xdp' ? 'native' : 'generic', ns[0], { expectedProgId: current });
        // A redirect may go out of it (bpf/include/maps.h, xdp_ports).
        this.raw.mapUpdate('xdp_ports', encodeU32(plan.ifindex), encodeU32(1));
      } catch (err) {
        if ((err as { code?: string }).code === 'EOPNOTSUPP' && target.mode === 'xdp') {
          throw new SluiceError('FAILED_PRECONDITION', `${plan.where}: its driver has no native XDP; use --mode xdp-generic or --mode tc`, { cause: err });
        }
        throw err;
      }
    }
    return plan;
  }

  isAttached(target: AttachTarget): boolean {
    const addon = native();
    const ns = netnsArgs(target);
    const ifindex = addon.ifIndex(target.ifname, ...ns);
    const mine = this.raw.programs();
    if (target.mode === 'tc') {
      return addon.tcQuery(ifindex, 'ingress', ...ns) === mine.tc.id &&
        (!target.egress || addon.tcQuery(ifindex, 'egress', ...ns) === mine.tc.id);
    }
    const q = addon.xdpQuery(ifindex, ...ns);
    return (target.mode === 'xdp' ? q.drvProgId : q.skbProgId) === mine.xdp.id;
  }

  detach(target: AttachTarget): void {
    const ifindex = native().ifIndex(target.ifname, ...netnsArgs(target));
    if (target.mode === 'tc') {
      this.raw.detachTc(ifindex, 'ingress', ...netnsArgs(target));
      if (target.egress) this.raw.detachTc(ifindex, 'egress', ...netnsArgs(target));
    } else {
      this.raw.detachXdp(ifindex, target.mode === 'xdp' ? 'native' : 'generic', ...netnsArgs(target));
      this.raw.mapDelete('xdp_ports', encodeU32(ifindex));
    }
  }

  /**
   * Let native XDP redirect out of this interface though this dataplane's
   * program is not attached to it: one known to take XDP frames (a NIC
   * whose driver has ndo_xdp_xmit, a veth whose peer runs an XDP program).
   */
  allowXdpRedirect(ifindex: number): void {
    this.raw.mapUpdate('xdp_ports', encodeU32(ifindex), encodeU32(1));
  }

  /**
   * Keep in xdp_ports only these interfaces (the XDP targets attached
   * now): an entry left by an earlier run may name an interface that is
   * gone, whose ifindex a new one (a bridge) may get.
   */
  keepXdpPorts(ifindexes: readonly number[]): void {
    const keep = new Set(ifindexes);
    const { keys, count } = this.raw.mapDump('xdp_ports');
    for (let i = 0; i < count; i++) {
      const ifindex = keys.readUInt32LE(i * 4);
      if (!keep.has(ifindex)) this.raw.mapDelete('xdp_ports', encodeU32(ifindex));
    }
  }

  /**
   * Map ids of another dataplane whose programs count as this one's: the
   * maps a `--reset-dataplane` replaced, whose programs this daemon takes
   * over.
   */
  readonly formerMapIds = new Set<number>();

  /** Whose program `id` is: this dataplane's (it uses its maps, or maps it took over), another sluice's, or another tool's. */
  private ownerOf(id: number): 'own' | 'sluice' | 'other' {
    const mine = this.raw.programs();
    if (Object.values(mine).some((p) => p?.id === id)) return 'own';
    let info;
    try {
      info = native().progInfo(id);
    } catch {
      return 'other';
    }
    // Every program of the object uses services (the socket programs no conntrack).
    const maps = new Set([this.raw.mapInfo('conntrack').id, this.raw.mapInfo('services').id, ...this.formerMapIds]);
    if (info.mapIds.some((m) => maps.has(m))) return 'own';
    return isSluiceProgramName(info.name) ? 'sluice' : 'other';
  }

  /** Remove this instance's pins (the maps die with the last reference). */
  unpin(): void {
    this.raw.unpin();
  }

  close(): void {
    this.raw.close();
  }
}

