/**
 * The DNS server's parts without root: which services have names
 * (names.ts), the zone's index following the catalog's view (zone.ts), the
 * responses to queries decoded back with dns-packet (responder.ts), and the
 * sockets on 127.0.0.1 (server.ts).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import test, { type ExecutionContext } from 'ava';
import dnsPacket, { type Answer, type DecodedPacket, type Packet } from 'dns-packet';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';
import { buildControlPlane, type ControlPlane } from '../../src/node/control-plane.js';
import { isDnsLabel, labelsInZone, serviceDnsName, srvName, zoneProblem } from '../../src/dns/names.js';
import { DnsZone, type ZoneView } from '../../src/dns/zone.js';
import type { ServiceDefinition, StoredService } from '../../src/model/definition.js';
import { DnsResponder, UDP_PAYLOAD_MAX } from '../../src/dns/responder.js';
import { startDnsServer } from '../../src/dns/server.js';
import { SluiceError } from '../../src/errors.js';
import { daemonOptions } from '../../src/cli/daemon-command.js';
import { DAEMON_FLAGS } from '../../src/cli/daemon-flags.js';
import { UsageError } from '../../src/cli/output.js';

const ZONE = 'svc.sluice.local';

const web = {
  name: 'default/web',
  addresses: ['10.96.0.10', '10.96.0.11'],
  ports: [
    { name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 },
    { name: 'dns', port: 53, protocol: 'udp' },
    { name: 'Admin', port: 9000, protocol: 'tcp' },
  ],
  backends: [{ address: '10.1.0.1' }],
};

/** 60 VIPs: an answer of 60 A records, more than 512 and 1,232 bytes. */
const big = {
  name: 'default/big',
  addresses: Array.from({ length: 60 }, (_, i) => `10.97.0.${i + 1}`),
  ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
  backends: [{ address: '10.1.0.1' }],
};

async function plane(t: ExecutionContext): Promise<ControlPlane> {
  const p = await buildControlPlane({ store: new MemoryKvStore(), dataplane: new FakeDataplane() });
  t.teardown(() => p.close());
  return p;
}

async function apply(p: ControlPlane, ...defs: object[]): Promise<void> {
  const r = await p.catalog.apply(defs.map((definition) => ({ definition: definition as never })));
  await p.view.waitFor(r.revision);
}

async function remove(p: ControlPlane, name: string): Promise<void> {
  await p.view.waitFor(await p.catalog.delete(name));
}

let nextId = 1;
function query(name: string, type: string, o: { edns?: number; flags?: number; id?: number } = {}): Buffer {
  const packet: Packet = {
    type: 'query',
    id: o.id ?? nextId++,
    flags: o.flags ?? dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as never, class: 'IN' }],
    ...(o.edns !== undefined ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: o.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] } : {}),
  };
  return dnsPacket.encode(packet);
}

type Decoded = DecodedPacket & { rcode: string; opcode: string };
const decode = (b: Buffer): Decoded => dnsPacket.decode(b) as Decoded;
const data = (answers: Answer[] | undefined, type: string): unknown[] => (answers ?? []).filter((a) => a.type === type).map((a) => (a as { data: unknown }).data);

async function responder(t: ExecutionContext, p: ControlPlane, o: { apexAddresses?: string[] } = {}): Promise<{ zone: DnsZone; r: DnsResponder }> {
  const zone = new DnsZone({ view: p.view, zone: ZONE });
  zone.start();
  const r = new DnsResponder({ zone, ttl: 5, serial: 7, ...o });
  t.teardown(() => {
    r.close();
    zone.close();
  });
  return { zone, r };
}

test('a service ns/name of RFC 1123 labels is name.ns.<zone>; other names have none', (t) => {
  t.is(serviceDnsName('default/web', ZONE), 'web.default.svc.sluice.local');
  t.is(serviceDnsName('kube-system/core-dns2', 'cluster.local'), 'core-dns2.kube-system.cluster.local');
  for (const none of ['web', 'a/b/c', 'Default/web', 'default/Web', 'default/web:http', 'default/-web', 'default/web-', 'default/we_b', 'default/', '/web', `default/${'a'.repeat(64)}`]) {
    t.is(serviceDnsName(none, ZONE), undefined, none);
  }
  t.is(serviceDnsName(`${'a'.repeat(63)}/${'b'.repeat(63)}`, `${'c'.repeat(63)}.${'d'.repeat(62)}`), undefined, 'longer than 253 characters');
  t.is(srvName('web.default.z', 'http', 'tcp'), '_http._tcp.web.default.z');
  t.is(srvName('web.default.z', '80-udp', 'udp'), '_80-udp._udp.web.default.z');
  t.is(srvName('web.default.z', 'Admin', 'tcp'), undefined, 'uppercase port name');
  t.is(srvName('web.default.z', 'a.b', 'tcp'), undefined);
  t.is(srvName('web.default.z', 'a'.repeat(63), 'tcp'), undefined, 'the label with its _ would be 64');
  t.true(isDnsLabel('a') && isDnsLabel('9lives') && !isDnsLabel('') && !isDnsLabel('-a'));
  t.deepEqual(labelsInZone(ZONE, ZONE), []);
  t.deepEqual(labelsInZone(`web.default.${ZONE}`, ZONE), ['web', 'default']);
  t.is(labelsInZone(`xsvc.sluice.local`, ZONE), undefined, 'a suffix that is not at a label boundary');
  t.is(labelsInZone('example.com', ZONE), undefined);
});

