/**
 * The benchmark's kube-proxy baselines balance real traffic: the generated
 * iptables rules (loaded with iptables-legacy-restore and with
 * iptables-nft-restore) and nftables rules (nft -f), in the load balancer's
 * namespace of a lab, with real HTTP and UDP servers behind the VIP and real
 * clients. Then kube-proxy's partial sync removes one endpoint, and that
 * backend gets no new connections. A missing tool fails the test.
 */
import test, { type ExecutionContext } from 'ava';
import { startLab, type Lab } from '../../src/demo/lab.js';
import { DEMO_HTTP_PORT, DEMO_UDP_PORT, DEMO_VIP } from '../../src/demo/services.js';
import { listNamespaces } from '../../src/demo/topology.js';
import {
  applyIptables, applyNft, iptablesChangeInput, iptablesRestoreInput, nftChange, nftRuleset,
  type IptablesVariant, type KubeRulesOptions, type KubeService,
} from '../../bench/lib/kube-rules.js';

const N = 300;
const AFTER = 150;
// The backends are the cluster's "pods": the client, outside, is masqueraded
// by the service chain's rule, as kube-proxy does with --cluster-cidr.
const OPTS: KubeRulesOptions = { clusterCidr: '10.77.0.0/16', serviceCidr: '10.96.0.0/12' };

interface Loader {
  load(ns: string, services: readonly KubeService[]): Promise<void>;
  change(ns: string, service: KubeService, previous: KubeService, services: readonly KubeService[]): Promise<void>;
}

function iptablesLoader(variant: IptablesVariant): Loader {
  return {
    async load(ns, services) {
      const r = await applyIptables(ns, variant, iptablesRestoreInput(services, OPTS), { timeoutMs: 20_000 });
      if ('timedOut' in r) throw new Error(`iptables-${variant}-restore timed out`);
    },
    async change(ns, service, previous, services) {
      const input = iptablesChangeInput(service, { ...OPTS, previous, services });
      const r = await applyIptables(ns, variant, input, { noflush: true, timeoutMs: 20_000 });
      if ('timedOut' in r) throw new Error(`iptables-${variant}-restore --noflush timed out`);
    },
  };
}

const nftLoader: Loader = {
  async load(ns, services) {
    const r = await applyNft(ns, nftRuleset(services, OPTS), { timeoutMs: 20_000 });
    if ('timedOut' in r) throw new Error('nft -f timed out');
  },
  async change(ns, service, previous) {
    const r = await applyNft(ns, nftChange(service, { ...OPTS, previous }), { timeoutMs: 20_000 });
    if ('timedOut' in r) throw new Error('nft -f (change) timed out');
  },
};

/** web (tcp/80 → :8080) and dns (udp/53 → :5353) over the lab's backends, and filler services around them. */
function services(lab: Lab): { web: KubeService; dns: KubeService; all: KubeService[] } {
  const backends = lab.topo.backends;
  const web: KubeService = {
    name: 'default/web', vip: DEMO_VIP, port: 80, protocol: 'tcp',
    endpoints: backends.map((b) => ({ ip: b.address, port: DEMO_HTTP_PORT })),
  };
  const dns: KubeService = {
    name: 'default/dns', vip: DEMO_VIP, port: 53, protocol: 'udp',
    endpoints: backends.map((b) => ({ ip: b.address, port: DEMO_UDP_PORT })),
  };
  const fillers = Array.from({ length: 40 }, (_, i): KubeService => ({
    name: `filler/svc-${i}`, vip: `10.96.1.${i + 1}`, port: 80 + (i % 3), protocol: i % 2 ? 'udp' : 'tcp',
    endpoints: Array.from({ length: 1 + (i % 5) }, (_, j) => ({ ip: `10.244.${i}.${j + 2}`, port: 8080 })),
  }));
  return { web, dns, all: [...fillers.slice(0, 20), web, ...fillers.slice(20, 30), dns, ...fillers.slice(30)] };
}

let udpPortBase = 20000;
function nextUdpPortBase(n: number): number {
  const base = udpPortBase;
  udpPortBase += n;
  return base;
}

