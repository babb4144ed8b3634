/**
 * sluice.v1.ServiceRegistry: the handlers, over a node's control plane.
 * Each checks the request's shape (required fields, enum values), converts
 * it, calls the catalog (writes) or reads the view, and re-roots the field
 * paths of errors to the request. A write answers once this node has
 * applied it; a read sees every write committed before it.
 */
import { checkServiceName, show } from '../model/schema.js';
import { canonicalAddress } from '../model/address.js';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { SluiceError, invalid } from '../errors.js';
import { joinPath } from '../field-path.js';
import type { ApplyItem } from '../catalog/catalog.js';
import { watchView } from '../catalog/watch.js';
import type { ControlPlane } from '../node/control-plane.js';
import type { StoredService } from '../model/definition.js';
import { reroot, rerootAsync, unary } from './call.js';
import { backendRuntime, serviceAnswer } from './service-answer.js';
import { definitionInputFromMessage, eventToMessage, int64ToNumber, required, type BackendRuntime } from './convert.js';
import type {
  ApplyServiceRequest,
  ApplyServicesRequest,
  ApplyServicesResponse,
  DeleteServiceRequest,
  DeleteServiceResponse,
  GetServiceRequest,
  ListServicesRequest,
  ListServicesResponse,
  ServiceMessage,
  WatchServicesRequest,
  WatchServicesResponse,
} from './messages.js';
import type { OpenStreams } from './open-streams.js';
import { decodePageToken, encodePageToken, pageSize } from './page-token.js';
import { toStatus } from './status.js';

/** Most items of one ApplyServices call. */
export const MAX_BATCH = 100_000;
/** Events a watcher may leave unread (beyond its snapshot) before it is ended with RESOURCE_EXHAUSTED. */
export const MAX_WATCH_BACKLOG = 10_000;

/** What the handlers need. */
export interface HandlerContext {
  plane: ControlPlane;
  log: Logger;
  streams: OpenStreams;
}

function applyItem(req: ApplyServiceRequest, path: string): ApplyItem {
  const service = required(req.service, joinPath(path, 'service'));
  const definition = reroot(() => definitionInputFromMessage(service), (f) => joinPath(joinPath(path, 'service'), f));
  if (req.expectedRevision === undefined) return { definition };
  return { definition, expectedRevision: int64ToNumber(req.expectedRevision, joinPath(path, 'expectedRevision')) };
}

/** "[3].ports[0]" → "requests[3].service.ports[0]"; "[3].expectedRevision" → "requests[3].expectedRevision". */
function batchPath(f: string): string {
  const m = /^\[(\d+)\](?:\.(.*))?$/.exec(f);
  if (!m) return joinPath('requests', f);
  const item = `requests[${m[1]}]`;
  const rest = m[2] ?? '';
  return rest === 'expectedRevision' ? joinPath(item, rest) : joinPath(joinPath(item, 'service'), rest);
}

/** The ServiceRegistry implementation. */
/** The BASIC view of a stored service: its name, owner and revisions. */
function basicServiceMessage(s: StoredService): ServiceMessage {
  return {
    name: s.definition.name, addresses: [], ports: [], backends: [], sessionAffinity: null, tableSize: 0, noBackends: 'NO_BACKENDS_UNSPECIFIED', healthCheck: null,
    revision: String(s.revision), createRevision: String(s.createRevision), effectiveTableSize: 0, owner: s.owner, ipFamilies: [],
  };
}

