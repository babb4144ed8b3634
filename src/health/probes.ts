/**
 * One probe of one target: a TCP connect, an HTTP(S) GET, or a gRPC
 * grpc.health.v1 Check. Each resolves (never rejects) with whether it
 * passed, how long it took and, if it failed, why in a few words
 * ("ECONNREFUSED", "status 503", "NOT_SERVING", "timeout after 1000 ms").
 * HTTPS does not verify certificates: a check asks whether the backend
 * answers, not who it is. gRPC keeps one channel per target (opening one
 * per probe would cost a TCP and HTTP/2 handshake each time); `forget`
 * closes it when the target goes.
 */
import * as net from 'node:net';
import * as http from 'node:http';
import * as https from 'node:https';
import * as util from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { service as healthServiceDefinition } from 'grpc-health-check';
import type { HealthCheckType } from './health.js';
import { hostPort } from '../model/address.js';
import { parseHttpHost } from '../model/http-host.js';

/** What is probed, and how. */
export interface ProbeSpec {
  type: HealthCheckType;
  address: string;
  port: number;
  /** http/https. */
  path?: string;
  /** http/https: Host header and TLS server name of a DNS name (model/http-host.ts forms). */
  host?: string;
  /** http/https: inclusive. */
  expectedStatus?: { min: number; max: number };
  /** grpc. */
  grpcService?: string;
  timeoutMs: number;
}

/** One probe's outcome. */
export interface ProbeOutcome {
  ok: boolean;
  latencyMs: number;
  error?: string;
}

type HealthClient = grpc.Client & {
  Check(req: { service: string }, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): grpc.ClientUnaryCall;
};
const HealthClientCtor = grpc.makeGenericClientConstructor(healthServiceDefinition as grpc.ServiceDefinition, 'Health') as unknown as new (
  address: string,
  creds: grpc.ChannelCredentials,
  opts?: grpc.ChannelOptions,
) => HealthClient;

/**
 * libuv's TCP handle as node:net itself drives it (the tcp_wrap binding):
 * a probe through it is a handle and a connect request, where a net.Socket
 * adds two streams, an event emitter, a read started on connect and the
 * ticks between them. Measured in the benchmark's namespace, a connect and
 * reset costs ~14 µs of user and ~34 µs of system CPU this way against
 * ~57 and ~55 µs through net.Socket, which is what lets one worker probe
 * 100,000 targets every 10 s. The binding is internal to Node, so it is
 * checked for the members used and net.Socket serves when it is missing.
 */
interface RawTcpHandle {
  connect(req: RawConnectReq, address: string, port: number): number;
  connect6(req: RawConnectReq, address: string, port: number): number;
  /** Close with RST (SO_LINGER 0); non-zero if that failed. */
  reset(cb?: () => void): number;
  close(cb?: () => void): void;
}
interface RawConnectReq {
  oncomplete: (status: number) => void;
}
interface RawTcpBinding {
  TCP: new (type: number) => RawTcpHandle;
  TCPConnectWrap: new () => RawConnectReq;
  constants: { SOCKET: number };
}

function loadRawTcp(): RawTcpBinding | undefined {
  try {
    const b = (process as unknown as { binding(name: string): unknown }).binding('tcp_wrap') as Partial<RawTcpBinding> | undefined;
    const proto = b?.TCP?.prototype as Partial<RawTcpHandle> | undefined;
    if (typeof b?.TCPConnectWrap !== 'function' || typeof b.constants?.SOCKET !== 'number' || !proto) return undefined;
    if (typeof proto.connect !== 'function' || typeof proto.connect6 !== 'function' || typeof proto.reset !== 'function' || typeof proto.close !== 'function') return undefined;
    return b as RawTcpBinding;
  } catch {
    return undefined;
  }
}

const rawTcp = loadRawTcp();
const noop = (): void => {};

/** A short reason from an error: its code when it has one. */
function reasonOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ?? e?.message ?? String(err);
}

/**
 * A short reason from a gRPC error: the status code's name and the first
 * line of its details, without what grpc-js adds around the cause (the
 * "No connection established. Last error:" frame, timestamps, an empty
 * "Resolution note:"), so that it reads like the other probes' reasons:
 * "UNAVAILABLE: connect ECONNREFUSED 10.1.0.3:9000".
 */
export function grpcReason(code: number, details: string): string {
  const name = grpc.status[code] ?? String(code);
  let d = (details.split('\n')[0] ?? '').replace(/\s*Resolution note:.*$/, '');
  const last = /Last error: (.*)$/.exec(d);
  if (last) d = last[1]!;
  d = d.replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '').replace(/^Error: /, '').replace(/\.$/, '').trim();
  return d ? `${name}: ${d}` : name;
}

/** Runs probes; holds the gRPC channels. */
export class Prober {
  readonly #channels = new Map<string, HealthClient>();
  readonly #now: () => number;

  constructor(o: { now?: () => number } = {}) {
    this.#now = o.now ?? (() => performance.now());
  }

  /** Probe `spec`; `key` names the target (for its gRPC channel). */
  probe(key: string, spec: ProbeSpec): Promise<ProbeOutcome> {
    switch (spec.type) {
      case 'tcp':
        return rawTcp && net.isIP(spec.address) !== 0 ? this.#tcpRaw(rawTcp, spec) : this.#tcp(spec);
      case 'http':
      case 'https':
        return this.#http(spec);
      case 'grpc':
        return this.#grpc(key, spec);
    }
  }

