/**
 * The benchmark's own BPF objects (bpf/out/bench/, built by `make -C bpf`),
 * loaded through the addon like sluice's, and the small encoders their maps
 * need.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { native, type AddonDataplane } from '../../src/dataplane/native.js';
import { packageRoot } from '../../src/package-root.js';

/** The path of a benchmark object. */
export function benchObject(name: string): string {
  const file = path.join(packageRoot(), 'bpf', 'out', 'bench', `${name}.bpf.o`);
  if (!existsSync(file)) throw new Error(`${file} is missing: run make -C bpf`);
  return file;
}

/** Load one benchmark object; its programs are named sluice_xdp and sluice_tc. */
export async function loadObject(name: string): Promise<AddonDataplane> {
  const dp = new (native().Dataplane)();
  try {
    await dp.load({ objectPath: benchObject(name) });
  } catch (err) {
    dp.close();
    throw err;
  }
  return dp;
}

/** A u32 map key or value, host order. */
export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

/** An IPv4 address as a number (host order). */
export const ipToU32 = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
