/**
 * The kube-proxy mode's source over a fake API server: the first sync
 * waits for every list, changes are written (and coalesced), services of
 * other owners are left alone, a restart adopts what it wrote before, a
 * 410 relists, an unreachable API server keeps what is programmed.
 */
import test from 'ava';
import { pino } from 'pino';
import { Catalog } from '../../src/catalog/catalog.js';
import { CatalogKeys } from '../../src/catalog/keys.js';
import { CatalogView } from '../../src/catalog/view.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';
import { inCidrs, KubeSource, nodeAddresses, primaryAddresses } from '../../src/kube/source.js';
import type { KubeEndpointSlice, KubeService } from '../../src/kube/objects.js';
import { FakeKube } from '../helpers/fake-kube.js';

const SVC = '/api/v1/services';
const EPS = '/apis/discovery.k8s.io/v1/endpointslices';
const NODES = '/api/v1/nodes';

function service(name: string, ip: string, extra: Partial<NonNullable<KubeService['spec']>> = {}): KubeService {
  return { metadata: { namespace: 'default', name }, spec: { type: 'ClusterIP', clusterIP: ip, ports: [{ name: 'http', port: 80, protocol: 'TCP' }], ...extra } };
}
function slice(svc: string, addrs: string[], name = `${svc}-x`): KubeEndpointSlice {
  return { metadata: { namespace: 'default', name, labels: { 'kubernetes.io/service-name': svc } }, addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: addrs.map((a) => ({ addresses: [a] })) };
}

async function setup(kube: FakeKube, store = new MemoryKvStore(), opts: { minSyncMs?: number; drainGraceMs?: number } = {}) {
  const keys = new CatalogKeys('/sluice');
  const view = new CatalogView({ store, keys });
  await view.start();
  const catalog = new Catalog({ store, keys, owner: 'kubernetes', view });
  const syncs: number[] = [];
  const source = new KubeSource({
    api: kube,
    catalog,
    view,
    nodeName: 'node-1',
    nodePortCidrs: [],
    logger: pino({ level: 'silent' }),
    minSyncMs: opts.minSyncMs ?? 0,
    drainGraceMs: opts.drainGraceMs ?? 0,
    onSync: (r) => syncs.push(r.services),
    watch: { timeoutSeconds: () => 60, backoffMs: { initial: 10, max: 50 } },
  });
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 20));
      await source.settled();
    }
    await view.waitFor(await store.revision());
  };
  const names = (): string[] => view.names().sort();
  const backends = (n: string): string[] => view.get(n)?.definition.backends.map((b) => `${b.address}:${b.state}`) ?? [];
  return { store, view, catalog, source, settle, names, backends, syncs, close: async () => { await source.stop(); view.close(); } };
}

test('nothing is written until services, slices and the node have all been listed', async (t) => {
  const kube = new FakeKube();
  kube.services = [service('web', '10.96.0.10')];
  kube.slices = [slice('web', ['10.244.1.5'])];
  kube.down = true;
  const s = await setup(kube);
  t.teardown(s.close);
  s.source.start();
  await new Promise((r) => setTimeout(r, 100));
  t.false(s.source.initialized);
  t.deepEqual(s.names(), []);
  kube.down = false;
  await kube.watching();
  await s.settle();
  t.true(s.source.initialized);
  t.deepEqual(s.names(), ['default/web:http']);
  t.deepEqual(s.backends('default/web:http'), ['10.244.1.5:active']);
  t.is(s.view.get('default/web:http')?.owner, 'kubernetes');
});

