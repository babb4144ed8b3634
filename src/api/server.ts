/**
 * The gRPC server: sluice.v1 ServiceRegistry, Registration and Operations
 * over a node's control plane, plus grpc.health.v1.Health and server reflection (v1
 * and v1alpha, from @grpc/reflection) of the same files (with their proto
 * field names), so that grpcurl-like clients can discover everything.
 *
 * It listens on a unix socket ("unix:///run/sluice/sluice.sock": a stale
 * socket file is removed first, a live one is refused, the socket is
 * chmod 0600 after bind) or on TCP ("host:port", optionally TLS or mutual
 * TLS).
 */
import { show } from '../model/schema.js';
import { unbracketedIPv6 } from '../model/address.js';
import { lstat, readFile, unlink, chmod } from 'node:fs/promises';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { pino, type Logger } from 'pino';
import { SluiceError, invalid } from '../errors.js';
import type { ControlPlane } from '../node/control-plane.js';
import { guardMalformed, type ApiObserver } from './call.js';
import { HealthStatus } from './health-service.js';
import { OpenStreams } from './open-streams.js';
import { operationsService } from './operations-service.js';
import { MAX_MESSAGE_BYTES, SLUICE_SERVICES, packageDefinition, reflectionPackageDefinition } from './protos.js';
import { registrationService } from './registration-service.js';
import { serviceRegistryService } from './service-registry-service.js';

/** TLS material: PEM contents, or paths of PEM files. */
export interface ApiTlsOptions {
  /** Server certificate chain. */
  cert: string | Buffer;
  /** Server private key. */
  key: string | Buffer;
  /** CA that client certificates must chain to (mutual TLS). */
  ca?: string | Buffer;
  /** Refuse clients without a certificate signed by `ca`. */
  requireClientCert?: boolean;
}

/** Options of startApiServer. */
export interface ApiServerOptions {
  /** The node's control plane it serves. */
  plane: ControlPlane;
  /** "unix:///path/to.sock" or "host:port" (port 0: any free port). */
  listen: string;
  /** TLS for a TCP listener. */
  tls?: ApiTlsOptions;
  /** Logger (default: silent). */
  logger?: Logger;
  /** Start reporting NOT_SERVING (health), until setServing(true): for a daemon still attaching. */
  notServingYet?: boolean;
  /** Told of each unary call of the sluice services (the daemon's metrics). */
  observe?: ApiObserver;
}

/** A running API server. */
export interface ApiServer {
  /** Where it listens: "unix:///path" or "host:port" with the bound port. */
  address: string;
  /** Report NOT_SERVING, end open streams, stop (forcibly after 5 s) and remove the socket file. Idempotent. */
  close(): Promise<void>;
  /** Report SERVING or NOT_SERVING through grpc.health.v1. */
  setServing(serving: boolean): void;
}

const SHUTDOWN_GRACE_MS = 5000;

async function pem(v: string | Buffer): Promise<Buffer> {
  if (Buffer.isBuffer(v)) return v;
  return v.includes('-----BEGIN') ? Buffer.from(v) : readFile(v);
}

/**
 * FAILED_PRECONDITION (field `listen`) if a server listens on the unix
 * socket of `listen`, or its path is a file that is not a socket: the
 * daemon asks before it makes anything, so that a second daemon started by
 * mistake with only this in common makes no maps.
 */
export async function checkSocketFree(listen: string): Promise<void> {
  if (!listen.startsWith('unix://')) return;
  const path = listen.slice('unix://'.length);
  let st;
  try {
    st = await lstat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new SluiceError('FAILED_PRECONDITION', `${path} exists and is not a socket`, { field: 'listen' });
  if (await socketLive(path)) throw new SluiceError('FAILED_PRECONDITION', `another server is listening on ${path}`, { field: 'listen' });
}

function socketLive(path: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Remove a socket file no server listens on; refuse a live one or a file that is not a socket. */
async function clearStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) throw new SluiceError('FAILED_PRECONDITION', `${path} exists and is not a socket`, { field: 'listen' });
  if (await socketLive(path)) throw new SluiceError('FAILED_PRECONDITION', `another server is listening on ${path}`, { field: 'listen' });
  await unlink(path);
}

/**
 * The socket path of a `unix:///path` listen address, or undefined for
 * `host:port`. INVALID_ARGUMENT (field `listen`, or `tls` for TLS on a unix
 * socket) for anything else.
 */
export function checkListen(listen: string, tls: boolean): string | undefined {
  const unixPath = listen.startsWith('unix://') ? listen.slice('unix://'.length) : undefined;
  if (unixPath !== undefined && !unixPath.startsWith('/')) throw invalid('listen', `a unix socket path must be absolute: ${listen}`);
  const unbracketed = unixPath === undefined ? unbracketedIPv6(listen) : undefined;
  if (unbracketed) throw invalid('listen', unbracketed);
  const tcp = unixPath === undefined ? /^(.+):(\d+)$/.exec(listen) : null;
  if (unixPath === undefined && !tcp) {
    throw invalid('listen', `must be unix:///absolute/path, host:port or [v6]:port, got ${show(listen)}`);
  }
  if (tcp && Number(tcp[2]) > 65535) throw invalid('listen', `the port must be in 0..65535, got ${tcp[2]}`);
  if (unixPath !== undefined && tls) throw invalid('tls', 'TLS applies to a TCP listener, not a unix socket');
  return unixPath;
}

