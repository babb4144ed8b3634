/**
 * Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on a unified
 * host, /sys/fs/cgroup/unified on a hybrid one (v1 controllers beside it).
 * The socket programs attach to a v2 cgroup only.
 */
import { readFileSync } from 'node:fs';

/** The first cgroup2 mount point in /proc/mounts, or undefined if there is none. */
export function cgroup2Root(): string | undefined {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mountPoint, type] = line.split(' ');
    if (type === 'cgroup2' && mountPoint) return mountPoint;
  }
  return undefined;
}
