/**
 * grpc.health.v1.Health (doc/health-checking.md of gRPC): Check answers
 * the serving status of "" (the server as a whole) or of a service by its
 * fully qualified name, NOT_FOUND for others; Watch sends the status now
 * and on every change, SERVICE_UNKNOWN for a service it does not know.
 */
import { show } from '../model/schema.js';
import * as grpc from '@grpc/grpc-js';
import type { HealthCheckRequest, HealthCheckResponse, ServingStatusName } from './messages.js';
import type { OpenStreams } from './open-streams.js';

/** Serving statuses, and the Health service over them. */
export class HealthStatus {
  private readonly statuses = new Map<string, ServingStatusName>();
  private readonly watchers = new Map<string, Set<(s: ServingStatusName) => void>>();

  /** Every name in `services` (and "") starts with `initial`. */
  constructor(services: readonly string[], initial: ServingStatusName = 'SERVING') {
    for (const s of ['', ...services]) this.statuses.set(s, initial);
  }

  /** Set one service's status ("" for the server) and tell its watchers. */
  set(service: string, status: ServingStatusName): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const w of this.watchers.get(service) ?? []) w(status);
  }

  /** Set every known service's status. */
  setAll(status: ServingStatusName): void {
    for (const s of [...this.statuses.keys()]) this.set(s, status);
  }

  /** The Health implementation; Watch calls are tracked in `streams`. */
  service(streams: OpenStreams): grpc.UntypedServiceImplementation {
    return {
      Check: (call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, cb: grpc.sendUnaryData<HealthCheckResponse>) => {
        const status = this.statuses.get(call.request.service);
        if (status === undefined) cb({ code: grpc.status.NOT_FOUND, details: `unknown service ${show(call.request.service)}` });
        else cb(null, { status });
      },
      Watch: (call: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
        const name = call.request.service;
        const send = (status: ServingStatusName): void => {
          call.write({ status });
        };
        let set = this.watchers.get(name);
        if (!set) this.watchers.set(name, (set = new Set()));
        set.add(send);
        const watchers = set;
        if (!streams.track(call, () => watchers.delete(send))) {
          call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the server is shutting down' });
          return;
        }
        send(this.statuses.get(name) ?? 'SERVICE_UNKNOWN');
      },
    };
  }
}
