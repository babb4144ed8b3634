/**
 * Bad requests, as a table: each is answered with the right status code
 * and a message (and a google.rpc.BadRequest detail) naming the request
 * field, while the dataplane's maps stay exactly as they were and the store
 * revision does not move. Then a failure inside the dataplane: the change
 * is undone and the store untouched.
 */
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { STATUS_DETAILS_KEY, decodeFieldViolations } from '../../src/api/error-details.js';
import { dataplaneSnapshot, startApi, unary, webService, type ApiFixture, type RawClient } from '../helpers/api.js';
import { CASES, type Case } from '../helpers/api-error-cases.js';

async function setup(t: ExecutionContext, tag: string, dataplane?: FakeDataplane, plane: { retryMs?: number } = {}): Promise<ApiFixture> {
  const f = await startApi(t, { tag, plane, ...(dataplane ? { dataplane } : {}) });
  await unary(f.raw.registry, 'ApplyService', { service: webService('owner', '10.96.0.10', ['10.1.0.1', '10.1.0.2']) });
  await unary(f.raw.registry, 'ApplyService', { service: webService('web', '10.96.0.20', ['10.1.0.1']) });
  await unary(f.raw.registry, 'ApplyService', { service: webService('web', '10.96.0.20', ['10.1.0.1', '10.1.0.3']) });
  return f;
}

test('bad requests: the right code, the field named, nothing written', async (t) => {
  const f = await setup(t, 'errors-table');
  const clients: Record<Case['client'], RawClient> = { registry: f.raw.registry, registration: f.raw.registration, operations: f.raw.operations };
  for (const c of CASES) {
    const before = dataplaneSnapshot(f.dp);
    const revision = await f.store.revision();
    let err: grpc.ServiceError | undefined;
    try {
      await unary(clients[c.client], c.method, c.request(f));
    } catch (e) {
      err = e as grpc.ServiceError;
    }
    if (!err) {
      t.fail(`${c.description}: the call succeeded`);
      continue;
    }
    t.is(err.code, c.code, `${c.description}: code ${grpc.status[err.code]} (${err.details}), want ${grpc.status[c.code]}`);
    if (c.field !== undefined) {
      t.true(err.details.startsWith(`${c.field}: `), `${c.description}: message ${JSON.stringify(err.details)} does not start with ${c.field}`);
      const bin = err.metadata.get(STATUS_DETAILS_KEY)[0];
      const violations = Buffer.isBuffer(bin) ? decodeFieldViolations(bin) : [];
      t.is(violations[0]?.field, c.field, `${c.description}: BadRequest detail`);
    }
    if (c.says) t.regex(err.details, c.says, c.description);
    if (process.env['SHOW_ERRORS']) t.log(`${c.description} → ${grpc.status[err.code]} ${err.details}`);
    t.is(dataplaneSnapshot(f.dp), before, `${c.description}: the dataplane changed`);
    t.is(await f.store.revision(), revision, `${c.description}: the store revision moved`);
  }
  t.is((await unary<{ services: unknown[] }>(f.raw.registry, 'ListServices', {})).services.length, 2, 'no service was created');
});

