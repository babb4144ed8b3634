/**
 * The programmatic API over the fake dataplane: write order (never a
 * half-built service), validation errors that name the field and change
 * nothing, ids, drain and delete semantics in the maps.
 */
import test from 'ava';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import { SluiceError } from '../../src/errors.js';
import { BACKEND_FLAG_DRAINING, SVC_FLAG_AFFINITY, endpointCode } from '../../src/dataplane/codec.js';
import type { ServiceSpec } from '../../src/model/service.js';

const web: ServiceSpec = {
  name: 'web',
  address: '10.96.0.10',
  port: 80,
  protocol: 'tcp',
  backends: [
    { address: '10.1.0.1', port: 8080 },
    { address: '10.1.0.2', port: 8080 },
    { address: '10.1.0.3', port: 8080, weight: 2 },
  ],
};

function snapshot(dp: FakeDataplane): string {
  return JSON.stringify({
    s: [...dp.services.entries()],
    v: [...dp.vips.entries()],
    b: [...dp.backends.entries()],
    t: [...dp.tables.entries()].map(([k, v]) => [k, Array.from(v)]),
  });
}

test('apply writes backends, then the table, then the service and VIP', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp);
  await lb.apply(web);
  const order = dp.ops.map((o) => o.op).filter((op) => !op.startsWith('reset'));
  t.deepEqual(order, ['putBackend', 'putBackend', 'putBackend', 'writeTable', 'putService', 'putVip', 'putReply', 'putReply', 'putReply']);
  const { service, backends } = lb.ids('web');
  const table = dp.getMaglevTable(service)!;
  t.is(table.length, 1021, 'default table size for 3 backends');
  const share = new Map<number, number>();
  for (const id of table) share.set(id, (share.get(id) ?? 0) + 1);
  const w3 = share.get(backends.get('10.1.0.3:8080')!)!;
  const w1 = share.get(backends.get('10.1.0.1:8080')!)!;
  t.true(Math.abs(w3 / w1 - 2) < 0.05, `weight 2 backend holds ${w3} slots vs ${w1}`);
});

test('draining takes a backend out of the table but keeps it in the backends map', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp);
  await lb.apply(web);
  await lb.setBackendState('web', '10.1.0.1', 8080, 'draining');
  const { service, backends } = lb.ids('web');
  const id = backends.get('10.1.0.1:8080')!;
  t.false(dp.getMaglevTable(service)!.includes(id), 'drained backend still in the Maglev table');
  t.is(dp.backends.get(id)?.flags, BACKEND_FLAG_DRAINING);
  await lb.removeBackend('web', '10.1.0.1', 8080);
  t.false(dp.backends.has(id), 'deleted backend still in the backends map');
});

test('a removed backend is deleted only after the new table is in place', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp);
  await lb.apply(web);
  dp.ops.length = 0;
  await lb.removeBackend('web', '10.1.0.2', 8080);
  const ops = dp.ops.map((o) => o.op);
  t.true(ops.indexOf('writeTable') < ops.indexOf('deleteBackend'), ops.join(','));
});

test('a service with no active backend loses its table; affinity sets the flag', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp);
  await lb.apply({ ...web, backends: [], sessionAffinity: { timeoutSeconds: 60 } });
  const { service } = lb.ids('web');
  t.is(dp.getMaglevTable(service), null);
  const v = dp.listServices()[0]!.value;
  t.is(v.flags & SVC_FLAG_AFFINITY, SVC_FLAG_AFFINITY);
  t.is(v.affinityTimeoutSec, 60);
});

const bad: Array<[string, Partial<ServiceSpec> | ((s: ServiceSpec) => ServiceSpec), string]> = [
  ['bad VIP', { address: '10.96.0' }, 'address'],
  ['port 0', { port: 0 }, 'port'],
  ['port too big', { port: 65536 }, 'port'],
  ['unknown protocol', { protocol: 'sctp' as never }, 'protocol'],
  ['bad backend address', (s) => ({ ...s, backends: [{ address: 'x', port: 1 }] }), 'backends[0].address'],
  ['backend port 0', (s) => ({ ...s, backends: [{ address: '10.0.0.1', port: 0 }] }), 'backends[0].port'],
  ['weight out of range', (s) => ({ ...s, backends: [{ address: '10.0.0.1', port: 1, weight: 1001 }] }), 'backends[0].weight'],
  ['duplicate backend', (s) => ({ ...s, backends: [{ address: '10.0.0.1', port: 1 }, { address: '10.0.0.1', port: 1 }] }), 'backends[1]'],
  ['table size not prime', { tableSize: 1000 }, 'tableSize'],
  ['table size too small', { tableSize: 7 }, 'tableSize'],
  ['affinity timeout 0', { sessionAffinity: { timeoutSeconds: 0 } }, 'sessionAffinity.timeoutSeconds'],
  ['too many backends', (s) => ({ ...s, backends: Array.from({ length: 1400 }, (_, i) => ({ address: `10.2.${i >> 8}.${i & 255}`, port: 80 })) }), 'backends'],
  ['an IPv6 backend of an IPv4 VIP', (s) => ({ ...s, backends: [{ address: '10.0.0.1', port: 1 }, { address: '2001:db8::1', port: 1 }] }), 'backends[1].address'],
  ['an IPv4 backend of an IPv6 VIP', (s) => ({ ...s, address: '2001:db8::10', backends: [{ address: '10.0.0.1', port: 1 }] }), 'backends[0].address'],
  ['a VIP not in RFC 5952 form', { address: '2001:DB8::10', backends: [] }, 'address'],
  ['a backend not in RFC 5952 form', (s) => ({ ...s, address: '2001:db8::10', backends: [{ address: '2001:db8:0::1', port: 1 }] }), 'backends[0].address'],
  ['a link-local IPv6 VIP', { address: 'fe80::10', backends: [] }, 'address'],
];

