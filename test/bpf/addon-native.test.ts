// The native addon against the real kernel: load, errors, pins, Maglev swaps,
// test runs, close. Needs root and bpffs at /sys/fs/bpf.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { native as loadNative, type AddonDataplane as Dataplane } from '../../src/dataplane/native.js';
import { XDP_PASS } from '../helpers/packet.js';

const native = loadNative();

async function loaded(t: { teardown(fn: () => void): void }, opts = {}): Promise<Dataplane> {
  const dp = new native.Dataplane();
  t.teardown(() => dp.close());
  await dp.load(opts);
  return dp;
}

function svcKey(vip: number, port: number): Buffer {
  const k = Buffer.alloc(20);
  k.writeUInt32BE(vip, 0);
  k.writeUInt16BE(port, 16);
  k[18] = 6; // TCP
  k[19] = 2; // SLUICE_AF_INET
  return k;
}

test('layouts() and constants() match sluice_shared.h', (t) => {
  const l = native.layouts();
  const sizes = Object.fromEntries(Object.entries(l).map(([name, v]) => [name, v.size]));
  t.deepEqual(sizes, {
    svc_key: 20, svc_value: 24, vip_key: 20, vip_value: 4, backend_value: 24,
    ct_key: 16, ct_value: 24, affinity_key: 24, affinity_value: 16,
    lb_stats: 32, global_stats: 232, rnat_key: 20, rnat_value: 8, lookup_result: 56,
    node_config: 16, sock_rnat_key: 16, sock_rnat_value: 8,
    ct6_key: 40, ct6_value: 36, node_config6: 16, sock_rnat6_key: 32, sock_rnat6_value: 20,
  });
  t.deepEqual(l.svc_key?.offsets, { addr: 0, port: 16, proto: 18, family: 19 });
  t.deepEqual(l.ct_key?.offsets, {
    saddr: 0, daddr: 4, sport: 8, dport: 10, proto: 12, pad: 13,
  });
  t.deepEqual(l.ct_value?.offsets, {
    nat_addr: 0, nat_port: 4, state: 6, flags: 7, backend_id: 8, svc_id: 12, created: 16, expires: 20,
  });
  t.is(l.backend_value?.offsets.svc_id, 20);
  t.is(l.global_stats?.offsets.fib_miss, 104);
  t.is(l.global_stats?.offsets.reply_restored, 112);
  t.is(l.global_stats?.offsets.reply_ambiguous, 120);
  t.is(l.global_stats?.offsets.hairpin_flows, 128);
  t.is(l.global_stats?.offsets.sock_translated, 136);
  t.is(l.global_stats?.offsets.reject_rate_limited, 160);
  t.is(l.global_stats?.offsets.icmp_frag_needed, 224);

  const c = native.constants();
  t.is(c.SLUICE_MAGLEV_MAX, 131071);
  t.is(c.SLUICE_AF_INET6, 10);
  t.is(c.SLUICE_CT_F_HAIRPIN, 1);
  t.is(c.SLUICE_CT_F_REPLY, 2);
  t.is(c.SLUICE_CT_NEW, 1);
  t.true((c.numCpus ?? 0) >= 1);
  t.regex(native.libbpfVersion(), /^v?1\.\d+/);
});

test('ifIndex finds lo and throws ENODEV for a missing device', (t) => {
  t.is(native.ifIndex('lo'), 1);
  const err = t.throws(() => native.ifIndex('sluice-nope0')) as NodeJS.ErrnoException;
  t.is(err.code, 'ENODEV');
  t.is(err.syscall, 'if_nametoindex');
});

test('a garbage object rejects with code, errno and syscall', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-addon-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'garbage.bpf.o');
  writeFileSync(path, Buffer.from('this is not an ELF object, just some garbage bytes'));

  const dp = new native.Dataplane();
  t.teardown(() => dp.close());
  const err = (await t.throwsAsync(dp.load({ objectPath: path }))) as NodeJS.ErrnoException;
  t.is(typeof err.code, 'string');
  t.true(typeof err.errno === 'number' && err.errno > 0);
  t.is(err.syscall, 'bpf_object__open_file');
  t.true(err.message.includes(path), err.message);
});

test('errors: bad ifindex, wrong key size, unknown map, second load', async (t) => {
  const dp = await loaded(t);

  const attach = t.throws(() => dp.attachXdp(999999, 'generic')) as NodeJS.ErrnoException;
  t.true(typeof attach.errno === 'number' && attach.errno > 0);
  t.true(attach.code === 'ENODEV' || attach.code === 'EINVAL', String(attach.code));
  t.is(attach.syscall, 'bpf_xdp_attach');

  const size = t.throws(() => dp.mapUpdate('services', Buffer.alloc(19), Buffer.alloc(16))) as NodeJS.ErrnoException;
  t.is(size.code, 'EINVAL');
  t.is(size.syscall, 'mapUpdate');
  t.true(size.message.includes('services: key is 19 bytes, map wants 20'), size.message);

  const unknown = t.throws(() => dp.mapLookup('no_such_map', Buffer.alloc(4))) as NodeJS.ErrnoException;
  t.is(unknown.code, 'ENOENT');

  const again = (await t.throwsAsync(dp.load({}))) as NodeJS.ErrnoException;
  t.is(again.code, 'EALREADY');
});