test('the zone must be lowercase labels without the final dot; the message says what is wrong', (t) => {
  t.is(zoneProblem(ZONE), undefined);
  t.is(zoneProblem('cluster.local'), undefined);
  t.is(zoneProblem('local'), undefined);
  t.regex(zoneProblem('')!, /must name a zone/);
  t.regex(zoneProblem('svc.sluice.local.')!, /without the final dot, e\.g\. svc\.sluice\.local$/);
  t.regex(zoneProblem('Svc.Sluice.local')!, /lowercase DNS labels.*label "Svc" \(lowercase: svc\.sluice\.local\)/);
  t.regex(zoneProblem('a..b')!, /label ""/);
  t.regex(zoneProblem('a_b.local')!, /label "a_b"/);
  t.regex(zoneProblem(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`)!, /at most 253 characters, got 255/);
});

test('the zone indexes the view at start and follows its changes; backend churn touches nothing', async (t) => {
  const p = await plane(t);
  await apply(p, web, { ...web, name: 'web', addresses: ['10.96.0.30'] }, { ...web, name: 'Other/web', addresses: ['10.96.0.20'] });
  const zone = new DnsZone({ view: p.view, zone: ZONE });
  zone.start();
  t.teardown(() => zone.close());
  const touched: string[][] = [];
  zone.onChange((names) => touched.push([...names]));

  t.is(zone.services, 1, 'web and Other/web have no name');
  t.deepEqual(zone.lookup(`web.default.${ZONE}`), { kind: 'service', records: zone.recordsOfService('default/web')! });
  t.deepEqual(zone.recordsOfService('default/web')!.addresses, ['10.96.0.10', '10.96.0.11']);
  t.deepEqual(zone.recordsOfService('default/web')!.srv.map((s) => [s.owner, s.port]), [[`_http._tcp.web.default.${ZONE}`, 80], [`_dns._udp.web.default.${ZONE}`, 53]]);
  t.like(zone.lookup(`_http._tcp.web.default.${ZONE}`), { kind: 'srv', srv: { port: 80, target: `web.default.${ZONE}` } });
  t.deepEqual(zone.lookup(`default.${ZONE}`), { kind: 'empty' });
  t.deepEqual(zone.lookup(`_tcp.web.default.${ZONE}`), { kind: 'empty' });
  t.deepEqual(zone.lookup(ZONE), { kind: 'apex' });
  t.is(zone.lookup(`nope.default.${ZONE}`), undefined);
  t.is(zone.lookup(`other.${ZONE}`), undefined);

  await apply(p, { ...web, backends: [{ address: '10.1.0.1' }, { address: '10.1.0.2' }] });
  t.deepEqual(touched, [], 'a backend change leaves the records as they are');

  await apply(p, { ...web, addresses: ['10.96.0.12', '2001:db8::12'] });
  t.deepEqual(zone.recordsOfService('default/web')!.addresses, ['10.96.0.12', '2001:db8::12'], 'at once, when the write returns; both families (A and AAAA)');
  t.true(touched.length === 1 && touched[0]!.includes(`web.default.${ZONE}`) && touched[0]!.includes(`_http._tcp.web.default.${ZONE}`));

  await apply(p, { ...web, name: 'kube-system/dns', addresses: ['10.96.0.53'], ports: [{ name: 'dns', port: 53, protocol: 'udp' }] });
  await remove(p, 'default/web');
  t.is(zone.lookup(`web.default.${ZONE}`), undefined, 'deleted');
  t.is(zone.lookup(`default.${ZONE}`), undefined, 'no service left in default: its name goes too');
  t.is(zone.lookup(`_tcp.web.default.${ZONE}`), undefined);
  t.deepEqual(zone.lookup(`kube-system.${ZONE}`), { kind: 'empty' });
  t.true(touched[2]!.includes(`default.${ZONE}`), 'the empty non-terminal is among the touched names');
  zone.close();
  await apply(p, { ...web, name: 'default/late', addresses: ['10.96.0.40'] });
  t.is(zone.lookup(`late.default.${ZONE}`), undefined, 'closed: no longer following');
});

test('A, SRV with its addresses, SOA and NS: decoded back, in the question\'s case, authoritative', async (t) => {
  const p = await plane(t);
  await apply(p, web);
  const { r } = await responder(t, p, { apexAddresses: ['127.0.0.1'] });

  let m = decode(r.respond(query('WeB.Default.SVC.sluice.local', 'A', { id: 4242 }), 'udp')!);
  t.is(m.id, 4242);
  t.is(m.rcode, 'NOERROR');
  t.true(m.flag_qr && m.flag_aa && m.flag_rd && !m.flag_ra && !m.flag_tc);
  t.deepEqual(m.questions, [{ name: 'WeB.Default.SVC.sluice.local', type: 'A', class: 'IN' }]);
  t.deepEqual(m.answers!.map((a) => [a.name, a.type, (a as { ttl: number }).ttl, (a as { data: string }).data]), [
    ['WeB.Default.SVC.sluice.local', 'A', 5, '10.96.0.10'],
    ['WeB.Default.SVC.sluice.local', 'A', 5, '10.96.0.11'],
  ]);

  m = decode(r.respond(query(`_http._tcp.web.default.${ZONE}`, 'SRV'), 'udp')!);
  t.deepEqual(data(m.answers, 'SRV'), [{ priority: 0, weight: 1, port: 80, target: `web.default.${ZONE}` }]);
  t.deepEqual(m.additionals!.map((a) => [a.name, (a as { data: string }).data]), [[`web.default.${ZONE}`, '10.96.0.10'], [`web.default.${ZONE}`, '10.96.0.11']]);
  m = decode(r.respond(query(`_dns._udp.web.default.${ZONE}`, 'SRV'), 'udp')!);
  t.like(data(m.answers, 'SRV')[0], { port: 53 });
  m = decode(r.respond(query(`_admin._tcp.web.default.${ZONE}`, 'SRV'), 'udp')!);
  t.is(m.rcode, 'NXDOMAIN', 'a port whose name is not a lowercase label has no SRV');

  m = decode(r.respond(query(ZONE, 'SOA'), 'udp')!);
  t.deepEqual(data(m.answers, 'SOA'), [{ mname: ZONE, rname: `hostmaster.${ZONE}`, serial: 7, refresh: 3600, retry: 600, expire: 86400, minimum: 5 }]);
  m = decode(r.respond(query(ZONE, 'NS'), 'udp')!);
  t.deepEqual(data(m.answers, 'NS'), [ZONE]);
  t.deepEqual(data(m.additionals, 'A'), ['127.0.0.1'], 'the NS target\'s address');
  m = decode(r.respond(query(ZONE, 'A'), 'udp')!);
  t.deepEqual(data(m.answers, 'A'), ['127.0.0.1']);
});

test('NXDOMAIN and NODATA carry the SOA; REFUSED outside the zone; FORMERR, NOTIMP and BADVERS', async (t) => {
  const p = await plane(t);
  await apply(p, web);
  const { r } = await responder(t, p);
  const soaTtl = (m: Decoded): unknown => m.authorities!.map((a) => [a.type, a.name, (a as { ttl: number }).ttl]);

  let m = decode(r.respond(query(`nope.default.${ZONE}`, 'A'), 'udp')!);
  t.is(m.rcode, 'NXDOMAIN');
  t.true(m.flag_aa);
  t.deepEqual(m.answers, []);
  t.deepEqual(soaTtl(m), [['SOA', ZONE, 5]]);
  m = decode(r.respond(query(`x.web.default.${ZONE}`, 'A'), 'udp')!);
  t.is(m.rcode, 'NXDOMAIN', 'nothing below a service name');

  for (const [name, type] of [[`web.default.${ZONE}`, 'AAAA'], [`web.default.${ZONE}`, 'SRV'], [`default.${ZONE}`, 'A'], [`_tcp.web.default.${ZONE}`, 'SRV'], [`_http._tcp.web.default.${ZONE}`, 'A']] as const) {
    m = decode(r.respond(query(name, type), 'udp')!);
    t.is(m.rcode, 'NOERROR', `${name} ${type}`);
    t.deepEqual(m.answers, [], `${name} ${type}: no data`);
    t.deepEqual(soaTtl(m), [['SOA', ZONE, 5]], `${name} ${type}`);
  }

  for (const name of ['example.com', 'sluice.local', 'xsvc.sluice.local']) {
    m = decode(r.respond(query(name, 'A'), 'udp')!);
    t.is(m.rcode, 'REFUSED', name);
    t.false(m.flag_aa, name);
    t.deepEqual(m.answers, []);
    t.deepEqual(m.questions, [{ name, type: 'A', class: 'IN' }]);
  }
  m = decode(r.respond(query(ZONE, 'AXFR'), 'tcp')!);
  t.is(m.rcode, 'REFUSED', 'no zone transfers');

  // Undecodable: a header that promises a question the bytes do not hold.
  const broken = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, 0x61]);
  m = decode(r.respond(broken, 'udp')!);
  t.is(m.rcode, 'FORMERR');
  t.is(m.id, 0x1234);
  const two = dnsPacket.encode({ type: 'query', id: 9, questions: [{ name: ZONE, type: 'A' }, { name: ZONE, type: 'NS' }] });
  t.is(decode(r.respond(two, 'udp')!).rcode, 'FORMERR', 'two questions');
  const notify = query(ZONE, 'SOA');
  notify[2] = (notify[2]! & 0x87) | (4 << 3);
  m = decode(r.respond(notify, 'udp')!);
  t.is(m.rcode, 'NOTIMP');
  t.is(m.opcode, 'NOTIFY', 'the opcode is echoed');
  const edns1 = dnsPacket.encode({ type: 'query', id: 10, questions: [{ name: ZONE, type: 'SOA' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 1, flags: 0, flag_do: false, options: [] }] });
  m = decode(r.respond(edns1, 'udp')!);
  t.like(m.additionals![0], { type: 'OPT', extendedRcode: 1, ednsVersion: 0 }, 'BADVERS (16): extended rcode 1, header rcode 0');
  t.is(m.rcode, 'NOERROR');

  t.is(r.respond(Buffer.alloc(11), 'udp'), undefined, 'shorter than a header: dropped');
  const response = query(ZONE, 'A');
  response[2] = response[2]! | 0x80;
  t.is(r.respond(response, 'udp'), undefined, 'a response: dropped');
  t.like(r.stats().rcodes, { NXDOMAIN: 2, REFUSED: 4, FORMERR: 2, NOTIMP: 1, BADVERS: 1 });
});

/** A query built from wire labels, so a label may hold a "." and the class may be any number. */
function rawQuery(labels: string[], qtype: number, qclass: number, id = 0x4242): Buffer {
  const name = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
  const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(qclass, 2);
  return Buffer.concat([header, name, tail]);
}

test('refusals echo the question as it came: an unknown class, class NONE, a label holding a "."', async (t) => {
  const p = await plane(t);
  await apply(p, web);
  const { r } = await responder(t, p);
  const A = 1;
  const cases: Array<[string, Buffer]> = [
    ['class 5 in the zone', rawQuery(['web', 'default', 'svc', 'sluice', 'local'], A, 5)],
    ['class NONE (254) in the zone', rawQuery(['web', 'default', 'svc', 'sluice', 'local'], A, 254)],
    ['class 5 outside the zone', rawQuery(['example', 'com'], A, 5)],
    ['one label "web.default" in the zone', rawQuery(['web.default', 'svc', 'sluice', 'local'], A, 1)],
    ['a label "a.b" below a service', rawQuery(['a.b', 'web', 'default', 'svc', 'sluice', 'local'], A, 1)],
  ];
  for (const [what, q] of cases) {
    const res = r.respond(q, 'udp')!;
    const m = decode(res);
    t.is(m.rcode, 'REFUSED', what);
    t.is(m.id, 0x4242, what);
    t.true(m.flag_rd && !m.flag_aa && !m.flag_ra, `${what}: RD copied, not authoritative`);
    t.deepEqual([m.answers, m.authorities], [[], []], what);
    t.is(res.readUInt16BE(4), 1, `${what}: one question`);
    t.deepEqual(res.subarray(12), q.subarray(12), `${what}: the question section is the query's, byte for byte`);
  }
  // The same with EDNS: the OPT record follows the question.
  const withOpt = Buffer.concat([rawQuery(['web.default', 'svc', 'sluice', 'local'], A, 1), Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0])]);
  withOpt.writeUInt16BE(1, 10);
  const m = decode(r.respond(withOpt, 'udp')!);
  t.is(m.rcode, 'REFUSED');
  t.like(m.additionals?.[0], { type: 'OPT', ednsVersion: 0 });
  // The same name with ordinary labels is answered.
  t.deepEqual(data(decode(r.respond(rawQuery(['web', 'default', 'svc', 'sluice', 'local'], A, 1), 'udp')!).answers, 'A'), ['10.96.0.10', '10.96.0.11']);
});