test('watch events are programmed; a deleted service and a type change remove exactly what they should', async (t) => {
  const kube = new FakeKube();
  kube.nodes = [{ metadata: { name: 'node-1' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.7.2' }, { type: 'Hostname', address: 'node-1' }] } }];
  const s = await setup(kube);
  t.teardown(s.close);
  s.source.start();
  await kube.watching();
  await s.settle();
  kube.emit(SVC, 'ADDED', service('web', '10.96.0.10', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }));
  kube.emit(EPS, 'ADDED', slice('web', ['10.244.1.5', '10.244.1.6']));
  await s.settle();
  t.deepEqual(s.names(), ['default/web:http', 'default/web:http/nodeport']);
  t.deepEqual(s.view.get('default/web:http/nodeport')?.definition.addresses, ['192.168.7.2']);
  t.deepEqual(s.backends('default/web:http/nodeport'), ['10.244.1.5:active', '10.244.1.6:active']);
  // NodePort -> ClusterIP: the node port goes, the cluster IP stays.
  kube.emit(SVC, 'MODIFIED', service('web', '10.96.0.10'));
  await s.settle();
  t.deepEqual(s.names(), ['default/web:http']);
  // -> ExternalName: everything goes.
  kube.emit(SVC, 'MODIFIED', { metadata: { namespace: 'default', name: 'web' }, spec: { type: 'ExternalName', ports: [{ name: 'http', port: 80 }] } });
  await s.settle();
  t.deepEqual(s.names(), []);
  kube.emit(SVC, 'MODIFIED', service('web', '10.96.0.10'));
  await s.settle();
  t.deepEqual(s.names(), ['default/web:http']);
  kube.emit(SVC, 'DELETED', service('web', '10.96.0.10'));
  await s.settle();
  t.deepEqual(s.names(), []);
  // A node that changes its address moves the node ports.
  kube.emit(SVC, 'ADDED', service('np', '10.96.0.11', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30081 }] }));
  await s.settle();
  kube.emit(NODES, 'MODIFIED', { metadata: { name: 'node-1' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.7.3' }] } });
  await s.settle();
  t.deepEqual(s.view.get('default/np:http/nodeport')?.definition.addresses, ['192.168.7.3']);
});

test('a burst of changes is written in few syncs, a lone change at once', async (t) => {
  const kube = new FakeKube();
  const s = await setup(kube, undefined, { minSyncMs: 1500 });
  t.teardown(s.close);
  s.source.start();
  await kube.watching();
  await s.settle();
  await new Promise((r) => setTimeout(r, 1600));
  const before = s.syncs.length;
  const t0 = Date.now();
  kube.emit(SVC, 'ADDED', service('lone', '10.96.1.1'));
  for (let i = 0; i < 300 && !s.view.get('default/lone:http'); i++) await new Promise((r) => setTimeout(r, 5));
  t.true(s.view.get('default/lone:http') !== undefined);
  // Written well before the minimum interval could have passed: it did not wait for it.
  t.true(Date.now() - t0 < 1000, `a lone change waited ${Date.now() - t0} ms (the minimum interval is 1,500 ms)`);
  for (let i = 0; i < 200; i++) kube.emit(SVC, 'ADDED', service(`b${i}`, `10.96.2.${i}`));
  await s.settle();
  await new Promise((r) => setTimeout(r, 1600));
  await s.settle();
  t.is(s.names().length, 201);
  t.true(s.syncs.length - before <= 3, `${s.syncs.length - before} syncs for a lone change and a burst of 200`);
});

test('services of another owner are left alone and reported', async (t) => {
  const kube = new FakeKube();
  kube.services = [service('web', '10.96.0.10')];
  const s = await setup(kube);
  t.teardown(s.close);
  await new Catalog({ store: s.store, keys: new CatalogKeys('/sluice') }).apply([{ definition: { name: 'default/web:http', addresses: ['10.0.0.1'], ports: [{ port: 80, protocol: 'tcp' }], backends: [] } }]);
  s.source.start();
  await kube.watching();
  await s.settle();
  t.is(s.view.get('default/web:http')?.owner, 'api');
  t.deepEqual(s.view.get('default/web:http')?.definition.addresses, ['10.0.0.1']);
  t.regex(s.source.problems.get('default/web')?.join('\n') ?? '', /belongs to api/);
});

test('a restarted source adopts what it wrote: unchanged services are not written again, gone ones are deleted', async (t) => {
  const kube = new FakeKube();
  kube.services = [service('web', '10.96.0.10'), service('old', '10.96.0.11')];
  kube.slices = [slice('web', ['10.244.1.5'])];
  const store = new MemoryKvStore();
  const first = await setup(kube, store);
  first.source.start();
  await kube.watching();
  await first.settle();
  t.deepEqual(first.names(), ['default/old:http', 'default/web:http']);
  await first.close();
  const rev = await store.revision();
  kube.services = [service('web', '10.96.0.10')];
  const second = await setup(kube, store);
  t.teardown(second.close);
  second.source.start();
  await kube.watching();
  await second.settle();
  t.deepEqual(second.names(), ['default/web:http']);
  t.is(second.view.get('default/web:http')?.revision, first.view.get('default/web:http')?.revision ?? -1, 'web was not written again');
  t.true((await store.revision()) > rev);
});

test('410 relists; a watch that ends resumes; an unreachable API server keeps what is programmed', async (t) => {
  const kube = new FakeKube();
  kube.services = [service('web', '10.96.0.10')];
  kube.slices = [slice('web', ['10.244.1.5'])];
  const s = await setup(kube);
  t.teardown(s.close);
  s.source.start();
  await kube.watching();
  await s.settle();
  const lists = { ...kube.lists };
  kube.endAll();
  await kube.watching();
  t.deepEqual(kube.lists, lists, 'a watch that ended resumed without listing');
  t.true(kube.open.every((w) => w.query['resourceVersion'] !== undefined && w.query['allowWatchBookmarks'] === true && w.query['timeoutSeconds'] === 60));
  // Changes made while the watches were gone, then 410: the relist finds them.
  kube.services.push(service('added', '10.96.0.12'));
  kube.slices = [slice('web', ['10.244.1.6'])];
  kube.goneAll();
  await kube.watching();
  await s.settle();
  t.is(kube.lists['services'], lists['services']! + 1);
  t.deepEqual(s.names(), ['default/added:http', 'default/web:http']);
  t.deepEqual(s.backends('default/web:http'), ['10.244.1.6:active']);
  // Unreachable: nothing is removed.
  kube.down = true;
  kube.endAll();
  await new Promise((r) => setTimeout(r, 200));
  t.false(s.source.apiReachable);
  t.deepEqual(s.names(), ['default/added:http', 'default/web:http']);
  kube.down = false;
  await kube.watching();
  kube.emit(SVC, 'DELETED', service('added', '10.96.0.12'));
  await s.settle();
  t.true(s.source.apiReachable);
  t.deepEqual(s.names(), ['default/web:http']);
});

test('an endpoint that leaves a TCP port drains for the grace period; one that leaves a UDP port goes at once', async (t) => {
  const kube = new FakeKube();
  kube.services = [service('web', '10.96.0.10', { ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }] })];
  const sl = (addrs: string[]): KubeEndpointSlice => ({ ...slice('web', addrs), ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }] });
  kube.slices = [sl(['10.244.1.5', '10.244.1.6'])];
  const s = await setup(kube, undefined, { drainGraceMs: 400 });
  t.teardown(s.close);
  s.source.start();
  await kube.watching();
  await s.settle();
  kube.emit(EPS, 'MODIFIED', sl(['10.244.1.6']));
  await s.settle();
  t.deepEqual(s.backends('default/web:http'), ['10.244.1.5:draining', '10.244.1.6:active']);
  t.deepEqual(s.backends('default/web:dns'), ['10.244.1.6:active']);
  await new Promise((r) => setTimeout(r, 500));
  await s.settle();
  t.deepEqual(s.backends('default/web:http'), ['10.244.1.6:active']);
});

