/**
 * A running API over a FakeDataplane, for the api-* tests: a node's control
 * plane over a MemoryKvStore (or a given store), a gRPC server on a unix
 * socket unique to the test (pid and a counter in os.tmpdir()), raw
 * @grpc/grpc-js clients built from the same protos, and the typed client.
 * Everything is torn down in t.teardown.
 */
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ExecutionContext } from 'ava';
import type { Dataplane } from '../../src/dataplane/dataplane.js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import type { LoadBalancer } from '../../src/lb/load-balancer.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';
import type { KvStore } from '../../src/store/kv.js';
import { buildControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../src/node/control-plane.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { connect, type SluiceClient } from '../../src/api/client.js';
import { PROTO_FILES, loaderOptions } from '../../src/api/protos.js';
import type { ServiceInput } from '../../src/api/messages.js';

let seq = 0;

/** A socket path no other test (file or process) uses. */
export function uniqueSocket(tag: string): string {
  return path.join(os.tmpdir(), `sluice-${tag}-${process.pid}-${seq++}.sock`);
}

/** A generic client whose methods take (request, callback) or return streams. */
export type RawClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** Raw clients of every service, built from the protos with proto-loader as any gRPC user would. */
export interface RawClients {
  registry: RawClient;
  registration: RawClient;
  operations: RawClient;
  health: RawClient;
}

/** Everything a test needs. */
export interface ApiFixture<D extends Dataplane = FakeDataplane> {
  dp: D;
  store: KvStore;
  lb: LoadBalancer;
  plane: ControlPlane;
  server: ApiServer;
  raw: RawClients;
  client: SluiceClient;
}

/** Call a unary method of a raw client. Rejects with the grpc ServiceError. */
export function unary<T = Record<string, unknown>>(client: RawClient, method: string, req: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method]!.call(client, req, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

/** Raw clients for the server at `address`. */
export function rawClients(address: string): RawClients {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync([...PROTO_FILES], loaderOptions())) as Record<string, any>;
  const creds = grpc.credentials.createInsecure();
  const make = (Ctor: typeof grpc.Client): RawClient => new Ctor(address, creds) as RawClient;
  return {
    registry: make(pkg['sluice']['v1']['ServiceRegistry']),
    registration: make(pkg['sluice']['v1']['Registration']),
    operations: make(pkg['sluice']['v1']['Operations']),
    health: make(pkg['grpc']['health']['v1']['Health']),
  };
}

/** Start the whole stack; torn down with the test. */
export async function startApi<D extends Dataplane = FakeDataplane>(
  t: ExecutionContext,
  opts: { store?: KvStore; dataplane?: D; plane?: Partial<ControlPlaneOptions>; tag?: string } = {},
): Promise<ApiFixture<D>> {
  const dp = (opts.dataplane ?? new FakeDataplane()) as D;
  const store = opts.store ?? new MemoryKvStore();
  const plane = await buildControlPlane({ store, dataplane: dp, ...opts.plane });
  const server = await startApiServer({ plane, listen: `unix://${uniqueSocket(opts.tag ?? 'api')}` });
  const raw = rawClients(server.address);
  const client = connect(server.address);
  t.teardown(async () => {
    for (const c of Object.values(raw)) c.close();
    client.close();
    await server.close();
    plane.close();
    await store.close();
  });
  return { dp, store, lb: plane.lb, plane, server, raw, client };
}

/** The fake dataplane's public maps as JSON: equal strings mean equal maps. */
export function dataplaneSnapshot(dp: FakeDataplane): string {
  const sorted = <K, V>(m: Map<K, V>): Array<[K, V]> => [...m.entries()].sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1));
  return JSON.stringify(
    {
      services: sorted(dp.services),
      vips: sorted(dp.vips),
      backends: sorted(dp.backends),
      tables: sorted(dp.tables).map(([k, v]) => [k, Array.from(v)]),
      conntrack: sorted(dp.conntrack),
      affinity: sorted(dp.affinity),
    },
    (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v),
  );
}

/**
 * What the fake dataplane's maps mean to a packet: services (without where
 * their table sits), VIPs, backends, and each service's Maglev table. Equal
 * strings mean the same forwarding, wherever the table regions were placed.
 */
export function dataplaneContent(dp: FakeDataplane): string {
  const services = [...dp.services.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => [k, { ...v.value, tableBase: undefined }, Array.from(dp.getMaglevTable(v.value.id) ?? [])]);
  const sorted = <K, V>(m: Map<K, V>): Array<[K, V]> => [...m.entries()].sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1));
  return JSON.stringify({ services, vips: sorted(dp.vips), backends: sorted(dp.backends) });
}

/** A service message with one VIP, one TCP port and the given backends. */
export function webService(name: string, vip: string, backends: string[], extra: Partial<ServiceInput> = {}): ServiceInput {
  return {
    name,
    addresses: [vip],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
    backends: backends.map((address) => ({ address })),
    ...extra,
  };
}