test('over UDP a response fits the EDNS payload size (512 without OPT); too large: TC and the question only; TCP gets all', async (t) => {
  const p = await plane(t);
  await apply(p, web, big);
  const { r } = await responder(t, p);
  const name = `big.default.${ZONE}`;

  let raw = r.respond(query(name, 'A'), 'udp')!;
  let m = decode(raw);
  t.true(m.flag_tc, 'TC without EDNS');
  t.true(raw.length <= 512);
  t.deepEqual(m.questions, [{ name, type: 'A', class: 'IN' }]);
  t.deepEqual([m.answers, m.authorities, m.additionals], [[], [], []]);

  raw = r.respond(query(name, 'A', { edns: 4096 }), 'udp')!;
  m = decode(raw);
  t.true(m.flag_tc, 'TC: 60 A records are more than the 1,232 bytes the server sends over UDP');
  t.like(m.additionals, [{ type: 'OPT', udpPayloadSize: UDP_PAYLOAD_MAX }], 'the OPT record stays');

  m = decode(r.respond(query(name, 'A'), 'tcp')!);
  t.false(m.flag_tc);
  t.is(data(m.answers, 'A').length, 60, 'over TCP: all 60');

  // The SRV answer's addresses are part of it: all of them or TC.
  m = decode(r.respond(query(`_http._tcp.${name}`, 'SRV', { edns: 1232 }), 'udp')!);
  t.true(m.flag_tc);
  m = decode(r.respond(query(`_http._tcp.${name}`, 'SRV'), 'tcp')!);
  t.is(data(m.additionals, 'A').length, 60);

  m = decode(r.respond(query(`web.default.${ZONE}`, 'A'), 'udp')!);
  t.false(m.flag_tc, 'a small answer fits in 512');
  t.deepEqual(m.additionals, [], 'no OPT back to a query without one');
  m = decode(r.respond(query(`web.default.${ZONE}`, 'A', { edns: 200 }), 'udp')!);
  t.false(m.flag_tc, 'a payload size below 512 counts as 512');
});

