/**
 * The map capacities: defaults that fit a small node, sane bounds, one flag
 * each (daemon and agent), the same maps sized by each, and the build's
 * compile-time sizes equal to the defaults.
 */
import test from 'ava';
import { CAPACITY_FLAG, CAPACITY_RANGE, pinMismatchMessage } from '../../src/daemon/capacity.js';
import { CAPACITY_FLAGS, DAEMON_FLAGS } from '../../src/cli/daemon-flags.js';
import { KUBE_PROXY_FLAGS } from '../../src/cli/kube-proxy-flags.js';
import { UsageError } from '../../src/cli/output.js';
import { CAPACITY_MAPS, capacityOfMap, mapSizes, type DataplaneCapacity } from '../../src/dataplane/native-dataplane.js';
import { native } from '../../src/dataplane/native.js';
import { MAGLEV_MAX_SIZE, MAGLEV_SIZE_LADDER } from '../../src/model/table-size.js';
import { resolveDaemonOptions } from '../../src/daemon/daemon.js';

const NAMES = Object.keys(CAPACITY_RANGE) as Array<keyof DataplaneCapacity>;
const DEFAULTS = Object.fromEntries(NAMES.map((n) => [n, CAPACITY_RANGE[n].default])) as unknown as DataplaneCapacity;

test('the defaults: what each holds', (t) => {
  t.deepEqual(DEFAULTS, { conntrack: 262_144, conntrack6: 65_536, affinity: 65_536, frontends: 16_383, backends: 65_535, maglevSlots: 2_097_152, sockets: 16_384 });
  // Two entries a flow.
  t.is(DEFAULTS.conntrack / 2, 131_072);
  // 1,000 services of the smallest table, each with its next table beside it.
  t.true(DEFAULTS.maglevSlots >= 1000 * MAGLEV_SIZE_LADDER[0]! * 2);
  // Enough backend ids for every frontend's ids to have four backends.
  t.true(DEFAULTS.backends >= DEFAULTS.frontends * 4);
});

test('bounds: each default within them, the minimum of the Maglev slots holds the largest table twice', (t) => {
  for (const n of NAMES) {
    const r = CAPACITY_RANGE[n];
    t.true(r.min <= r.default && r.default <= r.max, n);
    t.true(Number.isSafeInteger(r.min) && Number.isSafeInteger(r.max), n);
    // Ids are __u32 and the per-CPU arrays must stay allocatable: 2^24 - 1 ids at most.
    if (n === 'frontends' || n === 'backends') t.is(r.max, (1 << 24) - 1, n);
  }
  t.true(CAPACITY_RANGE.maglevSlots.min >= 2 * MAGLEV_MAX_SIZE);
  t.is(CAPACITY_RANGE.maglevSlots.default % 2, 0, 'two slots per element');
  // LRU hashes keep per-CPU free lists: a floor so a tiny table does not thrash.
  for (const n of ['conntrack', 'affinity', 'sockets'] as const) t.true(CAPACITY_RANGE[n].min >= 1024, n);
});

test('one flag each, in the daemon and the agent, that parses within the bounds and says the default', (t) => {
  for (const n of NAMES) {
    const flag = CAPACITY_FLAGS.find((f) => f.field === `capacity.${n}`);
    t.truthy(flag, n);
    t.is(flag!.flags.split(' ')[0], CAPACITY_FLAG[n]);
    t.true(DAEMON_FLAGS.includes(flag!), `${n}: a daemon flag`);
    t.true(KUBE_PROXY_FLAGS.includes(flag!), `${n}: an agent flag`);
    t.regex(flag!.description, new RegExp(`default ${CAPACITY_RANGE[n].default.toLocaleString('en-US')}`), n);
    const r = CAPACITY_RANGE[n];
    t.is(flag!.parse!(String(r.min), undefined), r.min);
    t.is(flag!.parse!(String(r.max), undefined), r.max);
    t.throws(() => flag!.parse!(String(r.min - 1), undefined), { instanceOf: UsageError, message: `${CAPACITY_FLAG[n]}: must be an integer in ${r.min}..${r.max}, got ${r.min - 1}` });
    t.throws(() => flag!.parse!(String(r.max + 1), undefined), { instanceOf: UsageError });
  }
});

