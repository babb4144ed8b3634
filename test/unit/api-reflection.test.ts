/**
 * Server reflection, as a client that knows nothing but the reflection
 * protocol sees it: list the services (v1 and v1alpha), fetch the file
 * descriptors of ServiceRegistry, build a protobufjs Root from them
 * (protobufjs/ext/descriptor), and call ApplyService, GetService and
 * ListServices with codecs made from that Root alone.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { startApi } from '../helpers/api.js';

const require = createRequire(import.meta.url);
const reflectionProtoDir = path.join(path.dirname(require.resolve('@grpc/reflection')), '..', 'proto');

type Stream = grpc.ClientDuplexStream<Record<string, unknown>, Record<string, any>>;

/** A minimal reflection client of one protocol version. */
function reflectionClient(address: string, version: 'v1' | 'v1alpha'): { ask(req: Record<string, unknown>): Promise<Record<string, any>>; close(): void } {
  const def = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, {
    includeDirs: [reflectionProtoDir],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as Record<string, any>;
  const Ctor = pkg['grpc']['reflection'][version]['ServerReflection'] as typeof grpc.Client;
  const client = new Ctor(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, () => Stream>;
  return {
    ask: (req) =>
      new Promise((resolve, reject) => {
        const call = client['ServerReflectionInfo']!();
        call.once('data', (res: Record<string, any>) => {
          resolve(res);
          call.end();
        });
        call.once('error', reject);
        call.write(req);
      }),
    close: () => client.close(),
  };
}

/** A unary client of one service from a reflected Root: codecs from the Root only. */
function dynamicClient(root: protobuf.Root, address: string, serviceName: string): Record<string, (req: object) => Promise<Record<string, any>>> {
  const service = root.lookupService(serviceName);
  const def: Record<string, grpc.MethodDefinition<object, Record<string, any>>> = {};
  for (const m of service.methodsArray) {
    const reqType = root.lookupType(m.resolvedRequestType?.fullName ?? m.requestType);
    const resType = root.lookupType(m.resolvedResponseType?.fullName ?? m.responseType);
    def[m.name] = {
      path: `/${serviceName}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      requestSerialize: (o: object) => Buffer.from(reqType.encode(reqType.fromObject(o)).finish()),
      requestDeserialize: (b: Buffer) => reqType.decode(b),
      responseSerialize: (o: object) => Buffer.from(resType.encode(resType.fromObject(o)).finish()),
      responseDeserialize: (b: Buffer) => resType.toObject(resType.decode(b), { longs: String, enums: String, defaults: true }),
      originalName: m.name,
    };
  }
  const Ctor = grpc.makeGenericClientConstructor(def, serviceName);
  const client = new Ctor(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
  const out: Record<string, (req: object) => Promise<Record<string, any>>> = {};
  for (const name of Object.keys(def)) {
    out[name] = (req) =>
      new Promise((resolve, reject) => client[name]!.call(client, req, (err: Error | null, res: Record<string, any>) => (err ? reject(err) : resolve(res))));
  }
  return out;
}

test('a client that knows only reflection can discover and call ServiceRegistry', async (t) => {
  const f = await startApi(t, { tag: 'reflection' });
  for (const version of ['v1', 'v1alpha'] as const) {
    const r = reflectionClient(f.server.address, version);
    t.teardown(() => r.close());
    const listed = await r.ask({ listServices: '*' });
    const names = (listed['listServicesResponse'].service as Array<{ name: string }>).map((s) => s.name);
    for (const s of ['sluice.v1.ServiceRegistry', 'sluice.v1.Registration', 'sluice.v1.Operations', 'grpc.health.v1.Health']) {
      t.true(names.includes(s), `${version} lists ${s}: ${names.join(', ')}`);
    }
  }

  const r = reflectionClient(f.server.address, 'v1');
  const files = await r.ask({ fileContainingSymbol: 'sluice.v1.ServiceRegistry' });
  const protos = (files['fileDescriptorResponse'].fileDescriptorProto as Buffer[]).map((b) => descriptor.FileDescriptorProto.decode(b));
  t.true(protos.length >= 1);
  const root = (protobuf.Root as unknown as { fromDescriptor(d: object): protobuf.Root }).fromDescriptor({ file: protos });
  root.resolveAll();
  t.truthy(root.lookupService('sluice.v1.ServiceRegistry').methods['WatchServices']?.responseStream);

  const registry = dynamicClient(root, f.server.address, 'sluice.v1.ServiceRegistry');
  const applied = await registry['ApplyService']!({
    service: {
      name: 'reflected',
      addresses: ['10.96.0.50'],
      ports: [{ port: 53, protocol: 'UDP', target_port: 5353 }],
      backends: [{ address: '10.1.0.1', weight: 0 }, { address: '10.1.0.2' }],
      session_affinity: { timeout_seconds: 30 },
    },
    expected_revision: 0,
  });
  t.is(applied['name'], 'reflected');
  t.is(applied['revision'], '1');
  t.is(applied['ports'][0].target_port, 5353);
  t.is(applied['backends'][0].weight, 0, 'an explicit weight 0 (proto3 optional) survives');
  t.is(applied['backends'][1].weight, 1, 'an unset weight is the default');
  t.is(applied['session_affinity'].timeout_seconds, 30);

  const got = await registry['GetService']!({ name: 'reflected' });
  t.is(got['backends'].length, 2);
  const listed = await registry['ListServices']!({ page_size: 10 });
  t.deepEqual((listed['services'] as Array<{ name: string }>).map((s) => s.name), ['reflected']);
  t.is(listed['revision'], '1');
  const spec = f.lb.get('reflected|10.96.0.50:53/udp');
  t.is(spec?.backends[1]?.port, 5353, 'the dataplane got what the reflected client sent');
  r.close();
});
