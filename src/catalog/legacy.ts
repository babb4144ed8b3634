/**
 * The migration of a schema-1 SQLite file (the service-shaped store of
 * sluice before the KvStore) into the catalog's keys: what the daemon hands
 * SqliteKvStore.open as its migrateSchema1 option, so that a daemon
 * upgraded in place finds its services. The store reads the old tables and
 * writes the keys in one transaction; this module knows what the keys are.
 */
import { SluiceError } from '../errors.js';
import type { ServiceDefinition } from '../model/definition.js';
import type { Schema1Key, Schema1Rows } from '../store/sqlite-kv.js';
import type { CatalogKeys, RegistrationValue } from './keys.js';

/**
 * The catalog's keys (catalog/keys.ts) for the rows of a schema-1 file:
 *
 * - a service's definition, with its static backends only (those without a
 *   lease), at services/<name>, with the service's creation and last
 *   revision;
 * - each backend with a lease at registrations/<name>|<address>, as
 *   {"weight", "state"}, attached to its lease; a backend whose lease is no
 *   longer in the leases table was on its way out (the old registry drops
 *   such backends), and a key cannot hang on a lease that does not exist,
 *   so it is left out;
 * - each (VIP, port, protocol) at frontends/<vip>:<port>/<protocol>, holding
 *   the service's name. Two services on one frontend cannot come from a
 *   store the old registry wrote; such rows are refused (FAILED_PRECONDITION)
 *   rather than one of them losing its claim unseen, as is a definition
 *   that is not JSON.
 */
export function legacyRowsToCatalog(rows: Schema1Rows, keys: CatalogKeys): Schema1Key[] {
  const out: Schema1Key[] = [];
  const owners = new Map<string, string>();
  for (const row of rows.services) {
    let d: ServiceDefinition;
    try {
      d = JSON.parse(row.definition) as ServiceDefinition;
    } catch (err) {
      throw new SluiceError('FAILED_PRECONDITION', `the definition of service ${row.name} is not JSON: ${(err as Error).message}`, { cause: err });
    }
    const statics = d.backends.filter((b) => b.leaseId === undefined);
    out.push({
      key: keys.service(row.name),
      value: JSON.stringify({ ...d, backends: statics }),
      createRevision: row.createRevision,
      modRevision: row.revision,
    });
    for (const b of d.backends) {
      if (b.leaseId === undefined || !rows.leases.has(b.leaseId)) continue;
      const value: RegistrationValue = { weight: b.weight, state: b.state };
      out.push({
        key: keys.registration(row.name, b.address),
        value: JSON.stringify(value),
        createRevision: row.revision,
        modRevision: row.revision,
        lease: b.leaseId,
      });
    }
    for (const address of d.addresses) {
      for (const p of d.ports) {
        const key = keys.frontend(address, p.port, p.protocol);
        const owner = owners.get(key);
        if (owner !== undefined) {
          throw new SluiceError('FAILED_PRECONDITION', `services ${owner} and ${row.name} both hold ${address}:${p.port}/${p.protocol}`);
        }
        owners.set(key, row.name);
        out.push({ key, value: row.name, createRevision: row.revision, modRevision: row.revision });
      }
    }
  }
  return out;
}
