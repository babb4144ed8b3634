/**
 * A service's `noBackends`: what its packets get while it has no usable
 * backend, `reject` (answered: a RST, ICMP port unreachable; the default)
 * or `drop`. Through every layer that carries it: the schema (a bad value
 * refused naming the field), the store (a value written before the field
 * reads as reject, and applying the same definition again changes nothing),
 * the load balancer (the flag in svc_value), adoption of pinned maps, the
 * gRPC API and the CLI. What the dataplane does with it is
 * test/bpf/packets.test.ts's, end to end test/e2e/{xdp,tc}.test.ts's.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { Catalog } from '../../src/catalog/catalog.js';
import { CatalogKeys, decodeServiceValue, encodeServiceValue } from '../../src/catalog/keys.js';
import { adoptDataplane } from '../../src/daemon/adopt.js';
import { SVC_FLAG_AFFINITY, SVC_FLAG_DROP_NO_BACKEND } from '../../src/dataplane/codec.js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import { expandDefinition, normaliseDefinition } from '../../src/model/definition.js';
import type { ServiceSpec } from '../../src/model/service.js';
import { SluiceError } from '../../src/errors.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';
import type { ServiceMessage } from '../../src/api/messages.js';
import { startApi, unary, webService } from '../helpers/api.js';
import { sluice } from '../helpers/cli.js';

const input = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'web', addresses: ['10.96.0.10'], ports: [{ port: 80, protocol: 'tcp' }], backends: [], ...extra,
});

test('the schema: reject by default, reject or drop in either case, anything else refused naming the field', (t) => {
  t.is(normaliseDefinition(input()).noBackends, 'reject');
  t.is(normaliseDefinition(input({ noBackends: 'drop' })).noBackends, 'drop');
  t.is(normaliseDefinition(input({ noBackends: 'DROP' })).noBackends, 'drop');
  t.is(normaliseDefinition(input({ noBackends: 'REJECT' })).noBackends, 'reject');
  const bad: Array<[unknown, string]> = [
    ['dorp', 'must be reject or drop, got "dorp"; did you mean drop?'],
    ['Drop', 'must be reject or drop, got "Drop"; did you mean drop?'],
    ['', 'must be reject or drop, got ""'],
    [true, 'must be reject or drop, got true'],
    [2, 'must be reject or drop, got 2'],
  ];
  for (const [value, says] of bad) {
    const err = t.throws(() => normaliseDefinition(input({ noBackends: value })), { instanceOf: SluiceError });
    t.is(err?.code, 'INVALID_ARGUMENT', String(value));
    t.is(err?.field, 'noBackends', String(value));
    t.is(err?.message, `noBackends: ${says}`);
  }
  const misspelt = t.throws(() => normaliseDefinition(input({ nobackends: 'drop' })), { instanceOf: SluiceError });
  t.is(misspelt?.message, 'nobackends: unknown field; did you mean noBackends?');
});

test('each frontend carries the choice; drop is the only one it states', (t) => {
  const two = { ports: [{ port: 80, protocol: 'tcp' }, { port: 53, protocol: 'udp' }] };
  t.deepEqual(expandDefinition(normaliseDefinition(input({ ...two, noBackends: 'drop' }))).map((s) => s.noBackends), ['drop', 'drop']);
  t.deepEqual(expandDefinition(normaliseDefinition(input(two))).map((s) => s.noBackends), [undefined, undefined]);
});

test('dual stack: each frontend gets its family\'s backends; a family without backends rejects only its VIPs', (t) => {
  const d = normaliseDefinition(input({ addresses: ['10.96.0.10', '2001:db8::10'], backends: [{ address: '10.1.0.1' }, { address: '10.1.0.2', state: 'draining' }] }));
  const specs = expandDefinition(d);
  t.deepEqual(specs.map((s) => [s.address, s.backends.map((b) => b.address)]), [['10.96.0.10', ['10.1.0.1', '10.1.0.2']], ['2001:db8::10', []]]);
  const both = expandDefinition(normaliseDefinition(input({ addresses: ['2001:db8::10', '10.96.0.10'], backends: [{ address: '2001:db8::1' }, { address: '10.1.0.1' }, { address: '2001:db8::2', state: 'maintenance' }] })));
  t.deepEqual(both.map((s) => [s.name, s.backends.map((b) => b.address)]), [['web|[2001:db8::10]:80/tcp', ['2001:db8::1']], ['web|10.96.0.10:80/tcp', ['10.1.0.1']]]);
  // tableSize is checked against each family's active backends, not their sum.
  const many = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => ({ address: f(i) }));
  const table = (tableSize: number) => input({ addresses: ['10.96.0.10', '2001:db8::10'], tableSize, backends: [...many(3, (i) => `10.1.0.${i + 1}`), ...many(2, (i) => `2001:db8::${i + 1}`)] });
  t.is(normaliseDefinition(table(307)).tableSize, 307, '100 × 3 IPv4 backends: enough');
  const err = t.throws(() => normaliseDefinition(table(293)), { instanceOf: SluiceError });
  t.is(err?.field, 'tableSize');
  t.is(err?.message, 'tableSize: must be at least 100 × the active IPv4 backends (300), got 293');
});

test('dual stack in the maps: the IPv6 frontend without backends answers alone; the IPv4 one keeps its table', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp);
  const specs = expandDefinition(normaliseDefinition(input({ addresses: ['10.96.0.10', '2001:db8::10'], backends: [{ address: '10.1.0.1' }] })));
  await lb.applyMany(specs);
  const v4 = lb.ids('web|10.96.0.10:80/tcp');
  const v6 = lb.ids('web|[2001:db8::10]:80/tcp');
  t.truthy(dp.getMaglevTable(v4.service), 'the IPv4 frontend has a table');
  t.is(dp.getMaglevTable(v6.service), null, 'the IPv6 frontend has no backend: no table, so the dataplane rejects its packets');
  t.is(v6.backends.size, 0);
  t.deepEqual(dp.listVips().sort(), ['10.96.0.10', '2001:db8::10']);
});

test('the store: a value written before the field reads as reject, and the same definition applied again changes nothing', async (t) => {
  const store = new MemoryKvStore();
  t.teardown(() => store.close());
  const keys = new CatalogKeys('/sluice');
  const { noBackends: _, ...old } = normaliseDefinition(input({ backends: [{ address: '10.1.0.1' }] }));
  t.false('noBackends' in old);
  await store.txn([], [{ put: keys.service('web'), value: JSON.stringify({ owner: 'api', ...old }) }, { put: keys.frontend('10.96.0.10', 80, 'tcp'), value: 'web' }]);
  const catalog = new Catalog({ store });
  t.is((await catalog.get('web')).definition.noBackends, 'reject');
  const revision = await store.revision();
  const again = await catalog.apply([{ definition: normaliseDefinition(input({ backends: [{ address: '10.1.0.1' }] })) }]);
  t.deepEqual(again.unchanged, ['web'], 'the default is what the old value meant: unchanged');
  t.is(await store.revision(), revision);
  await catalog.apply([{ definition: normaliseDefinition(input({ backends: [{ address: '10.1.0.1' }], noBackends: 'drop' })) }]);
  t.is(decodeServiceValue((await store.get(keys.service('web')))!.value).definition.noBackends, 'drop', 'a change of the field is a change');
  t.true(await store.revision() > revision);

  const d = normaliseDefinition(input({ noBackends: 'drop' }));
  t.deepEqual(decodeServiceValue(encodeServiceValue(d, 'api')), { definition: d, owner: 'api' }, 'encode, decode: the same');
});

test('the load balancer: drop sets SLUICE_SVC_DROP_NO_BACKEND in svc_value, reject clears it; adoption reads it back', async (t) => {
  const dp = new FakeDataplane();
  const lb = new LoadBalancer(dp);
  const spec: ServiceSpec = { name: 'empty', address: '10.96.0.30', port: 80, protocol: 'tcp', backends: [], noBackends: 'drop', sessionAffinity: { timeoutSeconds: 60 } };
  const flags = (): number => [...dp.services.values()].find((s) => s.key.address === '10.96.0.30')!.value.flags;
  await lb.apply(spec);
  t.is(flags(), SVC_FLAG_DROP_NO_BACKEND | SVC_FLAG_AFFINITY, 'drop, beside affinity');

  const adopted = adoptDataplane(dp).definitions.find((d) => d.addresses[0] === '10.96.0.30');
  t.is(adopted?.noBackends, 'drop', 'adopted from the maps with its choice');

  await lb.apply({ ...spec, noBackends: 'reject' });
  t.is(flags(), SVC_FLAG_AFFINITY, 'reject: the flag is cleared');
  t.is(adoptDataplane(dp).definitions.find((d) => d.addresses[0] === '10.96.0.30')?.noBackends, 'reject');
  await lb.apply({ ...spec, noBackends: undefined } as unknown as ServiceSpec);
  t.is(flags(), SVC_FLAG_AFFINITY, 'unset is reject');
  const err = await t.throwsAsync(lb.apply({ ...spec, noBackends: 'ignore' } as unknown as ServiceSpec), { instanceOf: SluiceError });
  t.is(err?.field, 'noBackends');
  t.is(flags(), SVC_FLAG_AFFINITY, 'a refused spec writes nothing');
});

test('gRPC: NoBackends in and out; unspecified is REJECT; an unknown value is INVALID_ARGUMENT naming service.no_backends', async (t) => {
  const f = await startApi(t, { tag: 'nobackends' });
  await unary(f.raw.registry, 'ApplyService', { service: webService('dropper', '10.96.0.31', [], { noBackends: 'DROP' }) });
  await unary(f.raw.registry, 'ApplyService', { service: webService('plain', '10.96.0.32', []) });
  t.is((await unary<ServiceMessage>(f.raw.registry, 'GetService', { name: 'dropper' })).noBackends, 'DROP');
  t.is((await unary<ServiceMessage>(f.raw.registry, 'GetService', { name: 'plain' })).noBackends, 'REJECT');
  t.is([...f.dp.services.values()].find((s) => s.key.address === '10.96.0.31')!.value.flags & SVC_FLAG_DROP_NO_BACKEND, SVC_FLAG_DROP_NO_BACKEND);
  t.is([...f.dp.services.values()].find((s) => s.key.address === '10.96.0.32')!.value.flags & SVC_FLAG_DROP_NO_BACKEND, 0);

  const err = await t.throwsAsync<grpc.ServiceError>(unary(f.raw.registry, 'ApplyService', { service: webService('plain', '10.96.0.32', [], { noBackends: 7 as unknown as 'DROP' }) }));
  t.is(err?.code, grpc.status.INVALID_ARGUMENT);
  t.is(err?.details, 'service.no_backends: must be reject or drop, got 7');
  t.is((await unary<ServiceMessage>(f.raw.registry, 'GetService', { name: 'plain' })).noBackends, 'REJECT', 'nothing changed');
});

test('CLI: noBackends in a service file, in get and list, in -o yaml applied back; a typo names the field', async (t) => {
  const f = await startApi(t, { tag: 'cli-nobackends' });
  const dir = mkdtempSync(path.join(os.tmpdir(), `sluice-nobackends-${process.pid}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'web.yaml');
  const server = ['--server', f.server.address];
  const text = (over: string): string => `name: default/quiet\naddresses: [10.96.0.40]\nports: [{port: 80, protocol: tcp}]\n${over}`;

  writeFileSync(file, text('noBackends: drop\n'));
  let r = await sluice([...server, 'service', 'apply', '-f', file]);
  t.is(r.code, 0, r.stderr);
  r = await sluice([...server, 'service', 'get', 'default/quiet']);
  t.regex(r.stdout, /^no backends:  drop \(clients wait for their timeouts\)$/m);
  r = await sluice([...server, 'service', 'list']);
  const [head, row] = r.stdout.trimEnd().split('\n');
  t.is(row!.slice(head!.indexOf('NO BACKENDS')).split(/ +/)[0], 'drop', r.stdout);

  r = await sluice([...server, 'service', 'get', 'default/quiet', '-o', 'yaml']);
  t.regex(r.stdout, /^noBackends: DROP$/m);
  writeFileSync(file, r.stdout);
  r = await sluice([...server, 'service', 'apply', '-f', file]);
  t.regex(r.stdout, /^service default\/quiet unchanged/, r.stderr);

  writeFileSync(file, text(''));
  r = await sluice([...server, 'service', 'apply', '-f', file]);
  t.regex(r.stdout, /^service default\/quiet applied/, 'leaving the field out is a change back to reject');
  r = await sluice([...server, 'service', 'get', 'default/quiet']);
  t.regex(r.stdout, /^no backends:  reject \(a SYN is answered with a RST, UDP with ICMP port unreachable\)$/m);

  writeFileSync(file, text('noBackends: dorp\n'));
  r = await sluice([...server, 'service', 'apply', '-f', file]);
  t.is(r.stderr, `sluice: ${file}: noBackends: must be reject or drop, got "dorp"; did you mean drop?\n`);
  t.is(r.code, 1);
});
