/**
 * Every service has an owner: the API writes its own, another source
 * (the kube-proxy mode, next) writes its own through a Catalog of its
 * owner, and neither changes the other's. Through the gRPC API and the
 * CLI too: services of another owner are shown with it and refused with
 * FAILED_PRECONDITION naming the field, leaving store and maps as they were.
 */
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { Catalog } from '../../src/catalog/catalog.js';
import { CatalogKeys, decodeServiceValue } from '../../src/catalog/keys.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';
import { SluiceError } from '../../src/errors.js';
import type { ServiceDefinition } from '../../src/model/definition.js';
import { dataplaneSnapshot, startApi, unary, webService } from '../helpers/api.js';
import { sluice } from '../helpers/cli.js';

const definition = (name: string, vip: string): ServiceDefinition => ({
  name,
  addresses: [vip],
  ports: [{ name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 }],
  backends: [{ address: '10.1.0.1', weight: 1, state: 'active' }],
  noBackends: 'reject',
});

async function refused(t: ExecutionContext, p: Promise<unknown>, field: string, owner = 'kubernetes', writer = 'api'): Promise<void> {
  const err = await t.throwsAsync(p, { instanceOf: SluiceError });
  t.is(err?.code, 'FAILED_PRECONDITION');
  t.is(err?.field, field);
  t.true(err?.message.includes(`is owned by "${owner}", not "${writer}": change it through its owner`), err?.message);
}

test('a catalog writes as its owner, and refuses every write to a service of another', async (t) => {
  const store = new MemoryKvStore();
  t.teardown(() => store.close());
  const keys = new CatalogKeys('/sluice');
  const kube = new Catalog({ store, owner: 'kubernetes' });
  const api = new Catalog({ store });
  t.is(api.owner, 'api');

  await kube.apply([{ definition: definition('default/kubernetes', '10.96.0.1') }]);
  await api.apply([{ definition: definition('web', '10.96.0.10') }]);
  t.is((await api.get('default/kubernetes')).owner, 'kubernetes');
  t.is((await kube.get('web')).owner, 'api');
  const stored = await store.get(keys.service('default/kubernetes'));
  t.is(decodeServiceValue(stored!.value).owner, 'kubernetes', 'the owner is in the stored value');

  const revision = await store.revision();
  await refused(t, api.apply([{ definition: definition('web', '10.96.0.10') }, { definition: { ...definition('default/kubernetes', '10.96.0.1'), backends: [] } }]), '[1].name');
  await refused(t, api.delete('default/kubernetes'), 'name');
  await refused(t, api.registerBackend({ service: 'default/kubernetes', address: '10.1.0.9' }), 'service');
  await refused(t, api.deregisterBackend('default/kubernetes', '10.1.0.1'), 'service');
  await refused(t, api.setBackendState('default/kubernetes', '10.1.0.1', 'draining'), 'service');
  t.is(await store.revision(), revision, 'nothing was written, not even the batch\'s other (unchanged) item');

  // Its owner changes it; the answer says whose it is.
  const [changed] = (await kube.apply([{ definition: { ...definition('default/kubernetes', '10.96.0.1'), backends: [] } }])).services;
  t.is(changed!.owner, 'kubernetes');
  t.deepEqual(changed!.definition.backends, []);
  t.throws(() => new Catalog({ store, owner: 'Kube Proxy' }), { message: /owner "Kube Proxy" is not lower-case letters/ });
});

test('a service stored before owners is the API\'s, and keeps that owner when written again', async (t) => {
  const store = new MemoryKvStore();
  t.teardown(() => store.close());
  const keys = new CatalogKeys('/sluice');
  await store.txn([], [{ put: keys.service('old'), value: JSON.stringify(definition('old', '10.96.0.20')) }, { put: keys.frontend('10.96.0.20', 80, 'tcp'), value: 'old' }]);
  const api = new Catalog({ store });
  t.is((await api.get('old')).owner, 'api');
  await api.setBackendState('old', '10.1.0.1', 'draining');
  t.is(decodeServiceValue((await store.get(keys.service('old')))!.value).owner, 'api');
  await refused(t, new Catalog({ store, owner: 'kubernetes' }).delete('old'), 'name', 'api', 'kubernetes');
});

test('gRPC and CLI: another owner\'s service is shown with its owner and refused with the field named; nothing changes', async (t) => {
  const f = await startApi(t, { tag: 'owner' });
  const kube = new Catalog({ store: f.store, owner: 'kubernetes' });
  const { revision } = await kube.apply([{ definition: definition('default/kubernetes', '10.96.0.1') }]);
  await f.plane.settle(revision, ['default/kubernetes']);
  await f.client.applyService(webService('web', '10.96.0.10', ['10.1.0.2']));

  const got = await unary<{ owner: string }>(f.raw.registry, 'GetService', { name: 'default/kubernetes' });
  t.is(got.owner, 'kubernetes');
  t.is((await unary<{ owner: string }>(f.raw.registry, 'GetService', { name: 'web' })).owner, 'api');

  const before = dataplaneSnapshot(f.dp);
  const storeRevision = await f.store.revision();
  const err = (await t.throwsAsync(unary(f.raw.registry, 'ApplyService', { service: webService('default/kubernetes', '10.96.0.1', []) }))) as grpc.ServiceError;
  t.is(err.code, grpc.status.FAILED_PRECONDITION);
  t.regex(err.details, /service\.name: .*owned by "kubernetes"/);
  const bad = (await t.throwsAsync(unary(f.raw.registry, 'ApplyService', { service: { ...webService('web', '10.96.0.10', ['10.1.0.2']), owner: 'kubernetes' } }))) as grpc.ServiceError;
  t.is(bad.code, grpc.status.INVALID_ARGUMENT);
  t.regex(bad.details, /service\.owner: is output only/);
  t.is(dataplaneSnapshot(f.dp), before);
  t.is(await f.store.revision(), storeRevision);

  const list = await sluice(['--server', f.server.address, 'service', 'list']);
  t.regex(list.stdout, /^NAME .* REVISION +OWNER\n/);
  t.regex(list.stdout, /\ndefault\/kubernetes .* kubernetes\n/);
  const json = JSON.parse((await sluice(['--server', f.server.address, '-o', 'json', 'service', 'get', 'default/kubernetes'])).stdout) as { owner: string };
  t.is(json.owner, 'kubernetes');
  const del = await sluice(['--server', f.server.address, 'service', 'delete', 'default/kubernetes']);
  t.is(del.code, 1);
  t.regex(del.stderr, /owned by "kubernetes", not "api"/);
  t.is(dataplaneSnapshot(f.dp), before);
});
