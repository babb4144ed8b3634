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
export type { Dataplane, AttachTarget, AttachMode, ConntrackEntry } from './dataplane/dataplane.js';
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
