/**
 * A cgroup v2 of its own for the node's processes of a test or demo, so
 * that sluice's socket programs (attached to a cgroup: every process in it,
 * whatever its namespace) reach only them, never the machine's other
 * processes, as they would from the root cgroup.
 */
import { existsSync } from 'node:fs';
import { cgroup2Root as cgroup2RootOrNone } from '../daemon/cgroup-root.js';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host). */
export function cgroup2Root(): string {
  const root = cgroup2RootOrNone();
  if (root === undefined) throw new Error('no cgroup v2 hierarchy is mounted');
  return root;
}

/** Make a child cgroup `name` of the v2 root; returns its directory. */
export async function createCgroup(name: string): Promise<string> {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`not a cgroup name: ${name}`);
  const dir = path.join(cgroup2Root(), name);
  await mkdir(dir);
  return dir;
}

/**
 * Remove a cgroup made by createCgroup: its processes are killed first
 * (cgroup.kill), and the programs attached to it go with it. Missing is
 * fine.
 */
export async function removeCgroup(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (let i = 0; i < 50; i++) {
    const procs = (await readFile(path.join(dir, 'cgroup.procs'), 'utf8')).trim();
    if (procs === '') break;
    await writeFile(path.join(dir, 'cgroup.kill'), '1').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
  }
  await rmdir(dir);
}