export function serviceRegistryService(ctx: HandlerContext): grpc.UntypedServiceImplementation {
  const { plane, log } = ctx;
  const runtime = (s: StoredService): BackendRuntime => backendRuntime(plane, s);
  const full = (s: StoredService): ServiceMessage => serviceAnswer(plane, s);
  return {
    ApplyService: unary<ApplyServiceRequest, ServiceMessage>(log, async (req) => {
      const item = applyItem(req, '');
      const { services, revision } = await rerootAsync(
        () => plane.catalog.apply([item]),
        (f) => (f === '[0].expectedRevision' ? 'expectedRevision' : joinPath('service', f.replace(/^\[0\]\.?/, ''))),
      );
      await plane.settle(revision, [services[0]!.definition.name]);
      return full(plane.view.get(services[0]!.definition.name) ?? services[0]!);
    }),

    ApplyServices: unary<ApplyServicesRequest, ApplyServicesResponse>(log, async (req) => {
      if (req.requests.length === 0) throw invalid('requests', 'at least one is required');
      if (req.requests.length > MAX_BATCH) throw invalid('requests', `at most ${MAX_BATCH}, got ${req.requests.length}`);
      const items = req.requests.map((r, i) => applyItem(r, `requests[${i}]`));
      const { services, revision, unchanged } = await rerootAsync(() => plane.catalog.apply(items), batchPath);
      await plane.settle(revision, services.map((s) => s.definition.name));
      const basic = req.view === 'BASIC';
      return {
        services: services.map((s) => (basic ? basicServiceMessage(s) : full(s))),
        revision: String(revision),
        unchanged,
      };
    }),

    DeleteService: unary<DeleteServiceRequest, DeleteServiceResponse>(log, async (req) => {
      const name = required(req.name, 'name');
      const expected = req.expectedRevision === undefined ? undefined : int64ToNumber(req.expectedRevision, 'expectedRevision');
      const revision = await plane.catalog.delete(name, expected);
      await plane.settle(revision, []);
      return { revision: String(revision) };
    }),

    GetService: unary<GetServiceRequest, ServiceMessage>(log, async (req) => {
      const name = checkServiceName(required(req.name, 'name'), 'name');
      await plane.fresh();
      const s = plane.view.get(name);
      if (!s) throw new SluiceError('NOT_FOUND', `no service named ${show(name)}`, { field: 'name' });
      return full(s);
    }),

    ListServices: unary<ListServicesRequest, ListServicesResponse>(log, async (req) => {
      const limit = pageSize(req.pageSize);
      const address = req.address === '' ? '' : canonicalAddress(req.address);
      if (address === undefined) throw invalid('address', `must be an IPv4 or IPv6 address, got ${show(req.address)}`);
      const filters = { prefix: req.namePrefix, address };
      const after = decodePageToken(req.pageToken, filters);
      await plane.fresh();
      const view = plane.view;
      const names = (address !== '' ? view.servicesWithAddress(address).sort() : view.names())
        .filter((n) => n.startsWith(req.namePrefix) && (after === undefined || n > after));
      const page = names.slice(0, limit).map((n) => view.get(n)!);
      const last = page.at(-1);
      return {
        services: page.map(full),
        nextPageToken: names.length > limit && last ? encodePageToken(last.definition.name, filters) : '',
        revision: String(view.revision),
      };
    }),

    WatchServices: (call: grpc.ServerWritableStream<WatchServicesRequest, WatchServicesResponse>) => {
      let stop: (() => void) | undefined;
      let syncing = true;
      let limit = MAX_WATCH_BACKLOG;
      let ended = false;
      const end = (err: unknown): void => {
        if (ended) return;
        ended = true;
        stop?.();
        call.emit('error', toStatus(err, log));
      };
      /** Past the snapshot, a watcher too far behind is ended; true if it was. */
      const tooFarBehind = (): boolean => {
        if (syncing || call.writableLength <= limit) return false;
        end(new SluiceError('RESOURCE_EXHAUSTED', `the watcher fell more than ${MAX_WATCH_BACKLOG} events behind: resume from the last revision received`));
        return true;
      };
      try {
        const start = call.request.startRevision === undefined ? undefined : int64ToNumber(call.request.startRevision, 'startRevision');
        stop = watchView(plane.view, start, (e) => {
          if (ended) return;
          if (syncing) limit++;
          else if (tooFarBehind()) return;
          call.write(eventToMessage(e, e.type === 'DELETE' || !e.service ? undefined : runtime(e.service)));
        });
        const health = plane.health;
        if (health) {
          const sendHealth = (name: string): void => {
            const svc = plane.view.get(name);
            if (ended || !svc || tooFarBehind()) return;
            call.write(eventToMessage({ type: 'HEALTH', name, revision: plane.view.revision, service: svc }, runtime(svc)));
          };
          // A resumed watch missed the health changes since (they are not
          // in the view's log): it gets each checked service's health now.
          if (start !== undefined) {
            for (const name of plane.view.names()) {
              const svc = plane.view.get(name)!;
              if (svc.definition.backends.some((b) => (health.get(name, b.address)?.state ?? 'unchecked') !== 'unchecked')) sendHealth(name);
            }
          }
          const unwatch = health.subscribe(sendHealth);
          const stopView = stop;
          stop = () => {
            stopView();
            unwatch();
          };
        }
      } catch (err) {
        end(err);
        return;
      }
      syncing = false;
      if (!ctx.streams.track(call, () => stop?.())) {
        ended = true;
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the server is shutting down' });
      }
    },
  };
}
