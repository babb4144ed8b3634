/**
 * What /proc says about a process the benchmark runs: its memory and the CPU
 * time it has used, and the machine's load average (other work shows there).
 */
import { readFileSync } from 'node:fs';

/** VmRSS and VmHWM (the peak resident size since it started) of a process, MB. */
export function memoryMb(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
    return m ? Number(m[1]) / 1024 : NaN;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** USER_HZ: the unit of /proc/<pid>/stat's times, 100 wherever Linux shows them to user space. */
const USER_HZ = 100;

/** CPU seconds (user and system) a process has used so far; 0 if it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / USER_HZ;
  } catch {
    return 0;
  }
}

/** CPU seconds a process has used so far in user space and in the kernel; zeros if it is gone. */
export function cpuSplit(pid: number | undefined): { user: number; system: number } {
  if (pid === undefined) return { user: 0, system: 0 };
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / USER_HZ, system: Number(f[12]) / USER_HZ };
  } catch {
    return { user: 0, system: 0 };
  }
}

/** The machine's 1-minute load average (/proc/loadavg). */
export const loadAverage = (): number => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

/**
 * What a process's resident memory is made of, MB: anonymous pages (its
 * heaps), file pages (its executable and libraries, shared with every
 * other process that maps them) and shared memory.
 */
export function residentParts(pid: number): { anon: number; file: number; shmem: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
    return m ? Number(m[1]) / 1024 : NaN;
  };
  return { anon: kb('RssAnon'), file: kb('RssFile'), shmem: kb('RssShmem') };
}
