/**
 * Where the catalog keeps each fact in the KvStore, under a prefix (the
 * daemon's --store-prefix, "/sluice" by default), one key per fact so that
 * every write is a transaction over exactly what it changes:
 *
 *   <prefix>/services/<name>                  the definition as applied: VIPs, ports, the static
 *                                             backends, affinity, table size, noBackends, and its
 *                                             owner (JSON)
 *   <prefix>/registrations/<name>|<address>   a backend registered with a lease, attached to it:
 *                                             {"weight": w, "state": "active"} (JSON); deleted by
 *                                             the store when the lease ends
 *   <prefix>/frontends/<vip>:<port>/<proto>   the name of the service that owns the frontend, so
 *                                             that two services (on two nodes) cannot both take it
 *
 * Names are [A-Za-z0-9._/:-], so "|" cannot occur in one: a service's
 * registrations are exactly the keys under "<prefix>/registrations/<name>|".
 * Nothing a node derives (dataplane ids, table regions, health) is here.
 */
import { API_OWNER, DEFAULT_NO_BACKENDS, type ServiceDefinition } from '../model/definition.js';
import { hostPort } from '../model/address.js';

/** The key layout under one prefix. */
export class CatalogKeys {
  readonly services: string;
  readonly registrations: string;
  readonly frontends: string;

  constructor(readonly prefix: string) {
    const p = prefix.replace(/\/+$/, '');
    this.services = `${p}/services/`;
    this.registrations = `${p}/registrations/`;
    this.frontends = `${p}/frontends/`;
  }

  /** Everything of the catalog: what a node watches. */
  get all(): string {
    return `${this.prefix.replace(/\/+$/, '')}/`;
  }

  service(name: string): string {
    return this.services + name;
  }

  /** Every registration of one service. */
  registrationsOf(name: string): string {
    return `${this.registrations}${name}|`;
  }

  registration(name: string, address: string): string {
    return `${this.registrationsOf(name)}${address}`;
  }

  frontend(address: string, port: number, protocol: string): string {
    return `${this.frontends}${hostPort(address, port)}/${protocol}`;
  }

  /** What a key is: a service's, a registration's or a frontend claim's, with its parts. */
  parse(key: string):
    | { kind: 'service'; name: string }
    | { kind: 'registration'; name: string; address: string }
    | { kind: 'frontend'; frontend: string }
    | undefined {
    if (key.startsWith(this.services)) return { kind: 'service', name: key.slice(this.services.length) };
    if (key.startsWith(this.registrations)) {
      const rest = key.slice(this.registrations.length);
      const bar = rest.lastIndexOf('|');
      if (bar <= 0) return undefined;
      return { kind: 'registration', name: rest.slice(0, bar), address: rest.slice(bar + 1) };
    }
    if (key.startsWith(this.frontends)) return { kind: 'frontend', frontend: key.slice(this.frontends.length) };
    return undefined;
  }
}

/** The value of a service key: its definition and the owner that wrote it. */
export function encodeServiceValue(definition: ServiceDefinition, owner: string): string {
  return JSON.stringify({ owner, ...definition });
}

/**
 * A service key's value as encodeServiceValue wrote it. Fields added since
 * take their defaults in a value written before them: one written before
 * owners is the API's, one written before noBackends rejects.
 */
export function decodeServiceValue(value: string): { definition: ServiceDefinition; owner: string } {
  const { owner = API_OWNER, noBackends = DEFAULT_NO_BACKENDS, ...rest } =
    JSON.parse(value) as Omit<ServiceDefinition, 'noBackends'> & Partial<Pick<ServiceDefinition, 'noBackends'>> & { owner?: string };
  return { definition: { ...rest, noBackends }, owner };
}

/** The value of a registration key. */
export interface RegistrationValue {
  weight: number;
  state: 'active' | 'draining' | 'maintenance';
}
