/**
 * The pin directory: where the dataplane's maps live in bpffs between
 * daemons. Checked before anything is made there (a path outside bpffs is
 * refused without creating a directory), and remembered as found, so that a
 * start that fails removes exactly what it added.
 */
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync, statfsSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { SluiceError } from '../errors.js';

/** statfs(2) f_type of bpffs (BPF_FS_MAGIC in linux/magic.h). */
const BPF_FS_MAGIC = 0xcafe4a11;

/** What the pin directory held before this daemon touched it. */
export interface PinDirState {
  dir: string;
  /** The outermost directory this daemon created for it (undefined: it existed). */
  created: string | undefined;
  /** Names of the pins that were there before. */
  before: ReadonlySet<string>;
}

/**
 * Check that `dir` is (or would be) on bpffs, then create it if need be.
 * INVALID_ARGUMENT (field pinDir) if it is not absolute or not on bpffs.
 */
export function preparePinDir(dir: string): PinDirState {
  checkPinDir(dir);
  // mkdirSync returns the first directory it created.
  const created = existsSync(dir) ? undefined : mkdirSync(dir, { recursive: true, mode: 0o700 });
  return { dir, created, before: new Set(readdirSync(dir)) };
}

/**
 * Check that `dir` is (or would be) a directory of its own on bpffs, and
 * return the root of that bpffs mount. INVALID_ARGUMENT (field pinDir) if
 * it is not absolute, not on bpffs, or the mount's root itself.
 */
export function checkPinDir(dir: string): string {
  if (!path.isAbsolute(dir)) throw new SluiceError('INVALID_ARGUMENT', `must be an absolute path, got ${dir}`, { field: 'pinDir' });
  let probe = dir;
  while (!existsSync(probe)) probe = path.dirname(probe);
  const type = statfsSync(probe).type;
  if (type !== BPF_FS_MAGIC) {
    throw new SluiceError(
      'INVALID_ARGUMENT',
      `${dir} is not on a BPF filesystem (${probe} is not bpffs): give a directory under /sys/fs/bpf, or mount bpffs (mount -t bpf bpf /sys/fs/bpf)`,
      { field: 'pinDir' },
    );
  }
  // The mount's root holds other tools' pins: sluice's go to a directory of their own.
  if (existsSync(dir) && statSync(dir).dev !== statSync(path.dirname(dir)).dev) {
    throw new SluiceError('INVALID_ARGUMENT', `${dir} is the root of a BPF filesystem, shared with other tools: give a directory of its own under it (e.g. ${path.join(dir, 'sluice')})`, { field: 'pinDir' });
  }
  let root = probe;
  while (root !== path.dirname(root) && statSync(path.dirname(root)).dev === statSync(root).dev) root = path.dirname(root);
  return root;
}

/** Remove the pins this daemon added (and the directory if it made it); what was there before stays. */
export function undoPinDir(s: PinDirState): void {
  let left: string[];
  try {
    left = readdirSync(s.dir);
  } catch {
    return;
  }
  for (const name of left) {
    if (!s.before.has(name)) unlinkSync(path.join(s.dir, name));
  }
  if (s.created === undefined) return;
  for (let d = s.dir; ; d = path.dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      return; // not empty: another process put something there meanwhile
    }
    if (d === s.created || d === path.dirname(d)) return;
  }
}

/** Remove every pin in the directory (the maps die once nothing else holds them). */
export function clearPins(dir: string): string[] {
  const names = readdirSync(dir);
  for (const name of names) unlinkSync(path.join(dir, name));
  return names;
}
