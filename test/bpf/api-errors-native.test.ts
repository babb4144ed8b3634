/**
 * The table of bad API requests against the real maps: every one is refused
 * with the right status and leaves every BPF map byte-for-byte as it was
 * (dumped before and after, the whole Maglev table array included).
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { startApi, unary, webService, type RawClient } from '../helpers/api.js';
import { CASES, type Case } from '../helpers/api-error-cases.js';
import { buildPacket } from '../helpers/packet.js';

const MAPS = ['services', 'vips', 'backends', 'conntrack', 'affinity'];

function dump(dp: NativeDataplane): string {
  const out: Record<string, string> = {};
  for (const m of MAPS) {
    const d = dp.raw.mapDump(m);
    out[m] = `${d.count}:${d.keys.toString('hex')}:${d.values.toString('hex')}`;
  }
  // The whole table array: a write to any region would show.
  const slots = dp.raw.arrayRead('maglev_slots', 0, dp.tableCapacity());
  out['maglev_slots'] = Buffer.from(slots.buffer).toString('hex');
  return JSON.stringify(out);
}

test('bad requests leave the real maps byte-for-byte unchanged', async (t) => {
  const dp = await NativeDataplane.open({ fibRedirect: false, capacity: { conntrack: 4096, maglevSlots: 65536 } });
  t.teardown(() => dp.close());
  const f = await startApi(t, { dataplane: dp, tag: 'native-errors' });
  await unary(f.raw.registry, 'ApplyService', { service: webService('owner', '10.96.0.10', ['10.1.0.1', '10.1.0.2']) });
  await unary(f.raw.registry, 'ApplyService', { service: webService('web', '10.96.0.20', ['10.1.0.1', '10.1.0.3'], { sessionAffinity: { timeoutSeconds: 60 } }) });
  // Some flows, so that conntrack and affinity are not empty.
  for (let p = 1000; p < 1010; p++) {
    dp.raw.testRun('xdp', buildPacket({ saddr: '192.168.1.1', daddr: '10.96.0.10', proto: 'tcp', sport: p, dport: 80 }));
    dp.raw.testRun('xdp', buildPacket({ saddr: '192.168.1.2', daddr: '10.96.0.20', proto: 'tcp', sport: p, dport: 80 }));
  }
  const start = dump(dp);
  t.true(JSON.parse(start).conntrack.startsWith('40:'), 'the setup made 20 flows (40 entries)');

  const clients: Record<Case['client'], RawClient> = { registry: f.raw.registry, registration: f.raw.registration, operations: f.raw.operations };
  let before = start;
  for (const c of CASES) {
    let code: grpc.status | undefined;
    try {
      await unary(clients[c.client], c.method, c.request(f));
    } catch (e) {
      code = (e as grpc.ServiceError).code;
    }
    t.is(code, c.code, `${c.description}: code`);
    const after = dump(dp);
    t.is(after, before, `${c.description}: a map changed`);
    before = after;
  }
});
