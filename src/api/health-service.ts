/**
 * grpc.health.v1.Health (doc/health-checking.md of gRPC), served by
 * grpc-health-check: Check answers the serving status of "" (the server as
 * a whole) or of a service by its fully qualified name, NOT_FOUND for
 * others; Watch sends the status now and on every change, SERVICE_UNKNOWN
 * for a service it does not know; List answers them all.
 *
 * A thin wrapper stays, for what the library does not do:
 * - it does not keep its Watch calls, so it cannot end them when the server
 *   shuts down: each one is tracked in OpenStreams, which ends it with
 *   UNAVAILABLE (and refuses a Watch that arrives while closing);
 * - it adds its service to the server itself: the wrapper passes it through
 *   guardMalformed, so a request body that does not decode is
 *   INVALID_ARGUMENT, as on every other service;
 * - its setStatus tells watchers even when the status is unchanged: setAll
 *   passes on changes only, as the protocol asks.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { guardMalformed } from './call.js';
import type { OpenStreams } from './open-streams.js';

/** The serving status of the server and its services, and the Health service over it. */
export class HealthStatus {
  private readonly names: readonly string[];
  private readonly impl: HealthImplementation;
  private status: ServingStatus;

  /** "" and every name in `services` start with `initial`. */
  constructor(services: readonly string[], initial: ServingStatus = 'SERVING') {
    this.names = ['', ...services];
    this.status = initial;
    this.impl = new HealthImplementation(Object.fromEntries(this.names.map((s) => [s, initial])));
  }

  /** Set the status of the server and of every service, and tell their watchers if it changed. */
  setAll(status: ServingStatus): void {
    if (status === this.status) return;
    this.status = status;
    for (const s of this.names) this.impl.setStatus(s, status);
  }

  /** Add the Health service to `server`; its Watch calls are tracked in `streams`. */
  addTo(server: grpc.Server, streams: OpenStreams): void {
    this.impl.addToServer({
      addService: (def, impl) => {
        const watch = impl['watch'] as grpc.handleServerStreamingCall<unknown, unknown>;
        const tracked: grpc.handleServerStreamingCall<unknown, unknown> = (call) => {
          // The library drops its watcher on 'cancelled', which grpc-js emits
          // however the call ends, so tracking needs no stop of its own.
          if (!streams.track(call, () => undefined)) {
            call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the server is shutting down' });
            return;
          }
          watch(call);
        };
        server.addService(...guardMalformed(def as grpc.ServiceDefinition, { ...(impl as grpc.UntypedServiceImplementation), watch: tracked }));
      },
    });
  }
}
