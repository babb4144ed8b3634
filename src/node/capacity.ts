/**
 * Will this node's dataplane hold a change? Checked by the node that takes
 * a write, before the catalog commits it, so that a change beyond the
 * node's capacity is refused (RESOURCE_EXHAUSTED naming the daemon flag to
 * raise) instead of committed and then failing on every node. The count is
 * cautious: ids and table regions a change frees are not counted as free
 * (the load balancer frees them after it has written the new ones).
 */
import { SluiceError } from '../errors.js';
import type { LoadBalancer } from '../lb/load-balancer.js';
import { expandDefinition, type ServiceDefinition } from '../model/definition.js';
import { backendIdentity, type ServiceSpec } from '../model/service.js';
import { defaultTableSize } from '../model/table-size.js';

/** A precheck for the catalog: throws if `next` would not fit in `lb`. */
export function capacityCheck(lb: LoadBalancer): (next: readonly ServiceDefinition[], removed: readonly ServiceDefinition[]) => void {
  return (next) => {
    let serviceIds = 0;
    let backendIds = 0;
    let slots = 0;
    for (const def of next) {
      for (const spec of expandDefinition(def)) {
        const held = lb.peek(spec.name);
        if (!held) serviceIds++;
        const ids = new Set((held?.backends ?? []).map((b) => backendIdentity(b)));
        for (const b of spec.backends) if (!ids.has(backendIdentity(b))) backendIds++;
        if (tableChanges(held, spec)) slots += tableSize(spec);
      }
    }
    const room = lb.room();
    const short = (what: string, need: number, r: { free: number; total: number }, flag: string): void => {
      if (need <= r.free) return;
      throw new SluiceError('RESOURCE_EXHAUSTED', `${what}: this change needs ${need}, ${r.free} are free (${r.total} in all); raise the daemon's ${flag}`);
    };
    short('no free service ids', serviceIds, room.serviceIds, '--max-frontends');
    short('no free backend ids', backendIds, room.backendIds, '--max-backends');
    short('no room for the Maglev tables (slots; a changed table is written beside the old one, so a change needs room for both)', slots, room.slots, '--maglev-slots');
  };
}

/** The size a frontend's table will have (0: no active backend, no table). */
function tableSize(spec: ServiceSpec): number {
  const active = spec.backends.some((b) => (b.state ?? 'active') === 'active' && (b.weight ?? 1) > 0);
  if (!active) return 0;
  return spec.tableSize ?? defaultTableSize(Math.max(spec.backends.length, 1));
}

/** Whether applying `spec` writes a new table (a new region) over what is held. */
function tableChanges(held: Readonly<ServiceSpec> | undefined, spec: ServiceSpec): boolean {
  if (!held) return true;
  if ((held.tableSize ?? 0) !== (spec.tableSize ?? 0) || held.backends.length !== spec.backends.length) return true;
  return spec.backends.some((b, i) => {
    const h = held.backends[i]!;
    return h.address !== b.address || h.port !== b.port || (h.weight ?? 1) !== (b.weight ?? 1) || (h.state ?? 'active') !== (b.state ?? 'active');
  });
}
