/**
 * Dataplane.allStats, the batch read a scrape makes of svc_stats and
 * backend_stats, against the per-id reads, after traffic through the real
 * program (BPF_PROG_TEST_RUN).
 */
import test from 'ava';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import type { ServiceSpec } from '../../src/model/service.js';
import { buildPacket } from '../helpers/packet.js';

const web: ServiceSpec = {
  name: 'web', address: '10.96.7.10', port: 80, protocol: 'tcp',
  backends: [{ address: '10.1.7.11', port: 8080 }, { address: '10.1.7.12', port: 8080 }, { address: '10.1.7.13', port: 8080 }],
};
const dns: ServiceSpec = {
  name: 'dns', address: '10.96.7.53', port: 53, protocol: 'udp',
  backends: [{ address: '10.1.7.21', port: 5353 }, { address: '10.1.7.22', port: 5353 }],
};

test('allStats equals the per-id reads of every id after traffic', async (t) => {
  const dp = await NativeDataplane.open({ fibRedirect: false, capacity: { frontends: 100, backends: 1000, conntrack: 4096, maglevSlots: 262_144 } });
  t.teardown(() => dp.close());
  const lb = new LoadBalancer(dp);
  for (const s of [web, dns]) await lb.apply(s);
  let sent = 0;
  for (let i = 0; i < 40; i++) {
    const to = i % 2 === 0 ? web : dns;
    const frame = buildPacket({ saddr: `192.168.7.${1 + (i % 5)}`, daddr: to.address, proto: to.protocol, sport: 20000 + i, dport: to.port, ...(to.protocol === 'tcp' ? { tcpFlags: { syn: true } } : {}) });
    dp.raw.testRun('xdp', frame);
    sent++;
  }
  for (const kind of ['service', 'backend'] as const) {
    const all = dp.allStats(kind);
    const ids = kind === 'service' ? dp.idCapacity().services : dp.idCapacity().backends;
    t.is(all.size, ids + 1, `${kind}: one entry per id, id 0 included`);
    let packets = 0;
    for (let id = 0; id < all.size; id++) {
      const one = kind === 'service' ? dp.serviceStats(id) : dp.backendStats(id);
      t.deepEqual(all.lbStats(id), one, `${kind} id ${id}`);
      packets += all.packets(id);
    }
    t.is(packets, sent, `${kind}: every frame counted once`);
  }
  const webIds = lb.ids('web');
  t.is(dp.allStats('service').packets(webIds.service), 20);
  t.true(dp.allStats('service').bytes(webIds.service) > 20 * 40, 'bytes count whole frames');
  t.is(dp.allStats('service').newConnections(webIds.service), 20);
});
