/**
 * Kubernetes objects to sluice definitions, rule by rule as kube-proxy
 * reads them (pkg/proxy/serviceport.go, endpointslicecache.go, topology.go).
 */
import test from 'ava';
import { isSkipped, kubeServiceOf, translateService } from '../../src/kube/translate.js';
import { keepGoneEndpoints, type GoneSince } from '../../src/kube/drain.js';
import type { KubeEndpointSlice, KubeService } from '../../src/kube/objects.js';
import { normaliseDefinition, type ServiceDefinition } from '../../src/model/definition.js';

const node = { nodePortAddresses: ['192.168.7.2'] };

function svc(spec: NonNullable<KubeService['spec']>, extra: Partial<KubeService> = {}): KubeService {
  return { metadata: { namespace: 'default', name: 'web' }, spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ...spec }, ...extra };
}

function slice(name: string, ports: Array<{ name?: string; port: number; protocol?: string }>, endpoints: Array<[string, { ready?: boolean; serving?: boolean; terminating?: boolean }?]>): KubeEndpointSlice {
  return {
    metadata: { namespace: 'default', name, labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: ports.map((p) => ({ protocol: 'TCP', ...p })),
    endpoints: endpoints.map(([a, c]) => ({ addresses: [a], ...(c ? { conditions: c } : {}) })),
  };
}

test('one sluice service per service port, named namespace/name:port, with the slice port number as target', (t) => {
  const s = svc({ ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'web' }, { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }] });
  const r = translateService(s, [slice('web-a', [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }], [['10.244.1.5'], ['10.244.1.6']])], node);
  t.deepEqual(r.problems, []);
  t.deepEqual(
    r.definitions.map((d) => [d.name, d.addresses, d.ports.map((p) => `${p.port}/${p.protocol}->${p.targetPort}`), d.backends.map((b) => `${b.address}:${b.state}`)]),
    [
      ['default/web:http', ['10.96.0.10'], ['80/tcp->8080'], ['10.244.1.5:active', '10.244.1.6:active']],
      ['default/web:dns', ['10.96.0.10'], ['53/udp->5353'], ['10.244.1.5:active', '10.244.1.6:active']],
    ],
  );
  for (const d of r.definitions) t.notThrows(() => normaliseDefinition(d));
});

test('the same port number with TCP and UDP gives two services', (t) => {
  const s = svc({ ports: [{ name: 'dns-tcp', port: 53, protocol: 'TCP' }, { name: 'dns-udp', port: 53, protocol: 'UDP' }] });
  const r = translateService(s, [slice('a', [{ name: 'dns-tcp', port: 53 }, { name: 'dns-udp', port: 53, protocol: 'UDP' }], [['10.244.1.5']])], node);
  t.deepEqual(r.definitions.map((d) => `${d.name} ${d.ports[0]!.port}/${d.ports[0]!.protocol}`), ['default/web:dns-tcp 53/tcp', 'default/web:dns-udp 53/udp']);
});

test('an unnamed port is namespace/name; its node port is a second service on the node addresses', (t) => {
  const s = svc({ type: 'NodePort', ports: [{ port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }] });
  const r = translateService(s, [slice('a', [{ name: '', port: 8080 }], [['10.244.1.5']])], node);
  t.deepEqual(r.definitions.map((d) => [d.name, d.addresses, d.ports[0]!.port, d.ports[0]!.targetPort]), [
    ['default/web', ['10.96.0.10'], 80, 8080],
    ['default/web/nodeport', ['192.168.7.2'], 30080, 8080],
  ]);
  t.is(kubeServiceOf('default/web/nodeport'), 'default/web');
  t.is(kubeServiceOf('default/web:http/nodeport'), 'default/web');
  t.is(kubeServiceOf('default/web:http'), 'default/web');
  t.is(kubeServiceOf('adopted/10.0.0.1-80-tcp'), undefined);
});

