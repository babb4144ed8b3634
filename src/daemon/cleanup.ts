/**
 * `sluice kube-proxy --cleanup`: take sluice off a node, as `kube-proxy
 * --cleanup` takes its iptables and IPVS rules off. A daemon that stops
 * leaves its programs attached and its maps pinned, so that the next one
 * adopts them; once the cluster goes back to kube-proxy, nothing should
 * keep rewriting packets to VIPs. This detaches sluice's programs from
 * every interface of the node's network namespace, removes the pinned
 * maps of the pin directory and the store of the state directory, and
 * leaves everything else: another tool's programs and files, and another
 * sluice dataplane's programs (its maps pinned elsewhere).
 *
 * It takes the daemon's locks first (lock.ts), so it is refused while a
 * daemon runs on either directory and no daemon can start meanwhile.
 */
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { SluiceError } from '../errors.js';
import { native, type AddonDataplane } from '../dataplane/native.js';
import { isSluiceProgramName, SOCKET_HOOKS } from '../dataplane/native-dataplane.js';
import type { SocketHook } from '../dataplane/native.js';
import { lockDirectory, lockHolder, type DirectoryLock } from './lock.js';
import { checkPinDir } from './pin-dir.js';

const run = promisify(execFile);

/** The store's files in the state directory: SQLite's database and its WAL, shared-memory and rollback journal files. */
export const STATE_FILES = ['sluice.db', 'sluice.db-wal', 'sluice.db-shm', 'sluice.db-journal'] as const;

/** Where to clean up. */
export interface CleanupOptions {
  /** The node's network namespace (a path); absent: this process's. */
  netns?: string;
  /** The daemon's --pin-dir. */
  pinDir: string;
  /** The daemon's --state-dir. */
  stateDir: string;
  /** The cgroup v2 directory of --socket-lb, whose socket hooks are cleaned too. */
  socketLb?: string;
}

/** A hook sluice may use. */
export type CleanupHook = 'XDP (native)' | 'XDP (generic)' | 'tc ingress' | 'tc egress' | `cgroup ${SocketHook}`;

/** A program found in a hook: detached, or left attached. */
export interface HookProgram {
  ifname: string;
  hook: CleanupHook;
  id: number;
  /** The kernel's name of the program. */
  name: string;
  /** Why it was taken for sluice's, or left. */
  reason: string;
}

/** What a cleanup did. */
export interface CleanupReport {
  /** The namespace whose interfaces were looked at; absent: the process's own. */
  netns?: string;
  pinDir: string;
  stateDir: string;
  /** sluice's programs, detached. */
  detached: HookProgram[];
  /** Programs left attached: another tool's, or another sluice dataplane's. */
  kept: HookProgram[];
  /** Pinned maps removed (paths). */
  unpinned: string[];
  /** Store files removed (paths). */
  removed: string[];
  /** Directories removed, once empty. */
  removedDirs: string[];
  /** What was left in the two directories, and why. */
  left: string[];
}

/** Which of a hook's programs are sluice's (pure: the cleanup's rule, tested on its own). */
export function classifyProgram(
  prog: { name: string; mapIds: readonly number[] },
  ctx: {
    pinDir: string;
    /** Ids of the maps pinned in the pin directory. */
    pinned: ReadonlySet<number>;
    /** The pin directory of each other map pinned on the same bpffs, by map id. */
    pinnedElsewhere: () => ReadonlyMap<number, string>;
    /** The root of that bpffs (for the message). */
    bpffs: string | undefined;
  },
): { detach: boolean; reason: string } {
  if (prog.mapIds.some((id) => ctx.pinned.has(id))) return { detach: true, reason: `its maps are pinned in ${ctx.pinDir}` };
  if (!isSluiceProgramName(prog.name)) return { detach: false, reason: 'not sluice\'s' };
  const elsewhere = ctx.pinnedElsewhere();
  const dir = prog.mapIds.map((id) => elsewhere.get(id)).find((d) => d !== undefined);
  if (dir !== undefined) {
    return { detach: false, reason: `another sluice dataplane's, its maps pinned in ${dir} (clean that one up with --pin-dir ${dir})` };
  }
  return { detach: true, reason: `a sluice program whose maps are pinned nowhere${ctx.bpffs === undefined ? '' : ` under ${ctx.bpffs}`}` };
}

/** The interfaces of a network namespace (`ip -j link show`, through nsenter for another namespace). */
async function interfacesOf(netns: string | undefined): Promise<Array<{ ifindex: number; ifname: string }>> {
  const [cmd, args] = netns === undefined ? ['ip', ['-j', 'link', 'show']] : ['nsenter', [`--net=${netns}`, 'ip', '-j', 'link', 'show']];
  const { stdout } = await run(cmd, args as string[]);
  return (JSON.parse(stdout || '[]') as Array<{ ifindex: number; ifname: string }>).map((l) => ({ ifindex: l.ifindex, ifname: l.ifname }));
}

