/**
 * A small typed client of the API (the CLI's, and anyone's embedding
 * sluice): one promise-returning method per unary RPC, the grpc-js stream
 * for the streaming ones, messages typed as in messages.ts. Failures
 * reject with ApiError, which carries the status code and, for invalid
 * requests, the field at fault (from the google.rpc.BadRequest detail).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { SluiceError } from '../errors.js';
import { decodeFieldViolations, ORIGIN_KEY, STATUS_DETAILS_KEY } from './error-details.js';
import type {
  ApplyServicesResponse,
  ServiceViewName,
  BackendStateName,
  GetStatsResponse,
  Int64Input,
  KeepAliveRequest,
  KeepAliveResponse,
  ListConnectionsRequest,
  ListConnectionsResponse,
  ListServicesRequest,
  ListServicesResponse,
  LookupFlowRequest,
  LookupFlowResponse,
  RegisterBackendResponse,
  ServiceInput,
  ServiceMessage,
  ServingStatusName,
  WatchServicesResponse,
} from './messages.js';
import { MAX_MESSAGE_BYTES, packageDefinition } from './protos.js';

/** TLS of a client: PEM contents or file paths. */
export interface ClientTlsOptions {
  /** CA to verify the server with (default: the system's). */
  ca?: string | Buffer;
  /** Client certificate chain, for mutual TLS. */
  cert?: string | Buffer;
  /** Client private key, for mutual TLS. */
  key?: string | Buffer;
  /** Name to verify in the server's certificate, if not the address's host. */
  serverName?: string;
}

/** A failed call: its gRPC status code and, when the server named one, the request field at fault. */
export class ApiError extends Error {
  /** The gRPC status code. */
  readonly code: grpc.status;
  /** Its name ("NOT_FOUND"). */
  readonly codeName: string;
  /** Path of the request field at fault ("service.ports[0].port"), if any. */
  readonly field: string | undefined;
  /** The daemon answered with this status (rather than the call failing to reach it, or on the way). */
  readonly fromDaemon: boolean;

  constructor(err: grpc.ServiceError) {
    super(err.details || err.message, { cause: err });
    this.name = 'ApiError';
    this.code = err.code;
    this.codeName = grpc.status[err.code] ?? String(err.code);
    const bin = err.metadata?.get(STATUS_DETAILS_KEY)[0];
    this.field = Buffer.isBuffer(bin) ? decodeFieldViolations(bin)[0]?.field : undefined;
    this.fromDaemon = err.metadata?.get(ORIGIN_KEY)[0] === 'daemon';
  }
}

/** Arguments of registerBackend. */
export interface RegisterBackendInput {
  service: string;
  address: string;
  weight?: number;
  ttlSeconds?: number;
  leaseId?: string;
}

/** A connected client. */
export interface SluiceClient {
  /** ServiceRegistry.ApplyService. */
  applyService(service: ServiceInput, opts?: { expectedRevision?: Int64Input }): Promise<ServiceMessage>;
  /** ServiceRegistry.ApplyServices (all or nothing). */
  applyServices(items: Array<{ service: ServiceInput; expectedRevision?: Int64Input }>, opts?: { view?: ServiceViewName }): Promise<ApplyServicesResponse>;
  /** ServiceRegistry.DeleteService; resolves to the revision of the deletion. */
  deleteService(name: string, opts?: { expectedRevision?: Int64Input }): Promise<number>;
  /** ServiceRegistry.GetService. */
  getService(name: string): Promise<ServiceMessage>;
  /** ServiceRegistry.ListServices (one page). */
  listServices(req?: Partial<ListServicesRequest>): Promise<ListServicesResponse>;
  /** ServiceRegistry.WatchServices: the stream of events (cancel() to stop). */
  watchServices(req?: { startRevision?: Int64Input }): grpc.ClientReadableStream<WatchServicesResponse>;
  /** Registration.RegisterBackend. */
  registerBackend(req: RegisterBackendInput): Promise<RegisterBackendResponse>;
  /** Registration.KeepAlive: write {leaseId}, read {leaseId, ttlSeconds}. */
  keepAlive(): grpc.ClientDuplexStream<KeepAliveRequest, KeepAliveResponse>;
  /** Registration.Heartbeat. */
  heartbeat(leaseId: string): Promise<KeepAliveResponse>;
  /** Registration.DeregisterBackend. */
  deregisterBackend(service: string, address: string): Promise<ServiceMessage>;
  /** Registration.SetBackendState. */
  setBackendState(service: string, address: string, state: BackendStateName): Promise<ServiceMessage>;
  /** Operations.GetStats (every service without a name). */
  getStats(service?: string): Promise<GetStatsResponse>;
  /** Operations.LookupFlow. */
  lookupFlow(req: LookupFlowRequest): Promise<LookupFlowResponse>;
  /** Operations.ListConnections (one page). */
  listConnections(req?: Partial<ListConnectionsRequest>): Promise<ListConnectionsResponse>;
  /** Operations.FlushConnections; resolves to how many were flushed. */
  flushConnections(req: { service?: string; backendAddress?: string; clientAddress?: string; family?: 'IPV4' | 'IPV6'; all?: boolean }): Promise<number>;
  /** grpc.health.v1.Health.Check ("" for the server as a whole). */
  health(service?: string): Promise<ServingStatusName>;
  /** Close the channel. */
  close(): void;
}

type Callback<T> = (err: grpc.ServiceError | null, res?: T) => void;
type Untyped = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

function pem(v: string | Buffer): Buffer {
  if (Buffer.isBuffer(v)) return v;
  return v.includes('-----BEGIN') ? Buffer.from(v) : readFileSync(v);
}

