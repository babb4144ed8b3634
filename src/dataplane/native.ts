/**
 * The one module that loads the native addon (build/Release/sluice_native.node)
 * and declares its interface by hand. Everything else goes through the typed
 * layers in this folder.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { packageRoot } from '../package-root.js';

/** Size and field offsets of one C struct, as the addon's compiler saw it. */
export interface NativeLayout {
  size: number;
  offsets: Record<string, number>;
}

/** Description of one BPF map. */
export interface NativeMapInfo {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  perCpu: boolean;
  id: number;
  /** Bytes the kernel accounts to the map now (fdinfo's memlock); 0 if the kernel does not say. */
  memlock: number;
}

/** What bpf_xdp_query reports for an interface: program ids per mode, 0 where none. */
export interface NativeXdpQuery {
  /** XDP_ATTACHED_*: 0 none, 1 driver (native), 2 generic (skb), 3 offloaded, 4 several modes. */
  attachMode: number;
  /** The one attached program when attachMode is 1-3, else 0. */
  progId: number;
  drvProgId: number;
  skbProgId: number;
  hwProgId: number;
}

/** A loaded BPF program, whoever loaded it. */
export interface NativeProgInfo {
  id: number;
  /** The kernel's copy of the name: at most 15 characters. */
  name: string;
  /** BPF_PROG_TYPE_* (6 XDP, 3 SCHED_CLS). */
  type: number;
  /** 16 hex digits: the hash of the program's instructions. */
  tag: string;
  /** Ids of the maps the program uses. */
  mapIds: number[];
}

/** One attachment recorded by Dataplane: mode for XDP, direction for tc. */
export interface NativeAttachment {
  hook: 'xdp' | 'tc';
  ifindex: number;
  mode?: 'native' | 'generic';
  direction?: 'ingress' | 'egress';
  netnsPath?: string;
}

/** Id and kernel name of one of a dataplane's loaded programs. */
export interface NativeProgram {
  id: number;
  name: string;
}

/** A socket hook of a cgroup that the socket programs take (bpf/sock_lb.bpf.c). */
export type SocketHook = 'connect4' | 'sendmsg4' | 'recvmsg4' | 'getpeername4' | 'connect6' | 'sendmsg6' | 'recvmsg6' | 'getpeername6';

/** Options of Dataplane.load. */
export interface NativeLoadOptions {
  /** bpffs directory to pin maps in, or to reuse an earlier instance's pins from. */
  pinDir?: string;
  /** Another process's maps, opened to read them: the program arrays are then this load's own, not the pinned ones. */
  observer?: boolean;
  /** Redirect after a FIB lookup (default true) instead of handing packets to the stack. */
  fibRedirect?: boolean;
  /** Restore replies of flows without an entry through reply_nat (default true). */
  statelessReplies?: boolean;
  /** Other settings of bpf/include/config.h, all __u32, by name without `cfg_` (e.g. { ct_udp: 60 }). */
  settings?: Record<string, number>;
  /** Answers (RST, ICMP) to packets for services without a usable backend, per second per CPU (default 1,000). */
  rejectRate?: number;
  /** The most answers a CPU sends at once, its bucket full (default 100; 0: none). */
  rejectBurst?: number;
  /** Capacities set before load, by map name (e.g. { conntrack: 65536 }). */
  maxEntries?: Record<string, number>;
  /** Load this object file instead of the embedded one (tests of error paths). */
  objectPath?: string;
}

/** Result of a BPF_PROG_TEST_RUN. */
export interface NativeTestRun {
  retval: number;
  data: Buffer;
  durationNs: number;
}