/** Ids of the maps pinned directly in `dir`, by file name; files that are not pinned maps are named in `others`. */
function pinnedMaps(dir: string): { maps: Map<string, number>; others: string[] } {
  const maps = new Map<string, number>();
  const others: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    if (!lstatSync(file).isFile()) {
      others.push(file);
      continue;
    }
    try {
      maps.set(name, native().pinnedMapInfo(file).id);
    } catch {
      others.push(file);
    }
  }
  return { maps, others };
}

/** Every map pinned under `root` (a bpffs mount): map id → its directory. */
function pinsUnder(root: string): Map<number, string> {
  const out = new Map<number, string>();
  const walk = (dir: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const file = path.join(dir, name);
      try {
        if (lstatSync(file).isDirectory()) {
          if (depth < 8) walk(file, depth + 1);
        } else {
          out.set(native().pinnedMapInfo(file).id, dir);
        }
      } catch {
        /* not a pinned map (a program, a link, an iterator), or gone meanwhile */
      }
    }
  };
  walk(root, 0);
  return out;
}

/** Lock a directory of the daemon's, or refuse naming the process that holds it. */
function lockForCleanup(dir: string, what: string, flag: string): DirectoryLock {
  try {
    return lockDirectory(dir, what, flag);
  } catch (err) {
    if (!(err instanceof SluiceError) || err.code !== 'FAILED_PRECONDITION') throw err;
    throw new SluiceError(
      'FAILED_PRECONDITION',
      `the ${what} ${dir} is locked by ${lockHolder(dir) ?? 'another process'}: a sluice daemon runs on it; stop it (delete sluice's DaemonSet) before cleaning up`,
      { cause: err },
    );
  }
}

