/**
 * sluice.v1.Operations: the handlers, over this node's inspector.
 */
import type * as grpc from '@grpc/grpc-js';
import { formatConnectionCursor, parseConnectionCursor } from '../inspect/connections.js';
import type { ConnectionFilter } from '../inspect/inspector.js';
import { unary } from './call.js';
import {
  connectionStateFromName,
  ipFamilyFromName,
  connectionToMessage,
  conntrackGcToMessage,
  flowToMessage,
  globalStatsToMessage,
  mapStatsToMessage,
  protocolFromName,
  serviceStatsToMessage,
} from './convert.js';
import type {
  FlushConnectionsRequest,
  FlushConnectionsResponse,
  GetStatsRequest,
  GetStatsResponse,
  ListConnectionsRequest,
  ListConnectionsResponse,
  LookupFlowRequest,
  LookupFlowResponse,
} from './messages.js';
import { decodePageToken, encodePageToken, pageSize } from './page-token.js';
import type { HandlerContext } from './service-registry-service.js';

function filterOf(req: { service: string; backendAddress: string; clientAddress: string; state?: string; family?: string }): ConnectionFilter {
  const f: ConnectionFilter = {};
  if (req.state !== undefined && req.state !== 'CONNECTION_STATE_UNSPECIFIED') f.state = connectionStateFromName(req.state, 'state');
  if (req.family !== undefined && req.family !== 'IP_FAMILY_UNSPECIFIED') f.family = ipFamilyFromName(req.family, 'family');
  if (req.service !== '') f.service = req.service;
  if (req.backendAddress !== '') f.backendAddress = req.backendAddress;
  if (req.clientAddress !== '') f.clientAddress = req.clientAddress;
  return f;
}

/** The Operations implementation. */
export function operationsService(ctx: HandlerContext): grpc.UntypedServiceImplementation {
  const { plane, log } = ctx;
  const inspector = plane.inspector;
  return {
    GetStats: unary<GetStatsRequest, GetStatsResponse>(log, async (req) => {
      const s = inspector.stats(req.service === '' ? undefined : req.service);
      // The maps are the node's, not a service's: only in the whole view.
      const maps = req.service === '' ? (await inspector.maps()).map(mapStatsToMessage) : [];
      const gc = plane.conntrackGc?.stats();
      return {
        services: s.services.map(serviceStatsToMessage),
        globalStats: globalStatsToMessage(s.global),
        maps,
        conntrackGc: gc ? conntrackGcToMessage(gc) : null,
      };
    }),

    LookupFlow: unary<LookupFlowRequest, LookupFlowResponse>(log, (req) => {
      const protocol = protocolFromName(req.protocol, 'protocol');
      return flowToMessage(
        inspector.lookupFlow({
          clientAddress: req.clientAddress,
          clientPort: req.clientPort,
          address: req.address,
          port: req.port,
          protocol,
          syn: req.syn,
        }),
      );
    }),

    ListConnections: unary<ListConnectionsRequest, ListConnectionsResponse>(log, (req) => {
      const limit = pageSize(req.pageSize);
      const family = req.family === undefined || req.family === 'IP_FAMILY_UNSPECIFIED' ? '' : req.family;
      // The family goes into the token only when given: a token without one is a token of any daemon version.
      const filters = {
        service: req.service, backend: req.backendAddress, client: req.clientAddress,
        state: req.state === 'CONNECTION_STATE_UNSPECIFIED' ? '' : req.state, ...(family ? { family } : {}),
      };
      const after = decodePageToken(req.pageToken, filters, parseConnectionCursor);
      const page = inspector.listConnections(filterOf(req), after === undefined ? { limit } : { after, limit });
      return {
        connections: page.connections.map(connectionToMessage),
        nextPageToken: page.next === undefined ? '' : encodePageToken(formatConnectionCursor(page.next), filters),
      };
    }),

    FlushConnections: unary<FlushConnectionsRequest, FlushConnectionsResponse>(log, async (req) => ({
      flushed: String(await inspector.flushConnections(filterOf(req), { all: req.all })),
    })),
  };
}