test('external IPs and VIP-mode load balancer ingress IPs are VIPs; Proxy-mode and hostname ingress are not', (t) => {
  const s = svc(
    { type: 'LoadBalancer', externalIPs: ['203.0.113.7'], ports: [{ name: 'http', port: 80, nodePort: 31000 }] },
    { status: { loadBalancer: { ingress: [{ ip: '198.51.100.1' }, { ip: '198.51.100.2', ipMode: 'Proxy' }, { hostname: 'lb.example' }, { ip: '198.51.100.3', ipMode: 'VIP' }] } } },
  );
  const r = translateService(s, [], node);
  t.deepEqual(r.definitions[0]!.addresses, ['10.96.0.10', '203.0.113.7', '198.51.100.1', '198.51.100.3']);
  t.is(r.definitions[1]!.name, 'default/web:http/nodeport');
  t.deepEqual(r.definitions[0]!.backends, [], 'no endpoints: a service without backends (rejected by the dataplane)');
});

test('ready endpoints serve; terminating-but-serving ones only when none is ready; the rest drain (TCP) or go (UDP)', (t) => {
  const ports = [{ name: 'http', port: 8080 }];
  const s = svc({ ports: [{ name: 'http', port: 80 }] });
  const both = translateService(s, [slice('a', ports, [['10.0.0.1', { ready: true }], ['10.0.0.2', { ready: false, serving: true, terminating: true }], ['10.0.0.3', { ready: false, serving: false }]])], node);
  t.deepEqual(both.definitions[0]!.backends.map((b) => `${b.address}:${b.state}`), ['10.0.0.1:active', '10.0.0.2:draining', '10.0.0.3:draining']);
  const fallback = translateService(s, [slice('a', ports, [['10.0.0.2', { ready: false, serving: true, terminating: true }], ['10.0.0.3', { ready: false, serving: false, terminating: true }]])], node);
  t.deepEqual(fallback.definitions[0]!.backends.map((b) => `${b.address}:${b.state}`), ['10.0.0.2:active', '10.0.0.3:draining']);
  const udp = svc({ ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] });
  const u = translateService(udp, [slice('a', [{ name: 'dns', port: 53, protocol: 'UDP' }], [['10.0.0.1'], ['10.0.0.3', { ready: false }]])], node);
  t.deepEqual(u.definitions[0]!.backends.map((b) => `${b.address}:${b.state}`), ['10.0.0.1:active']);
});

test('several slices merge; of two entries for one address the better one wins', (t) => {
  const ports = [{ name: 'http', port: 8080 }];
  const r = translateService(svc({ ports: [{ name: 'http', port: 80 }] }), [slice('a', ports, [['10.0.0.1', { ready: false, serving: true, terminating: true }], ['10.0.0.2']]), slice('b', ports, [['10.0.0.1', { ready: true }], ['10.0.0.3']])], node);
  t.deepEqual(r.definitions[0]!.backends.map((b) => `${b.address}:${b.state}`), ['10.0.0.1:active', '10.0.0.2:active', '10.0.0.3:active']);
});

test('slices that disagree on a port number: the larger group is used and the rest reported', (t) => {
  const r = translateService(svc({ ports: [{ name: 'http', port: 80 }] }), [slice('a', [{ name: 'http', port: 8080 }], [['10.0.0.1'], ['10.0.0.2']]), slice('b', [{ name: 'http', port: 9090 }], [['10.0.0.3']])], node);
  t.is(r.definitions[0]!.ports[0]!.targetPort, 8080);
  t.deepEqual(r.definitions[0]!.backends.map((b) => b.address), ['10.0.0.1', '10.0.0.2']);
  t.regex(r.problems.join('\n'), /1 endpoint\(s\) on port 9090 left out/);
});

test('ClientIP affinity with its timeout, 10800 s by default', (t) => {
  const a = translateService(svc({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }, ports: [{ name: 'http', port: 80 }] }), [], node);
  t.deepEqual(a.definitions[0]!.sessionAffinity, { timeoutSeconds: 60 });
  const d = translateService(svc({ sessionAffinity: 'ClientIP', ports: [{ name: 'http', port: 80 }] }), [], node);
  t.deepEqual(d.definitions[0]!.sessionAffinity, { timeoutSeconds: 10800 });
  t.is(translateService(svc({ ports: [{ name: 'http', port: 80 }] }), [], node).definitions[0]!.sessionAffinity, undefined);
});