/** rmdir, or say why not in `left`. */
function removeDir(dir: string, report: CleanupReport): void {
  try {
    rmdirSync(dir);
    report.removedDirs.push(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // A volume's mount point (the state directory in a pod) stays, empty.
    if (code === 'EBUSY') report.left.push(`${dir}: a mount point, kept (empty)`);
    else if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
  }
}

/**
 * Take sluice off the node: detach its programs from every interface of
 * the namespace, remove the pinned maps of `pinDir` and the store in
 * `stateDir` (and each directory once empty). Idempotent: a second run
 * finds nothing. FAILED_PRECONDITION while a daemon holds either directory;
 * INVALID_ARGUMENT (field netns, pinDir or stateDir) for a path that cannot
 * be one.
 */
export async function cleanupNode(opts: CleanupOptions): Promise<CleanupReport> {
  const { netns, pinDir, stateDir } = opts;
  if (netns !== undefined && (!path.isAbsolute(netns) || !existsSync(netns))) {
    throw new SluiceError('INVALID_ARGUMENT', path.isAbsolute(netns) ? `no network namespace at ${netns}` : `must be an absolute path (e.g. /var/run/netns/node1), got ${netns}`, { field: 'netns' });
  }
  if (!path.isAbsolute(stateDir)) throw new SluiceError('INVALID_ARGUMENT', `must be an absolute path, got ${stateDir}`, { field: 'stateDir' });
  if (existsSync(stateDir) && !statSync(stateDir).isDirectory()) throw new SluiceError('INVALID_ARGUMENT', `${stateDir} is not a directory`, { field: 'stateDir' });
  // A pin directory that is not one (not on bpffs, or the mount's root) is never emptied; one
  // that does not exist may be anywhere.
  if (!path.isAbsolute(pinDir)) throw new SluiceError('INVALID_ARGUMENT', `must be an absolute path, got ${pinDir}`, { field: 'pinDir' });
  let bpffs: string | undefined;
  try {
    bpffs = checkPinDir(pinDir);
  } catch (err) {
    if (existsSync(pinDir)) throw err;
  }

  const report: CleanupReport = { ...(netns !== undefined ? { netns } : {}), pinDir, stateDir, detached: [], kept: [], unpinned: [], removed: [], removedDirs: [], left: [] };
  const locks: DirectoryLock[] = [];
  let dp: AddonDataplane | undefined;
  try {
    // The daemon's order: the state directory, then the pin directory.
    if (existsSync(stateDir)) locks.push(lockForCleanup(stateDir, 'state directory', '--state-dir'));
    if (existsSync(pinDir)) locks.push(lockForCleanup(pinDir, 'pin directory', '--pin-dir'));
    const pins = existsSync(pinDir) ? pinnedMaps(pinDir) : { maps: new Map<string, number>(), others: [] };

    // The hooks first: a detach that fails leaves the pins, by which a second run knows the programs again.
    const addon = native();
    const ns: [] | [string] = netns === undefined ? [] : [netns];
    let elsewhere: Map<number, string> | undefined;
    const ctx = {
      pinDir,
      pinned: new Set(pins.maps.values()),
      pinnedElsewhere: () => (elsewhere ??= bpffs === undefined ? new Map<number, string>() : pinsUnder(bpffs)),
      bpffs,
    };
    for (const { ifindex, ifname } of await interfacesOf(netns)) {
      let hooks: Array<{ hook: CleanupHook; id: number }>;
      try {
        const xdp = addon.xdpQuery(ifindex, ...ns);
        hooks = [
          { hook: 'XDP (native)', id: xdp.drvProgId },
          { hook: 'XDP (generic)', id: xdp.skbProgId },
          { hook: 'tc ingress', id: addon.tcQuery(ifindex, 'ingress', ...ns) },
          { hook: 'tc egress', id: addon.tcQuery(ifindex, 'egress', ...ns) },
        ];
      } catch (err) {
        if ((err as { code?: string }).code === 'ENODEV') continue; // gone since it was listed
        throw err;
      }
      for (const { hook, id } of hooks) {
        if (id === 0) continue;
        let info;
        try {
          info = addon.progInfo(id);
        } catch (err) {
          if ((err as { code?: string }).code === 'ENOENT') continue; // unloaded since the query
          throw err;
        }
        const verdict = classifyProgram(info, ctx);
        const found: HookProgram = { ifname, hook, id, name: info.name, reason: verdict.reason };
        if (!verdict.detach) {
          report.kept.push(found);
          continue;
        }
        dp ??= new addon.Dataplane();
        if (hook === 'XDP (native)') dp.detachXdp(ifindex, 'native', ...ns);
        else if (hook === 'XDP (generic)') dp.detachXdp(ifindex, 'generic', ...ns);
        else dp.detachTc(ifindex, hook === 'tc ingress' ? 'ingress' : 'egress', ...ns);
        report.detached.push(found);
      }
    }

    // The socket programs (--socket-lb) of the cgroup: attached, not linked, they outlive the daemon.
    if (opts.socketLb !== undefined && existsSync(path.join(opts.socketLb, 'cgroup.procs'))) {
      for (const hook of SOCKET_HOOKS) {
        for (const id of addon.cgroupQuery(opts.socketLb, hook)) {
          let info;
          try {
            info = addon.progInfo(id);
          } catch (err) {
            if ((err as { code?: string }).code === 'ENOENT') continue;
            throw err;
          }
          const verdict = classifyProgram(info, ctx);
          const found: HookProgram = { ifname: opts.socketLb, hook: `cgroup ${hook}`, id, name: info.name, reason: verdict.reason };
          if (!verdict.detach) {
            report.kept.push(found);
            continue;
          }
          addon.detachCgroupProgram(opts.socketLb, hook, id);
          report.detached.push(found);
        }
      }
    }

    if (existsSync(pinDir)) {
      for (const name of pins.maps.keys()) {
        unlinkSync(path.join(pinDir, name));
        report.unpinned.push(path.join(pinDir, name));
      }
      for (const f of pins.others) report.left.push(`${f}: not a pinned map`);
      if (pins.others.length === 0) removeDir(pinDir, report);
    }

    if (existsSync(stateDir)) {
      for (const name of STATE_FILES) {
        const file = path.join(stateDir, name);
        if (!existsSync(file)) continue;
        unlinkSync(file);
        report.removed.push(file);
      }
      const others = readdirSync(stateDir).sort();
      for (const name of others) report.left.push(`${path.join(stateDir, name)}: not sluice's`);
      if (others.length === 0) removeDir(stateDir, report);
    }
  } finally {
    dp?.close();
    for (const l of locks.reverse()) l.release();
  }
  return report;
}

/** Did the cleanup find anything to do? */
export function cleanedAnything(r: CleanupReport): boolean {
  return r.detached.length + r.unpinned.length + r.removed.length + r.removedDirs.length > 0;
}

/** The report as lines for a person. */
export function formatCleanupReport(r: CleanupReport): string {
  const where = r.netns === undefined ? 'this network namespace' : r.netns;
  const lines: string[] = [];
  for (const p of r.detached) lines.push(`detached program '${p.name}' (id ${p.id}) from ${p.ifname} ${p.hook}: ${p.reason}`);
  if (r.unpinned.length > 0) lines.push(`unpinned ${r.unpinned.length} map${r.unpinned.length === 1 ? '' : 's'} from ${r.pinDir}: ${r.unpinned.map((f) => path.basename(f)).join(', ')}`);
  if (r.removed.length > 0) lines.push(`removed the store: ${r.removed.join(', ')}`);
  for (const d of r.removedDirs) lines.push(`removed directory ${d}`);
  for (const p of r.kept) lines.push(`left program '${p.name}' (id ${p.id}) on ${p.ifname} ${p.hook}: ${p.reason}`);
  for (const l of r.left) lines.push(`left ${l}`);
  if (!cleanedAnything(r)) {
    lines.unshift(`nothing to clean up: no sluice program on the interfaces of ${where}, no pinned maps in ${r.pinDir}, no store in ${r.stateDir}`);
  }
  return lines.join('\n');
}
