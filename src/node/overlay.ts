/**
 * The node's runtime overlay: what this node learns about backends while it
 * runs (a health check's verdict, next), laid over the catalog's desired
 * state on its way to the load balancer. It is never written to the store:
 * a restart begins from the catalog alone, and each node keeps its own
 * (one node's checks failing does not take a backend from the others).
 *
 * The overlay can only make a backend less available than the catalog says
 * (active < draining < maintenance): draining keeps the backend's flows but
 * gives it no new ones, maintenance takes it out (its flows move). A backend
 * the catalog does not have is not added.
 */
import type { BackendDefinitionState, ServiceDefinition } from '../model/definition.js';

/** How much less a backend takes than the catalog says. */
export type OverlayState = Exclude<BackendDefinitionState, 'active'>;

/** One backend's overlay. */
export interface OverlayEntry {
  service: string;
  address: string;
  state: OverlayState;
  /** Why, for people ("health: 3 checks failed"). */
  reason: string;
}

const RANK: Readonly<Record<BackendDefinitionState, number>> = { active: 0, draining: 1, maintenance: 2 };

/** Overlay entries by service, then backend address. */
export class RuntimeOverlay {
  readonly #entries = new Map<string, Map<string, OverlayEntry>>();
  readonly #subs = new Set<(services: readonly string[]) => void>();

  /** Lay `state` over one backend of a service (replacing what was there). */
  set(service: string, address: string, state: OverlayState, reason: string): void {
    if (state !== 'draining' && state !== 'maintenance') throw new Error(`overlay state must be draining or maintenance, got ${String(state)}`);
    let m = this.#entries.get(service);
    const prev = m?.get(address);
    if (prev && prev.state === state && prev.reason === reason) return;
    if (!m) this.#entries.set(service, (m = new Map()));
    m.set(address, { service, address, state, reason });
    if (prev?.state !== state) this.#notify([service]);
  }

  /** Take the overlay off one backend (the catalog's state holds again); false if there was none. */
  clear(service: string, address: string): boolean {
    const m = this.#entries.get(service);
    if (!m?.delete(address)) return false;
    if (m.size === 0) this.#entries.delete(service);
    this.#notify([service]);
    return true;
  }

  /** Take every overlay off a service (it was deleted, or its checks stopped). */
  clearService(service: string): void {
    if (this.#entries.delete(service)) this.#notify([service]);
  }

  /** One backend's overlay, or undefined. */
  get(service: string, address: string): OverlayEntry | undefined {
    return this.#entries.get(service)?.get(address);
  }

  /** Every entry, by service then address. */
  list(): OverlayEntry[] {
    return [...this.#entries.values()].flatMap((m) => [...m.values()]);
  }

  /** Be told which services' overlay changed; returns the unsubscribe function. */
  subscribe(fn: (services: readonly string[]) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  /**
   * The definition the load balancer gets: `d` itself when nothing of it
   * is overlaid (no copy), else a copy whose overlaid backends take the
   * lesser of the two states.
   */
  apply(d: ServiceDefinition): ServiceDefinition {
    const m = this.#entries.get(d.name);
    if (!m) return d;
    let changed = false;
    const backends = d.backends.map((b) => {
      const o = m.get(b.address);
      if (!o || RANK[o.state] <= RANK[b.state]) return b;
      changed = true;
      return { ...b, state: o.state };
    });
    return changed ? { ...d, backends } : d;
  }

  #notify(services: readonly string[]): void {
    for (const fn of this.#subs) fn(services);
  }
}
