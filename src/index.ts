/**
 * sluice: an eBPF service load balancer. The public surface of the package.
 */

/** The Maglev table builder (NSDI 2016, section 3.4) and its helpers. */
export {
  maglevPopulate,
  maglevPopulateWeighted,
  buildMaglevTable,
  backendPermutation,
  defaultTableSize,
  MAGLEV_MAX_SIZE,
  isPrime,
  nextPrime,
  type Permutation,
  type MaglevBackend,
} from './maglev/maglev.js';
/** The dataplane's flow hash, mirrored from bpf/include/hash.h. */
export { flowHash } from './maglev/flow-hash.js';
/** The dataplane over the real BPF maps. */
export { NativeDataplane, type NativeDataplaneOptions } from './dataplane/native-dataplane.js';
/** An in-memory dataplane for tests. */
export { FakeDataplane } from './dataplane/fake-dataplane.js';
/** The interface both dataplanes implement. */
export type { Dataplane, AttachTarget, AttachMode, ConntrackEntry, ConntrackBatch, ConntrackCursor, FlowPacket, FlowDecision, FlowOutcome } from './dataplane/dataplane.js';
/** Conntrack entries as one step of a walk over the table returns them (Dataplane.readConntrack). */
export { ConntrackRows } from './dataplane/conntrack-rows.js';
/** Define services and backends. */
export { LoadBalancer, type ServiceStats, type BackendStats, type LoadBalancerOptions } from './lb/load-balancer.js';
/** The service model and its validation. */
export {
  validateService,
  type ServiceSpec,
  type BackendSpec,
  type BackendState,
  type SessionAffinity,
} from './model/service.js';
/** The one error class. */
export { SluiceError, type SluiceErrorCode } from './errors.js';
/**
 * Desired state in an etcd-shaped store: the store interface and its
 * embedded implementations, the catalog (the domain's writes), a node's
 * view of it, and a node's control plane assembled (catalog, view, syncer
 * into the load balancer, inspector).
 */
export type { KvStore, KeyValue, KvEvent, KvChanges, Compare, Operation as KvOperation, LeaseInfo } from './store/kv.js';
export { MemoryKvStore } from './store/memory-kv.js';
export { Catalog, type ApplyItem, type RegisterArgs } from './catalog/catalog.js';
export { CatalogKeys } from './catalog/keys.js';
export { CatalogView, type ViewChange } from './catalog/view.js';
export type { WatchEvent } from './catalog/watch.js';
export { buildControlPlane, type ControlPlane, type ControlPlaneOptions } from './node/control-plane.js';
/** The gRPC API server (sluice.v1, health, reflection) over a node's control plane. */
export { startApiServer, type ApiServer, type ApiServerOptions, type ApiTlsOptions } from './api/server.js';
/** A typed, promise-based client of the gRPC API. */
export { connect, ApiError, type SluiceClient, type ClientTlsOptions, type RegisterBackendInput } from './api/client.js';
/** Conversion between API Service messages and ServiceDefinitions (e.g. for clients reading YAML). */
export { definitionFromMessage, definitionToMessage } from './api/convert.js';
/** Shapes of the sluice.v1 messages as the client and server see them. */
export type * as ApiMessages from './api/messages.js';
/** The socket programs' target (NativeDataplane.attachSockets: the node's own processes, balanced at connect/sendmsg). */
export type { SocketTarget } from './dataplane/native-dataplane.js';
