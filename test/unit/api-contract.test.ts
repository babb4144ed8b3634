/**
 * The API's contract, RPC by RPC, through real gRPC over a unix socket with
 * a plain @grpc/grpc-js client built from the same protos (what any user's
 * client is): CRUD with paging and filters, revisions and compare-and-set,
 * watch (snapshot, SYNCED, live events, resume), registration and leases,
 * backend states as the dataplane sees them, stats, flow lookup,
 * connections, health.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { BACKEND_FLAG_DRAINING, CT_FORWARD, CT_REPLY } from '../../src/dataplane/codec.js';
import type { FlowDecision, FlowOutcome } from '../../src/dataplane/dataplane.js';
import type { ServiceMessage, WatchServicesResponse } from '../../src/api/messages.js';
import { dataplaneSnapshot, startApi, unary, webService, type ApiFixture } from '../helpers/api.js';

const fe = (service: string, vip: string, port = 80, proto = 'tcp'): string => `${service}|${vip}:${port}/${proto}`;

/** Reject with the status code of a failed call. */
async function code(p: Promise<unknown>): Promise<{ code: grpc.status; details: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error('the call succeeded');
}

/** Collect events of a server stream as they come. */
function collector<T>(call: grpc.ClientReadableStream<T>): { events: T[]; next(n: number): Promise<T[]>; ended: Promise<grpc.StatusObject | Error> } {
  const events: T[] = [];
  const waiters: Array<() => void> = [];
  call.on('data', (e: T) => {
    events.push(e);
    for (const w of waiters.splice(0)) w();
  });
  const ended = new Promise<grpc.StatusObject | Error>((resolve) => {
    call.on('error', (e: Error) => resolve(e));
    call.on('status', (s: grpc.StatusObject) => resolve(s));
  });
  let taken = 0;
  const next = async (n: number): Promise<T[]> => {
    const deadline = Date.now() + 5000;
    while (events.length < taken + n) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} events (have ${events.length - taken})`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 100);
      });
    }
    const out = events.slice(taken, taken + n);
    taken += n;
    return out;
  };
  return { events, next, ended };
}

async function apply(f: ApiFixture, service: unknown, expectedRevision?: string | number): Promise<ServiceMessage> {
  return unary<ServiceMessage>(f.raw.registry, 'ApplyService', expectedRevision === undefined ? { service } : { service, expectedRevision });
}

test('apply, get, list with paging and filters, delete', async (t) => {
  const f = await startApi(t, { tag: 'contract-crud' });
  const requests = [];
  for (let i = 0; i < 12; i++) requests.push({ service: webService(`team-a/svc-${String(i).padStart(2, '0')}`, `10.96.0.${i + 1}`, ['10.1.0.1']) });
  // Three team-b services share VIP 10.96.9.9 on different ports.
  for (let i = 0; i < 3; i++) {
    requests.push({
      service: {
        name: `team-b/svc-${i}`,
        addresses: ['10.96.9.9', `10.96.8.${i + 1}`],
        ports: [{ port: 1000 + i, protocol: 'UDP' }],
        backends: [{ address: '10.2.0.1', weight: 3 }],
      },
    });
  }
  const batch = await unary<{ services: ServiceMessage[]; revision: string }>(f.raw.registry, 'ApplyServices', { requests });
  t.is(batch.services.length, 15);
  // One store transaction: every service of the batch at its revision, as in etcd.
  t.is(batch.revision, '1', 'one revision for the batch');
  t.deepEqual(batch.services.map((s) => s.revision), batch.services.map(() => '1'));

  const got = await unary<ServiceMessage>(f.raw.registry, 'GetService', { name: 'team-b/svc-1' });
  t.deepEqual(got.ports, [{ name: '1001-udp', port: 1001, protocol: 'UDP', targetPort: 1001 }], 'defaults filled in');
  t.is(got.backends[0]!.weight, 3);
  t.is(got.backends[0]!.state, 'ACTIVE');
  t.is(got.createRevision, '1');
  t.truthy(f.lb.get(fe('team-b/svc-1', '10.96.9.9', 1001, 'udp')), 'each VIP x port is a frontend');

  // Every service, 4 at a time, in name order.
  const names: string[] = [];
  let token = '';
  let pages = 0;
  do {
    const page = await unary<{ services: ServiceMessage[]; nextPageToken: string; revision: string }>(f.raw.registry, 'ListServices', { pageSize: 4, pageToken: token });
    t.true(page.services.length <= 4);
    t.is(page.revision, '1');
    names.push(...page.services.map((s) => s.name));
    token = page.nextPageToken;
    pages++;
  } while (token !== '');
  t.is(pages, 4);
  t.deepEqual(names, [...requests.map((r) => r.service.name!)].sort());

  const prefixed = await unary<{ services: ServiceMessage[]; nextPageToken: string }>(f.raw.registry, 'ListServices', { namePrefix: 'team-b/' });
  t.deepEqual(prefixed.services.map((s) => s.name), ['team-b/svc-0', 'team-b/svc-1', 'team-b/svc-2']);
  t.is(prefixed.nextPageToken, '');

  const vip1 = await unary<{ services: ServiceMessage[]; nextPageToken: string }>(f.raw.registry, 'ListServices', { address: '10.96.9.9', pageSize: 2 });
  t.deepEqual(vip1.services.map((s) => s.name), ['team-b/svc-0', 'team-b/svc-1']);
  const vip2 = await unary<{ services: ServiceMessage[]; nextPageToken: string }>(f.raw.registry, 'ListServices', { address: '10.96.9.9', pageSize: 2, pageToken: vip1.nextPageToken });
  t.deepEqual(vip2.services.map((s) => s.name), ['team-b/svc-2']);
  t.is(vip2.nextPageToken, '');

  const wrongToken = await code(unary(f.raw.registry, 'ListServices', { address: '10.96.8.1', pageToken: vip1.nextPageToken }));
  t.is(wrongToken.code, grpc.status.INVALID_ARGUMENT);
  t.regex(wrongToken.details, /^page_token: /);
  t.is((await code(unary(f.raw.registry, 'ListServices', { pageSize: -1 }))).code, grpc.status.INVALID_ARGUMENT);

  const del = await unary<{ revision: string }>(f.raw.registry, 'DeleteService', { name: 'team-b/svc-1' });
  t.is(del.revision, '2');
  t.is((await code(unary(f.raw.registry, 'GetService', { name: 'team-b/svc-1' }))).code, grpc.status.NOT_FOUND);
  t.is(f.lb.get(fe('team-b/svc-1', '10.96.9.9', 1001, 'udp')), undefined, 'its frontends are gone');
  t.is(f.dp.listServices().length, 12 + 2 * 2, 'the dataplane holds the other frontends');
  t.is((await code(unary(f.raw.registry, 'GetService', { name: '' }))).code, grpc.status.INVALID_ARGUMENT);
});

test('revisions and compare-and-set', async (t) => {
  const f = await startApi(t, { tag: 'contract-cas' });
  const web = webService('web', '10.96.0.10', ['10.1.0.1']);
  const created = await apply(f, web, 0);
  t.is(created.revision, '1');
  t.is(created.createRevision, '1');

  const again = await code(apply(f, web, 0));
  t.is(again.code, grpc.status.ALREADY_EXISTS, 'create-only on an existing service');
  t.regex(again.details, /^expected_revision: /);

  const updated = await apply(f, { ...web, backends: [{ address: '10.1.0.2' }] }, '1');
  t.is(updated.revision, '2');
  t.is(updated.createRevision, '1');

  const stale = await code(apply(f, web, '1'));
  t.is(stale.code, grpc.status.FAILED_PRECONDITION);
  t.regex(stale.details, /revision 2, not 1/);
  t.is((await code(apply(f, webService('nope', '10.96.0.11', []), 5))).code, grpc.status.NOT_FOUND, 'revision n of a missing service');

  const unconditional = await apply(f, web);
  t.is(unconditional.revision, '3');

  t.is((await code(unary(f.raw.registry, 'DeleteService', { name: 'web', expectedRevision: '2' }))).code, grpc.status.FAILED_PRECONDITION);
  t.is(await f.store.revision(), 3, 'failed writes do not move the revision');
  const del = await unary<{ revision: string }>(f.raw.registry, 'DeleteService', { name: 'web', expectedRevision: '3' });
  t.is(del.revision, '4');
});

test('watch: snapshot, SYNCED, then live PUT and DELETE', async (t) => {
  const f = await startApi(t, { tag: 'contract-watch' });
  await apply(f, webService('a', '10.96.0.1', ['10.1.0.1']));
  await apply(f, webService('b', '10.96.0.2', ['10.1.0.2']));
  const call = f.raw.registry['WatchServices']!({}) as grpc.ClientReadableStream<WatchServicesResponse>;
  const w = collector(call);
  const snapshot = await w.next(3);
  t.deepEqual(snapshot.map((e) => [e.type, e.name, e.revision]), [['SNAPSHOT', 'a', '1'], ['SNAPSHOT', 'b', '2'], ['SYNCED', '', '2']]);
  t.is(snapshot[0]!.service!.backends[0]!.address, '10.1.0.1');
  t.is(snapshot[2]!.service, null);

  await apply(f, webService('c', '10.96.0.3', ['10.1.0.3']));
  await apply(f, webService('a', '10.96.0.1', ['10.1.0.9']));
  await unary(f.raw.registry, 'DeleteService', { name: 'b' });
  const live = await w.next(3);
  t.deepEqual(live.map((e) => [e.type, e.name, e.revision]), [['PUT', 'c', '3'], ['PUT', 'a', '4'], ['DELETE', 'b', '5']]);
  t.is(live[1]!.service!.backends[0]!.address, '10.1.0.9', 'PUT carries the new state');
  t.is(live[2]!.service!.name, 'b', 'DELETE carries the last state');
  call.cancel();
});

test('watch resumed from a revision replays exactly the missed events', async (t) => {
  const f = await startApi(t, { tag: 'contract-resume' });
  await apply(f, webService('a', '10.96.0.1', ['10.1.0.1']));
  const seen = await f.store.revision(); // 1
  await apply(f, webService('b', '10.96.0.2', ['10.1.0.2']));
  await apply(f, webService('a', '10.96.0.1', ['10.1.0.3']));
  await unary(f.raw.registry, 'DeleteService', { name: 'b' });
  const call = f.raw.registry['WatchServices']!({ startRevision: String(seen) }) as grpc.ClientReadableStream<WatchServicesResponse>;
  const w = collector(call);
  const missed = await w.next(3);
  t.deepEqual(missed.map((e) => [e.type, e.name, e.revision]), [['PUT', 'b', '2'], ['PUT', 'a', '3'], ['DELETE', 'b', '4']]);
  await apply(f, webService('c', '10.96.0.3', []));
  t.deepEqual((await w.next(1)).map((e) => [e.type, e.name, e.revision]), [['PUT', 'c', '5']]);
  await new Promise((r) => setTimeout(r, 100));
  t.is(w.events.length, 4, 'no snapshot, no duplicates');
  call.cancel();
});

test('watch from a compacted or future revision starts with a snapshot', async (t) => {
  // A view that keeps two changes: resuming from revision 1 is beyond it.
  const f = await startApi(t, { tag: 'contract-compact', plane: { viewLog: 2 } });
  for (let i = 0; i < 5; i++) await apply(f, webService('a', '10.96.0.1', [`10.1.0.${i + 1}`]));
  const call = f.raw.registry['WatchServices']!({ startRevision: '1' }) as grpc.ClientReadableStream<WatchServicesResponse>;
  const w = collector(call);
  t.deepEqual((await w.next(2)).map((e) => [e.type, e.name, e.revision]), [['SNAPSHOT', 'a', '5'], ['SYNCED', '', '5']]);
  call.cancel();
  // A revision ahead of the store (a watcher of an earlier store) gets a snapshot too.
  const ahead = f.raw.registry['WatchServices']!({ startRevision: '999' }) as grpc.ClientReadableStream<WatchServicesResponse>;
  t.deepEqual((await collector(ahead).next(2)).map((e) => e.type), ['SNAPSHOT', 'SYNCED']);
  ahead.cancel();
  const bad = collector(f.raw.registry['WatchServices']!({ startRevision: '-1' }) as grpc.ClientReadableStream<WatchServicesResponse>);
  const end = (await bad.ended) as grpc.ServiceError;
  t.is(end.code, grpc.status.INVALID_ARGUMENT);
  t.regex(end.details, /^start_revision: /);
});

test('registration: register, keepalive stream, heartbeat, deregister', async (t) => {
  const f = await startApi(t, { tag: 'contract-reg' });
  await apply(f, webService('web', '10.96.0.10', ['10.1.0.1']));
  const reg = await unary<{ leaseId: string; ttlSeconds: number; service: ServiceMessage }>(f.raw.registration, 'RegisterBackend', {
    service: 'web',
    address: '10.1.0.7',
    weight: 2,
    ttlSeconds: 30,
  });
  t.truthy(reg.leaseId);
  t.is(reg.ttlSeconds, 30);
  const b = reg.service.backends.find((x) => x.address === '10.1.0.7')!;
  t.is(b.leaseId, reg.leaseId);
  t.is(b.weight, 2);
  t.truthy(f.lb.ids(fe('web', '10.96.0.10')).backends.get('10.1.0.7:8080'), 'the backend is in the dataplane');

  // A second backend under the same lease.
  const reg2 = await unary<{ leaseId: string; ttlSeconds: number }>(f.raw.registration, 'RegisterBackend', { service: 'web', address: '10.1.0.8', leaseId: reg.leaseId });
  t.is(reg2.leaseId, reg.leaseId);
  t.is(reg2.ttlSeconds, 30);

  const ka = f.raw.registration['KeepAlive']!() as grpc.ClientDuplexStream<{ leaseId: string }, { leaseId: string; ttlSeconds: number }>;
  const answers = collector(ka as unknown as grpc.ClientReadableStream<{ leaseId: string; ttlSeconds: number }>);
  ka.write({ leaseId: reg.leaseId });
  ka.write({ leaseId: reg.leaseId });
  t.deepEqual(await answers.next(2), [{ leaseId: reg.leaseId, ttlSeconds: 30 }, { leaseId: reg.leaseId, ttlSeconds: 30 }]);
  ka.write({ leaseId: 'no-such-lease' });
  const end = (await answers.ended) as grpc.ServiceError;
  t.is(end.code, grpc.status.NOT_FOUND, 'an unknown lease ends the stream with NOT_FOUND');
  t.regex(end.details, /^lease_id: /);

  t.deepEqual(await unary(f.raw.registration, 'Heartbeat', { leaseId: reg.leaseId }), { leaseId: reg.leaseId, ttlSeconds: 30 });
  t.is((await code(unary(f.raw.registration, 'Heartbeat', { leaseId: 'nope' }))).code, grpc.status.NOT_FOUND);

  // Deregistering the first backend keeps the lease (the second holds it); the last one revokes it.
  await unary(f.raw.registration, 'DeregisterBackend', { service: 'web', address: '10.1.0.7' });
  t.truthy(await f.store.lease(reg.leaseId));
  const after = await unary<ServiceMessage>(f.raw.registration, 'DeregisterBackend', { service: 'web', address: '10.1.0.8' });
  t.deepEqual(after.backends.map((x) => x.address), ['10.1.0.1']);
  t.is(await f.store.lease(reg.leaseId), undefined, 'the lease is revoked with its last backend');
  t.is((await code(unary(f.raw.registration, 'Heartbeat', { leaseId: reg.leaseId }))).code, grpc.status.NOT_FOUND);
  t.is((await code(unary(f.raw.registration, 'DeregisterBackend', { service: 'web', address: '10.1.0.8' }))).code, grpc.status.NOT_FOUND);
  t.is((await code(unary(f.raw.registration, 'RegisterBackend', { service: 'nope', address: '10.1.0.8' }))).code, grpc.status.NOT_FOUND);
});

test('SetBackendState: visible in GetService and in the dataplane', async (t) => {
  const f = await startApi(t, { tag: 'contract-state' });
  await apply(f, webService('web', '10.96.0.10', ['10.1.0.1', '10.1.0.2', '10.1.0.3']));
  const ids = (): { service: number; backends: Map<string, number> } => f.lb.ids(fe('web', '10.96.0.10'));
  const id2 = ids().backends.get('10.1.0.2:8080')!;
  t.true(f.dp.getMaglevTable(ids().service)!.includes(id2));

  const drained = await unary<ServiceMessage>(f.raw.registration, 'SetBackendState', { service: 'web', address: '10.1.0.2', state: 'DRAINING' });
  t.is(drained.backends[1]!.state, 'DRAINING');
  t.is((await unary<ServiceMessage>(f.raw.registry, 'GetService', { name: 'web' })).backends[1]!.state, 'DRAINING');
  t.false(f.dp.getMaglevTable(ids().service)!.includes(id2), 'a draining backend is out of the Maglev table');
  t.is(f.dp.backends.get(id2)!.flags, BACKEND_FLAG_DRAINING, 'but still in the backends map, flagged');

  await unary(f.raw.registration, 'SetBackendState', { service: 'web', address: '10.1.0.2', state: 'MAINTENANCE' });
  t.false(f.dp.backends.has(id2), 'maintenance takes it out of the dataplane');
  t.false(ids().backends.has('10.1.0.2:8080'));

  const active = await unary<ServiceMessage>(f.raw.registration, 'SetBackendState', { service: 'web', address: '10.1.0.2', state: 'ACTIVE' });
  t.is(active.backends[1]!.state, 'ACTIVE');
  const back = ids().backends.get('10.1.0.2:8080')!;
  t.true(f.dp.getMaglevTable(ids().service)!.includes(back));
  t.is(f.dp.backends.get(back)!.flags, 0);

  const bad = await code(unary(f.raw.registration, 'SetBackendState', { service: 'web', address: '10.1.0.2', state: 'STATE_UNSPECIFIED' }));
  t.is(bad.code, grpc.status.INVALID_ARGUMENT);
  t.regex(bad.details, /^state: /);
  t.is((await code(unary(f.raw.registration, 'SetBackendState', { service: 'web', address: '10.1.0.9', state: 'DRAINING' }))).code, grpc.status.NOT_FOUND);
});

test('GetStats: per service (sum over frontends), per backend, global', async (t) => {
  const f = await startApi(t, { tag: 'contract-stats' });
  await apply(f, { ...webService('web', '10.96.0.10', ['10.1.0.1', '10.1.0.2']), addresses: ['10.96.0.10', '10.96.0.11'] });
  await apply(f, webService('other', '10.96.0.20', ['10.1.0.1']));
  const stat = (n: number) => ({ packets: BigInt(n), bytes: BigInt(n * 100), newConnections: BigInt(n % 7), replyPackets: BigInt(n * 2) });
  const a = f.lb.ids(fe('web', '10.96.0.10'));
  const b = f.lb.ids(fe('web', '10.96.0.11'));
  f.dp.svcStats.set(a.service, stat(10));
  f.dp.svcStats.set(b.service, stat(5));
  f.dp.beStats.set(a.backends.get('10.1.0.1:8080')!, stat(6));
  f.dp.beStats.set(a.backends.get('10.1.0.2:8080')!, stat(4));
  f.dp.beStats.set(b.backends.get('10.1.0.1:8080')!, stat(5));
  f.dp.global.set('reject_tcp_rst', 21n);
  f.dp.global.set('reject_icmp_unreach', 22n);
  f.dp.global.set('reject_rate_limited', 23n);
  f.dp.global.set('drop_no_backend', 24n);

  const one = await unary<{ services: any[]; globalStats: any }>(f.raw.operations, 'GetStats', { service: 'web' });
  t.is(one.services.length, 1);
  const s = one.services[0];
  t.is(s.name, 'web');
  t.deepEqual(s.counters, { packets: '15', bytes: '1500', newConnections: '8', replyPackets: '30' });
  t.deepEqual(s.frontends.map((x: any) => [x.address, x.port, x.protocol, x.counters.packets]), [['10.96.0.10', 80, 'TCP', '10'], ['10.96.0.11', 80, 'TCP', '5']]);
  t.deepEqual(s.backends.map((x: any) => [x.address, x.state, x.counters.packets, x.counters.bytes]), [['10.1.0.1', 'ACTIVE', '11', '1100'], ['10.1.0.2', 'ACTIVE', '4', '400']]);
  t.deepEqual(Object.keys(one.globalStats).sort(), ['affinityHits', 'ctRescheduled', 'drops', 'fibMiss', 'flows', 'forwarded', 'forwardedStack', 'fragmentsTranslated', 'hairpinFlows', 'icmpFragNeeded', 'icmpTranslated', 'passedMalformed', 'passedOther', 'rejects', 'replies', 'repliesAmbiguous', 'repliesRestored', 'rxPackets', 'socketsTranslated']);
  t.deepEqual(Object.keys(one.globalStats.drops).sort(), ['ctFull', 'fragment', 'malformed', 'noBackend', 'noService']);
  t.deepEqual(one.globalStats.rejects, { tcpRst: '21', icmpUnreachable: '22', rateLimited: '23' }, 'each reject counter in its field');
  t.is(one.globalStats.drops.noBackend, '24');

  const all = await unary<{ services: any[] }>(f.raw.operations, 'GetStats', {});
  t.deepEqual(all.services.map((x: any) => x.name), ['other', 'web']);
  t.is((await code(unary(f.raw.operations, 'GetStats', { service: 'nope' }))).code, grpc.status.NOT_FOUND);
});

test('LookupFlow: the dataplane\'s decision as the response; NOT_FOUND for no service flow', async (t) => {
  // The fake decides nothing: each packet's decision is set here, and the
  // test checks what the API asks the dataplane and how it tells the answer.
  // The decision itself (lb.h's, in the kernel) is test/bpf/flow-lookup.test.ts's.
  const f = await startApi(t, { tag: 'contract-flow' });
  await apply(f, webService('web', '10.96.0.10', ['10.1.0.1', '10.1.0.2', '10.1.0.3'], { sessionAffinity: { timeoutSeconds: 60 } }));
  const ids = f.lb.ids(fe('web', '10.96.0.10'));
  const q = { clientAddress: '10.0.0.5', clientPort: 40000, address: '10.96.0.10', port: 80, protocol: 'TCP' };
  const packet = { saddr: '10.0.0.5', sport: 40000, daddr: '10.96.0.10', dport: 80, protocol: 'tcp' as const };
  const idOf = (a: string): number => ids.backends.get(`${a}:8080`)!;
  const decision = (outcome: FlowOutcome, backend?: string): FlowDecision => ({
    outcome,
    serviceId: ids.service,
    backendId: backend === undefined ? 0 : idOf(backend),
    ...(backend === undefined ? {} : { rewrite: { address: backend, port: 8080 } }),
    rescheduled: false,
    replyRestored: false,
    replyAmbiguous: false,
    ctExpired: false,
    replyStale: false,
    hash: 0xdeadbeef,
    tableSize: 1021,
    slot: 0xdeadbeef % 1021,
  });

  f.dp.decideFlow(packet, decision('MAGLEV', '10.1.0.2'));
  const m = await unary<any>(f.raw.operations, 'LookupFlow', q);
  t.deepEqual(
    [m.reason, m.backendAddress, m.backendPort, m.maglevSlot, m.tableSize, m.flowHash, m.service],
    ['MAGLEV', '10.1.0.2', 8080, 0xdeadbeef % 1021, 1021, 0xdeadbeef, 'web'],
  );
  t.deepEqual(f.dp.lookups.at(-1), { ...packet, syn: false }, 'an ACK unless the request says syn');

  f.dp.decideFlow(packet, decision('AFFINITY', '10.1.0.3'));
  t.deepEqual(pick(await unary<any>(f.raw.operations, 'LookupFlow', q)), ['AFFINITY', '10.1.0.3', 8080]);
  f.dp.decideFlow(packet, decision('CONNTRACK', '10.1.0.1'));
  t.deepEqual(pick(await unary<any>(f.raw.operations, 'LookupFlow', q)), ['CONNTRACK', '10.1.0.1', 8080]);

  // A SYN is asked as one, and may get another answer (a draining backend's flow placed again).
  f.dp.decideFlow({ ...packet, syn: true }, decision('MAGLEV', '10.1.0.2'));
  t.deepEqual(pick(await unary<any>(f.raw.operations, 'LookupFlow', { ...q, syn: true })), ['MAGLEV', '10.1.0.2', 8080]);
  t.deepEqual(f.dp.lookups.at(-1), { ...packet, syn: true });

  f.dp.decideFlow(packet, decision('NO_BACKEND'));
  const nb = await unary<any>(f.raw.operations, 'LookupFlow', q);
  t.deepEqual([...pick(nb), nb.service, nb.tableSize], ['NO_BACKEND', '', 0, 'web', 1021]);

  // No flow to a service: no service on that port (the fake's default), a packet the dataplane passes, a backend's reply.
  const none = await code(unary(f.raw.operations, 'LookupFlow', { ...q, port: 81 }));
  t.is(none.code, grpc.status.NOT_FOUND);
  t.regex(none.details, /^address: no service on 10\.96\.0\.10:81\/tcp$/);
  f.dp.decideFlow(packet, { ...decision('PASS'), serviceId: 0 });
  t.is((await code(unary(f.raw.operations, 'LookupFlow', q))).code, grpc.status.NOT_FOUND);
  f.dp.decideFlow(packet, { ...decision('REPLY', '10.1.0.1'), rewrite: { address: '10.96.0.10', port: 80 } });
  const reply = await code(unary(f.raw.operations, 'LookupFlow', q));
  t.is(reply.code, grpc.status.NOT_FOUND);
  t.regex(reply.details, /backend's reply/);

  const bad = await code(unary(f.raw.operations, 'LookupFlow', { ...q, protocol: 'PROTOCOL_UNSPECIFIED' }));
  t.is(bad.code, grpc.status.INVALID_ARGUMENT);
  t.regex(bad.details, /^protocol: /);
});

function pick(r: { reason: string; backendAddress: string; backendPort: number }): [string, string, number] {
  return [r.reason, r.backendAddress, r.backendPort];
}

test('ListConnections and FlushConnections with filters', async (t) => {
  const f = await startApi(t, { tag: 'contract-conns' });
  await apply(f, webService('web', '10.96.0.10', ['10.1.0.1', '10.1.0.2']));
  await apply(f, webService('api', '10.96.0.20', ['10.1.0.3']));
  const flow = (client: string, sport: number, service: string, vip: string, backend: string): void => {
    const ids = f.lb.ids(fe(service, vip));
    const value = { backendId: ids.backends.get(`${backend}:8080`)!, serviceId: ids.service, state: 'established' as const, created: 0, expires: Number(process.hrtime.bigint() / 1_000_000_000n) + 3600 };
    f.dp.addConntrack({ key: { saddr: client, daddr: vip, sport, dport: 80, protocol: 'tcp' }, value: { ...value, dir: CT_FORWARD, natAddress: backend, natPort: 8080 } });
    f.dp.addConntrack({ key: { saddr: backend, daddr: client, sport: 8080, dport: sport, protocol: 'tcp' }, value: { ...value, dir: CT_REPLY, natAddress: vip, natPort: 80 } });
  };
  flow('10.0.0.1', 1000, 'web', '10.96.0.10', '10.1.0.1');
  flow('10.0.0.2', 1001, 'web', '10.96.0.10', '10.1.0.2');
  flow('10.0.0.1', 1002, 'api', '10.96.0.20', '10.1.0.3');

  const list = async (req: object): Promise<any[]> => (await unary<{ connections: any[] }>(f.raw.operations, 'ListConnections', req)).connections;
  const all = await list({});
  t.is(all.length, 3, 'one per flow (forward entries)');
  t.like(all.find((c) => c.clientPort === 1002), { clientAddress: '10.0.0.1', address: '10.96.0.20', port: 80, protocol: 'TCP', backendAddress: '10.1.0.3', backendPort: 8080, service: 'api' });
  t.deepEqual((await list({ service: 'web' })).map((c) => c.clientPort).sort(), [1000, 1001]);
  t.deepEqual((await list({ backendAddress: '10.1.0.2' })).map((c) => c.clientPort), [1001]);
  t.deepEqual((await list({ clientAddress: '10.0.0.1' })).map((c) => c.clientPort).sort(), [1000, 1002]);
  t.deepEqual((await list({ clientAddress: '10.0.0.1', service: 'web' })).map((c) => c.clientPort), [1000]);

  // Paging, one at a time.
  const seen: number[] = [];
  let token = '';
  do {
    const page = await unary<{ connections: any[]; nextPageToken: string }>(f.raw.operations, 'ListConnections', { pageSize: 1, pageToken: token });
    seen.push(...page.connections.map((c) => c.clientPort));
    token = page.nextPageToken;
  } while (token !== '');
  t.deepEqual(seen.sort(), [1000, 1001, 1002]);

  const refused = await code(unary(f.raw.operations, 'FlushConnections', {}));
  t.is(refused.code, grpc.status.INVALID_ARGUMENT, 'flushing everything needs all: true');
  t.regex(refused.details, /^all: /);
  t.deepEqual(await unary(f.raw.operations, 'FlushConnections', { clientAddress: '10.0.0.1', service: 'web' }), { flushed: '1' });
  t.is(f.dp.conntrack.size, 4, 'both entries of the flow are gone');
  t.deepEqual(await unary(f.raw.operations, 'FlushConnections', { backendAddress: '10.1.0.3' }), { flushed: '1' });
  t.deepEqual(await unary(f.raw.operations, 'FlushConnections', { all: true }), { flushed: '1' });
  t.is(f.dp.conntrack.size, 0);
  t.is((await code(unary(f.raw.operations, 'ListConnections', { service: 'nope' }))).code, grpc.status.NOT_FOUND);
});

test('health: Check and Watch', async (t) => {
  const f = await startApi(t, { tag: 'contract-health' });
  t.deepEqual(await unary(f.raw.health, 'Check', { service: '' }), { status: 'SERVING' });
  t.deepEqual(await unary(f.raw.health, 'Check', { service: 'sluice.v1.ServiceRegistry' }), { status: 'SERVING' });
  t.is((await code(unary(f.raw.health, 'Check', { service: 'nope.Nope' }))).code, grpc.status.NOT_FOUND);
  const watch = collector(f.raw.health['Watch']!({ service: '' }) as grpc.ClientReadableStream<{ status: string }>);
  t.deepEqual(await watch.next(1), [{ status: 'SERVING' }]);
  const unknown = collector(f.raw.health['Watch']!({ service: 'nope.Nope' }) as grpc.ClientReadableStream<{ status: string }>);
  t.deepEqual(await unknown.next(1), [{ status: 'SERVICE_UNKNOWN' }]);
  // Closing the server reports NOT_SERVING to watchers before ending their calls.
  await f.server.close();
  t.deepEqual(await watch.next(1), [{ status: 'NOT_SERVING' }]);
  t.is(((await watch.ended) as grpc.ServiceError).code, grpc.status.UNAVAILABLE);
});

test('the typed client: errors carry the code and the field', async (t) => {
  const f = await startApi(t, { tag: 'contract-client' });
  const s = await f.client.applyService(webService('web', '10.96.0.10', ['10.1.0.1']));
  t.is(s.revision, '1');
  const err = await t.throwsAsync(f.client.applyService(webService('web', '10.96.0.10', ['10.1.0.1'], { ports: [{ port: 0, protocol: 'TCP' }] })));
  t.like(err, { code: grpc.status.INVALID_ARGUMENT, field: 'service.ports[0].port' });
  t.is(err!.message, 'service.ports[0].port: must be an integer in 1..65535, got 0');
  t.is(await f.client.deleteService('web'), 2);
  t.is(await f.client.health(), 'SERVING');
  t.is(dataplaneSnapshot(f.dp).includes('10.1.0.1'), false);
});

test('ApplyServices: all applied; the BASIC view returns names and revisions only', async (t) => {
  const f = await startApi(t, { tag: 'contract-view' });
  const full = await f.client.applyServices([
    { service: webService('a', '10.96.5.1', ['10.1.0.1']) },
    { service: webService('b', '10.96.5.2', ['10.1.0.2', '10.1.0.3']) },
  ]);
  t.deepEqual(full.services.map((s) => s.backends.length), [1, 2], 'FULL (the default) carries the backends');
  const basic = await f.client.applyServices(
    [{ service: webService('c', '10.96.5.3', ['10.1.0.4']) }, { service: webService('a', '10.96.5.1', ['10.1.0.5']) }],
    { view: 'BASIC' },
  );
  t.deepEqual(basic.services.map((s) => [s.name, s.backends.length, s.addresses.length]), [['c', 0, 0], ['a', 0, 0]]);
  t.is(Number(basic.services[1]!.revision), Number(basic.revision), 'revisions still come back');
  t.is(Number(basic.services[1]!.createRevision), Number(full.services[0]!.createRevision));
  t.deepEqual((await f.client.getService('a')).backends.map((b) => b.address), ['10.1.0.5'], 'the apply itself was complete');
});

test('ApplyServices of many (their frontends read as one range): two swap VIPs in one batch, the others stay', async (t) => {
  const f = await startApi(t, { tag: 'contract-many' });
  const many = (vipOf: (i: number) => string) => Array.from({ length: 20 }, (_, i) => ({ service: webService(`s${i}`, vipOf(i), ['10.1.0.1']) }));
  await f.client.applyServices(many((i) => `10.96.6.${i + 1}`), { view: 'BASIC' });
  // s0 and s1 swap: each releases the frontend the other claims.
  await f.client.applyServices(many((i) => `10.96.6.${i === 0 ? 2 : i === 1 ? 1 : i + 1}`), { view: 'BASIC' });
  t.deepEqual((await f.client.getService('s0')).addresses, ['10.96.6.2']);
  t.deepEqual((await f.client.getService('s1')).addresses, ['10.96.6.1']);
  t.deepEqual((await f.client.getService('s19')).addresses, ['10.96.6.20']);
  // A frontend of a service outside the batch stays its own.
  const err = await t.throwsAsync(f.client.applyServices([{ service: webService('s20', '10.96.6.20', ['10.1.0.1']) }, ...many((i) => `10.96.7.${i + 1}`).slice(0, 17)]));
  t.like(err, { field: 'requests[0].service.addresses[0]' });
  t.regex(err!.message, /already owned by service "s19"/);
});
