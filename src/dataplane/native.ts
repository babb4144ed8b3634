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
}

/** Options of Dataplane.load. */
export interface NativeLoadOptions {
  /** bpffs directory to pin maps in, or to reuse an earlier instance's pins from. */
  pinDir?: string;
  /** Redirect after a FIB lookup (default true) instead of handing packets to the stack. */
  fibRedirect?: boolean;
  /** How often conntrack/affinity timestamps are refreshed, in ns. */
  refreshNs?: number;
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
  attachXdp(ifindex: number, mode: 'native' | 'generic', netnsPath?: string): void;
  detachXdp(ifindex: number, mode: 'native' | 'generic', netnsPath?: string): void;
  attachTc(ifindex: number, direction: 'ingress' | 'egress', netnsPath?: string): void;
  detachTc(ifindex: number, direction: 'ingress' | 'egress', netnsPath?: string): void;
  destroyTcHook(ifindex: number, direction: 'ingress' | 'egress', netnsPath?: string): void;
  mapInfo(name: string): NativeMapInfo;
  mapLookup(name: string, key: Buffer): Buffer | null;
  mapUpdate(name: string, key: Buffer, value: Buffer, flags?: number): void;
  mapDelete(name: string, key: Buffer): boolean;
  mapDump(name: string): { keys: Buffer; values: Buffer; count: number };
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
  testRun(
    prog: 'xdp' | 'tc',
    data: Buffer,
    opts?: { repeat?: number; ingressIfindex?: number },
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
