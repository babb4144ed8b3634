/**
 * The traffic benchmark's parts, checked with small counts: the live-frames
 * generator sends exactly the packets it claims (counted at the sink), its
 * flows are exactly the distinct 5-tuples it claims (counted in sluice's
 * conntrack), and the counts of generator, sluice and sink reconcile,
 * backend by backend, through XDP and through tc.
 */
import test from 'ava';
import { createTrafficTopology, type TrafficTopology } from '../../bench/lib/traffic-topology.js';
import { CT_FORWARD } from '../../src/dataplane/codec.js';
import { Generator } from '../../bench/lib/generators.js';
import { serviceSet, startPeer, type Peer } from '../../bench/lib/peers.js';
import { Sink } from '../../bench/lib/sink.js';
import { measure } from '../../bench/lib/traffic.js';
import { conntrackEntries } from '../helpers/conntrack.js';

const PACKETS = 20_000;
const FLOWS = 1_000;

let topo: TrafficTopology;
let gen: Generator;
let sink: Sink;

test.before(async () => {
  topo = await createTrafficTopology({ tag: 'trh', backends: 10 });
  gen = await Generator.load(topo);
  sink = await Sink.attach(topo);
});

test.after.always(async () => {
  try {
    sink?.close();
  } catch {
    /* the namespace is removed below anyway */
  }
  gen?.close();
  await topo?.destroy();
});

test.serial('the generator sends exactly what it claims: every packet reaches the sink through the plain forwarder', async (t) => {
  const set = serviceSet(topo, 1);
  const fwd = await startPeer('forwarder', topo, set.all, FLOWS);
  try {
    const s = await measure(topo, gen, sink, fwd, set.measured, { flows: FLOWS, frameSize: 128, services: 1, packets: PACKETS, warmup: false });
    t.is(s.offered, PACKETS, 'the generator counted every packet asked of it');
    t.is(s.forwarded, PACKETS, 'the sink counted every packet the generator sent');
    t.is(s.dropped, 0);
    const bytes = sink.read().bytes;
    t.true(bytes >= PACKETS * 128, `the sink saw frames of the configured size (${bytes} bytes so far)`);
  } finally {
    await fwd.stop();
  }
});

for (const peer of ['sluice-xdp', 'sluice-tc'] as Peer[]) {
  test.serial(`${peer}: generator, sluice and sink agree, backend by backend, and the flows are distinct`, async (t) => {
    const set = serviceSet(topo, 3);
    const running = await startPeer(peer, topo, set.all, FLOWS);
    try {
      const s = await measure(topo, gen, sink, running, set.measured, { flows: FLOWS, frameSize: 64, services: 3, packets: PACKETS });
      t.is(s.offered, PACKETS);
      t.is(s.sluice?.rxPackets, PACKETS, 'sluice saw every packet the generator sent');
      t.is(s.sluice?.forwarded, PACKETS, 'sluice redirected every one of them after its FIB lookup');
      t.is(s.forwarded, PACKETS, 'the sink counted every one');
      t.deepEqual(s.sluice?.backendPackets, s.perBackend, "sluice's per-backend counters equal the sink's per-destination counts");
      t.true(s.perBackend.every((n) => n > 0), `every backend got packets: ${s.perBackend.join(', ')}`);
      const forward = conntrackEntries(running.sluice!.dp).filter((e) => e.value.dir === CT_FORWARD);
      t.is(forward.length, FLOWS, 'conntrack holds one forward entry per distinct flow the generator claims');
    } finally {
      await running.stop();
    }
  });
}