/**
 * The error of a failed call. grpc-js reports a request it could not
 * encode (a string where a number belongs, a number out of range) as the
 * status INTERNAL, as if the server had failed; it never left this
 * process, so it is an invalid argument here, said as such.
 */
function callError(err: grpc.ServiceError): Error {
  if (err.code === grpc.status.INTERNAL && /^Request message serialization failure/.test(err.details)) {
    return new SluiceError('INVALID_ARGUMENT', `the request was not sent: it cannot be encoded (${err.details.replace(/^Request message serialization failure: /, '')})`, { cause: err });
  }
  return new ApiError(err);
}

let ipServernameWarningDropped = false;

/**
 * grpc-js gives the target's host to TLS as the server name (SNI) even when
 * it is an IP address, and Node warns about that (DEP0123) on stderr, once
 * per process: once per CLI command. SNI carries host names only (RFC 6066)
 * and the server does not use it; that one warning is dropped, nothing else.
 */
function dropIpServernameWarning(): void {
  if (ipServernameWarningDropped) return;
  ipServernameWarningDropped = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const opt = rest[0];
    const code = typeof opt === 'object' && opt !== null ? (opt as { code?: unknown }).code : rest[1];
    if (code === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

/** Options of connect. */
export interface ConnectOptions {
  /** Deadline of each unary call, in ms (default: none). A server that accepts and never answers fails the call with DEADLINE_EXCEEDED. */
  callTimeoutMs?: number;
}

/**
 * A client of the server at `address` ("unix:///path" or "host:port");
 * plaintext unless `tls` is given. The channel connects lazily.
 */
export function connect(address: string, tls?: ClientTlsOptions, opts: ConnectOptions = {}): SluiceClient {
  if (tls && !tls.serverName && isIP(address.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1')) !== 0) dropIpServernameWarning();
  const creds = tls
    ? grpc.credentials.createSsl(tls.ca ? pem(tls.ca) : null, tls.key ? pem(tls.key) : null, tls.cert ? pem(tls.cert) : null)
    : grpc.credentials.createInsecure();
  const options: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    // No channelz service is served: its per-call bookkeeping would be pure cost.
    'grpc.enable_channelz': 0,
    // A long-lived client (a keepalive) finds a restarted daemon within a second, not after
    // grpc-js's backoff has grown to minutes.
    'grpc.initial_reconnect_backoff_ms': 250,
    'grpc.max_reconnect_backoff_ms': 1000,
    ...(tls?.serverName ? { 'grpc.ssl_target_name_override': tls.serverName } : {}),
  };
  const def = packageDefinition();
  // One channel (one connection) shared by the four service clients.
  const channel = new grpc.Channel(address, creds, options);
  const make = (name: string): Untyped => {
    const Ctor = grpc.makeGenericClientConstructor(def[name] as grpc.ServiceDefinition, name);
    return new Ctor(address, creds, { channelOverride: channel }) as unknown as Untyped;
  };
  const registry = make('sluice.v1.ServiceRegistry');
  const registration = make('sluice.v1.Registration');
  const operations = make('sluice.v1.Operations');
  const health = make('grpc.health.v1.Health');

  const call = <T>(client: Untyped, method: string, req: unknown): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const cb: Callback<T> = (err, res) => (err ? reject(callError(err)) : resolve(res as T));
      const callOpts: grpc.CallOptions = opts.callTimeoutMs === undefined ? {} : { deadline: Date.now() + opts.callTimeoutMs };
      client[method]!.call(client, req, callOpts, cb);
    });

  return {
    applyService: (service, opts = {}) =>
      call(registry, 'ApplyService', { service, ...(opts.expectedRevision !== undefined ? { expectedRevision: opts.expectedRevision } : {}) }),
    applyServices: (items, opts = {}) =>
      call(registry, 'ApplyServices', {
        requests: items.map((i) => ({ service: i.service, ...(i.expectedRevision !== undefined ? { expectedRevision: i.expectedRevision } : {}) })),
        ...(opts.view !== undefined ? { view: opts.view } : {}),
      }),
    deleteService: async (name, opts = {}) => {
      const res = await call<{ revision: string }>(registry, 'DeleteService', {
        name,
        ...(opts.expectedRevision !== undefined ? { expectedRevision: opts.expectedRevision } : {}),
      });
      return Number(res.revision);
    },
    getService: (name) => call(registry, 'GetService', { name }),
    listServices: (req = {}) => call(registry, 'ListServices', req),
    watchServices: (req = {}) => registry['WatchServices']!.call(registry, req) as grpc.ClientReadableStream<WatchServicesResponse>,
    registerBackend: (req) => call(registration, 'RegisterBackend', req),
    // waitForReady: a stream opened while the daemon restarts waits for it instead of failing at once.
    keepAlive: () => registration['KeepAlive']!.call(registration, { waitForReady: true }) as grpc.ClientDuplexStream<KeepAliveRequest, KeepAliveResponse>,
    heartbeat: (leaseId) => call(registration, 'Heartbeat', { leaseId }),
    deregisterBackend: (service, address) => call(registration, 'DeregisterBackend', { service, address }),
    setBackendState: (service, address, state) => call(registration, 'SetBackendState', { service, address, state }),
    getStats: (service = '') => call(operations, 'GetStats', { service }),
    lookupFlow: (req) => call(operations, 'LookupFlow', req),
    listConnections: (req = {}) => call(operations, 'ListConnections', req),
    flushConnections: async (req) => Number((await call<{ flushed: string }>(operations, 'FlushConnections', req)).flushed),
    health: async (service = '') => (await call<{ status: ServingStatusName }>(health, 'Check', { service })).status,
    close: () => channel.close(),
  };
}