/** A failed bind as a person reads it, naming the listen address (grpc-js says "No address added ..."). */
function bindError(listen: string, err: Error): SluiceError {
  const code = /\b(E[A-Z]+)\b/.exec(err.message)?.[1];
  const why: Record<string, string> = {
    EADDRINUSE: 'the address is in use (another daemon, or another program)',
    EACCES: 'permission denied',
    EADDRNOTAVAIL: 'no interface of this host has that address',
    ENOENT: 'its directory does not exist',
  };
  const reason = (code && why[code]) ?? err.message;
  return new SluiceError('FAILED_PRECONDITION', `cannot listen on ${listen}: ${reason}`, { field: 'listen', cause: err });
}

/** How often the daemon checks that its unix socket is still there, in ms. */
const SOCKET_CHECK_MS = 2000;

/**
 * Check the unix socket now and then: a socket file someone removed (a
 * cleanup of /run, a mistaken `rm`) leaves the daemon serving no one, so it
 * is bound again and the event is logged. A path now taken by another file
 * is left alone and reported.
 */
function watchSocket(server: grpc.Server, path: string, creds: grpc.ServerCredentials, log: Logger): { stop(): void } {
  let busy = false;
  let reported = false;
  const check = async (): Promise<void> => {
    let st;
    try {
      st = await lstat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (st?.isSocket()) {
      reported = false;
      return;
    }
    if (st) {
      if (!reported) log.error({ path }, 'the API socket path is now another kind of file; clients cannot reach this daemon: remove it and restart the daemon');
      reported = true;
      return;
    }
    log.error({ path }, 'the API socket was removed; binding it again');
    server.unbind(`unix://${path}`);
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${path}`, creds, (err) => (err ? reject(err) : resolve())));
    await chmod(path, 0o600);
    log.warn({ path }, 'API socket bound again');
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    check()
      .catch((err: unknown) => log.error({ err, path }, 'could not check or rebind the API socket'))
      .finally(() => (busy = false));
  }, SOCKET_CHECK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** Start serving the API; resolves once bound. */
export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const log = opts.logger ?? pino({ level: 'silent' });
  const unixPath = checkListen(opts.listen, opts.tls !== undefined);

  const def = packageDefinition();
  const streams = new OpenStreams();
  const health = new HealthStatus(SLUICE_SERVICES, opts.notServingYet ? 'NOT_SERVING' : 'SERVING');
  const ctx = { plane: opts.plane, log, streams };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    // sluice serves no channelz service, so nothing would ever read what
    // grpc-js tracks for it on every call and connection (about 15 µs of
    // the daemon's CPU per call in a profile of 1,000 changes).
    'grpc.enable_channelz': 0,
  });
  const add = (name: string, impl: grpc.UntypedServiceImplementation): void => {
    server.addService(...guardMalformed(def[name] as grpc.ServiceDefinition, impl, opts.observe));
  };
  add('sluice.v1.ServiceRegistry', serviceRegistryService(ctx));
  add('sluice.v1.Registration', registrationService(ctx));
  add('sluice.v1.Operations', operationsService(ctx));
  health.addTo(server, streams);
  // @grpc/reflection bundles its own proto-loader; the package definition is the same data.
  new ReflectionService(reflectionPackageDefinition() as ConstructorParameters<typeof ReflectionService>[0]).addToServer(server);

  let creds = grpc.ServerCredentials.createInsecure();
  if (opts.tls) {
    const [cert, key, ca] = await Promise.all([pem(opts.tls.cert), pem(opts.tls.key), opts.tls.ca ? pem(opts.tls.ca) : null]);
    creds = grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], opts.tls.requireClientCert ?? false);
  }
  if (unixPath !== undefined) await clearStaleSocket(unixPath);
  // grpc-js writes its own errors (a failed bind among them) to stderr: they go to the log instead.
  grpc.setLogger({ error: (...a: unknown[]) => log.debug({ grpc: a.join(' ') }, 'grpc-js') });
  grpc.setLogVerbosity(grpc.logVerbosity.ERROR);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(unixPath !== undefined ? `unix://${unixPath}` : opts.listen, creds, (err, p) => (err ? reject(bindError(opts.listen, err)) : resolve(p)));
  });
  if (unixPath !== undefined) await chmod(unixPath, 0o600);
  const address = unixPath !== undefined ? `unix://${unixPath}` : opts.listen.replace(/:\d+$/, `:${port}`);
  log.info({ address, tls: opts.tls !== undefined }, 'API serving');
  const socketWatch = unixPath === undefined ? undefined : watchSocket(server, unixPath, creds, log);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      socketWatch?.stop();
      health.setAll('NOT_SERVING');
      streams.closeAll();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (unixPath !== undefined) await unlink(unixPath).catch(() => undefined);
      log.info({ address }, 'API stopped');
    })());
  return { address, close, setServing: (serving) => health.setAll(serving ? 'SERVING' : 'NOT_SERVING') };
}
