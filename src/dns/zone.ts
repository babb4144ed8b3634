/**
 * The DNS zone of a node's services: an index from names to records, built
 * from the catalog's view at start and kept from its changes, which the
 * view delivers synchronously as it applies them, so an answer never lags
 * the node's own state. Only a change to a service's records (its VIPs or
 * ports) touches the index; backend churn passes by.
 *
 * Listeners hear which names a change touched (owner names and the empty
 * non-terminals above them), so a cache of encoded answers can drop
 * exactly those.
 */
import type { ServiceDefinition, StoredService } from '../model/definition.js';
import type { Protocol } from '../model/service.js';
import { labelsInZone, serviceDnsName, srvName } from './names.js';

/** What the zone reads of the catalog's view (CatalogView fits it). */
export interface ZoneView {
  names(): readonly string[];
  get(name: string): StoredService | undefined;
  subscribe(fn: (changes: ReadonlyArray<{ type: 'PUT' | 'DELETE'; name: string; service: StoredService }>) => void): () => void;
}

/** One SRV record: a named port of a service. */
export interface SrvRecord {
  /** `_http._tcp.web.default.<zone>`. */
  owner: string;
  portName: string;
  protocol: Protocol;
  port: number;
  /** The service's own name, which carries its VIPs. */
  target: string;
}

/** The records of one service. */
export interface ServiceRecords {
  /** The catalog's name ("default/web"). */
  service: string;
  /** `web.default.<zone>`. */
  fqdn: string;
  /** Its VIPs, as the definition lists them: the A records (IPv4) and AAAA records (IPv6). */
  addresses: readonly string[];
  srv: readonly SrvRecord[];
}

/** What a name in the zone holds; undefined from lookup() is NXDOMAIN. */
export type ZoneNode =
  | { kind: 'apex' }
  | { kind: 'service'; records: ServiceRecords }
  | { kind: 'srv'; srv: SrvRecord; records: ServiceRecords }
  /** A name with names below it and no records of its own (`default.<zone>`, `_tcp.web.default.<zone>`). */
  | { kind: 'empty' };

type Owned = { kind: 'service'; records: ServiceRecords } | { kind: 'srv'; srv: SrvRecord; records: ServiceRecords };

/** The records `definition` gives in `zone`, or undefined when its name has none (names.ts). */
export function recordsOf(definition: ServiceDefinition, zone: string): ServiceRecords | undefined {
  const fqdn = serviceDnsName(definition.name, zone);
  if (fqdn === undefined) return undefined;
  const srv: SrvRecord[] = [];
  for (const p of definition.ports) {
    const owner = srvName(fqdn, p.name, p.protocol);
    if (owner !== undefined) srv.push({ owner, portName: p.name, protocol: p.protocol, port: p.port, target: fqdn });
  }
  return { service: definition.name, fqdn, addresses: [...new Set(definition.addresses)], srv };
}

function sameRecords(a: ServiceRecords | undefined, b: ServiceRecords | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.fqdn === b.fqdn &&
    a.addresses.length === b.addresses.length &&
    a.addresses.every((x, i) => x === b.addresses[i]) &&
    a.srv.length === b.srv.length &&
    a.srv.every((s, i) => s.owner === b.srv[i]!.owner && s.port === b.srv[i]!.port)
  );
}

/** The names strictly between `owner` and the apex. */
function between(owner: string, zone: string): string[] {
  const labels = labelsInZone(owner, zone) ?? [];
  const out: string[] = [];
  for (let i = 1; i < labels.length; i++) out.push(`${labels.slice(i).join('.')}.${zone}`);
  return out;
}

/** The zone's index, kept from the view while open. */
export class DnsZone {
  readonly zone: string;
  readonly #view: ZoneView;
  readonly #owned = new Map<string, Owned>();
  /** Names that exist only because names below them do, with how many owners hold each. */
  readonly #empty = new Map<string, number>();
  readonly #byService = new Map<string, ServiceRecords>();
  readonly #listeners = new Set<(names: readonly string[]) => void>();
  #unsubscribe: (() => void) | undefined;

  constructor(opts: { view: ZoneView; zone: string }) {
    this.zone = opts.zone;
    this.#view = opts.view;
  }

  /** Index what the view holds and follow its changes. */
  start(): void {
    if (this.#unsubscribe) return;
    this.#unsubscribe = this.#view.subscribe((changes) => {
      const touched: string[] = [];
      for (const c of changes) {
        this.#set(c.name, c.type === 'PUT' ? recordsOf(c.service.definition, this.zone) : undefined, touched);
      }
      if (touched.length > 0) for (const fn of this.#listeners) fn(touched);
    });
    for (const name of this.#view.names()) {
      const s = this.#view.get(name);
      if (s) this.#set(name, recordsOf(s.definition, this.zone), []);
    }
  }

  /** Stop following the view. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Call `fn` with the lowercase names each change touched. Returns an unsubscribe function. */
  onChange(fn: (names: readonly string[]) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** How many services have a name. */
  get services(): number {
    return this.#byService.size;
  }

  /** A service's records, undefined when it has no name (or is not there). */
  recordsOfService(service: string): ServiceRecords | undefined {
    return this.#byService.get(service);
  }

  /** What `name` (lowercase, no final dot, inside the zone) holds; undefined: no such name. */
  lookup(name: string): ZoneNode | undefined {
    if (name === this.zone) return { kind: 'apex' };
    const owned = this.#owned.get(name);
    if (owned) return owned;
    return this.#empty.has(name) ? { kind: 'empty' } : undefined;
  }

  #set(service: string, next: ServiceRecords | undefined, touched: string[]): void {
    const prev = this.#byService.get(service);
    if (sameRecords(prev, next)) return;
    if (prev) {
      this.#byService.delete(service);
      for (const owner of this.#owners(prev)) {
        this.#owned.delete(owner);
        touched.push(owner);
        for (const n of between(owner, this.zone)) {
          const left = (this.#empty.get(n) ?? 1) - 1;
          if (left > 0) this.#empty.set(n, left);
          else this.#empty.delete(n);
          touched.push(n);
        }
      }
    }
    if (next) {
      this.#byService.set(service, next);
      this.#owned.set(next.fqdn, { kind: 'service', records: next });
      for (const s of next.srv) this.#owned.set(s.owner, { kind: 'srv', srv: s, records: next });
      for (const owner of this.#owners(next)) {
        touched.push(owner);
        for (const n of between(owner, this.zone)) {
          this.#empty.set(n, (this.#empty.get(n) ?? 0) + 1);
          touched.push(n);
        }
      }
    }
  }

  #owners(r: ServiceRecords): string[] {
    return [r.fqdn, ...r.srv.map((s) => s.owner)];
  }
}