test('headless and ExternalName services are not programmed; SCTP ports are reported', (t) => {
  t.true(isSkipped(svc({ clusterIP: 'None', ports: [{ port: 80 }] })));
  t.deepEqual(translateService(svc({ clusterIP: 'None', ports: [{ port: 80 }] }), [], node).definitions, []);
  t.deepEqual(translateService({ metadata: { namespace: 'default', name: 'x' }, spec: { type: 'ExternalName', ports: [{ port: 80 }] } }, [], node).definitions, []);
  const r = translateService(svc({ ports: [{ name: 'a', port: 80 }, { name: 's', port: 9, protocol: 'SCTP' }] }), [], node);
  t.is(r.definitions.length, 1);
  t.deepEqual(r.problems, ['port s: SCTP is not balanced (TCP and UDP are)']);
});

test('a node port with no node address is reported, not programmed', (t) => {
  const r = translateService(svc({ type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }), [], { nodePortAddresses: [] });
  t.deepEqual(r.definitions.map((d) => d.name), ['default/web:http']);
  t.regex(r.problems[0]!, /node port 30080: the node has no address/);
});

test('a gone TCP endpoint drains for the grace period, then goes; UDP ones go at once', (t) => {
  const since: GoneSince = new Map();
  const prev = { name: 'default/web:http', noBackends: 'reject' as const, addresses: ['10.96.0.10'], ports: [{ name: 'http', port: 80, protocol: 'tcp' as const, targetPort: 8080 }], backends: [{ address: '10.0.0.1', weight: 1, state: 'active' as const }, { address: '10.0.0.2', weight: 1, state: 'active' as const }] };
  const next = () => ({ ...prev, backends: [{ address: '10.0.0.2', weight: 1, state: 'active' as const }] });
  const a = next();
  t.is(keepGoneEndpoints(a, prev, since, 1000, 500), 1500);
  t.deepEqual(a.backends.map((b) => `${b.address}:${b.state}`), ['10.0.0.1:draining', '10.0.0.2:active']);
  const b = next();
  t.is(keepGoneEndpoints(b, a, since, 1400, 500), 1500, 'the clock started when it went');
  t.is(b.backends.length, 2);
  const c = next();
  t.is(keepGoneEndpoints(c, b, since, 1500, 500), undefined);
  t.deepEqual(c.backends.map((x) => x.address), ['10.0.0.2']);
  const udpPrev = { ...prev, ports: [{ ...prev.ports[0]!, protocol: 'udp' as const }] };
  const u = { ...udpPrev, backends: [{ address: '10.0.0.2', weight: 1, state: 'active' as const }] };
  t.is(keepGoneEndpoints(u, udpPrev, since, 1000, 500), undefined);
  t.is(u.backends.length, 1);
});

test('endpoints of a family the service no longer has a VIP of go at once, not draining', (t) => {
  const prev: ServiceDefinition = {
    name: 'default/web:http', addresses: ['10.96.0.10', 'fd96::a'], ports: [{ name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 }],
    backends: [{ address: '10.244.1.5', weight: 1, state: 'active' }, { address: 'fd44::5', weight: 1, state: 'active' }, { address: 'fd44::6', weight: 1, state: 'active' }],
    noBackends: 'reject',
  };
  const since: GoneSince = new Map([['default/web:http|fd44::6', 900]]);
  // Made single-stack: the IPv6 cluster IP and its endpoints are gone; 10.244.1.6 left too.
  const next: ServiceDefinition = { ...prev, addresses: ['10.96.0.10'], backends: [] };
  t.is(keepGoneEndpoints(next, prev, since, 1000, 500), 1500);
  t.deepEqual(next.backends.map((b) => `${b.address}:${b.state}`), ['10.244.1.5:draining']);
  t.deepEqual([...since.keys()], ['default/web:http|10.244.1.5'], 'the IPv6 endpoints\' clocks are forgotten');
  t.notThrows(() => normaliseDefinition(next), 'the model takes the definition');
});