  /** Close what the target held (its gRPC channel). */
  forget(key: string): void {
    const c = this.#channels.get(key);
    if (!c) return;
    this.#channels.delete(key);
    c.close();
  }

  /** Close every channel. */
  close(): void {
    for (const c of this.#channels.values()) c.close();
    this.#channels.clear();
  }

  /** gRPC channels open (one per gRPC target probed). */
  get channels(): number {
    return this.#channels.size;
  }

  #tcp(spec: ProbeSpec): Promise<ProbeOutcome> {
    const began = this.#now();
    return new Promise((resolve) => {
      const sock = net.connect({ host: spec.address, port: spec.port });
      const finish = (error?: string): void => {
        clearTimeout(timer);
        // A connected probe closes with RST, as HAProxy's checks do: a FIN
        // would leave this side in TIME_WAIT for 60 s, and at thousands of
        // probes a second those fill the ephemeral ports and the kernel's
        // TIME_WAIT table.
        if (error === undefined) sock.resetAndDestroy();
        else sock.destroy();
        resolve({ ok: error === undefined, latencyMs: this.#now() - began, ...(error !== undefined ? { error } : {}) });
      };
      const timer = setTimeout(() => finish(`timeout after ${spec.timeoutMs} ms`), spec.timeoutMs);
      sock.once('connect', () => finish());
      sock.once('error', (err) => finish(reasonOf(err)));
    });
  }

  /** #tcp through libuv's handle (see RawTcpHandle). */
  #tcpRaw(b: RawTcpBinding, spec: ProbeSpec): Promise<ProbeOutcome> {
    const began = this.#now();
    return new Promise((resolve) => {
      const handle = new b.TCP(b.constants.SOCKET);
      const req = new b.TCPConnectWrap();
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const finish = (error?: string): void => {
        settled = true;
        clearTimeout(timer);
        resolve({ ok: error === undefined, latencyMs: this.#now() - began, ...(error !== undefined ? { error } : {}) });
      };
      req.oncomplete = (status) => {
        // After a timeout the handle is closed and libuv cancels the request.
        if (settled) return;
        if (status === 0) {
          // RST, as #tcp says why.
          if (handle.reset(noop) !== 0) handle.close();
          finish();
        } else {
          handle.close();
          finish(util.getSystemErrorName(status));
        }
      };
      const err = net.isIPv6(spec.address) ? handle.connect6(req, spec.address, spec.port) : handle.connect(req, spec.address, spec.port);
      if (err !== 0) {
        handle.close();
        finish(util.getSystemErrorName(err));
        return;
      }
      timer = setTimeout(() => {
        handle.close();
        finish(`timeout after ${spec.timeoutMs} ms`);
      }, spec.timeoutMs);
    });
  }

  #http(spec: ProbeSpec): Promise<ProbeOutcome> {
    const began = this.#now();
    const range = spec.expectedStatus ?? { min: 200, max: 399 };
    return new Promise((resolve) => {
      let settled = false;
      const finish = (error?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve({ ok: error === undefined, latencyMs: this.#now() - began, ...(error !== undefined ? { error } : {}) });
      };
      // An IPv6 literal in a Host header is written in brackets (RFC 7230 §5.4); SNI is a DNS name or nothing (http-host.ts).
      const given = spec.host === undefined ? undefined : parseHttpHost(spec.host);
      const host = given?.header ?? spec.host ?? (net.isIPv6(spec.address) ? `[${spec.address}]` : spec.address);
      const opts: https.RequestOptions = {
        host: spec.address,
        port: spec.port,
        path: spec.path ?? '/',
        method: 'GET',
        headers: { host, 'user-agent': 'sluice-health-check' },
        agent: false,
      };
      if (spec.type === 'https') {
        opts.rejectUnauthorized = false;
        // SNI is the host's DNS name without its port (http-host.ts), and none for an IP literal: '' sends none.
        opts.servername = given?.servername ?? '';
      }
      const req = (spec.type === 'https' ? https : http).request(opts, (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        finish(status >= range.min && status <= range.max ? undefined : `status ${status}`);
      });
      const timer = setTimeout(() => finish(`timeout after ${spec.timeoutMs} ms`), spec.timeoutMs);
      req.once('error', (err) => finish(reasonOf(err)));
      req.end();
    });
  }

  #grpc(key: string, spec: ProbeSpec): Promise<ProbeOutcome> {
    let client = this.#channels.get(key);
    if (!client) {
      client = new HealthClientCtor(hostPort(spec.address, spec.port), grpc.credentials.createInsecure(), {
        // Probes want the backend's present answer: fail at once when the
        // channel cannot connect rather than wait for it.
        'grpc.enable_retries': 0,
        'grpc.initial_reconnect_backoff_ms': Math.min(1000, spec.timeoutMs),
        'grpc.max_reconnect_backoff_ms': Math.max(1000, spec.timeoutMs),
      });
      this.#channels.set(key, client);
    }
    const began = this.#now();
    return new Promise((resolve) => {
      client.Check({ service: spec.grpcService ?? '' }, new grpc.Metadata(), { deadline: Date.now() + spec.timeoutMs }, (err, res) => {
        const latencyMs = this.#now() - began;
        if (err) {
          const error = err.code === grpc.status.DEADLINE_EXCEEDED ? `timeout after ${spec.timeoutMs} ms` : grpcReason(err.code, err.details);
          resolve({ ok: false, latencyMs, error });
        } else if (res?.status === 'SERVING') resolve({ ok: true, latencyMs });
        else resolve({ ok: false, latencyMs, error: res?.status ?? 'no status' });
      });
    });
  }
}
