/**
 * `sluice kube-proxy --cleanup` on a node of its own (a network namespace
 * with veth pairs): real daemons leave their programs attached and their
 * maps pinned when they stop, and the cleanup takes exactly sluice's off.
 * Another tool's programs, at the very hook sluice uses, stay; so does
 * another sluice dataplane's, until its pins are gone. A second run finds
 * nothing; a run while a daemon holds the directories is refused.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { native } from '../../src/dataplane/native.js';
import { STATE_FILES, type CleanupReport } from '../../src/daemon/cleanup.js';
import { createCgroup, removeCgroup } from '../../src/demo/cgroup.js';
import { SOCKET_HOOKS } from '../../src/dataplane/native-dataplane.js';
import { deleteNamespaces, ipIn, sh } from '../../src/demo/topology.js';
import { testDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { sluice } from '../helpers/cli.js';

/** A trivial XDP and tc program that is not sluice's: iproute2 attaches it as any tool would. */
const FOREIGN_C = `#include <linux/bpf.h>
#include <linux/pkt_cls.h>
__attribute__((section("xdp"), used)) int not_sluice_xdp(struct xdp_md *ctx) { return XDP_PASS; }
__attribute__((section("tc"), used)) int not_sluice_tc(struct __sk_buff *skb) { return TC_ACT_OK; }
char _license[] __attribute__((section("license"), used)) = "GPL";
`;

interface Node {
  name: string;
  path: string;
}

/** A namespace with veth pairs whose first ends are named in `ifnames`; removed with the test. */
async function node(t: ExecutionContext, ifnames: string[]): Promise<Node> {
  const name = `slkc-${process.pid.toString(36)}`;
  await deleteNamespaces([name]);
  t.teardown(() => deleteNamespaces([name]));
  await sh('ip', ['netns', 'add', name]);
  for (const i of ifnames) {
    await ipIn(name, 'link', 'add', i, 'type', 'veth', 'peer', 'name', `${i}p`);
    await ipIn(name, 'link', 'set', i, 'up');
    await ipIn(name, 'link', 'set', `${i}p`, 'up');
  }
  return { name, path: `/var/run/netns/${name}` };
}

/** The object of FOREIGN_C, built in a temporary directory of the test's. */
function foreignObject(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-kc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const src = path.join(dir, 'foreign.bpf.c');
  const obj = path.join(dir, 'foreign.bpf.o');
  writeFileSync(src, FOREIGN_C);
  const arch = execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim();
  execFileSync('clang', ['-O2', '-g', '-target', 'bpf', `-I/usr/include/${arch}-linux-gnu`, '-c', src, '-o', obj]);
  return obj;
}

/** What the hooks of an interface of the node hold: program ids, 0 for none. */
function hooks(n: Node, ifname: string): { xdp: number; xdpGeneric: number; tcIngress: number; tcEgress: number } {
  const a = native();
  const ifindex = a.ifIndex(ifname, n.path);
  const q = a.xdpQuery(ifindex, n.path);
  return { xdp: q.drvProgId, xdpGeneric: q.skbProgId, tcIngress: a.tcQuery(ifindex, 'ingress', n.path), tcEgress: a.tcQuery(ifindex, 'egress', n.path) };
}

const EMPTY = { xdp: 0, xdpGeneric: 0, tcIngress: 0, tcEgress: 0 };

function cleanupArgs(n: Node, d: DaemonProcess, cgroup: string): string[] {
  return ['kube-proxy', '--cleanup', '--netns', n.path, '--pin-dir', d.pinDir, '--state-dir', path.join(d.dir, 'state'), '--socket-lb', cgroup];
}

