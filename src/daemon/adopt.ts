/**
 * `--adopt-dataplane`: rebuild desired state from what the pinned maps
 * hold, for a daemon whose store was lost (a wiped state directory) while
 * its dataplane kept forwarding. What the maps do not keep is filled in as
 * well as it can be:
 *
 * - names: each frontend (VIP, port, protocol) becomes a service named
 *   `adopted/<vip>-<port>-<protocol>`;
 * - weights: inferred from each backend's share of the Maglev table
 *   (rounded; a backend that is active but holds no slot had weight 0);
 * - ids: the load balancer finds them in the maps by each frontend's key,
 *   so that the flows in conntrack keep their backends;
 * - a table size that differs from the one the backend count gives: kept.
 *
 * What the maps cannot tell is lost: which backends were registered with a
 * lease (they come back static: deregister them and let their agents
 * register again), backends in maintenance (not in the maps), a weight of
 * 0 (such a backend is flagged as draining in the maps, and comes back so).
 *
 * A backend whose port differs from the frontend's other backends cannot be
 * expressed (a service's backends share a target port) and is left out,
 * reported in `skipped`.
 */
import {
  BACKEND_FLAG_DRAINING,
  SVC_FLAG_AFFINITY,
  SVC_FLAG_DROP_NO_BACKEND,
  serviceKeyString,
  type BackendValue,
} from '../dataplane/codec.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { normaliseDefinition, type BackendDefinition, type ServiceDefinition } from '../model/definition.js';
import { MAX_WEIGHT } from '../model/service.js';
import { hostPort } from '../model/address.js';
import { defaultTableSize, isPrime } from '../maglev/maglev.js';

/** What adoption found. */
export interface Adopted {
  definitions: ServiceDefinition[];
  /** What could not be adopted, one line each. */
  skipped: string[];
}

/** Definitions and ids that reproduce the services in `dp`'s maps. */
export function adoptDataplane(dp: Dataplane): Adopted {
  const byService = new Map<number, Array<[number, BackendValue]>>();
  for (const [id, b] of dp.listBackends()) {
    let list = byService.get(b.serviceId);
    if (!list) byService.set(b.serviceId, (list = []));
    list.push([id, b]);
  }
  const out: Adopted = { definitions: [], skipped: [] };
  const entries = dp.listServices().sort((a, b) => serviceKeyString(a.key).localeCompare(serviceKeyString(b.key)));
  for (const { key, value } of entries) {
    const name = `adopted/${key.address}-${key.port}-${key.protocol}`;
    const backends = (byService.get(value.id) ?? []).sort((a, b) => a[0] - b[0]);
    const ports = new Map<number, number>();
    for (const [, b] of backends) ports.set(b.port, (ports.get(b.port) ?? 0) + 1);
    const targetPort = [...ports.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0] ?? key.port;
    const slots = new Map<number, number>();
    if (value.tableSize > 0) {
      for (const id of dp.readTable(value.tableBase, value.tableSize)) slots.set(id, (slots.get(id) ?? 0) + 1);
    }
    const least = Math.min(...backends.map(([id]) => slots.get(id) ?? Infinity));
    const kept = backends.filter(([id, b]) => {
      if (b.port === targetPort) return true;
      out.skipped.push(`${name}: backend ${hostPort(b.address, b.port)} (id ${id}) is on another port than the others (${targetPort})`);
      return false;
    });
    const definitionBackends = kept.map(([id, b]): BackendDefinition => {
      const draining = (b.flags & BACKEND_FLAG_DRAINING) !== 0;
      const share = slots.get(id);
      const weight = draining ? 1 : share === undefined ? 0 : Math.min(MAX_WEIGHT, Math.max(1, Math.round(share / least)));
      return { address: b.address, weight, state: draining ? 'draining' : 'active' };
    });
    const input: Record<string, unknown> = {
      name,
      addresses: [key.address],
      ports: [{ port: key.port, protocol: key.protocol, targetPort }],
      backends: definitionBackends,
    };
    if ((value.flags & SVC_FLAG_AFFINITY) !== 0 && value.affinityTimeoutSec > 0) {
      input['sessionAffinity'] = { timeoutSeconds: value.affinityTimeoutSec };
    }
    if ((value.flags & SVC_FLAG_DROP_NO_BACKEND) !== 0) input['noBackends'] = 'drop';
    // A table size other than the one the backend count gives was set: it is kept (when still valid).
    const active = definitionBackends.filter((b) => b.state === 'active' && b.weight > 0).length;
    if (value.tableSize > 0 && value.tableSize !== defaultTableSize(Math.max(kept.length, 1)) && isPrime(value.tableSize) && value.tableSize >= 100 * active) {
      input['tableSize'] = value.tableSize;
    }
    let definition: ServiceDefinition;
    try {
      definition = normaliseDefinition(input);
    } catch (err) {
      out.skipped.push(`${name}: ${(err as Error).message}`);
      continue;
    }
    out.definitions.push(definition);
  }
  return out;
}
