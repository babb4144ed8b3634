/**
 * 20 clients, each on its own connection, change the same 3 services at
 * once (random VIPs, ports and backend sets; unconditional and
 * compare-and-set applies; backend states; registrations). No request may
 * fail with INTERNAL, and at the end, for each service, GetService, the
 * store and the dataplane agree with the definition of the highest
 * revision any client was answered with: the dataplane equals what
 * applying the final definitions serially gives.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import { expandDefinition } from '../../src/model/definition.js';
import type { ServiceMessage } from '../../src/api/messages.js';
import { definitionFromMessage } from '../../src/api/convert.js';
import { dataplaneContent, rawClients, startApi, unary, type RawClients } from '../helpers/api.js';

const SERVICES = ['alpha', 'beta', 'gamma'];
const CLIENTS = 20;
const ROUNDS = 12;
// ALREADY_EXISTS: a registration of an address that is a static backend of the service at that moment.
const ALLOWED = new Set([grpc.status.OK, grpc.status.FAILED_PRECONDITION, grpc.status.NOT_FOUND, grpc.status.ALREADY_EXISTS]);

/** A deterministic generator per client, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomService(name: string, r: () => number): object {
  const i = SERVICES.indexOf(name);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const addresses = pick([[`10.96.${i}.1`], [`10.96.${i}.2`], [`10.96.${i}.1`, `10.96.${i}.2`]]);
  const ports = pick([[{ port: 80, protocol: 'TCP', targetPort: 8080 }], [{ port: 80, protocol: 'TCP', targetPort: 8080 }, { port: 53, protocol: 'UDP' }], [{ port: 443, protocol: 'TCP' }]]);
  const backends = [];
  for (let b = 1; b <= 8; b++) {
    if (r() < 0.5) backends.push({ address: `10.1.${i}.${b}`, weight: 1 + Math.floor(r() * 3), state: pick(['ACTIVE', 'ACTIVE', 'ACTIVE', 'DRAINING', 'MAINTENANCE']) });
  }
  return { name, addresses, ports, backends };
}

test('20 concurrent clients on 3 services end in the state of the last committed revision', async (t) => {
  t.timeout(60_000);
  const f = await startApi(t, { tag: 'concurrency' });
  for (const name of SERVICES) await unary(f.raw.registry, 'ApplyService', { service: randomService(name, rng(999)) });

  const clients: RawClients[] = [];
  for (let c = 0; c < CLIENTS; c++) clients.push(rawClients(f.server.address));
  t.teardown(() => {
    for (const c of clients) for (const x of Object.values(c)) x.close();
  });

  /** The highest-revision answer each service got, and every status seen. */
  const latest = new Map<string, ServiceMessage>();
  const statuses = new Map<number, number>();
  const failures: string[] = [];
  const record = (m: ServiceMessage | undefined): void => {
    if (!m) return;
    const prev = latest.get(m.name);
    if (!prev || Number(m.revision) > Number(prev.revision)) latest.set(m.name, m);
  };

  await Promise.all(
    clients.map(async (c, ci) => {
      const r = rng(ci + 1);
      for (let round = 0; round < ROUNDS; round++) {
        const name = SERVICES[Math.floor(r() * SERVICES.length)]!;
        const kind = r();
        let call: Promise<unknown>;
        let what: string;
        if (kind < 0.5) {
          what = 'apply';
          call = unary<ServiceMessage>(c.registry, 'ApplyService', { service: randomService(name, r) }).then(record);
        } else if (kind < 0.75) {
          what = 'apply-cas';
          call = unary<ServiceMessage>(c.registry, 'GetService', { name }).then((cur) =>
            unary<ServiceMessage>(c.registry, 'ApplyService', { service: randomService(name, r), expectedRevision: cur.revision }).then(record),
          );
        } else if (kind < 0.9) {
          what = 'state';
          const address = `10.1.${SERVICES.indexOf(name)}.${1 + Math.floor(r() * 8)}`;
          call = unary<ServiceMessage>(c.registration, 'SetBackendState', { service: name, address, state: r() < 0.5 ? 'DRAINING' : 'ACTIVE' }).then(record);
        } else {
          what = 'register';
          const address = `10.1.${SERVICES.indexOf(name)}.${1 + Math.floor(r() * 8)}`;
          call = unary<{ service: ServiceMessage }>(c.registration, 'RegisterBackend', { service: name, address, ttlSeconds: 3600 }).then((res) => record(res.service));
        }
        const code = await call.then(
          () => grpc.status.OK,
          (err: grpc.ServiceError) => {
            if (!ALLOWED.has(err.code)) failures.push(`client ${ci} ${what} ${name}: ${grpc.status[err.code]} ${err.details}`);
            return err.code;
          },
        );
        statuses.set(code, (statuses.get(code) ?? 0) + 1);
      }
    }),
  );

  t.deepEqual(failures, [], 'no request may fail with anything but a precondition');
  t.false(statuses.has(grpc.status.INTERNAL));
  t.true((statuses.get(grpc.status.OK) ?? 0) > CLIENTS * ROUNDS * 0.5, `most requests succeed: ${JSON.stringify([...statuses])}`);
  t.log(`statuses: ${[...statuses].map(([k, n]) => `${grpc.status[k]}=${n}`).join(' ')}; store revision ${await f.store.revision()}`);

  for (const name of SERVICES) {
    const got = await unary<ServiceMessage>(f.raw.registry, 'GetService', { name });
    const last = latest.get(name)!;
    t.is(got.revision, last.revision, `${name}: GetService is at the highest revision any client was answered with`);
    t.deepEqual(got, last, `${name}: and equals that answer`);
    t.deepEqual((await f.plane.catalog.get(name)).definition, definitionFromMessage(got), `${name}: the store holds the same definition`);
  }

  // The dataplane equals the final definitions applied serially with the same ids.
  const replay = new FakeDataplane();
  const lb = new LoadBalancer(replay, { ids: f.lb.exportIds() });
  const finals = await Promise.all(SERVICES.map((n) => f.plane.catalog.get(n)));
  await lb.applyMany(finals.flatMap((s) => expandDefinition(s.definition)));
  t.is(dataplaneContent(f.dp), dataplaneContent(replay));
  t.deepEqual(
    f.lb.list().map((s) => s.name).sort(),
    finals.flatMap((s) => expandDefinition(s.definition).map((x) => x.name)).sort(),
    'no frontend of an older revision is left behind',
  );
});
