/**
 * The machine a run is made on (CPU, cores, kernel, memory, the peers'
 * tool versions), and pinning the process to one CPU for the stages whose
 * figures need it.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { CpuStallsInfo, MachineInfo } from './types.js';

/** The tools the stages use or compare against, with how to ask each its version. */
const TOOLS: ReadonlyArray<{ name: string; args: string[] }> = [
  { name: 'iptables-legacy', args: ['--version'] },
  { name: 'iptables-nft', args: ['--version'] },
  { name: 'nft', args: ['--version'] },
  { name: 'trafgen', args: ['--version'] },
  { name: 'clang', args: ['--version'] },
  { name: 'bpftool', args: ['--version'] },
];

/**
 * Where a system tool is: the PATH without node_modules/.bin (npm run and
 * npx put it first, and @vercel/nft installs a `nft` of its own there),
 * then the sbin directories a non-login root shell may lack.
 */
function systemTool(name: string): string | null {
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter).filter((d) => d !== '' && !d.includes('node_modules'));
  for (const d of [...dirs, '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin']) {
    const file = path.join(d, name);
    if (existsSync(file)) return file;
  }
  return null;
}

/** stdout of a system tool, or null when it is missing or fails. */
function output(cmd: string, args: string[]): string | null {
  const file = systemTool(cmd);
  if (file === null) return null;
  try {
    return execFileSync(file, args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    // Some tools print their version and exit non-zero; keep what they said.
    const out = (err as { stdout?: unknown }).stdout;
    return typeof out === 'string' && out.trim() !== '' ? out : null;
  }
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/**
 * A tool's version line, shortened: "iptables v1.8.9 (legacy)" -> "v1.8.9
 * (legacy)", "Debian clang version 14.0.6" -> "14.0.6", trafgen's banner
 * -> "0.6.8".
 */
export function toolVersion(text: string): string {
  const first = text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
  const m = /v?\d+(\.\d+)+[^\s,]*(\s+\([^)]*\))?/.exec(first);
  return m ? m[0] : first;
}

/** The CPU model: /proc/cpuinfo's "model name" (or the first "Processor"/"cpu model" on other architectures). */
function cpuModel(): string {
  const info = readText('/proc/cpuinfo') ?? '';
  for (const key of ['model name', 'Processor', 'cpu model', 'Hardware']) {
    const m = new RegExp(`^${key}\\s*:\\s*(.+)$`, 'm').exec(info);
    if (m?.[1]) return m[1].trim();
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

/** Everything a report says about the machine; tools that are not installed are left out. */
export function machineInfo(): MachineInfo {
  const tools: Record<string, string> = {};
  for (const t of TOOLS) {
    const out = output(t.name, t.args);
    if (out !== null) tools[t.name] = toolVersion(out);
  }
  const clocksource = readText('/sys/devices/system/clocksource/clocksource0/current_clocksource')?.trim();
  return {
    cpuModel: cpuModel(),
    cores: os.cpus().length,
    kernel: output('uname', ['-r'])?.trim() || os.release(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    ...(clocksource ? { clocksource } : {}),
    tools,
  };
}

/** The CPUs this process may run on, as taskset prints them ("0-1", "1"). */
export function cpusAllowed(): string {
  return /Cpus_allowed_list:\s*(\S+)/.exec(readText('/proc/self/status') ?? '')?.[1] ?? 'unknown';
}

/** "0-3,6" -> [0, 1, 2, 3, 6]. */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return out;
}

/**
 * Pin every thread of this process to one CPU (`taskset -a -p -c`): the
 * highest-numbered one it may use, since CPU 0 usually takes more of the
 * machine's interrupts. Returns the CPU, and a function that restores the
 * affinity the process had; null when taskset is missing or fails.
 */
export function pinToOneCpu(): { cpu: number; restore: () => void } | null {
  const before = cpusAllowed();
  const cpus = parseCpuList(before);
  const cpu = cpus[cpus.length - 1];
  if (cpu === undefined) return null;
  const taskset = (list: string): boolean => {
    try {
      execFileSync(systemTool('taskset') ?? 'taskset', ['-a', '-p', '-c', list, String(process.pid)], { stdio: 'ignore', timeout: 5000 });
      return true;
    } catch {
      return false;
    }
  };
  if (!taskset(String(cpu))) return null;
  return { cpu, restore: () => void taskset(before) };
}

/** Stalls of at least this long are counted (ms). */
export const STALL_MS = 1;

/** Count, total and longest of the gaps (ms) of at least STALL_MS. */
export function summariseStalls(cpu: number, gapsMs: readonly number[]): CpuStallsInfo {
  const long = gapsMs.filter((g) => g >= STALL_MS);
  return {
    cpu,
    stalls: long.length,
    lostMs: Math.round(long.reduce((a, b) => a + b, 0) * 100) / 100,
    maxMs: Math.round(Math.max(0, ...long) * 100) / 100,
  };
}

/**
 * The spinner: reads the monotonic clock in a loop for `ms` and prints, as
 * JSON, every gap of 0.1 ms or more between two reads: time the thread was
 * not running (an interrupt, a kernel thread, the hypervisor).
 */
const SPINNER = `
const end = process.hrtime.bigint() + BigInt(Number(process.argv[1]) * 1e6);
const gaps = [];
let prev = process.hrtime.bigint();
for (;;) {
  const t = process.hrtime.bigint();
  const g = Number(t - prev);
  if (g >= 100000) gaps.push(g / 1e6);
  prev = t;
  if (t >= end) break;
}
process.stdout.write(JSON.stringify(gaps));
`;

/**
 * How often this machine takes a CPU away from a thread that wants it: one
 * spinner pinned to each CPU (taskset) for `seconds`, all at once. Every
 * latency measured on the machine carries such stalls, so a percentile
 * below the longest of them cannot be promised here whatever the software
 * does. Null when taskset is missing.
 */
export async function probeStalls(seconds: number): Promise<{ seconds: number; cpus: CpuStallsInfo[] } | null> {
  const taskset = systemTool('taskset');
  if (taskset === null) return null;
  const cpus = parseCpuList(cpusAllowed());
  const runs = cpus.map((cpu) => new Promise<CpuStallsInfo>((resolve, reject) => {
    execFile(taskset, ['-c', String(cpu), process.execPath, '-e', SPINNER, String(seconds * 1000)],
      { timeout: seconds * 1000 + 10_000, maxBuffer: 16 << 20 },
      (err, stdout) => {
        if (err) return reject(err);
        try {
          resolve(summariseStalls(cpu, JSON.parse(stdout) as number[]));
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
  }));
  return { seconds, cpus: await Promise.all(runs) };
}
