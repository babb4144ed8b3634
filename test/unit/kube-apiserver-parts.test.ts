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
import { RESOURCES } from '../../src/demo/kube-apiserver/resources.js';
import { allocateService, prepareServiceUpdate, validateService } from '../../src/demo/kube-apiserver/services.js';

const ENDPOINT_SLICES = RESOURCES.find((r) => r.kind === 'EndpointSlice')!;

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

const NET = { cidr: '10.96.0.0/16', cidr6: 'fd96::/112', nodePortMin: 30000, nodePortMax: 32767 };
const cluster = (spec: Record<string, unknown>): Record<string, unknown> => ({ metadata: { name: 's' }, spec: { type: 'ClusterIP', sessionAffinity: 'None', ports: [{ port: 80, protocol: 'TCP' }], ...spec } });
const specOf = (o: Record<string, unknown>): Record<string, unknown> => o['spec'] as Record<string, unknown>;

test('cluster IPs by ipFamilyPolicy: SingleStack IPv4 by default, dual-stack policies both families in ipFamilies order', (t) => {
  const allocated = (spec: Record<string, unknown>, others: Array<Record<string, unknown>> = []) => {
    const svc = cluster(spec);
    t.deepEqual(validateService(svc, undefined), []);
    t.deepEqual(allocateService(svc, others, NET), []);
    const s = specOf(svc);
    return [s['clusterIP'], s['clusterIPs'], s['ipFamilies'], s['ipFamilyPolicy']];
  };
  t.deepEqual(allocated({}), ['10.96.1.1', ['10.96.1.1'], ['IPv4'], 'SingleStack'], 'IPv4 as before');
  t.deepEqual(allocated({ ipFamilyPolicy: 'PreferDualStack' }), ['10.96.1.1', ['10.96.1.1', 'fd96::101'], ['IPv4', 'IPv6'], 'PreferDualStack']);
  t.deepEqual(allocated({ ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv6', 'IPv4'] }), ['fd96::101', ['fd96::101', '10.96.1.1'], ['IPv6', 'IPv4'], 'RequireDualStack']);
  t.deepEqual(allocated({ ipFamilies: ['IPv6'] }), ['fd96::101', ['fd96::101'], ['IPv6'], 'SingleStack']);
  t.deepEqual(allocated({ ipFamilies: ['IPv4', 'IPv6'] }), ['10.96.1.1', ['10.96.1.1', 'fd96::101'], ['IPv4', 'IPv6'], 'RequireDualStack'], 'two families: RequireDualStack inferred');
  t.deepEqual(allocated({ clusterIPs: ['fd96::a', '10.96.0.10'] }), ['fd96::a', ['fd96::a', '10.96.0.10'], ['IPv6', 'IPv4'], 'RequireDualStack'], 'families from the cluster IPs given');
  t.deepEqual(allocated({ clusterIP: 'fd96::a', ipFamilyPolicy: 'PreferDualStack' }), ['fd96::a', ['fd96::a', '10.96.1.1'], ['IPv6', 'IPv4'], 'PreferDualStack']);
  const taken = cluster({ clusterIPs: ['10.96.1.1', 'fd96::101'] });
  t.deepEqual(allocated({ ipFamilyPolicy: 'PreferDualStack' }, [taken]), ['10.96.1.2', ['10.96.1.2', 'fd96::102'], ['IPv4', 'IPv6'], 'PreferDualStack'], 'the other services\' addresses of both families are taken');
});

test('a single-stack IPv4 cluster: IPv6 is not configured, PreferDualStack stays single, RequireDualStack is refused', (t) => {
  const v4only = { cidr: '10.96.0.0/16', nodePortMin: 30000, nodePortMax: 32767 };
  const prefer = cluster({ ipFamilyPolicy: 'PreferDualStack' });
  t.deepEqual(allocateService(prefer, [], v4only), []);
  t.deepEqual(specOf(prefer)['clusterIPs'], ['10.96.1.1']);
  t.deepEqual(allocateService(cluster({ ipFamilies: ['IPv6'] }), [], v4only), [{ type: 'Invalid', field: 'spec.ipFamilies[0]', value: 'IPv6', detail: 'not configured on this cluster' }]);
  t.deepEqual(allocateService(cluster({ ipFamilyPolicy: 'RequireDualStack' }), [], v4only), [{ type: 'Invalid', field: 'spec.ipFamilyPolicy', value: 'RequireDualStack', detail: 'this cluster is not configured for dual-stack services' }]);
});

test('ipFamilies, ipFamilyPolicy and clusterIPs are validated as the real API server does', (t) => {
  const errors = (spec: Record<string, unknown>) => {
    const svc = cluster(spec);
    const v = validateService(svc, undefined);
    return v.length > 0 ? v : allocateService(svc, [], NET);
  };
  t.deepEqual(errors({ ipFamilies: ['IPv4', 'IPv4'] }), [{ type: 'Duplicate', field: 'spec.ipFamilies[1]', value: 'IPv4' }]);
  t.deepEqual(errors({ ipFamilies: ['IPv5'] }), [{ type: 'NotSupported', field: 'spec.ipFamilies[0]', value: 'IPv5', detail: 'supported values: "IPv4", "IPv6"' }]);
  t.deepEqual(errors({ clusterIPs: ['10.96.0.10', '10.96.0.11'] }), [{ type: 'Invalid', field: 'spec.clusterIPs', value: ['10.96.0.10', '10.96.0.11'], detail: 'may specify no more than one IP for each IP family' }]);
  t.deepEqual(errors({ clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv6'] }), [{ type: 'Invalid', field: 'spec.clusterIPs[0]', value: '10.96.0.10', detail: 'expected an IPv6 value as indicated by `ipFamilies[0]`' }]);
  t.deepEqual(errors({ clusterIPs: ['None', 'fd96::a'] }), [{ type: 'Invalid', field: 'spec.clusterIPs', value: ['None', 'fd96::a'], detail: "'None' must be the first and only value" }]);
  t.deepEqual(errors({ clusterIPs: ['10.96.0.10', 'fd96::zz'] }), [{ type: 'Invalid', field: 'spec.clusterIPs[1]', value: 'fd96::zz', detail: 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)' }]);
  t.deepEqual(errors({ ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4', 'IPv6'] }), [{ type: 'Invalid', field: 'spec.ipFamilyPolicy', value: 'SingleStack', detail: 'must be RequireDualStack or PreferDualStack when multiple IP families are specified' }]);
  t.deepEqual(errors({ ipFamilyPolicy: 'SingleStack', clusterIPs: ['10.96.0.10', 'fd96::a'] }), [{ type: 'Invalid', field: 'spec.ipFamilyPolicy', value: 'SingleStack', detail: "must be RequireDualStack or PreferDualStack when multiple 'clusterIPs' are specified" }]);
  t.deepEqual(errors({ clusterIPs: ['10.96.0.10', 'fd97::a'] }), [{ type: 'Invalid', field: 'spec.clusterIPs', value: ['10.96.0.10', 'fd97::a'], detail: 'failed to allocate IP fd97::a: the provided IP (fd97::a) is not in the valid range. The range of valid IPs is fd96::/112' }]);
  const svc = cluster({ clusterIP: 'fd96::a' });
  t.deepEqual(allocateService(svc, [cluster({ clusterIPs: ['10.96.0.9', 'FD96:0::A'] })], NET), [{ type: 'Invalid', field: 'spec.clusterIPs', value: ['fd96::a'], detail: 'failed to allocate IP fd96::a: provided IP is already allocated' }], 'the same address written another way is taken');
});

test('an update adds a family with a dual-stack policy and releases it only with SingleStack', (t) => {
  /** The update as the registry runs it: prepare, validate, allocate; the stored spec's IP fields, or the errors. */
  const update = (old: Record<string, unknown>, change: Record<string, unknown>) => {
    const svc = structuredClone(old);
    Object.assign(specOf(svc), change);
    prepareServiceUpdate(svc, old);
    const errs = validateService(svc, old);
    if (errs.length > 0) return errs;
    const more = allocateService(svc, [], NET);
    if (more.length > 0) return more;
    const s = specOf(svc);
    return [s['clusterIPs'], s['ipFamilies'], s['ipFamilyPolicy']];
  };
  const single = cluster({ clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' });
  t.deepEqual(update(single, { ipFamilyPolicy: 'PreferDualStack' }), [['10.96.0.10', 'fd96::101'], ['IPv4', 'IPv6'], 'PreferDualStack'], 'upgraded: a second family allocated');
  const dual = cluster({ clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd96::10'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'PreferDualStack' });
  t.deepEqual(update(dual, { ipFamilyPolicy: 'SingleStack' }), [['10.96.0.10'], ['IPv4'], 'SingleStack'], 'downgraded: the secondary released');
  t.deepEqual(update(dual, { clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' }), [['10.96.0.10'], ['IPv4'], 'SingleStack'], 'downgraded with the fields given');
  t.deepEqual(update(dual, { clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4'] }), [
    { type: 'Invalid', field: 'spec.ipFamilyPolicy', value: 'PreferDualStack', detail: "must be 'SingleStack' to release the secondary cluster IP" },
    { type: 'Invalid', field: 'spec.ipFamilyPolicy', value: 'PreferDualStack', detail: "must be 'SingleStack' to release the secondary IP family" },
  ]);
  t.deepEqual(update(dual, { sessionAffinity: 'None' }), [['10.96.0.10', 'fd96::10'], ['IPv4', 'IPv6'], 'PreferDualStack'], 'another change keeps both');
});

test('EndpointSlices of addressType IPv6 take IPv6 addresses only', (t) => {
  const slice = (addressType: string, addresses: string[]) => ({ metadata: { name: 'web-x' }, addressType, endpoints: [{ addresses }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] });
  t.deepEqual(ENDPOINT_SLICES.validate(slice('IPv6', ['fd44::5']), undefined), []);
  t.deepEqual(ENDPOINT_SLICES.validate(slice('IPv6', ['10.244.1.5']), undefined), [{ type: 'Invalid', field: 'endpoints[0].addresses[0]', value: '10.244.1.5', detail: 'must be a valid IPv6 address' }]);
  t.deepEqual(ENDPOINT_SLICES.validate(slice('IPv4', ['fd44::5']), undefined), [{ type: 'Invalid', field: 'endpoints[0].addresses[0]', value: 'fd44::5', detail: 'must be a valid IPv4 address' }]);
});