test('answers come from the cache with the query\'s ID and RD bit, and a change drops them at once', async (t) => {
  const p = await plane(t);
  await apply(p, web);
  const { r } = await responder(t, p);
  const name = `web.default.${ZONE}`;
  decode(r.respond(query(name, 'A', { id: 1 }), 'udp')!);
  decode(r.respond(query(`late.default.${ZONE}`, 'A', { id: 1 }), 'udp')!);
  const before = r.stats().cacheHits;
  let m = decode(r.respond(query(name, 'A', { id: 777 }), 'udp')!);
  t.is(r.stats().cacheHits, before + 1);
  t.is(m.id, 777);
  t.true(m.flag_rd);
  t.deepEqual(data(m.answers, 'A'), ['10.96.0.10', '10.96.0.11']);
  m = decode(r.respond(query(name, 'A', { id: 778, flags: 0 }), 'udp')!);
  t.is(m.id, 778);
  t.false(m.flag_rd, 'RD as the query has it');
  // The same bytes over TCP: the same entry, never truncated there.
  decode(r.respond(query(name, 'A', { id: 779 }), 'tcp')!);
  t.is(r.stats().cacheHits, before + 2);
  t.deepEqual(data(decode(r.respond(query(name.toUpperCase(), 'A'), 'udp')!).answers, 'A'), ['10.96.0.10', '10.96.0.11']);
  t.is(decode(r.respond(query(name.toUpperCase(), 'A'), 'udp')!).answers![0]!.name, name.toUpperCase(), 'each case is its own entry');

  await apply(p, { ...web, addresses: ['10.96.0.99'] }, { ...web, name: 'default/late', addresses: ['10.96.0.40'] });
  t.deepEqual(data(decode(r.respond(query(name, 'A'), 'udp')!).answers, 'A'), ['10.96.0.99'], 'changed: the cached answer is gone');
  t.deepEqual(data(decode(r.respond(query(name.toUpperCase(), 'A'), 'udp')!).answers, 'A'), ['10.96.0.99'], 'in every case');
  t.is(decode(r.respond(query(`late.default.${ZONE}`, 'A'), 'udp')!).rcode, 'NOERROR', 'a cached NXDOMAIN goes when the name comes');
  await remove(p, 'default/web');
  t.is(decode(r.respond(query(name, 'A'), 'udp')!).rcode, 'NXDOMAIN', 'deleted');
});

