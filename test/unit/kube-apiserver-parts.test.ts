/**
 * Pure parts of the test Kubernetes API server (src/demo/kube-apiserver/)
 * that the kubectl tests reach only in part: the strategic merge patch
 * directives, server-side apply's removal of fields no longer applied, label
 * and field selectors, and the Go-style duration of the Age column.
 */
import test from 'ava';
import { jsonMergePatch, serverSideApply, strategicMergePatch, type PatchMeta } from '../../src/demo/kube-apiserver/patch.js';
import { parseFieldSelector, parseLabelSelector } from '../../src/demo/kube-apiserver/selectors.js';
import { humanDuration } from '../../src/demo/kube-apiserver/table.js';

const PORTS: PatchMeta = {
  fields: {
    metadata: { fields: { finalizers: { primitiveMerge: true } } },
    spec: { fields: { ports: { mergeKey: 'port', applyKeys: ['port', 'protocol'], keyDefaults: { protocol: 'TCP' } } } },
  },
};

const svc = (ports: object[], extra: object = {}): Record<string, unknown> => ({ metadata: { name: 's' }, spec: { ports, ...extra } });

test('strategic merge: a keyed list merges by its key, deletes with $patch, orders by $setElementOrder', (t) => {
  const original = svc([{ port: 80, name: 'http' }, { port: 443, name: 'https' }, { port: 8080, name: 'alt' }]);
  const patched = strategicMergePatch(
    original,
    { spec: { '$setElementOrder/ports': [{ port: 8080 }, { port: 80 }], ports: [{ port: 80, targetPort: 81 }, { $patch: 'delete', port: 9999 }] } },
    PORTS,
  );
  // The server-only item (443) keeps its place before 8080 by the live order, as strategicpatch's mergeSortedSlice does.
  t.deepEqual((patched['spec'] as { ports: unknown }).ports, [
    { port: 443, name: 'https' },
    { port: 8080, name: 'alt' },
    { port: 80, name: 'http', targetPort: 81 },
  ]);
  const deleted = strategicMergePatch(original, { spec: { ports: [{ $patch: 'delete', port: 443 }] } }, PORTS);
  t.deepEqual((deleted['spec'] as { ports: Array<{ port: number }> }).ports.map((p) => p.port), [80, 8080]);
  const replaced = strategicMergePatch(original, { spec: { ports: [{ port: 1 }, { $patch: 'replace' }] } }, PORTS);
  t.deepEqual((replaced['spec'] as { ports: unknown }).ports, [{ port: 1 }]);
});

test('strategic merge: atomic lists are replaced, maps merge, null deletes, $retainKeys and primitive lists', (t) => {
  const original = { metadata: { name: 's', labels: { a: '1', b: '2' }, finalizers: ['x', 'y'] }, spec: { externalIPs: ['1.1.1.1'], selector: { app: 'a' } } };
  const out = strategicMergePatch(
    original,
    {
      metadata: { labels: { b: null, c: '3' }, finalizers: ['z'], '$deleteFromPrimitiveList/finalizers': ['x'] },
      spec: { externalIPs: ['2.2.2.2'], $retainKeys: ['externalIPs'] },
    },
    PORTS,
  );
  t.deepEqual(out, { metadata: { name: 's', labels: { a: '1', c: '3' }, finalizers: ['y', 'z'] }, spec: { externalIPs: ['2.2.2.2'] } });
  t.deepEqual(strategicMergePatch(original, { spec: { $patch: 'replace', type: 'NodePort' } }, PORTS)['spec'], { type: 'NodePort' });
});

test('JSON merge patch replaces lists and deletes with null', (t) => {
  t.deepEqual(jsonMergePatch({ a: [1, 2], b: { c: 1, d: 2 } }, { a: [3], b: { c: null } }), { a: [3], b: { d: 2 } });
});

test('server-side apply: list items by their listMapKeys (protocol defaulted), dropped when no longer applied', (t) => {
  const first = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's', labels: { a: '1' } }, spec: { ports: [{ port: 53 }, { port: 53, protocol: 'UDP' }] } };
  const live = serverSideApply(undefined, first, undefined, PORTS);
  t.deepEqual((live['spec'] as { ports: unknown }).ports, [{ port: 53 }, { port: 53, protocol: 'UDP' }]);
  // The live object has what the server added (protocol, a label another manager set).
  const withServerFields = { ...live, metadata: { name: 's', labels: { a: '1', other: 'x' } }, spec: { ports: [{ port: 53, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }], clusterIP: '10.96.0.5' } };
  const second = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 53, name: 'dns' }] } };
  const out = serverSideApply(withServerFields, second, first, PORTS);
  t.deepEqual(out['metadata'], { name: 's', labels: { other: 'x' } });
  t.deepEqual(out['spec'], { ports: [{ port: 53, protocol: 'TCP', name: 'dns' }], clusterIP: '10.96.0.5' });
});

test('label selectors: every operator, AND of requirements, absent keys', (t) => {
  const labels = { app: 'web', tier: 'front', n: '5' };
  const m = (s: string, l: Record<string, string> = labels): boolean => parseLabelSelector(s).matches(l);
  t.true(m('app=web'));
  t.true(m('app==web'));
  t.false(m('app!=web'));
  t.true(m('missing!=x'), '!= matches an absent key');
  t.true(m('app in (web, db)'));
  t.false(m('app notin (web,db)'));
  t.true(m('missing notin (a)'));
  t.true(m('tier'));
  t.false(m('!tier'));
  t.true(m('!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name'));
  t.false(m('!service.kubernetes.io/headless', { 'service.kubernetes.io/headless': '' }));
  t.true(m('app=web,tier in (front),!missing,n>4,n<6'));
  t.false(m('app=web,tier=back'));
  t.true(parseLabelSelector('').empty);
  t.true(m(''));
  const err = t.throws(() => parseLabelSelector('app=web,=x'));
  t.regex(err.message, /^unable to parse requirement/);
});

test('field selectors: the fields a resource offers, = == !=', (t) => {
  const fields = { 'metadata.name': 'web', 'metadata.namespace': 'default' };
  const sel = parseFieldSelector('metadata.name=web,metadata.namespace!=kube-system', ['metadata.name', 'metadata.namespace']);
  t.true(sel.matches(fields));
  t.false(parseFieldSelector('metadata.name==db', ['metadata.name']).matches(fields));
  t.is(t.throws(() => parseFieldSelector('spec.clusterIP=None', ['metadata.name'])).message, 'field label not supported: spec.clusterIP');
});

test('the Age column reads as duration.HumanDuration', (t) => {
  const s = 1000;
  t.is(humanDuration(5 * s), '5s');
  t.is(humanDuration(119 * s), '119s');
  t.is(humanDuration(125 * s), '2m5s');
  t.is(humanDuration(600 * s), '10m');
  t.is(humanDuration(3 * 3600 * s + 5 * 60 * s), '3h5m');
  t.is(humanDuration(30 * 3600 * s), '30h');
  t.is(humanDuration(3 * 86400 * s + 2 * 3600 * s), '3d2h');
  t.is(humanDuration(100 * 86400 * s), '100d');
  t.is(humanDuration(800 * 86400 * s), '2y70d');
});