test('a slice port that names no port of the service is reported', (t) => {
  const r = translateService(svc({ ports: [{ name: 'http', port: 80 }] }), [slice('a', [{ name: 'htp', port: 8080 }], [['10.0.0.1']])], node);
  t.deepEqual(r.definitions[0]!.backends, []);
  t.deepEqual(r.problems, ['EndpointSlice a: port "htp"/TCP names no port of the service']);
});

function slice6(name: string, ports: Array<{ name?: string; port: number; protocol?: string }>, endpoints: Array<[string, { ready?: boolean; serving?: boolean; terminating?: boolean }?]>): KubeEndpointSlice {
  return { ...slice(name, ports, endpoints), addressType: 'IPv6' };
}

const dualNode = { nodePortAddresses: ['192.168.7.2', 'fd00:7::2'] };

test('dual stack: the cluster IPs of both families are VIPs of one definition, with both families\' endpoints', (t) => {
  const s = svc({ type: 'NodePort', clusterIPs: ['10.96.0.10', 'fd96::a'], ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }] });
  const r = translateService(s, [slice('web-v4', [{ name: 'http', port: 8080 }], [['10.244.1.5']]), slice6('web-v6', [{ name: 'http', port: 8080 }], [['fd44::5'], ['FD44:0:0:0:0:0:0:6']])], dualNode);
  t.deepEqual(r.problems, []);
  t.deepEqual(
    r.definitions.map((d) => [d.name, d.addresses, d.ports[0]!.targetPort, d.backends.map((b) => `${b.address}:${b.state}`)]),
    [
      ['default/web:http', ['10.96.0.10', 'fd96::a'], 8080, ['10.244.1.5:active', 'fd44::5:active', 'fd44::6:active']],
      ['default/web:http/nodeport', ['192.168.7.2', 'fd00:7::2'], 8080, ['10.244.1.5:active', 'fd44::5:active', 'fd44::6:active']],
    ],
    'IPv6 in RFC 5952 text; IPv4 backends first',
  );
});

test('dual stack with IPv6 first: clusterIPs order is kept; a non-canonical IPv6 cluster IP is written canonically', (t) => {
  const s = svc({ clusterIP: '2001:DB8:0:0::A', clusterIPs: ['2001:DB8:0:0::A', '10.96.0.10'], ports: [{ name: 'http', port: 80 }] });
  const r = translateService(s, [], node);
  t.deepEqual(r.definitions[0]!.addresses, ['2001:db8::a', '10.96.0.10']);
});

test('an IPv6-only service: IPv6 VIP and endpoints; IPv4 slices and node addresses are not its', (t) => {
  const s = svc({ type: 'NodePort', clusterIP: 'fd96::a', clusterIPs: ['fd96::a'], ports: [{ name: 'http', port: 80, nodePort: 30080 }] });
  const r = translateService(s, [slice6('v6', [{ name: 'http', port: 8080 }], [['fd44::5']]), slice('v4', [{ name: 'http', port: 8080 }], [['10.244.1.5']])], dualNode);
  t.deepEqual(r.definitions.map((d) => [d.name, d.addresses, d.backends.map((b) => b.address)]), [
    ['default/web:http', ['fd96::a'], ['fd44::5']],
    ['default/web:http/nodeport', ['fd00:7::2'], ['fd44::5']],
  ]);
  t.deepEqual(r.problems, ['EndpointSlice v4: its IPv4 endpoints are left out: the service has no IPv4 cluster IP']);
  const v4only = translateService(s, [slice6('v6', [{ name: 'http', port: 8080 }], [['fd44::5']])], node);
  t.deepEqual(v4only.definitions.map((d) => d.name), ['default/web:http']);
  t.deepEqual(v4only.problems, ['node port 30080: the node has no IPv6 address for node ports (Node status.addresses, --nodeport-addresses)']);
});