test('the server answers over UDP and TCP on one port; a taken port is an error naming the flag', async (t) => {
  const p = await plane(t);
  await apply(p, big);
  const s = await startDnsServer({ view: p.view, zone: ZONE, host: '127.0.0.1', port: 0, ttl: 5 });
  t.teardown(() => s.close());
  t.is(s.address, `127.0.0.1:${s.port}`);

  const udp = dgram.createSocket('udp4');
  t.teardown(() => udp.close());
  const viaUdp = await new Promise<Decoded>((resolve) => {
    udp.once('message', (b) => resolve(decode(b)));
    udp.send(query(`big.default.${ZONE}`, 'A'), s.port, '127.0.0.1');
  });
  t.true(viaUdp.flag_tc);

  // Two queries in one write, one of them split across writes: both answered, in order.
  const frames = [query(`big.default.${ZONE}`, 'A', { id: 1 }), query(ZONE, 'SOA', { id: 2 })].map((q) => Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]));
  const all = Buffer.concat(frames);
  const answers = await new Promise<Decoded[]>((resolve, reject) => {
    const c = net.connect(s.port, '127.0.0.1');
    let got = Buffer.alloc(0);
    const out: Decoded[] = [];
    c.on('error', reject);
    c.on('data', (b: Buffer) => {
      got = Buffer.concat([got, b]);
      while (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        out.push(decode(got.subarray(2, 2 + got.readUInt16BE(0))));
        got = got.subarray(2 + got.readUInt16BE(0));
      }
      if (out.length === 2) {
        c.destroy();
        resolve(out);
      }
    });
    c.write(all.subarray(0, frames[0]!.length + 5));
    setImmediate(() => c.write(all.subarray(frames[0]!.length + 5)));
  });
  t.deepEqual(answers.map((m) => m.id), [1, 2]);
  t.is(answers[0]!.answers!.length, 60);
  t.false(answers[0]!.flag_tc);

  const err = await t.throwsAsync(startDnsServer({ view: p.view, zone: ZONE, host: '127.0.0.1', port: s.port, ttl: 5, field: 'dnsBindAddress' }));
  t.true(err instanceof SluiceError);
  t.is((err as SluiceError).code, 'FAILED_PRECONDITION');
  t.regex(err!.message, new RegExp(`^dnsBindAddress: cannot listen for DNS \\(UDP\\) on 127\\.0\\.0\\.1:${s.port}: EADDRINUSE`));
});

