/**
 * A service as every API answer carries it: the stored definition with the
 * table size this node uses, and each backend's health and the state the
 * node applies (the overlay over the catalog). One function, so that an
 * answer to a write and a later GetService of the same revision are equal.
 */
import type { ControlPlane } from '../node/control-plane.js';
import type { StoredService } from '../model/definition.js';
import type { ServiceMessage } from './messages.js';
import { serviceToMessage, type BackendRuntime } from './convert.js';

/** The node's run-time view of a service's backends. */
export function backendRuntime(plane: ControlPlane, s: StoredService): BackendRuntime {
  return { health: plane.health, effective: plane.overlay.apply(s.definition) };
}

/** `s` as an API answer. */
export function serviceAnswer(plane: ControlPlane, s: StoredService): ServiceMessage {
  return serviceToMessage(s, plane.tableSizeOf(s), backendRuntime(plane, s));
}
