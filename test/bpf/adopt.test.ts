/**
 * A restarted control plane adopts the pinned maps of a running dataplane:
 * services, backends, Maglev tables and conntrack come back as they were;
 * a pin of an incompatible shape is refused with a clear error, not
 * silently replaced.
 */
import test from 'ava';
import { rm } from 'node:fs/promises';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import type { NativeError } from '../../src/dataplane/native.js';
import { buildPacket } from '../helpers/packet.js';
import { conntrackEntries } from '../helpers/conntrack.js';
import { encodeU32 } from '../../src/dataplane/codec.js';
import { VIP_FILTER_WORDS } from '../../src/dataplane/vip-filter.js';

const pinDir = `/sys/fs/bpf/sluice-test-adopt-${process.pid}`;

test.after.always(async () => {
  await rm(pinDir, { recursive: true, force: true });
});

test('second instance sees the first one\'s services, tables and flows; a resized pin is refused', async (t) => {
  const first = await NativeDataplane.open({ pinDir, fibRedirect: false, capacity: { conntrack: 4096, maglevSlots: 65536 } });
  t.teardown(() => first.close());
  t.deepEqual(first.reused, [], 'a fresh pin directory has nothing to adopt');
  const lb = new LoadBalancer(first);
  await lb.apply({
    name: 'web', address: '10.96.0.10', port: 80, protocol: 'tcp',
    backends: [{ address: '10.1.0.1', port: 8080 }, { address: '10.1.0.2', port: 8080 }],
  });
  const svcId = lb.ids('web').service;
  first.raw.testRun('xdp', buildPacket({ saddr: '192.168.1.1', daddr: '10.96.0.10', proto: 'tcp', sport: 1234, dport: 80 }));
  const flows = conntrackEntries(first);
  t.is(flows.length, 2, 'forward and reply entries');

  const second = await NativeDataplane.open({ pinDir, fibRedirect: false, capacity: { conntrack: 4096, maglevSlots: 65536 } });
  t.teardown(() => second.close());
  for (const m of ['services', 'vips', 'backends', 'maglev_slots', 'conntrack', 'affinity', 'svc_stats', 'backend_stats', 'global_stats']) {
    t.true(second.reused.includes(m), `map ${m} was not adopted`);
  }
  t.deepEqual(second.listServices(), first.listServices());
  t.deepEqual(second.listBackends(), first.listBackends());
  t.deepEqual(second.getMaglevTable(svcId), first.getMaglevTable(svcId));
  t.deepEqual(conntrackEntries(second), flows);
  t.is(second.serviceStats(svcId).newConnections, 1n, 'counters survive too');

  const err = await t.throwsAsync<NativeError>(NativeDataplane.open({ pinDir, capacity: { conntrack: 8192, maglevSlots: 65536 } }));
  t.is(err?.syscall, 'bpf_object__load');
  t.truthy(err?.code);
  t.regex(err?.message ?? '', /conntrack|pinned/, 'the error says which pin did not fit');

  first.unpin();
});

test('the VIP filter is rebuilt from the pinned VIPs at every open: an emptied filter never hides a VIP', async (t) => {
  const dir = `${pinDir}-filter`;
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = await NativeDataplane.open({ pinDir: dir, fibRedirect: false, capacity: { conntrack: 4096, maglevSlots: 65536 } });
  t.teardown(() => first.close());
  const lb = new LoadBalancer(first);
  await lb.apply({ name: 'web', address: '10.96.0.11', port: 80, protocol: 'tcp', backends: [{ address: '10.1.0.1', port: 8080 }] });
  const syn = (sport: number): Buffer => buildPacket({ saddr: '192.168.1.1', daddr: '10.96.0.11', proto: 'tcp', sport, dport: 80 });
  t.is([...first.raw.testRun('xdp', syn(2001)).data.subarray(30, 34)].join('.'), '10.1.0.1', 'balanced');
  // As a dataplane of an earlier version would leave it: no filter bits at all.
  const zero = Buffer.alloc(8);
  for (let w = 0; w < VIP_FILTER_WORDS; w++) first.raw.mapUpdate('vip_filter', encodeU32(w), zero);
  t.is([...first.raw.testRun('xdp', syn(2002)).data.subarray(30, 34)].join('.'), '10.96.0.11', 'with the filter emptied, the VIP is taken for no VIP');
  const second = await NativeDataplane.open({ pinDir: dir, fibRedirect: false, capacity: { conntrack: 4096, maglevSlots: 65536 } });
  t.teardown(() => second.close());
  t.is([...second.raw.testRun('xdp', syn(2003)).data.subarray(30, 34)].join('.'), '10.1.0.1', 'the next open rebuilt it');
  // Removing the VIP clears its bit; another VIP of the same bit would keep it (unit test).
  await new LoadBalancer(second).delete('web').catch(() => undefined);
  first.unpin();
});