/** The addon's Dataplane object: owns the BPF object, its maps and attachments. */
export interface AddonDataplane {
  load(opts: NativeLoadOptions): Promise<{ reused: string[] }>;
  /**
   * Attach the XDP program. expectedProgId makes it conditional, checked by
   * the kernel as it attaches: 0 attaches only if no program is attached in
   * that mode (else EBUSY); an id replaces only that program (else EEXIST;
   * ENOENT if no program has that id). Without it, whatever is there is replaced.
   */
  attachXdp(
    ifindex: number,
    mode: 'native' | 'generic',
    netnsPath?: string,
    opts?: { expectedProgId?: number },
  ): void;
  detachXdp(ifindex: number, mode: 'native' | 'generic', netnsPath?: string): void;
  /**
   * Attach the tc program at handle 1, priority 1 (creating the clsact qdisc
   * if needed). replace: false refuses (EEXIST) if a filter is already there;
   * the default, true, replaces it.
   */
  attachTc(
    ifindex: number,
    direction: 'ingress' | 'egress',
    netnsPath?: string,
    opts?: { replace?: boolean },
  ): void;
  detachTc(ifindex: number, direction: 'ingress' | 'egress', netnsPath?: string): void;
  destroyTcHook(ifindex: number, direction: 'ingress' | 'egress', netnsPath?: string): void;
  /**
   * Attach the socket program of `hook` to a cgroup v2 directory, next to
   * the programs already there (BPF_F_ALLOW_MULTI); with replaceProgId, in
   * place of that program (ENOENT if it is no longer there). It stays after
   * close(), until detached or the cgroup is removed.
   */
  attachCgroup(cgroupPath: string, hook: SocketHook, opts?: { replaceProgId?: number }): void;
  /** Detach this object's program of `hook` from the cgroup (ENOENT if it is not there). */
  detachCgroup(cgroupPath: string, hook: SocketHook): void;
  /** What this object has attached and not detached, as recorded by the addon. */
  attachments(): NativeAttachment[];
  /** Ids and names of this object's programs, to recognise them on an interface or a cgroup (the socket programs if the object has them). */
  programs(): { xdp: NativeProgram; tc: NativeProgram } & Partial<Record<SocketHook, NativeProgram>>;
  mapInfo(name: string): NativeMapInfo;
  mapLookup(name: string, key: Buffer): Buffer | null;
  mapUpdate(name: string, key: Buffer, value: Buffer, flags?: number): void;
  mapDelete(name: string, key: Buffer): boolean;
  mapDump(name: string): { keys: Buffer; values: Buffer; count: number };
  /**
   * One step of a walk through a map (BPF_MAP_LOOKUP_BATCH): up to `max`
   * entries from `cursor` on (null: the start) and the cursor of the rest
   * (null once the walk has read the last entry). The cursor is the
   * kernel's, opaque: 4 bytes (a bucket index) for a hash map, a key for
   * the others. A hash map is read in whole buckets, so fewer than `max`
   * may come; if the first bucket alone holds more than `max`, it throws
   * code 'ENOSPC' and reads nothing. `max` is at least 1; one above the
   * map's size reads as much as the map holds. Not for maps of maps.
   */
  mapLookupBatch(name: string, cursor: Buffer | null, max: number): { keys: Buffer; values: Buffer; count: number; next: Buffer | null };
  /**
   * Entries in each of these hash maps now, counted off the JS thread by a
   * batch walk that keeps nothing (the kernel keeps no count user space
   * can read); EINVAL for a map that is not a hash. With a budget, a walk
   * stops after that many entries and estimates the rest from the share of
   * the hash buckets it read (estimated: true).
   */
  mapCount(names: readonly string[], opts?: { budget?: number }): Promise<Array<{ count: number; estimated: boolean }>>;
  mapUpdateBatch(name: string, keys: Buffer, values: Buffer): number;
  mapDeleteBatch(name: string, keys: Buffer): number;
  mapClear(name: string): number;
  perCpuSum(name: string, key: Buffer): Buffer | null;
  perCpuSumAll(name: string): Buffer;
  /**
   * Write regions of an mmapable array of __u32 slots: tables[i] to the
   * slots from starts[i] on. Close regions share one mapping; every region
   * is checked before anything is written.
   */
  arrayWriteRegions(name: string, starts: Uint32Array, tables: readonly Uint32Array[]): void;
  /** Read slots [start, start + count) of an mmapable array of __u32 slots. */
  arrayRead(name: string, start: number, count: number): Uint32Array;
  /**
   * One BPF_PROG_TEST_RUN of a program: the XDP or tc entry point, or
   * sluice_lookup ('lookup', never attached: the dataplane's decision
   * without its effects; ENOENT if the object has none).
   */
  testRun(
    prog: 'xdp' | 'tc' | 'lookup',
    data: Buffer,
    opts?: { repeat?: number; ingressIfindex?: number; netnsPath?: string },
  ): NativeTestRun;
  testRunLive(
    data: Buffer,
    opts: { repeat: number; batchSize?: number; ingressIfindex: number; netnsPath?: string },
  ): Promise<{ wallNs: number }>;
  readonly pinDir: string | null;
  unpin(): void;
  close(): void;
}

/** The addon module. */
export interface NativeAddon {
  Dataplane: new () => AddonDataplane;
  layouts(): Record<string, NativeLayout>;
  constants(): Record<string, number>;
  libbpfVersion(): string;
  ifIndex(name: string, netnsPath?: string): number;
  /**
   * flock(2) on a file descriptor from fs.openSync (a directory works too):
   * 'exclusive' never waits and throws code 'EAGAIN' (errno 11, which is
   * also EWOULDBLOCK) while another open file holds the lock; 'unlock'
   * releases it. The lock goes with the last descriptor of that open file,
   * so also when the process dies.
   */
  flock(fd: number, op: 'exclusive' | 'unlock'): void;
  /** mallopt(3): glibc's M_ARENA_MAX, M_TRIM_THRESHOLD or M_MMAP_THRESHOLD (daemon/memory.ts). */
  mallopt(param: 'ARENA_MAX' | 'TRIM_THRESHOLD' | 'MMAP_THRESHOLD', value: number): void;
  /** The XDP programs attached to an interface; ENODEV if there is no such ifindex. */
  xdpQuery(ifindex: number, netnsPath?: string): NativeXdpQuery;
  /**
   * Id of the program in the tc filter at handle 1, priority 1 (where
   * attachTc puts sluice's), whoever attached it; 0 if there is none or no
   * clsact qdisc.
   */
  tcQuery(ifindex: number, direction: 'ingress' | 'egress', netnsPath?: string): number;
  /** Ids of the programs attached to the cgroup itself (not inherited) for a socket hook. */
  cgroupQuery(cgroupPath: string, hook: SocketHook): number[];
  /** Detach the program with this id from the cgroup's hook, whoever attached it. */
  detachCgroupProgram(cgroupPath: string, hook: SocketHook, progId: number): void;
  /** The cookie (SO_NETNS_COOKIE) of a network namespace: the caller's, or the one at netnsPath. */
  netnsCookie(netnsPath?: string): bigint;
  /** A loaded program by id; ENOENT if there is none. */
  progInfo(id: number): NativeProgInfo;
  /** The map pinned at path; ENOENT if nothing is pinned there, EINVAL if the pin is not a map. */
  pinnedMapInfo(path: string): NativeMapInfo;
}

/** An error raised by the addon: errno, the libbpf call, and for loads the verifier log. */
export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
  verifierLog?: string;
}

let cached: NativeAddon | undefined;

/** Load (once) and return the addon. */
export function native(): NativeAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  cached = require(path.join(packageRoot(), 'build', 'Release', 'sluice_native.node')) as NativeAddon;
  return cached;
}
