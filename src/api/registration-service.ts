/**
 * sluice.v1.Registration: the handlers, over the Registry. Field paths of
 * the registry's errors are already the request's (service, address,
 * weight, ttlSeconds, leaseId, state).
 */
import * as grpc from '@grpc/grpc-js';
import { malformed, malformedStatus, unary } from './call.js';
import { required, serviceToMessage, stateFromName } from './convert.js';
import type {
  DeregisterBackendRequest,
  KeepAliveRequest,
  KeepAliveResponse,
  RegisterBackendRequest,
  RegisterBackendResponse,
  ServiceMessage,
  SetBackendStateRequest,
} from './messages.js';
import type { HandlerContext } from './service-registry-service.js';
import type { StoredService } from '../model/definition.js';
import { toStatus } from './status.js';

/** The Registration implementation. */
export function registrationService(ctx: HandlerContext): grpc.UntypedServiceImplementation {
  const { registry, log } = ctx;
  const full = (s: StoredService): ServiceMessage => serviceToMessage(s, registry.effectiveTableSize(s.definition));
  const keepAlive = (req: KeepAliveRequest): KeepAliveResponse => {
    const lease = registry.keepAlive(required(req.leaseId, 'leaseId'));
    return { leaseId: lease.id, ttlSeconds: lease.ttlSeconds };
  };
  return {
    RegisterBackend: unary<RegisterBackendRequest, RegisterBackendResponse>(log, async (req) => {
      const { lease, service } = await registry.registerBackend({
        service: required(req.service, 'service'),
        address: required(req.address, 'address'),
        ...(req.weight !== undefined ? { weight: req.weight } : {}),
        ...(req.ttlSeconds !== 0 ? { ttlSeconds: req.ttlSeconds } : {}),
        ...(req.leaseId !== '' ? { leaseId: req.leaseId } : {}),
      });
      return { leaseId: lease.id, ttlSeconds: lease.ttlSeconds, service: full(service) };
    }),

    KeepAlive: (call: grpc.ServerDuplexStream<KeepAliveRequest, KeepAliveResponse>) => {
      let ended = false;
      const fail = (status: Partial<grpc.StatusObject>): void => {
        if (ended) return;
        ended = true;
        call.emit('error', status);
      };
      if (!ctx.streams.track(call, () => undefined)) {
        fail({ code: grpc.status.UNAVAILABLE, details: 'the server is shutting down' });
        return;
      }
      call.on('data', (req: KeepAliveRequest) => {
        if (ended) return;
        const why = malformed(req);
        if (why !== undefined) {
          fail(malformedStatus(why));
          return;
        }
        try {
          call.write(keepAlive(req));
        } catch (err) {
          fail(toStatus(err, log));
        }
      });
      call.on('end', () => {
        if (ended) return;
        ended = true;
        call.end();
      });
    },

    Heartbeat: unary<KeepAliveRequest, KeepAliveResponse>(log, keepAlive),

    DeregisterBackend: unary<DeregisterBackendRequest, ServiceMessage>(log, async (req) =>
      full(await registry.deregisterBackend(required(req.service, 'service'), required(req.address, 'address'))),
    ),

    SetBackendState: unary<SetBackendStateRequest, ServiceMessage>(log, async (req) => {
      const service = required(req.service, 'service');
      const address = required(req.address, 'address');
      const state = stateFromName(req.state, 'state');
      return full(await registry.setBackendState(service, address, state));
    }),
  };
}
