/**
 * The rule by which `sluice kube-proxy --cleanup` tells sluice's programs
 * from others', and what it prints (test/e2e/kube-cleanup.test.ts runs it
 * on real hooks).
 */
import test from 'ava';
import { classifyProgram, formatCleanupReport, type CleanupReport } from '../../src/daemon/cleanup.js';

const PIN_DIR = '/sys/fs/bpf/sluice';

function ctx(elsewhere: Record<number, string> = {}) {
  let scans = 0;
  return {
    pinDir: PIN_DIR,
    pinned: new Set([10, 11, 12]),
    pinnedElsewhere: () => {
      scans++;
      return new Map(Object.entries(elsewhere).map(([id, dir]) => [Number(id), dir]));
    },
    bpffs: '/sys/fs/bpf',
    scans: () => scans,
  };
}

test('a program using a map of the pin directory is sluice\'s, whatever its name', (t) => {
  const c = ctx();
  t.deepEqual(classifyProgram({ name: 'sluice_xdp', mapIds: [3, 11] }, c), { detach: true, reason: `its maps are pinned in ${PIN_DIR}` });
  t.true(classifyProgram({ name: 'renamed', mapIds: [12] }, c).detach);
  t.is(c.scans(), 0, 'no scan of bpffs is needed');
});

test('a program of another name and other maps is another tool\'s', (t) => {
  const c = ctx();
  t.deepEqual(classifyProgram({ name: 'xdp_pass', mapIds: [] }, c), { detach: false, reason: 'not sluice\'s' });
  t.deepEqual(classifyProgram({ name: 'cil_from_netdev', mapIds: [40, 41] }, c), { detach: false, reason: 'not sluice\'s' });
  t.is(c.scans(), 0);
});

test('a sluice program whose maps are pinned elsewhere is another dataplane\'s; pinned nowhere, an orphan', (t) => {
  const c = ctx({ 21: '/sys/fs/bpf/sluice-b' });
  const other = classifyProgram({ name: 'sluice_tc', mapIds: [20, 21] }, c);
  t.false(other.detach);
  t.is(other.reason, 'another sluice dataplane\'s, its maps pinned in /sys/fs/bpf/sluice-b (clean that one up with --pin-dir /sys/fs/bpf/sluice-b)');
  const orphan = classifyProgram({ name: 'sluice_xdp', mapIds: [30, 31] }, c);
  t.deepEqual(orphan, { detach: true, reason: 'a sluice program whose maps are pinned nowhere under /sys/fs/bpf' });
});

function report(over: Partial<CleanupReport> = {}): CleanupReport {
  return { netns: '/var/run/netns/node1', pinDir: PIN_DIR, stateDir: '/var/lib/sluice', detached: [], kept: [], unpinned: [], removed: [], removedDirs: [], left: [], ...over };
}

test('the report says what went and what stayed', (t) => {
  const text = formatCleanupReport(report({
    detached: [{ ifname: 'eth0', hook: 'XDP (native)', id: 42, name: 'sluice_xdp', reason: `its maps are pinned in ${PIN_DIR}` }],
    kept: [{ ifname: 'eth1', hook: 'tc ingress', id: 7, name: 'other', reason: 'not sluice\'s' }],
    unpinned: [`${PIN_DIR}/conntrack`, `${PIN_DIR}/vips`],
    removed: ['/var/lib/sluice/sluice.db'],
    removedDirs: [PIN_DIR],
    left: ['/var/lib/sluice: a mount point, kept (empty)'],
  }));
  t.is(text, [
    `detached program 'sluice_xdp' (id 42) from eth0 XDP (native): its maps are pinned in ${PIN_DIR}`,
    `unpinned 2 maps from ${PIN_DIR}: conntrack, vips`,
    'removed the store: /var/lib/sluice/sluice.db',
    `removed directory ${PIN_DIR}`,
    'left program \'other\' (id 7) on eth1 tc ingress: not sluice\'s',
    'left /var/lib/sluice: a mount point, kept (empty)',
  ].join('\n'));
});

test('a cleanup that found nothing says so first', (t) => {
  t.is(formatCleanupReport(report()), `nothing to clean up: no sluice program on the interfaces of /var/run/netns/node1, no pinned maps in ${PIN_DIR}, no store in /var/lib/sluice`);
  const { netns: _, ...here } = report();
  t.regex(formatCleanupReport(here), /^nothing to clean up: no sluice program on the interfaces of this network namespace,/);
});
