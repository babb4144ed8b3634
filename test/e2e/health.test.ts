/**
 * Active health checks through a real daemon attached in the lab's load
 * balancer namespace (probes go out from there, through the probe worker):
 * with checks every 200 ms, fall 2 and rise 2, a backend whose server
 * stops, whose /healthz answers 503 or whose gRPC health says NOT_SERVING
 * becomes UNHEALTHY (a WatchServices HEALTH event says so), leaves the
 * Maglev table so that clients reach only the others, and comes back after
 * it recovers. With every backend unhealthy the service follows its
 * noBackends rule (a SYN gets a RST); with keep-connections an open
 * connection to the unhealthy backend keeps working. One lab and one
 * daemon serve every case, one after another.
 *
 * Stateless replies stay on (the default): the backends' answers to the
 * probes (backend:targetPort to the load balancer's own address, with no
 * conntrack entry) must reach the prober untouched, not be taken for
 * replies of flows another node placed.
 */
import test from 'ava';
import { lbInterfaceFlags } from '../../src/demo/topology.js';
import type { ClientReadableStream } from '@grpc/grpc-js';
import { startLab, type Lab } from '../../src/demo/lab.js';
import { DEMO_HTTP_PORT, DEMO_VIP } from '../../src/demo/services.js';
import type { ServiceInput, WatchServicesResponse } from '../../src/api/messages.js';
import type { SluiceClient } from '../../src/api/client.js';
import { DaemonProcess } from '../helpers/daemon.js';
import { until } from '../helpers/kube-node.js';
import { sluice } from '../helpers/cli.js';

const GRPC_PORT = 50_051;
const NAME = 'default/web';

interface Fixture {
  lab: Lab;
  daemon: DaemonProcess;
  api: SluiceClient;
  events: WatchServicesResponse[];
  watch: ClientReadableStream<WatchServicesResponse>;
  addr: string[];
}
let fx: Fixture | undefined;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

test.before(async () => {
  const tag = `h${process.pid.toString(36)}`.slice(0, 8);
  const lab = await startLab(tag);
  cleanups.push(() => lab.destroy());
  const ifaces = lbInterfaceFlags(lab.topo);
  const daemon = await DaemonProcess.create('health', [...ifaces, '--mode', 'xdp']);
  cleanups.push(() => daemon.destroy());
  await daemon.start();
  const api = daemon.client();
  cleanups.push(() => api.close());
  const events: WatchServicesResponse[] = [];
  const watch = api.watchServices();
  watch.on('data', (e: WatchServicesResponse) => events.push(e));
  watch.on('error', () => undefined);
  cleanups.push(() => watch.cancel());
  await Promise.all(lab.servers.map((s) => s.grpcServe(GRPC_PORT)));
  fx = { lab, daemon, api, events, watch, addr: lab.topo.backends.map((b) => b.address) };
});

test.after.always(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
});

function service(healthCheck: NonNullable<ServiceInput['healthCheck']>): ServiceInput {
  return {
    name: NAME,
    addresses: [DEMO_VIP],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: DEMO_HTTP_PORT }],
    backends: fx!.addr.map((address) => ({ address })),
    healthCheck: { intervalMs: 200, fall: 2, rise: 2, ...healthCheck },
  };
}

/** Wait for a HEALTH event that shows each backend in `want` (address → health) at once. */
async function healthIs(want: Record<string, string>): Promise<WatchServicesResponse> {
  let found: WatchServicesResponse | undefined;
  const matches = (e: WatchServicesResponse): boolean =>
    e.type === 'HEALTH' && e.name === NAME && Object.entries(want).every(([a, h]) => e.service?.backends.find((b) => b.address === a)?.health === h);
  await until(() => `HEALTH ${JSON.stringify(want)}; last: ${JSON.stringify(fx!.events.filter((e) => e.type === 'HEALTH').at(-1)?.service?.backends.map((b) => [b.address, b.health, b.lastProbe?.error]))}`, () => {
    found = fx!.events.find(matches);
    return found !== undefined;
  }, 20_000);
  return found!;
}

/** Apply, then wait until every backend is HEALTHY (the events seen before are dropped). */
async function applyHealthy(s: ServiceInput): Promise<void> {
  fx!.events.length = 0;
  await fx!.api.applyService(s);
  await until('all healthy', async () => (await fx!.api.getService(NAME)).backends.every((b) => b.health === 'HEALTHY'), 20_000);
  fx!.events.length = 0;
}

/** Backends that answered `n` new HTTP connections to the VIP. */
async function reached(n = 60): Promise<string[]> {
  const r = await fx!.lab.client.http(`http://${DEMO_VIP}/`, n);
  return Object.keys(r.byBackend).sort();
}