test('IPv6 and dual stack accepted: stored in RFC 5952 form, one frontend per VIP with the backends of its family', async (t) => {
  const f = await setup(t, 'errors-ipv6');
  type Answer = { addresses: string[]; ipFamilies: string[]; backends: Array<{ address: string }> };
  const applied = await unary<Answer>(f.raw.registry, 'ApplyService', {
    service: webService('dual', '10.96.0.30', ['10.1.0.31', '2001:DB8:0::31'], { addresses: ['10.96.0.30', '2001:0db8::30'] }),
  });
  t.deepEqual(applied.addresses, ['10.96.0.30', '2001:db8::30']);
  t.deepEqual(applied.ipFamilies, ['IPV4', 'IPV6']);
  t.deepEqual(applied.backends.map((b) => b.address), ['10.1.0.31', '2001:db8::31']);
  const six = await unary<Answer>(f.raw.registry, 'ApplyService', { service: webService('six', '2001:db8::40', ['2001:db8::41']) });
  t.deepEqual(six.ipFamilies, ['IPV6']);
  // Registered with a lease, in any spelling: kept in one.
  const reg = await unary<{ service: Answer }>(f.raw.registration, 'RegisterBackend', { service: 'dual', address: '2001:db8:0:0::32' });
  t.deepEqual(reg.service.backends.map((b) => b.address), ['10.1.0.31', '2001:db8::31', '2001:db8::32']);
  // Each frontend holds its family's backends only.
  const v4 = f.lb.ids('dual|10.96.0.30:80/tcp');
  const v6 = f.lb.ids('dual|[2001:db8::30]:80/tcp');
  t.deepEqual([...v4.backends.keys()], ['10.1.0.31:8080']);
  t.deepEqual([...v6.backends.keys()].sort(), ['[2001:db8::31]:8080', '[2001:db8::32]:8080']);
  t.true(f.dp.listVips().includes('2001:db8::30'));
  t.is(f.dp.replies.get('2001:db8::32|8080|tcp'), v6.backends.get('[2001:db8::32]:8080'), 'an IPv6 endpoint has its reply_nat entry');
  t.is(f.dp.backends.get(v6.backends.get('[2001:db8::31]:8080')!)?.address, '2001:db8::31');
  // ListServices finds it by its IPv6 VIP in any spelling.
  const listed = await unary<{ services: Array<{ name: string }> }>(f.raw.registry, 'ListServices', { address: '2001:DB8::30' });
  t.deepEqual(listed.services.map((x) => x.name), ['dual']);
  // Deregistered by another spelling.
  await unary(f.raw.registration, 'DeregisterBackend', { service: 'dual', address: '2001:db8::0:32' });
  t.false(f.dp.replies.has('2001:db8::32|8080|tcp'));
});

test('KeepAlive of an unknown lease ends the stream with NOT_FOUND naming lease_id', async (t) => {
  const f = await setup(t, 'errors-keepalive');
  const before = dataplaneSnapshot(f.dp);
  const call = f.raw.registration['KeepAlive']!() as grpc.ClientDuplexStream<object, object>;
  const err = await new Promise<grpc.ServiceError>((resolve) => {
    call.on('data', () => undefined);
    call.on('error', resolve);
    call.write({ leaseId: 'nope' });
  });
  t.is(err.code, grpc.status.NOT_FOUND);
  t.regex(err.details, /^lease_id: /);
  t.is(dataplaneSnapshot(f.dp), before);
});

/** A fake dataplane whose next Maglev table write fails as a full map does in the addon. */
class FullDataplane extends FakeDataplane {
  fail = false;
  override writeTables(tables: ReadonlyArray<{ base: number; table: Uint32Array }>): void {
    if (this.fail) {
      this.fail = false;
      throw Object.assign(new Error('bpf_map_update_batch: No space left on device'), { code: 'ENOSPC', errno: 28, syscall: 'bpf_map_update_batch' });
    }
    super.writeTables(tables);
  }
}

test('a dataplane that refuses a committed change: the write says so, the maps stay whole, the node tries again', async (t) => {
  const dp = new FullDataplane();
  const f = await setup(t, 'errors-full', dp, { retryMs: 3_600_000 });
  const before = dataplaneSnapshot(dp);
  const revision = await f.store.revision();
  dp.fail = true;
  const err = await unary(f.raw.registry, 'ApplyService', { service: webService('web', '10.96.0.20', ['10.1.0.4', '10.1.0.5']) }).catch((e: grpc.ServiceError) => e);
  t.is((err as grpc.ServiceError).code, grpc.status.RESOURCE_EXHAUSTED, (err as grpc.ServiceError).details);
  t.regex((err as grpc.ServiceError).details, new RegExp(`^committed at revision ${revision + 1}, but this node's dataplane could not program web: `));
  t.is(dataplaneSnapshot(dp), before, 'the maps keep the previous frontends whole');
  t.is(await f.store.revision(), revision + 1, 'store first: the change is committed');
  const web = await unary<{ backends: Array<{ address: string }> }>(f.raw.registry, 'GetService', { name: 'web' });
  t.deepEqual(web.backends.map((b) => b.address), ['10.1.0.4', '10.1.0.5'], 'desired state is the committed one');
  // The node tries again (its timer, here now; the map has room): the maps follow.
  t.is(f.plane.syncer.failures().length, 1);
  await f.plane.syncer.retryFailed();
  const backends = (): string[] => [...dp.backends.values()].map((b) => b.address).sort();
  t.true(backends().includes('10.1.0.4') && backends().includes('10.1.0.5'), `maps after the retry: ${backends().join(', ')}`);
  t.is(f.plane.syncer.failures().length, 0, 'no failure left');
});
