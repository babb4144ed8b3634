/**
 * sluice.v1.Registration: the handlers, over the catalog. Field paths of
 * its errors are already the request's (service, address, weight,
 * ttlSeconds, leaseId, state). Leases are the store's: a backend keeps its
 * lease alive through any node.
 */
import * as grpc from '@grpc/grpc-js';
import { malformed, malformedStatus, unary } from './call.js';
import { required, stateFromName } from './convert.js';
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
import { serviceAnswer } from './service-answer.js';

/** The Registration implementation. */
export function registrationService(ctx: HandlerContext): grpc.UntypedServiceImplementation {
  const { plane, log } = ctx;
  const full = (s: StoredService): ServiceMessage => serviceAnswer(plane, plane.view.get(s.definition.name) ?? s);
  const keepAlive = async (req: KeepAliveRequest): Promise<KeepAliveResponse> => {
    const lease = await plane.catalog.keepAlive(required(req.leaseId, 'leaseId'));
    return { leaseId: lease.id, ttlSeconds: lease.ttlSeconds };
  };
  /** A write's service once this node has applied it. */
  const settled = async (s: StoredService): Promise<StoredService> => {
    await plane.settle(await plane.store.revision(), [s.definition.name]);
    return s;
  };
  return {
    RegisterBackend: unary<RegisterBackendRequest, RegisterBackendResponse>(log, async (req) => {
      const { lease, service } = await plane.catalog.registerBackend({
        service: required(req.service, 'service'),
        address: required(req.address, 'address'),
        ...(req.weight !== undefined ? { weight: req.weight } : {}),
        ...(req.ttlSeconds !== 0 ? { ttlSeconds: req.ttlSeconds } : {}),
        ...(req.leaseId !== '' ? { leaseId: req.leaseId } : {}),
      });
      return { leaseId: lease.id, ttlSeconds: lease.ttlSeconds, service: full(await settled(service)) };
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
        keepAlive(req).then(
          (res) => {
            if (!ended) call.write(res);
          },
          (err: unknown) => fail(toStatus(err, log)),
        );
      });
      call.on('end', () => {
        if (ended) return;
        ended = true;
        call.end();
      });
    },

    Heartbeat: unary<KeepAliveRequest, KeepAliveResponse>(log, keepAlive),

    DeregisterBackend: unary<DeregisterBackendRequest, ServiceMessage>(log, async (req) =>
      full(await settled(await plane.catalog.deregisterBackend(required(req.service, 'service'), required(req.address, 'address')))),
    ),

    SetBackendState: unary<SetBackendStateRequest, ServiceMessage>(log, async (req) => {
      const service = required(req.service, 'service');
      const address = required(req.address, 'address');
      const state = stateFromName(req.state, 'state');
      return full(await settled(await plane.catalog.setBackendState(service, address, state)));
    }),
  };
}