for (const [name, change, field] of bad) {
  test(`invalid request (${name}) names ${field} and changes nothing`, async (t) => {
    const dp = new FakeDataplane();
    const lb = new LoadBalancer(dp);
    await lb.apply(web);
    const before = snapshot(dp);
    const spec = typeof change === 'function' ? change(structuredClone(web)) : { ...structuredClone(web), ...change };
    const err = await t.throwsAsync(lb.apply(spec), { instanceOf: SluiceError });
    t.is(err?.code, 'INVALID_ARGUMENT');
    t.is(err?.field, field);
    t.is(snapshot(dp), before, 'the dataplane changed');
  });
}

test('a VIP:port:protocol owned by another service is refused', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp);
  await lb.apply(web);
  const before = snapshot(dp);
  const err = await t.throwsAsync(lb.apply({ ...web, name: 'other' }), { instanceOf: SluiceError });
  t.is(err?.code, 'ALREADY_EXISTS');
  t.is(snapshot(dp), before);
  await t.notThrowsAsync(lb.apply({ ...web, name: 'other', protocol: 'udp' }), 'same VIP:port on UDP is another service');
});

test('delete removes the service first, then its table and backends; the VIP goes with its last service', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp);
  await lb.apply(web);
  await lb.apply({ ...web, name: 'dns', port: 53, protocol: 'udp' });
  dp.ops.length = 0;
  await lb.delete('web');
  const ops = dp.ops.map((o) => o.op);
  t.true(ops.includes('deleteService'), ops.join(','));
  t.true(ops.indexOf('deleteService') < ops.indexOf('deleteBackend'), `service must go before its backends: ${ops.join(',')}`);
  t.deepEqual(dp.listVips(), ['10.96.0.10'], 'VIP still carries dns');
  await lb.delete('dns');
  t.deepEqual(dp.listVips(), []);
  t.is(dp.backends.size, 0);
  t.is(dp.listServices().length, 0);
  await t.throwsAsync(lb.delete('dns'), { instanceOf: SluiceError, message: /no service/ });
});

test('an adopted dataplane keeps its ids out of new allocations', async (t) => {
  const dp = new FakeDataplane();
  const first = new LoadBalancer(dp);
  await first.apply(web);
  const used = first.ids('web');
  const second = new LoadBalancer(dp);
  await second.apply({ ...web, name: 'api', port: 443 });
  const ids = second.ids('api');
  t.not(ids.service, used.service);
  for (const id of ids.backends.values()) t.false([...used.backends.values()].includes(id), `backend id ${id} reused`);
});