test('--nodeport-addresses: CIDRs select the Node\'s addresses; primary is its first InternalIP', async (t) => {
  const kube = new FakeKube();
  kube.nodes = [{ metadata: { name: 'node-1' }, status: { addresses: [{ type: 'ExternalIP', address: '203.0.113.9' }, { type: 'InternalIP', address: '192.168.7.2' }, { type: 'InternalIP', address: '10.0.0.2' }] } }];
  kube.services = [service('np', '10.96.0.11', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30081 }] })];
  for (const [cidrs, want] of [[[], ['192.168.7.2', '10.0.0.2', '203.0.113.9']], [['10.0.0.0/8'], ['10.0.0.2']], [['primary'], ['192.168.7.2']]] as const) {
    const store = new MemoryKvStore();
    const keys = new CatalogKeys('/sluice');
    const view = new CatalogView({ store, keys });
    await view.start();
    const source = new KubeSource({ api: kube, catalog: new Catalog({ store, keys, owner: 'kubernetes', view }), view, nodeName: 'node-1', nodePortCidrs: cidrs, logger: pino({ level: 'silent' }), minSyncMs: 0, watch: { timeoutSeconds: () => 60, backoffMs: { initial: 10, max: 50 } } });
    source.start();
    await kube.watching(3 * (kube.open.length / 3 + 1));
    for (let i = 0; i < 100 && !view.get('default/np:http/nodeport'); i++) await new Promise((r) => setTimeout(r, 20));
    t.deepEqual(view.get('default/np:http/nodeport')?.definition.addresses, [...want], JSON.stringify(cidrs));
    await source.stop();
    view.close();
  }
});