test('over TCP, a client that sends queries and reads no answer is not read from either', async (t) => {
  const p = await plane(t);
  await apply(p, big);
  const s = await startDnsServer({ view: p.view, zone: ZONE, host: '127.0.0.1', port: 0, ttl: 5 });
  t.teardown(() => s.close());
  // 20,000 queries whose answers (60 A records each) come to about 20 MB.
  const N = 20_000;
  const q = query(`big.default.${ZONE}`, 'A');
  const frame = Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]);
  const c = net.connect(s.port, '127.0.0.1');
  t.teardown(() => c.destroy());
  await new Promise<void>((resolve, reject) => c.once('connect', resolve).once('error', reject));
  c.pause();
  c.write(Buffer.concat(Array.from({ length: N }, () => frame)));
  // Wait until the server has stopped answering (the count holds for half a second).
  let last = -1;
  while (s.stats().queries !== last) {
    last = s.stats().queries;
    await new Promise((r) => setTimeout(r, 500));
  }
  t.true(last > 0, 'it answered some');
  t.true(last < N, `it stopped reading once its answers backed up: answered ${last} of ${N}`);
  // Reading again, the client gets every answer.
  let bytes = 0;
  let answers = 0;
  await new Promise<void>((resolve) => {
    let got = Buffer.alloc(0);
    c.on('data', (b: Buffer) => {
      bytes += b.length;
      got = Buffer.concat([got, b]);
      while (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        got = got.subarray(2 + got.readUInt16BE(0));
        if (++answers === N) resolve();
      }
    });
    c.resume();
  });
  t.is(answers, N, `and then all ${N} (${bytes} bytes)`);
});

test('the daemon\'s DNS flags: off by default; given, they become its options', (t) => {
  t.like(daemonOptions({}, {}), { dnsBindAddress: '', dnsZone: 'svc.sluice.local', dnsTtl: 5 });
  t.like(daemonOptions({ dnsBindAddress: '127.0.0.1:53', dnsZone: 'cluster.local', dnsTtl: 0 }, {}), { dnsBindAddress: '127.0.0.1:53', dnsZone: 'cluster.local', dnsTtl: 0 });
  const e = t.throws(() => daemonOptions({ dnsBindAddress: '127.0.0.1:53', dnsZone: 'a..b' }, {}), { instanceOf: UsageError });
  t.regex(e!.message, /^--dns-zone: must be lowercase DNS labels/);
  t.throws(() => daemonOptions({ dnsTtl: 9 }, {}), { instanceOf: UsageError, message: '--dns-ttl: applies to the DNS server, which is off: give --dns-bind-address HOST:PORT too' });
  t.throws(() => DAEMON_FLAGS.find((f) => f.flags.startsWith('--dns-ttl '))!.parse!('3601', undefined), { instanceOf: UsageError, message: '--dns-ttl: must be an integer in 0..3600, got 3601' });
});