test('reply_nat: an endpoint of one service port names its backend; shared by two, it is ambiguous (0); unique again when one goes', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp);
  const a: ServiceSpec = { name: 'a', address: '10.96.1.1', port: 80, protocol: 'tcp', backends: [{ address: '10.1.0.1', port: 8080 }, { address: '10.1.0.2', port: 8080 }] };
  const b: ServiceSpec = { name: 'b', address: '10.96.1.2', port: 80, protocol: 'tcp', backends: [{ address: '10.1.0.2', port: 8080 }] };
  const u: ServiceSpec = { name: 'u', address: '10.96.1.2', port: 53, protocol: 'udp', backends: [{ address: '10.1.0.2', port: 8080 }] };
  const ep = (address: string, port: number, proto: 'tcp' | 'udp' = 'tcp'): number => endpointCode(address, port, proto);
  await lb.applyMany([a, u]);
  const ida = lb.ids('a').backends;
  t.is(dp.replies.get(ep('10.1.0.1', 8080)), ida.get('10.1.0.1:8080'));
  t.is(dp.replies.get(ep('10.1.0.2', 8080)), ida.get('10.1.0.2:8080'));
  t.is(dp.replies.get(ep('10.1.0.2', 8080, 'udp')), lb.ids('u').backends.get('10.1.0.2:8080'), 'UDP is another endpoint');

  dp.ops.length = 0;
  await lb.apply(b);
  t.is(dp.replies.get(ep('10.1.0.2', 8080)), 0, 'shared by a and b');
  t.is(dp.replies.get(ep('10.1.0.1', 8080)), ida.get('10.1.0.1:8080'));
  t.deepEqual(dp.ops.filter((o) => o.op.endsWith('Reply')).map((o) => o.op), ['putReply'], 'only the shared endpoint was written');

  // A change that fails leaves reply_nat as it was.
  const orig = dp.writeTables.bind(dp);
  dp.writeTables = () => {
    throw Object.assign(new Error('map full'), { code: 'E2BIG' });
  };
  await t.throwsAsync(lb.apply({ ...b, backends: [{ address: '10.1.0.3', port: 8080 }] }));
  dp.writeTables = orig;
  t.is(dp.replies.get(ep('10.1.0.2', 8080)), 0);
  t.false(dp.replies.has(ep('10.1.0.3', 8080)));

  await lb.delete('a');
  t.is(dp.replies.get(ep('10.1.0.2', 8080)), lb.ids('b').backends.get('10.1.0.2:8080'), "b's alone again");
  t.false(dp.replies.has(ep('10.1.0.1', 8080)), 'gone with a');
  await lb.deleteMany(['b', 'u']);
  t.is(dp.replies.size, 0);
});

test('a backend a service no longer has gives its id back: churn never runs out of ids', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp, { maxBackends: 8 });
  await lb.apply(web);
  const free = lb.room().backendIds.free;
  // Pods replaced one by one, far more often than there are ids.
  for (let i = 0; i < 40; i++) {
    await lb.removeBackend('web', '10.1.0.1', 8080);
    t.is(lb.room().backendIds.free, free + 1, `after removal ${i}`);
    await lb.apply({ ...web, backends: web.backends.map((b) => (b.address === '10.1.0.2' ? { ...b, address: `10.1.1.${i + 1}` } : b)) });
    await lb.apply(web);
    t.is(lb.room().backendIds.free, free, `after churn ${i}`);
  }
  // A failed change gives nothing away: the ids it would have freed stay taken.
  await t.throwsAsync(lb.apply({ ...web, backends: [...web.backends.slice(1), ...Array.from({ length: 8 }, (_, k) => ({ address: `10.1.2.${k + 1}`, port: 8080 }))] }), { message: /no free backend id/ });
  t.is(lb.room().backendIds.free, free);
  await lb.delete('web');
  t.is(lb.room().backendIds.free, 8);
});

test('an IPv6 frontend: backends, table, service, VIP and reply_nat entries, as IPv4 has them', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp);
  const six: ServiceSpec = { name: 'six', address: '2001:db8::10', port: 80, protocol: 'tcp', backends: [{ address: '2001:db8::1', port: 8080 }, { address: '2001:db8::2', port: 8080 }] };
  await lb.apply(six);
  const order = dp.ops.map((o) => o.op).filter((op) => !op.startsWith('reset'));
  t.deepEqual(order, ['putBackend', 'putBackend', 'writeTable', 'putService', 'putVip', 'putReply', 'putReply']);
  const { service, backends } = lb.ids('six');
  t.deepEqual([...backends.keys()], ['[2001:db8::1]:8080', '[2001:db8::2]:8080']);
  t.deepEqual([...dp.replies], [['2001:db8::1|8080|tcp', backends.get('[2001:db8::1]:8080')], ['2001:db8::2|8080|tcp', backends.get('[2001:db8::2]:8080')]]);
  t.deepEqual(dp.listVips(), ['2001:db8::10']);
  t.deepEqual(dp.listServices()[0]!.key, { address: '2001:db8::10', port: 80, protocol: 'tcp' });
  t.truthy(dp.getMaglevTable(service));
  // The same endpoint for a second service port: ambiguous, as for IPv4.
  await lb.apply({ ...six, name: 'six-b', port: 81 });
  t.is(dp.replies.get('2001:db8::1|8080|tcp'), 0);
  await lb.delete('six-b');
  t.is(dp.replies.get('2001:db8::1|8080|tcp'), backends.get('[2001:db8::1]:8080'));
  await lb.removeBackend('six', '2001:db8::2', 8080);
  t.false(dp.replies.has('2001:db8::2|8080|tcp'));
  await lb.delete('six');
  t.is(dp.replies.size, 0);
  t.deepEqual(dp.listVips(), []);
});
