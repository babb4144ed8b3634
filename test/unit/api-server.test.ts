/**
 * The server's listeners: a unix socket is created 0600, replaces a stale
 * socket file, refuses a live one or a file that is not a socket, and is
 * removed on close; a TCP listener with mutual TLS serves clients with a
 * certificate from the CA and refuses others.
 */
import { execFileSync } from 'node:child_process';
import { rmSync, statSync, existsSync, writeFileSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';
import { buildControlPlane, type ControlPlane } from '../../src/node/control-plane.js';
import { startApiServer } from '../../src/api/server.js';
import { ApiError, connect } from '../../src/api/client.js';
import { SluiceError } from '../../src/errors.js';
import { makeCerts } from '../helpers/tls.js';
import { uniqueSocket } from '../helpers/api.js';

async function plane(t: import('ava').ExecutionContext): Promise<ControlPlane> {
  const store = new MemoryKvStore();
  const plane = await buildControlPlane({ store, dataplane: new FakeDataplane() });
  t.teardown(async () => {
    plane.close();
    await store.close();
  });
  return plane;
}

test('unix socket: 0600, a stale file replaced, removed on close', async (t) => {
  const sock = uniqueSocket('server-stale');
  // A socket file nobody listens on, as a crashed daemon leaves it.
  execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', sock]);
  t.true(statSync(sock).isSocket());
  const server = await startApiServer({ plane: await plane(t), listen: `unix://${sock}` });
  t.is(server.address, `unix://${sock}`);
  t.is(statSync(sock).mode & 0o777, 0o600);
  const client = connect(server.address);
  t.is(await client.health(), 'SERVING');
  client.close();
  await server.close();
  t.false(existsSync(sock));
});

test('unix socket: a live socket or a regular file is not taken over', async (t) => {
  const sock = uniqueSocket('server-live');
  const other = net.createServer().listen(sock);
  await new Promise((r) => other.once('listening', r));
  t.teardown(() => other.close());
  const err = await t.throwsAsync(startApiServer({ plane: await plane(t), listen: `unix://${sock}` }), { instanceOf: SluiceError });
  t.is(err!.code, 'FAILED_PRECONDITION');
  t.regex(err!.message, /another server is listening/);

  const file = uniqueSocket('server-file');
  writeFileSync(file, 'precious');
  t.teardown(() => rmSync(file, { force: true }));
  await t.throwsAsync(startApiServer({ plane: await plane(t), listen: `unix://${file}` }), { message: /not a socket/ });
  t.is(readFileSync(file, 'utf8'), 'precious');
  await t.throwsAsync(startApiServer({ plane: await plane(t), listen: 'unix://relative.sock' }), { message: /^listen: / });
});

test('TCP with mutual TLS', async (t) => {
  const certs = makeCerts(t);
  const file = (n: string): string => path.join(certs.dir, n);
  // The server takes file paths (as the daemon passes them); the client takes PEM contents.
  const server = await startApiServer({
    plane: await plane(t),
    listen: '127.0.0.1:0',
    tls: { cert: file('server.pem'), key: file('server.key'), ca: file('ca.pem'), requireClientCert: true },
  });
  t.teardown(() => server.close());
  t.regex(server.address, /^127\.0\.0\.1:\d+$/);
  t.not(server.address, '127.0.0.1:0');

  const good = connect(server.address, { ca: readFileSync(file('ca.pem')), cert: readFileSync(file('client.pem')), key: readFileSync(file('client.key')), serverName: 'localhost' });
  t.is(await good.health(), 'SERVING');
  good.close();

  const anonymous = connect(server.address, { ca: readFileSync(file('ca.pem')), serverName: 'localhost' });
  const err = await t.throwsAsync(anonymous.health(), { instanceOf: ApiError });
  t.is(err!.code, grpc.status.UNAVAILABLE, 'no client certificate, no service');
  anonymous.close();
});
