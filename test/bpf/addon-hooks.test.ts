/**
 * The addon's view of what the kernel holds, whoever put it there: the
 * programs on an interface's XDP and tc hooks, a program by id, a map by its
 * pin, a map's accounted memory; attaches that refuse to replace someone
 * else's program; and flock on pin and state directories. Needs root,
 * iproute2, bpftool and bpffs at /sys/fs/bpf.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  native as loadNative,
  type AddonDataplane,
  type NativeError,
  type NativeLoadOptions,
  type NativeXdpQuery,
} from '../../src/dataplane/native.js';
import { packageRoot } from '../../src/package-root.js';

const native = loadNative();

/* One prefix for this file's namespaces and bpffs entries, unique per run. */
const TAG = `slhk-${process.pid}`;

const XDP_ATTACHED_DRV = 1;
const XDP_ATTACHED_SKB = 2;
const BPF_PROG_TYPE_SCHED_CLS = 3;
const BPF_PROG_TYPE_XDP = 6;
/* No program or map has this id on a test machine: ids count up from 1. */
const NO_SUCH_ID = 2 ** 31 - 1;

const NOTHING: NativeXdpQuery = { attachMode: 0, progId: 0, drvProgId: 0, skbProgId: 0, hwProgId: 0 };

/* Small maps: a load is then about 0.1 s instead of 0.6 s. */
const SMALL = { conntrack: 4096, affinity: 1024, maglev_slots: 65536 };

async function loaded(t: ExecutionContext, opts: NativeLoadOptions = {}): Promise<AddonDataplane> {
  const dp = new native.Dataplane();
  t.teardown(() => dp.close());
  await dp.load({ maxEntries: SMALL, ...opts });
  return dp;
}

interface Netns {
  path: string;
  veth0: number;
  veth1: number;
}

let netnsSeq = 0;