/**
 * A view holding these services as given: IPv6 VIPs reach the zone without
 * the schema, which takes IPv4 VIPs only for now; the zone and responder
 * read an address's family from its text.
 */
function fixedView(...defs: Array<{ name: string; addresses: string[]; ports?: Array<{ name: string; port: number; protocol: 'tcp' | 'udp' }> }>): ZoneView {
  const services = new Map(defs.map((d, i) => [d.name, {
    definition: { backends: [], noBackends: 'reject', ...d, ports: (d.ports ?? [{ name: 'http', port: 80, protocol: 'tcp' }]).map((x) => ({ ...x, targetPort: x.port })) } satisfies ServiceDefinition,
    owner: 'api', revision: i + 1, createRevision: i + 1,
  } satisfies StoredService]));
  return { names: () => [...services.keys()], get: (n) => services.get(n), subscribe: () => () => undefined };
}

function responderOn(t: ExecutionContext, view: ZoneView, apexAddresses: string[] = []): DnsResponder {
  const zone = new DnsZone({ view, zone: ZONE });
  zone.start();
  const r = new DnsResponder({ zone, ttl: 5, serial: 7, apexAddresses });
  t.teardown(() => {
    r.close();
    zone.close();
  });
  return r;
}

const records = (m: Decoded, section: 'answers' | 'additionals' = 'answers'): string[][] =>
  (m[section] ?? []).filter((a) => a.type === 'A' || a.type === 'AAAA').map((a) => [a.name, a.type, (a as { data: string }).data]);

test('A for IPv4 VIPs, AAAA for IPv6 ones, both for ANY; the other family of a one-family service is NODATA', async (t) => {
  const r = responderOn(t, fixedView(
    { name: 'default/dual', addresses: ['10.96.0.10', 'fd96::10', '10.96.0.11', '2001:db8::1'] },
    { name: 'default/v4', addresses: ['10.96.0.20'] },
    { name: 'default/v6', addresses: ['fd96::20'] },
  ));
  const dual = `dual.default.${ZONE}`;
  t.deepEqual(records(decode(r.respond(query(dual, 'A'), 'udp')!)), [[dual, 'A', '10.96.0.10'], [dual, 'A', '10.96.0.11']]);
  t.deepEqual(records(decode(r.respond(query(dual, 'AAAA'), 'udp')!)), [[dual, 'AAAA', 'fd96::10'], [dual, 'AAAA', '2001:db8::1']], 'in the order the service lists them');
  let m = decode(r.respond(query(dual, 'ANY'), 'udp')!);
  t.is(m.rcode, 'NOERROR');
  t.deepEqual(records(m), [[dual, 'A', '10.96.0.10'], [dual, 'A', '10.96.0.11'], [dual, 'AAAA', 'fd96::10'], [dual, 'AAAA', '2001:db8::1']], 'ANY: A then AAAA');

  t.deepEqual(records(decode(r.respond(query(`v6.default.${ZONE}`, 'AAAA'), 'udp')!)), [[`v6.default.${ZONE}`, 'AAAA', 'fd96::20']]);
  for (const [name, type] of [[`v4.default.${ZONE}`, 'AAAA'], [`v6.default.${ZONE}`, 'A']] as const) {
    m = decode(r.respond(query(name, type), 'udp')!);
    t.is(m.rcode, 'NOERROR', `${name} ${type}`);
    t.deepEqual(m.answers, [], `${name} ${type}: NODATA`);
    t.deepEqual(m.authorities!.map((a) => a.type), ['SOA'], `${name} ${type}: the SOA for negative caching`);
  }
  t.deepEqual(records(decode(r.respond(query(`v4.default.${ZONE}`, 'A'), 'udp')!)), [[`v4.default.${ZONE}`, 'A', '10.96.0.20']]);
});