test('cleanup detaches sluice\'s programs, removes its pins and store, leaves the rest, and is refused while a daemon runs', async (t) => {
  const n = await node(t, ['x0', 't0', 'o0', 'p0']);
  const obj = foreignObject(t);
  const cgroup = await createCgroup(`sluice-kc-${process.pid}`);
  t.teardown(() => removeCgroup(cgroup));

  // Another tool's programs on o0: XDP, and tc ingress at handle 1, priority 1, where sluice attaches.
  await ipIn(n.name, 'link', 'set', 'dev', 'o0', 'xdp', 'obj', obj, 'sec', 'xdp');
  await sh('tc', ['-n', n.name, 'qdisc', 'add', 'dev', 'o0', 'clsact']);
  await sh('tc', ['-n', n.name, 'filter', 'add', 'dev', 'o0', 'ingress', 'pref', '1', 'handle', '1', 'bpf', 'da', 'obj', obj, 'sec', 'tc']);
  const foreign = hooks(n, 'o0');
  t.not(foreign.xdp, 0, 'the foreign XDP program is attached (native)');
  t.not(foreign.tcIngress, 0, 'the foreign tc program is attached');

  // Daemon a: XDP on x0, then (the same pins and store) tc on t0; each stop leaves its program attached.
  const a = await testDaemon(t, 'kc-a', []);
  await a.start(['--interface', `x0@${n.path}`, '--mode', 'xdp']);
  t.is(await a.stop('SIGTERM'), 0);
  await a.start(['--interface', `t0@${n.path}`, '--mode', 'tc', '--socket-lb', `${cgroup}@${n.path}`]);
  const running = hooks(n, 't0').tcIngress;
  t.not(running, 0);

  // While it runs, the cleanup is refused, naming the lock and its holder, and touches nothing.
  const refused = await sluice(cleanupArgs(n, a, cgroup));
  t.is(refused.code, 1, refused.stderr);
  t.regex(refused.stderr.trim(), new RegExp(`^sluice: FAILED_PRECONDITION: the state directory ${path.join(a.dir, 'state')} is locked by process ${a.pid()} \\(sluice daemon .*\\): a sluice daemon runs on it; stop it \\(delete sluice's DaemonSet\\) before cleaning up$`));
  t.is(hooks(n, 't0').tcIngress, running);
  t.true(readdirSync(a.pinDir).includes('conntrack'));
  t.is(await a.stop('SIGTERM'), 0);

  // Daemon b: another dataplane (its own pins) with tc on p0.
  const b = await testDaemon(t, 'kc-b', ['--interface', `p0@${n.path}`, '--mode', 'tc']);
  await b.start();
  t.is(await b.stop('SIGTERM'), 0);
  const bProgram = hooks(n, 'p0').tcIngress;

  const x0 = hooks(n, 'x0').xdp;
  const t0 = hooks(n, 't0').tcIngress;
  t.not(x0, 0, 'a stopped daemon leaves its XDP program attached');
  t.not(t0, 0, 'a stopped daemon leaves its tc program attached');
  const pins = readdirSync(a.pinDir).sort();
  t.true(pins.length >= 10, `pins: ${pins.join(', ')}`);

  const first = await sluice(['-o', 'json', ...cleanupArgs(n, a, cgroup)]);
  t.is(first.code, 0, first.stderr);
  const r = JSON.parse(first.stdout) as CleanupReport;
  t.deepEqual(r.detached.filter((p) => !p.hook.startsWith('cgroup')).map((p) => `${p.ifname} ${p.hook} ${p.name} ${p.id}`).sort(), [`t0 tc ingress sluice_tc ${t0}`, `x0 XDP (native) sluice_xdp ${x0}`]);
  t.deepEqual(r.detached.filter((p) => p.hook.startsWith('cgroup')).map((p) => p.hook).sort(), ['cgroup connect4', 'cgroup connect6', 'cgroup getpeername4', 'cgroup getpeername6', 'cgroup recvmsg4', 'cgroup recvmsg6', 'cgroup sendmsg4', 'cgroup sendmsg6'], 'the socket programs (--socket-lb) are detached from their cgroup');
  for (const hook of SOCKET_HOOKS) t.deepEqual(native().cgroupQuery(cgroup, hook), [], `${hook} of the cgroup after the cleanup`);
  t.deepEqual(r.kept.map((p) => `${p.ifname} ${p.hook} ${p.name}`).sort(), ['o0 XDP (native) not_sluice_xdp', 'o0 tc ingress not_sluice_tc', 'p0 tc ingress sluice_tc']);
  t.regex(r.kept.find((p) => p.ifname === 'p0')!.reason, new RegExp(`pinned in ${b.pinDir} `));
  t.deepEqual(r.unpinned.map((f) => path.basename(f)).sort(), pins);
  t.true(r.removed.includes(path.join(a.dir, 'state', 'sluice.db')), `removed: ${r.removed.join(', ')}`);
  t.true(r.removed.every((f) => (STATE_FILES as readonly string[]).includes(path.relative(path.join(a.dir, 'state'), f))), `removed: ${r.removed.join(', ')}`);
  t.deepEqual(r.removedDirs, [a.pinDir, path.join(a.dir, 'state')]);
  t.deepEqual(r.left, []);

  t.deepEqual(hooks(n, 'x0'), EMPTY, 'x0 hooks after the cleanup');
  t.deepEqual(hooks(n, 't0'), EMPTY, 't0 hooks after the cleanup');
  t.deepEqual(hooks(n, 'o0'), foreign, 'another tool\'s programs stay');
  t.is(hooks(n, 'p0').tcIngress, bProgram, 'another sluice dataplane\'s program stays');
  t.false(existsSync(a.pinDir), 'the pin directory is gone');
  t.false(existsSync(path.join(a.dir, 'state')), 'the state directory is gone');
  t.true(existsSync(path.join(b.pinDir, 'conntrack')), 'another dataplane\'s pins stay');

  // Again: nothing to do, said so, exit 0.
  const second = await sluice(cleanupArgs(n, a, cgroup));
  t.is(second.code, 0, second.stderr);
  const lines = second.stdout.trim().split('\n');
  t.is(lines[0], `nothing to clean up: no sluice program on the interfaces of ${n.path}, no pinned maps in ${a.pinDir}, no store in ${path.join(a.dir, 'state')}`);
  t.true(lines.slice(1).every((l) => l.startsWith('left program ')), second.stdout);

  // b's pins removed by hand: its program, forwarding with maps nobody can reach, is taken off too.
  rmSync(b.pinDir, { recursive: true });
  const third = await sluice(cleanupArgs(n, a, cgroup));
  t.is(third.code, 0, third.stderr);
  t.regex(third.stdout, new RegExp(`^detached program 'sluice_tc' \\(id ${bProgram}\\) from p0 tc ingress: a sluice program whose maps are pinned nowhere under /sys/fs/bpf$`, 'm'));
  t.deepEqual(hooks(n, 'p0'), EMPTY);
  t.deepEqual(hooks(n, 'o0'), foreign);
});