/** A namespace of this test's own holding veth0 <-> veth1, deleted (and with it every attachment) in teardown. */
function netns(t: ExecutionContext): Netns {
  const name = `${TAG}-${++netnsSeq}`;
  const ip = (...args: string[]): void => {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  t.teardown(() => {
    try {
      ip('netns', 'del', name);
    } catch {
      /* never created */
    }
  });
  ip('netns', 'add', name);
  ip('-n', name, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1');
  ip('-n', name, 'link', 'set', 'veth0', 'up');
  ip('-n', name, 'link', 'set', 'veth1', 'up');
  const nsPath = `/var/run/netns/${name}`;
  return { path: nsPath, veth0: native.ifIndex('veth0', nsPath), veth1: native.ifIndex('veth1', nsPath) };
}

function code(t: ExecutionContext, fn: () => unknown): NativeError {
  return t.throws(fn) as NativeError;
}

test('xdpQuery sees the dataplane\'s program in native, then generic mode; progInfo names it and its maps', async (t) => {
  const ns = netns(t);
  const dp = await loaded(t);
  const { xdp, tc } = dp.programs();
  t.is(xdp.name, 'sluice_xdp');
  t.is(tc.name, 'sluice_tc');
  t.true(xdp.id > 0 && tc.id > 0 && xdp.id !== tc.id, `ids ${xdp.id}, ${tc.id}`);

  const query = (): NativeXdpQuery => native.xdpQuery(ns.veth0, ns.path);
  t.deepEqual(query(), NOTHING, 'a fresh veth has no XDP program');
  dp.attachXdp(ns.veth0, 'native', ns.path);
  t.deepEqual(query(), { attachMode: XDP_ATTACHED_DRV, progId: xdp.id, drvProgId: xdp.id, skbProgId: 0, hwProgId: 0 });
  t.deepEqual(native.xdpQuery(ns.veth1, ns.path), NOTHING, 'the peer is another interface');
  dp.detachXdp(ns.veth0, 'native', ns.path);
  t.deepEqual(query(), NOTHING, 'detached');
  dp.attachXdp(ns.veth0, 'generic', ns.path);
  t.deepEqual(query(), { attachMode: XDP_ATTACHED_SKB, progId: xdp.id, drvProgId: 0, skbProgId: xdp.id, hwProgId: 0 });

  const missing = code(t, () => native.xdpQuery(99999, ns.path));
  t.is(missing.code, 'ENODEV', 'a missing interface is an error, not "nothing attached"');

  const info = native.progInfo(xdp.id);
  t.is(info.id, xdp.id);
  t.is(info.name, 'sluice_xdp');
  t.is(info.type, BPF_PROG_TYPE_XDP);
  t.regex(info.tag, /^[0-9a-f]{16}$/);
  for (const map of ['conntrack', 'services', 'maglev_slots', 'global_stats']) {
    const id = dp.mapInfo(map).id;
    t.true(info.mapIds.includes(id), `map ${map} (id ${id}) is not among the program's maps ${info.mapIds.join(', ')}`);
  }
  const tcInfo = native.progInfo(tc.id);
  t.is(tcInfo.name, 'sluice_tc');
  t.is(tcInfo.type, BPF_PROG_TYPE_SCHED_CLS);
  t.not(tcInfo.tag, info.tag, 'two different programs, two tags');
  t.true(tcInfo.mapIds.includes(dp.mapInfo('conntrack').id));
});

test('progInfo of a missing program is ENOENT; programs() needs a loaded dataplane', (t) => {
  const err = code(t, () => native.progInfo(NO_SUCH_ID));
  t.is(err.code, 'ENOENT');
  t.is(err.syscall, 'bpf_prog_get_fd_by_id');
  t.regex(err.message, new RegExp(`program id ${NO_SUCH_ID}`));

  const dp = new native.Dataplane();
  t.teardown(() => dp.close());
  t.is(code(t, () => dp.programs()).code, 'ENOTLOADED');
});

test('tcQuery: 0 without clsact or filter, then the attached program; replace: false refuses an occupied filter', async (t) => {
  const ns = netns(t);
  const [a, b] = await Promise.all([loaded(t), loaded(t)]);
  const ta = a.programs().tc.id;
  const tb = b.programs().tc.id;
  t.not(ta, tb);
  const query = (dir: 'ingress' | 'egress' = 'ingress'): number => native.tcQuery(ns.veth0, dir, ns.path);

  t.is(query(), 0, 'no clsact qdisc');
  a.attachTc(ns.veth0, 'ingress', ns.path, { replace: false });
  t.is(query(), ta, 'replace: false attaches to a free filter slot');
  t.is(query('egress'), 0, 'clsact but no egress filter');
  t.is(native.tcQuery(ns.veth1, 'ingress', ns.path), 0, 'the peer has no clsact');

  const busy = code(t, () => b.attachTc(ns.veth0, 'ingress', ns.path, { replace: false }));
  t.is(busy.code, 'EEXIST');
  t.is(busy.syscall, 'bpf_tc_attach');
  t.is(query(), ta, 'the refused attach left a\'s program in place');
  t.deepEqual(b.attachments(), [], 'a refused attach is not recorded');

  b.attachTc(ns.veth0, 'ingress', ns.path);
  t.is(query(), tb, 'by default an attach replaces');
  a.attachTc(ns.veth0, 'ingress', ns.path, { replace: true });
  t.is(query(), ta, 'replace: true replaces');

  a.detachTc(ns.veth0, 'ingress', ns.path);
  t.is(query(), 0, 'detached: clsact without a filter');
  a.destroyTcHook(ns.veth0, 'ingress', ns.path);
  t.is(query(), 0, 'no clsact again');

  t.is(code(t, () => native.tcQuery(99999, 'ingress', ns.path)).code, 'ENODEV', 'other errors throw');
  const badOpt = code(t, () => a.attachTc(ns.veth0, 'ingress', ns.path, { replace: 'no' as unknown as boolean }));
  t.is(badOpt.code, 'EINVAL');
  t.true(badOpt instanceof TypeError);
});

test('attachXdp with expectedProgId: onto a free hook (0) or over the expected program only', async (t) => {
  const ns = netns(t);
  const [a, b] = await Promise.all([loaded(t), loaded(t)]);
  const ia = a.programs().xdp.id;
  const ib = b.programs().xdp.id;
  t.not(ia, ib);
  const attached = (): number => native.xdpQuery(ns.veth0, ns.path).drvProgId;

  a.attachXdp(ns.veth0, 'native', ns.path, { expectedProgId: 0 });
  t.is(attached(), ia, 'expectedProgId 0 attaches to a free hook');

  const busy = code(t, () => b.attachXdp(ns.veth0, 'native', ns.path, { expectedProgId: 0 }));
  t.is(busy.code, 'EBUSY');
  t.is(busy.syscall, 'bpf_xdp_attach');
  t.is(attached(), ia, 'expectedProgId 0 does not replace');

  const wrong = code(t, () => b.attachXdp(ns.veth0, 'native', ns.path, { expectedProgId: ib }));
  t.is(wrong.code, 'EEXIST');
  t.is(attached(), ia, 'a wrong expectedProgId does not replace');

  const gone = code(t, () => b.attachXdp(ns.veth0, 'native', ns.path, { expectedProgId: NO_SUCH_ID }));
  t.is(gone.code, 'ENOENT');
  t.is(gone.syscall, 'bpf_prog_get_fd_by_id');
  t.deepEqual(b.attachments(), [], 'refused attaches are not recorded');

  b.attachXdp(ns.veth0, 'native', ns.path, { expectedProgId: ia });
  t.is(attached(), ib, 'the expected program is replaced');
  t.deepEqual(b.attachments(), [{ hook: 'xdp', ifindex: ns.veth0, mode: 'native', netnsPath: ns.path }]);

  a.attachXdp(ns.veth0, 'native', ns.path);
  t.is(attached(), ia, 'without the option whatever is attached is replaced');

  a.detachXdp(ns.veth0, 'native', ns.path);
  const empty = code(t, () => a.attachXdp(ns.veth0, 'native', ns.path, { expectedProgId: ib }));
  t.is(empty.code, 'EEXIST', 'an expected program that is not attached: nothing to replace');
  t.is(attached(), 0);

  const bad = code(t, () => a.attachXdp(ns.veth0, 'native', ns.path, { expectedProgId: -1 }));
  t.is(bad.code, 'EINVAL');
  t.true(bad instanceof TypeError);
});

test('pinnedMapInfo equals mapInfo; memlock counts a map\'s memory; a pin that is not a map is refused', async (t) => {
  const pinDir = `/sys/fs/bpf/${TAG}-pins`;
  t.teardown(() => rmSync(pinDir, { recursive: true, force: true }));
  const dp = await loaded(t, { pinDir });

  for (const name of ['conntrack', 'services', 'maglev_slots', 'global_stats']) {
    const own = dp.mapInfo(name);
    t.deepEqual(native.pinnedMapInfo(`${pinDir}/${name}`), own, name);
  }
  const ct = dp.mapInfo('conntrack');
  t.is(ct.maxEntries, SMALL.conntrack, 'the size set at load');
  const payload = ct.maxEntries * (ct.keySize + ct.valueSize);
  t.true(ct.memlock >= payload, `conntrack memlock ${ct.memlock} < ${payload} bytes of keys and values`);
  const slots = dp.mapInfo('maglev_slots');
  t.true(slots.memlock >= slots.maxEntries * slots.valueSize, `maglev_slots memlock ${slots.memlock}`);
  const bigger = await loaded(t, { maxEntries: { ...SMALL, conntrack: SMALL.conntrack * 4 } });
  const bigCt = bigger.mapInfo('conntrack').memlock;
  t.true(bigCt > ct.memlock * 3, `conntrack of 4x the entries: memlock ${bigCt} against ${ct.memlock}`);

  const missing = code(t, () => native.pinnedMapInfo(`${pinDir}/no_such_map`));
  t.is(missing.code, 'ENOENT');
  t.is(missing.syscall, 'bpf_obj_get');

  const progPin = `${pinDir}/a_program`;
  execFileSync('bpftool', ['prog', 'pin', 'id', String(dp.programs().xdp.id), progPin]);
  const notMap = code(t, () => native.pinnedMapInfo(progPin));
  t.is(notMap.code, 'EINVAL');
  t.regex(notMap.message, /not a map/);
});

// ---- flock ----

const BPF_FS_MAGIC = 0xcafe4a11;
const TMPFS_MAGIC = 0x01021994;
const FS_NAMES: Record<number, string> = {
  [BPF_FS_MAGIC]: 'bpffs',
  [TMPFS_MAGIC]: 'tmpfs',
  0xef53: 'ext4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
};
const fsName = (dir: string): string => {
  const type = statfsSync(dir).type;
  return FS_NAMES[type] ?? `fs 0x${type.toString(16)}`;
};

/*
 * A child node process that takes the lock through the addon: it prints
 * {"code":null} once it holds the lock (and then, with 'hold', keeps it
 * until killed) or {"code":"..."} if flock threw.
 */
const CHILD = `
const addon = require(process.argv[1]);
const fd = require('node:fs').openSync(process.argv[2], 'r');
let code = null;
try { addon.flock(fd, 'exclusive'); } catch (e) { code = e.code; }
process.stdout.write(JSON.stringify({ code }) + '\\n');
if (code === null && process.argv[3] === 'hold') setInterval(() => {}, 1 << 30);
`;
const ADDON = path.join(packageRoot(), 'build', 'Release', 'sluice_native.node');

interface Child {
  proc: ChildProcess;
  code: string | null;
  exited: Promise<NodeJS.Signals | null>;
}

async function lockInChild(t: ExecutionContext, dir: string, hold: boolean): Promise<Child> {
  const proc = spawn(process.execPath, ['-e', CHILD, ADDON, dir, hold ? 'hold' : 'try'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.once('exit', (_, signal) => resolve(signal)));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    /* 'close', not 'exit': a child that answers and exits at once may
     * exit before its output has been read. */
    proc.once('close', (status) => reject(new Error(`lock child exited (${status}) before answering: ${out}`)));
  });
  return { proc, code: (JSON.parse(line) as { code: string | null }).code, exited };
}

const lockDirs: Array<{ fs: string; magic?: number; make: () => string }> = [
  { fs: 'bpffs', magic: BPF_FS_MAGIC, make: () => mkdtempSync(`/sys/fs/bpf/${TAG}-lock-`) },
  { fs: 'tmpfs', magic: TMPFS_MAGIC, make: () => mkdtempSync(`/dev/shm/${TAG}-lock-`) },
  { fs: fsName(tmpdir()), make: () => mkdtempSync(path.join(tmpdir(), `${TAG}-lock-`)) },
];

for (const { fs, magic, make } of lockDirs) {
  test(`flock on a directory on ${fs}: refused to another open file and another process, released by SIGKILL`, async (t) => {
    const dir = make();
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    if (magic !== undefined) t.is(statfsSync(dir).type, magic, `${dir} is not on ${fs}`);
    const fd = openSync(dir, 'r');
    t.teardown(() => closeSync(fd));
    const other = openSync(dir, 'r');
    t.teardown(() => closeSync(other));

    native.flock(fd, 'exclusive');
    native.flock(fd, 'exclusive'); // taking it again through the same open file is a no-op
    const held = code(t, () => native.flock(other, 'exclusive'));
    t.is(held.code, 'EAGAIN', 'EWOULDBLOCK is EAGAIN on Linux');
    t.is(held.errno, 11);
    t.is(held.syscall, 'flock');
    t.is((await lockInChild(t, dir, false)).code, 'EAGAIN', 'another process is refused while we hold it');

    native.flock(fd, 'unlock');
    t.is((await lockInChild(t, dir, false)).code, null, 'unlocked: another process takes it');

    const holder = await lockInChild(t, dir, true);
    t.is(holder.code, null, 'the child holds the lock');
    t.is(code(t, () => native.flock(fd, 'exclusive')).code, 'EAGAIN', 'held by the child');
    holder.proc.kill('SIGKILL');
    t.is(await holder.exited, 'SIGKILL');
    t.notThrows(() => native.flock(fd, 'exclusive'), 'the killed child\'s lock is gone');
    native.flock(fd, 'unlock');
  });
}

test('flock: a bad op is a TypeError, a descriptor that is not open EBADF', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), `${TAG}-lock-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fd = openSync(dir, 'r');
  t.teardown(() => closeSync(fd));
  const bad = code(t, () => native.flock(fd, 'shared' as 'exclusive'));
  t.is(bad.code, 'EINVAL');
  t.true(bad instanceof TypeError);

  /* Far above anything this process opens, so never a live descriptor. */
  t.is(code(t, () => native.flock(1_000_000, 'exclusive')).code, 'EBADF');
});

// ---- mallopt ----

test('mallopt takes the three glibc parameters the daemon sets, and names a wrong one', (t) => {
  // In a child process: the settings are process-wide.
  const script = `
    const { native } = await import(${JSON.stringify(path.join(packageRoot(), 'dist/src/dataplane/native.js'))});
    const n = native();
    n.mallopt('ARENA_MAX', 2);
    n.mallopt('TRIM_THRESHOLD', 131072);
    n.mallopt('MMAP_THRESHOLD', 131072);
    try { n.mallopt('MMAP_THRESHOLD', -1); console.log('no error'); } catch (e) { console.log(e.name, e.message); }
    try { n.mallopt('TOP_PAD', 1); console.log('no error'); } catch (e) { console.log(e.name, e.message); }
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }).trim().split('\n');
  t.regex(out[0]!, /^TypeError .*value/);
  t.regex(out[1]!, /^TypeError .*param must be ARENA_MAX, TRIM_THRESHOLD or MMAP_THRESHOLD, not 'TOP_PAD'/);
});