test('SRV carries the target\'s addresses of both families; the apex names an IPv6 server with AAAA', async (t) => {
  const r = responderOn(t, fixedView(
    { name: 'default/dual', addresses: ['fd96::10', '10.96.0.10'] },
    { name: 'default/v6', addresses: ['fd96::20'] },
  ), ['fd00::53']);
  const dual = `dual.default.${ZONE}`;
  let m = decode(r.respond(query(`_http._tcp.${dual}`, 'SRV'), 'udp')!);
  t.deepEqual(data(m.answers, 'SRV'), [{ priority: 0, weight: 1, port: 80, target: dual }]);
  t.deepEqual(records(m, 'additionals'), [[dual, 'A', '10.96.0.10'], [dual, 'AAAA', 'fd96::10']]);
  m = decode(r.respond(query(`_http._tcp.v6.default.${ZONE}`, 'SRV'), 'udp')!);
  t.deepEqual(records(m, 'additionals'), [[`v6.default.${ZONE}`, 'AAAA', 'fd96::20']], 'an IPv6-only target: AAAA only');

  m = decode(r.respond(query(ZONE, 'NS'), 'udp')!);
  t.deepEqual(data(m.answers, 'NS'), [ZONE]);
  t.deepEqual(records(m, 'additionals'), [[ZONE, 'AAAA', 'fd00::53']], 'the NS target\'s IPv6 address as glue');
  t.deepEqual(records(decode(r.respond(query(ZONE, 'AAAA'), 'udp')!)), [[ZONE, 'AAAA', 'fd00::53']]);
  m = decode(r.respond(query(ZONE, 'A'), 'udp')!);
  t.deepEqual(m.answers, [], 'no A at the apex of a server on an IPv6 address: NODATA');
  t.is(m.rcode, 'NOERROR');
  t.deepEqual(records(decode(r.respond(query(ZONE, 'ANY'), 'tcp')!)), [[ZONE, 'AAAA', 'fd00::53']]);
});

test('many IPv6 VIPs: TC over UDP, all of them over TCP, for AAAA and for SRV\'s additionals', async (t) => {
  // 40 AAAA records of 28 bytes of data each: more than 1,232 bytes.
  const v6 = Array.from({ length: 40 }, (_, i) => `fd96::${(i + 1).toString(16)}`);
  const r = responderOn(t, fixedView({ name: 'default/big6', addresses: v6 }));
  const name = `big6.default.${ZONE}`;
  let m = decode(r.respond(query(name, 'AAAA', { edns: 4096 }), 'udp')!);
  t.true(m.flag_tc, 'TC: 40 AAAA records exceed 1,232 bytes');
  t.deepEqual(m.answers, []);
  m = decode(r.respond(query(name, 'AAAA'), 'tcp')!);
  t.false(m.flag_tc);
  t.deepEqual(data(m.answers, 'AAAA'), v6, 'over TCP: all 40');
  t.true(decode(r.respond(query(`_http._tcp.${name}`, 'SRV', { edns: 1232 }), 'udp')!).flag_tc, 'SRV with 40 AAAA additionals: TC');
  t.is(data(decode(r.respond(query(`_http._tcp.${name}`, 'SRV'), 'tcp')!).additionals, 'AAAA').length, 40);
  m = decode(r.respond(query(name, 'A', { edns: 1232 }), 'udp')!);
  t.false(m.flag_tc, 'A of an IPv6-only service: a small NODATA');
  t.deepEqual(m.answers, []);
});

test('a server on an IPv6 address names itself at the apex with AAAA; one on :: answers IPv4 clients and names none', async (t) => {
  const p = await plane(t);
  await apply(p, web);
  const s = await startDnsServer({ view: p.view, zone: ZONE, host: '::1', port: 0, ttl: 5 });
  t.teardown(() => s.close());
  t.is(s.address, `[::1]:${s.port}`);
  const udp = dgram.createSocket('udp6');
  t.teardown(() => udp.close());
  const m = await new Promise<Decoded>((resolve) => {
    udp.once('message', (b) => resolve(decode(b)));
    udp.send(query(ZONE, 'NS'), s.port, '::1');
  });
  t.deepEqual(records(m, 'additionals'), [[ZONE, 'AAAA', '::1']]);
  const any = await startDnsServer({ view: p.view, zone: ZONE, host: '::', port: 0, ttl: 5 });
  t.teardown(() => any.close());
  const v4 = dgram.createSocket('udp4');
  t.teardown(() => v4.close());
  const n = await new Promise<Decoded>((resolve) => {
    v4.once('message', (b) => resolve(decode(b)));
    v4.send(query(ZONE, 'NS'), any.port, '127.0.0.1');
  });
  t.deepEqual(data(n.answers, 'NS'), [ZONE], 'a server on :: answers IPv4 clients too');
  t.deepEqual(records(n, 'additionals'), [], 'and names no address at the apex: it listens on all of them');
});