async function run(t: ExecutionContext, tagPrefix: string, loader: Loader): Promise<void> {
  const tag = `${tagPrefix}${process.pid.toString(36)}`.slice(0, 8);
  const labs: Lab[] = [];
  t.teardown(async () => {
    await Promise.all(labs.map((l) => l.destroy()));
    const left = await listNamespaces(`sl-${tag}-`);
    if (left.length) throw new Error(`namespaces left behind: ${left.join(', ')}`);
  });
  const lab = await startLab(tag);
  labs.push(lab);
  const ns = lab.topo.lb.ns;
  const { web, dns, all } = services(lab);
  await loader.load(ns, all);

  const http = await lab.client.http(`http://${DEMO_VIP}:80/`, N, 8);
  t.is(http.failed, 0, `HTTP failures: ${http.errors.slice(0, 5).join('; ')}`);
  t.is(http.ok, N);
  const udp = await lab.client.udp(DEMO_VIP, 53, N, 8, nextUdpPortBase(N));
  t.is(udp.failed, 0, `UDP failures: ${udp.errors.slice(0, 5).join('; ')}`);
  t.is(udp.ok, N);
  for (let i = 1; i <= lab.servers.length; i++) {
    const name = `backend-${i}`;
    t.true((http.byBackend[name] ?? 0) >= N / 10, `${name} got ${http.byBackend[name] ?? 0} of ${N} HTTP connections: ${JSON.stringify(http.byBackend)}`);
    t.true((udp.byBackend[name] ?? 0) >= N / 10, `${name} got ${udp.byBackend[name] ?? 0} of ${N} datagrams: ${JSON.stringify(udp.byBackend)}`);
  }
  // What the backends saw agrees with what the client was told.
  const seen = await Promise.all(lab.servers.map((s) => s.stats()));
  t.is(seen.reduce((a, s) => a + s.httpConnections, 0), N, 'one backend connection per request');
  t.is(seen.reduce((a, s) => a + s.udpDatagrams, 0), N, 'one datagram at a backend per datagram sent');

  // kube-proxy's partial sync: backend-1's endpoint leaves both services.
  const victim = lab.topo.backends[0]!.address;
  const web2 = { ...web, endpoints: web.endpoints.filter((e) => e.ip !== victim) };
  const dns2 = { ...dns, endpoints: dns.endpoints.filter((e) => e.ip !== victim) };
  const all2 = all.map((s) => (s === web ? web2 : s));
  await loader.change(ns, web2, web, all2);
  await loader.change(ns, dns2, dns, all2.map((s) => (s === dns ? dns2 : s)));

  const httpAfter = await lab.client.http(`http://${DEMO_VIP}:80/`, AFTER, 8);
  t.is(httpAfter.failed, 0, `HTTP failures after the change: ${httpAfter.errors.slice(0, 5).join('; ')}`);
  t.is(httpAfter.byBackend['backend-1'], undefined, `removed backend-1 still got new connections: ${JSON.stringify(httpAfter.byBackend)}`);
  const udpAfter = await lab.client.udp(DEMO_VIP, 53, AFTER, 8, nextUdpPortBase(AFTER));
  t.is(udpAfter.failed, 0, `UDP failures after the change: ${udpAfter.errors.slice(0, 5).join('; ')}`);
  t.is(udpAfter.byBackend['backend-1'], undefined, `removed backend-1 still got new datagrams: ${JSON.stringify(udpAfter.byBackend)}`);
  for (const name of ['backend-2', 'backend-3']) {
    t.true((httpAfter.byBackend[name] ?? 0) >= AFTER / 10, `${name} got ${httpAfter.byBackend[name] ?? 0} of ${AFTER} HTTP connections after the change`);
    t.true((udpAfter.byBackend[name] ?? 0) >= AFTER / 10, `${name} got ${udpAfter.byBackend[name] ?? 0} of ${AFTER} datagrams after the change`);
  }
}

test.serial('iptables-legacy-restore: kube-proxy rules balance TCP and UDP; a partial sync removes an endpoint', (t) =>
  run(t, 'kri', iptablesLoader('legacy')));

test.serial('iptables-nft-restore: kube-proxy rules balance TCP and UDP; a partial sync removes an endpoint', (t) =>
  run(t, 'krn', iptablesLoader('nft')));

test.serial('nft -f: kube-proxy nftables rules balance TCP and UDP; a partial sync removes an endpoint', (t) =>
  run(t, 'krf', nftLoader));