test('a second instance reuses the pinned maps and their contents', async (t) => {
  const pinDir = `/sys/fs/bpf/sluice-test-addon-${process.pid}`;
  const first = new native.Dataplane();
  const second = new native.Dataplane();
  t.teardown(() => {
    for (const dp of [second, first]) {
      try {
        dp.unpin();
      } catch {
        // not loaded, or already unpinned
      }
      dp.close();
    }
    rmSync(pinDir, { recursive: true, force: true });
  });

  const r1 = await first.load({ pinDir });
  t.deepEqual(r1.reused, []);
  t.is(first.pinDir, pinDir);
  const key = svcKey(0x0a60000a, 80);
  const value = Buffer.from([7, 0, 0, 0, 1, 0, 0, 0, 30, 0, 0, 0, 0xfd, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0]);
  first.mapUpdate('services', key, value);

  const r2 = await second.load({ pinDir });
  t.true(r2.reused.includes('services'), r2.reused.join());
  t.true(r2.reused.includes('maglev_slots'), r2.reused.join());
  t.deepEqual(second.mapLookup('services', key), value);
});

test('a table region: written and read back, bounds checked before any syscall', async (t) => {
  const dp = await loaded(t);
  const small = Uint32Array.from({ length: 1021 }, (_, i) => (i * 7919) % 10);
  dp.arrayWriteRegions('maglev_slots', Uint32Array.of(5000), [small]);
  t.deepEqual(dp.arrayRead('maglev_slots', 5000, 1021), small);
  const big = Uint32Array.from({ length: 2039 }, (_, i) => 100 + (i % 3));
  dp.arrayWriteRegions('maglev_slots', Uint32Array.of(0), [big]);
  t.deepEqual(dp.arrayRead('maglev_slots', 0, 2039), big);
  t.deepEqual(dp.arrayRead('maglev_slots', 5000, 1021), small, 'a neighbouring region is untouched');

  const cap = dp.mapInfo('maglev_slots').maxEntries * 2;
  const range = t.throws(() => dp.arrayWriteRegions('maglev_slots', Uint32Array.of(cap - 10), [new Uint32Array(11)])) as NodeJS.ErrnoException;
  t.is(range.code, 'EINVAL');
  t.true(range instanceof RangeError);
  t.regex(range.message, /not within/);
  const notArray = t.throws(() => dp.arrayRead('services', 0, 1)) as NodeJS.ErrnoException;
  t.is(notArray.code, 'EINVAL');
});

test('table regions in one call: close ones through one mapping, far ones one by one, checked before any write', async (t) => {
  const dp = await loaded(t);
  const cap = dp.mapInfo('maglev_slots').maxEntries * 2;
  const table = (n: number, seed: number): Uint32Array => Uint32Array.from({ length: n }, (_, i) => seed + (i % 5));
  // Close together (one mapping) and unaligned to pages.
  const close = [table(1021, 10), table(1021, 20), table(7, 30)];
  const closeStarts = Uint32Array.of(3, 1024, 2045);
  dp.arrayWriteRegions('maglev_slots', closeStarts, close);
  close.forEach((tb, i) => t.deepEqual(dp.arrayRead('maglev_slots', closeStarts[i]!, tb.length), tb, `close region ${i}`));
  // Far apart (copied one by one): the last slots of the array and one near the start.
  const far = [table(11, 40), table(13, 50)];
  const farStarts = Uint32Array.of(cap - 11, 9000);
  dp.arrayWriteRegions('maglev_slots', farStarts, far);
  far.forEach((tb, i) => t.deepEqual(dp.arrayRead('maglev_slots', farStarts[i]!, tb.length), tb, `far region ${i}`));
  t.deepEqual(dp.arrayRead('maglev_slots', 3, 1021), close[0], 'the earlier regions are untouched');

  // One bad region refuses the whole call, before anything is written.
  const before = dp.arrayRead('maglev_slots', 0, 4096);
  const bad = t.throws(() => dp.arrayWriteRegions('maglev_slots', Uint32Array.of(0, cap - 2), [table(100, 60), table(3, 60)])) as NodeJS.ErrnoException;
  t.true(bad instanceof RangeError);
  t.regex(bad.message, /not within/);
  t.deepEqual(dp.arrayRead('maglev_slots', 0, 4096), before);
  const mismatch = t.throws(() => dp.arrayWriteRegions('maglev_slots', Uint32Array.of(0), [])) as NodeJS.ErrnoException;
  t.is(mismatch.code, 'EINVAL');
});

test('testRun passes a garbage frame and counts it', async (t) => {
  const dp = await loaded(t);
  const frame = Buffer.from('sluice-garbage-frame');
  t.is(frame.length, 20);
  const r = dp.testRun('xdp', frame);
  t.is(r.retval, XDP_PASS);
  t.deepEqual(r.data, frame);

  const sum = dp.perCpuSum('global_stats', Buffer.alloc(4));
  t.is(sum?.length, 232);
  t.is(sum?.readBigUInt64LE(0), 1n, 'rx_packets');

  const live = await dp.testRunLive(Buffer.alloc(64), { repeat: 16, ingressIfindex: 1 });
  t.true(live.wallNs > 0);
});

test('close() is idempotent and methods throw afterwards', async (t) => {
  const dp = new native.Dataplane();
  await dp.load({});
  dp.close();
  dp.close();
  const err = t.throws(() => dp.mapLookup('services', Buffer.alloc(20))) as NodeJS.ErrnoException;
  t.is(err.code, 'ECLOSED');
  t.is(err.syscall, 'mapLookup');
  t.is(((await t.throwsAsync(dp.load({}))) as NodeJS.ErrnoException).code, 'ECLOSED');
});