test('the daemon refuses a capacity out of bounds, naming it', (t) => {
  t.throws(() => resolveDaemonOptions({ capacity: { sockets: 10 } }), { message: 'capacity.sockets: must be an integer in 1024..16777216, got 10' });
  t.throws(() => resolveDaemonOptions({ capacity: { maglevSlots: 262_145 } }), { message: /^capacity.maglevSlots: must be an even integer/ });
  t.deepEqual(resolveDaemonOptions({ capacity: { frontends: 4 } }).capacity, { frontends: 4 });
});

test('map sizes: every map a capacity sizes, ids N need N + 1 entries, and back', (t) => {
  t.deepEqual(mapSizes(DEFAULTS), {
    conntrack: 262_144,
    conntrack6: 65_536,
    affinity: 65_536,
    services: 16_384, vips: 16_384, svc_frontends: 16_384, svc_stats: 16_384,
    backends: 65_536, backend_stats: 65_536, reply_nat: 65_536,
    maglev_slots: 1_048_576,
    sock_rnat: 16_384, sock_rnat6: 16_384,
  });
  t.deepEqual(mapSizes({ frontends: 4 }), { services: 5, vips: 5, svc_frontends: 5, svc_stats: 5 }, 'the per-CPU counters follow the flag');
  t.deepEqual(mapSizes({ backends: 100 }), { backends: 101, backend_stats: 101, reply_nat: 101 });
  for (const [name, size] of Object.entries(mapSizes(DEFAULTS))) {
    const [cap, v] = capacityOfMap(name, size)!;
    t.is(v, DEFAULTS[cap], name);
    t.true(CAPACITY_MAPS[cap].includes(name));
  }
  t.is(capacityOfMap('global_stats', 1), undefined);
});

test('the build\'s compile-time sizes are the defaults (a dataplane loaded without capacities)', (t) => {
  const k = native().constants();
  t.is(k['SLUICE_CT_SIZE'], DEFAULTS.conntrack);
  t.is(k['SLUICE_CT6_SIZE'], DEFAULTS.conntrack6);
  t.is(k['SLUICE_AFFINITY_SIZE'], DEFAULTS.affinity);
  t.is(k['SLUICE_MAX_SERVICES'], DEFAULTS.frontends + 1);
  t.is(k['SLUICE_MAX_VIPS'], DEFAULTS.frontends + 1);
  t.is(k['SLUICE_MAX_BACKENDS'], DEFAULTS.backends + 1);
  t.is(k['SLUICE_MAGLEV_SLOTS'], DEFAULTS.maglevSlots);
  t.is(k['SLUICE_SOCK_RNAT_SIZE'], DEFAULTS.sockets);
});

test('pinned maps of other sizes: every one named with the flag that sizes it, and the remedy', (t) => {
  const capacity = { conntrack: 1024, sockets: 2048 };
  const one = pinMismatchMessage('/sys/fs/bpf/sluice', [{ map: 'conntrack', capacity: 'conntrack', pinned: 262_144, wanted: 1024 }], capacity);
  t.is(one, 'the pinned map in /sys/fs/bpf/sluice: conntrack has 262144 entries, --conntrack-size 1024 gives it 1024: --reset-dataplane rebuilds the maps at the sizes of the flags (every connection is dropped)');
  const two = pinMismatchMessage('/sys/fs/bpf/sluice', [
    { map: 'conntrack', capacity: 'conntrack', pinned: 262_144, wanted: 1024 },
    { map: 'sock_rnat', capacity: 'sockets', pinned: 16_384, wanted: 2048 },
  ], capacity);
  t.regex(two, /^the pinned maps in \/sys\/fs\/bpf\/sluice: conntrack has 262144 entries, --conntrack-size 1024 gives it 1024; sock_rnat has 16384 entries, --socket-lb-size 2048 gives it 2048: --reset-dataplane/);
});