test('an endpoint of the other family than its slice, and one that is no address, are reported and left out', (t) => {
  const s = svc({ clusterIPs: ['10.96.0.10', 'fd96::a'], ports: [{ name: 'http', port: 80 }] });
  const r = translateService(s, [slice('v4', [{ name: 'http', port: 8080 }], [['10.244.1.5'], ['fd44::9']]), slice6('v6', [{ name: 'http', port: 8080 }], [['fd44::5'], ['10.244.1.9'], ['fe80::1%eth0']])], node);
  t.deepEqual(r.definitions[0]!.backends.map((b) => b.address), ['10.244.1.5', 'fd44::5']);
  t.deepEqual(r.problems, [
    'EndpointSlice v4: endpoint fd44::9 left out: it is IPv6, in a slice of addressType IPv4',
    'EndpointSlice v6: endpoint 10.244.1.9 left out: it is IPv4, in a slice of addressType IPv6',
    'EndpointSlice v6: endpoint "fe80::1%eth0" left out: not an IP address',
  ]);
});

test('an FQDN slice is reported and left out', (t) => {
  const r = translateService(svc({ ports: [{ name: 'http', port: 80 }] }), [{ ...slice('f', [{ name: 'http', port: 8080 }], [['db.example']]), addressType: 'FQDN' }], node);
  t.deepEqual(r.definitions[0]!.backends, []);
  t.deepEqual(r.problems, ['EndpointSlice f: addressType FQDN is not balanced (IPv4 and IPv6 are)']);
});

test('external and ingress IPs of both families; those of a family without a cluster IP are reported', (t) => {
  const s = svc(
    { type: 'LoadBalancer', clusterIPs: ['10.96.0.10', 'fd96::a'], externalIPs: ['203.0.113.7', '2001:db8::7'], ports: [{ name: 'http', port: 80 }] },
    { status: { loadBalancer: { ingress: [{ ip: '2001:db8:0:0:1::1' }, { ip: '198.51.100.1' }, { ip: '2001:db8::2', ipMode: 'Proxy' }] } } },
  );
  const r = translateService(s, [], node);
  t.deepEqual(r.definitions[0]!.addresses, ['10.96.0.10', 'fd96::a', '203.0.113.7', '2001:db8::7', '2001:db8::1:0:0:1', '198.51.100.1'], 'RFC 5952: of two equal runs of zeros, the first is "::"');
  t.deepEqual(r.problems, []);
  const single = translateService(svc({ externalIPs: ['203.0.113.7', '2001:db8::7'], ports: [{ name: 'http', port: 80 }] }), [], node);
  t.deepEqual(single.definitions[0]!.addresses, ['10.96.0.10', '203.0.113.7']);
  t.deepEqual(single.problems, ['externalIPs: 2001:db8::7 left out: the service has no IPv6 cluster IP']);
});

test('the families\' slices disagree on a port number: the larger group is used and the other family\'s reported', (t) => {
  const s = svc({ clusterIPs: ['10.96.0.10', 'fd96::a'], ports: [{ name: 'http', port: 80 }] });
  const r = translateService(s, [slice('v4', [{ name: 'http', port: 8080 }], [['10.0.0.1'], ['10.0.0.2']]), slice6('v6', [{ name: 'http', port: 9090 }], [['fd44::1']])], node);
  t.is(r.definitions[0]!.ports[0]!.targetPort, 8080);
  t.deepEqual(r.definitions[0]!.backends.map((b) => b.address), ['10.0.0.1', '10.0.0.2']);
  t.deepEqual(r.problems, ['port http: 1 IPv6 endpoint(s) on port 9090 left out: this port\'s endpoints listen on 8080, and a sluice service port has one target port']);
});

test('which endpoints serve is decided per family', (t) => {
  const s = svc({ clusterIPs: ['10.96.0.10', 'fd96::a'], ports: [{ name: 'http', port: 80 }] });
  const ports = [{ name: 'http', port: 8080 }];
  const r = translateService(s, [slice('v4', ports, [['10.0.0.1'], ['10.0.0.2', { ready: false, serving: true, terminating: true }]]), slice6('v6', ports, [['fd44::2', { ready: false, serving: true, terminating: true }]])], node);
  t.deepEqual(r.definitions[0]!.backends.map((b) => `${b.address}:${b.state}`), ['10.0.0.1:active', '10.0.0.2:draining', 'fd44::2:active']);
});