test('the Node\'s addresses of both families, InternalIP before ExternalIP, IPv6 in RFC 5952 text', (t) => {
  const node = { metadata: { name: 'n' }, status: { addresses: [
    { type: 'ExternalIP', address: '2001:DB8::9' }, { type: 'InternalIP', address: 'fd00:7:0:0::2' }, { type: 'Hostname', address: 'n' },
    { type: 'InternalIP', address: '192.168.7.2' }, { type: 'InternalIP', address: 'fd00:7::2' }, { type: 'ExternalIP', address: '203.0.113.9' },
    { type: 'InternalIP', address: 'fe80::1%eth0' }, { type: 'InternalDNS', address: 'n.example' },
  ] } };
  t.deepEqual(nodeAddresses(node), ['fd00:7::2', '192.168.7.2', '2001:db8::9', '203.0.113.9']);
  t.deepEqual(nodeAddresses(undefined), []);
  t.deepEqual(primaryAddresses(nodeAddresses(node)), ['fd00:7::2', '192.168.7.2'], 'the first address, then the first of the other family');
  t.deepEqual(primaryAddresses(['192.168.7.2', '10.0.0.2']), ['192.168.7.2']);
  t.deepEqual(primaryAddresses([]), []);
});

test('inCidrs: CIDRs of either family select addresses of their own family', (t) => {
  t.true(inCidrs('fd00:7::2', ['fd00:7::/64']));
  t.true(inCidrs('fd00:7::2', ['10.0.0.0/8', 'fd00::/8']));
  t.false(inCidrs('fd00:7::2', ['10.0.0.0/8']), 'an IPv4 CIDR never holds an IPv6 address');
  t.false(inCidrs('10.0.0.2', ['::/0']), 'nor the other way round');
  t.true(inCidrs('10.0.0.2', ['10.0.0.0/8']));
  t.true(inCidrs('2001:db8::9', []), 'no CIDR: every address');
  t.false(inCidrs('2001:db8::9', ['2001:db9::/32']));
});

test('a dual-stack Node: an IPv4 service\'s node port stays on the IPv4 addresses; onNodeAddresses hears both families', async (t) => {
  const kube = new FakeKube();
  kube.nodes = [{ metadata: { name: 'node-1' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.7.2' }, { type: 'InternalIP', address: 'fd00:7::2' }] } }];
  kube.services = [service('np', '10.96.0.11', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30081 }] })];
  const store = new MemoryKvStore();
  const keys = new CatalogKeys('/sluice');
  const view = new CatalogView({ store, keys });
  await view.start();
  const heard: string[][] = [];
  const source = new KubeSource({ api: kube, catalog: new Catalog({ store, keys, owner: 'kubernetes', view }), view, nodeName: 'node-1', nodePortCidrs: [], logger: pino({ level: 'silent' }), minSyncMs: 0, onNodeAddresses: (a) => heard.push(a), watch: { timeoutSeconds: () => 60, backoffMs: { initial: 10, max: 50 } } });
  t.teardown(async () => {
    await source.stop();
    view.close();
  });
  source.start();
  await kube.watching();
  for (let i = 0; i < 100 && !view.get('default/np:http/nodeport'); i++) await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(view.get('default/np:http/nodeport')?.definition.addresses, ['192.168.7.2']);
  t.deepEqual(heard.at(-1), ['192.168.7.2', 'fd00:7::2']);
  t.deepEqual(source.problems.get('default/np'), undefined, 'nothing of the service is left out');
});