async function leavesAndReturns(t: import('ava').ExecutionContext, fail: () => Promise<unknown>, recover: () => Promise<unknown>, why: RegExp): Promise<void> {
  const { api, addr } = fx!;
  const be2 = addr[1]!;
  await fail();
  const e = await healthIs({ [be2]: 'UNHEALTHY' });
  const b = e.service!.backends.find((x) => x.address === be2)!;
  t.is(b.effectiveState, 'DRAINING', 'keep-connections: an unhealthy backend drains');
  t.is(b.state, 'ACTIVE', 'the admin state is unchanged');
  t.regex(b.lastProbe?.error ?? '', why);
  const stats = await api.getStats(NAME);
  t.is(stats.services[0]!.backends.find((x) => x.address === be2)?.state, 'DRAINING', 'GetStats shows the effective state');
  t.deepEqual(await reached(), ['backend-1', 'backend-3'], 'new connections reach only the healthy backends');
  const cli = await sluice(['--server', fx!.daemon.address, 'service', 'get', NAME]);
  t.regex(cli.stdout, new RegExp(`${be2.replace(/\./g, '\\.')}\\s+1\\s+active\\s+unhealthy\\s+draining\\s+failed: `), cli.stdout);
  await recover();
  await healthIs({ [be2]: 'HEALTHY' });
  await until('backend-2 takes connections again', async () => (await reached(30)).includes('backend-2'));
  t.pass();
}

test.serial('tcp: a stopped server leaves the table and comes back', async (t) => {
  const be2 = fx!.lab.servers[1]!;
  await applyHealthy(service({ type: 'TCP' }));
  t.deepEqual(await reached(), ['backend-1', 'backend-2', 'backend-3']);
  await leavesAndReturns(t, () => be2.unserve(), () => be2.reserve(), /ECONNREFUSED/);
});

test.serial('http: 503 on the path is a failure; an open connection to the backend survives (keep-connections)', async (t) => {
  const be2 = fx!.lab.servers[1]!;
  await applyHealthy(service({ type: 'HTTP', path: '/healthz' }));
  // A persistent connection that landed on backend-2.
  let conn: number | undefined;
  await until('a connection to backend-2', async () => {
    const o = await fx!.lab.client.open(`http://${DEMO_VIP}/`);
    if (o.backend === 'backend-2') conn = o.conn;
    else await fx!.lab.client.call({ op: 'close', conn: o.conn });
    return conn !== undefined;
  });
  await leavesAndReturns(
    t,
    async () => {
      await be2.healthz(503);
      await healthIs({ [fx!.addr[1]!]: 'UNHEALTHY' });
      t.is((await fx!.lab.client.request(conn!)).backend, 'backend-2', 'the open connection keeps its backend');
    },
    () => be2.healthz(200),
    /status 503/,
  );
  await fx!.lab.client.call({ op: 'close', conn: conn! });
});

test.serial('grpc: NOT_SERVING is a failure', async (t) => {
  const be2 = fx!.lab.servers[1]!;
  await applyHealthy(service({ type: 'GRPC', port: GRPC_PORT }));
  await leavesAndReturns(t, () => be2.grpcStatus('NOT_SERVING'), () => be2.grpcStatus('SERVING'), /NOT_SERVING/);
});

test.serial('all unhealthy: the service rejects (RST) as noBackends says; reset makes them maintenance', async (t) => {
  const { lab, addr } = fx!;
  await applyHealthy(service({ type: 'HTTP', path: '/healthz', onUnhealthy: 'RESET' }));
  await Promise.all(lab.servers.map((s) => s.healthz(503)));
  const e = await healthIs(Object.fromEntries(addr.map((a) => [a, 'UNHEALTHY'])));
  t.deepEqual(e.service!.backends.map((b) => b.effectiveState), ['MAINTENANCE', 'MAINTENANCE', 'MAINTENANCE']);
  const p = await lab.client.probe(DEMO_VIP, 80, 'tcp', 3000);
  t.is(p.outcome, 'ECONNREFUSED', 'a SYN to a service without a usable backend is answered with a RST');
  await Promise.all(lab.servers.map((s) => s.healthz(200)));
  await healthIs(Object.fromEntries(addr.map((a) => [a, 'HEALTHY'])));
  t.deepEqual(await reached(), ['backend-1', 'backend-2', 'backend-3']);
});

test.serial('the daemon and its probe worker stop cleanly', async (t) => {
  t.is(await fx!.daemon.stop('SIGTERM'), 0, fx!.daemon.log());
});
