/**
 * In-memory indexes over the committed service definitions, kept by the
 * registry as it commits: which service owns each (VIP, port, protocol),
 * which services carry each VIP, and which backends each lease holds.
 */
import { serviceKeyString, type Protocol } from '../dataplane/codec.js';
import type { ServiceDefinition } from '../model/definition.js';

/** One backend held by a lease. */
export interface LeaseUser {
  service: string;
  address: string;
}

/** The key of a frontend: "VIP:port/protocol" (the codec's serviceKeyString). */
export function frontendKey(address: string, port: number, protocol: Protocol): string {
  return serviceKeyString({ address, port, protocol });
}

/** Indexes of the committed definitions. */
export class ServiceIndex {
  /** Every committed service, by name. */
  private readonly names = new Set<string>();
  private readonly owners = new Map<string, string>();
  private readonly byAddress = new Map<string, Set<string>>();
  private readonly leases = new Map<string, Map<string, LeaseUser>>();

  /** Record that service `name` changed from `prev` to `next` (undefined: absent). */
  replace(name: string, prev: ServiceDefinition | undefined, next: ServiceDefinition | undefined): void {
    if (next) this.names.add(name);
    else this.names.delete(name);
    if (prev) {
      for (const a of prev.addresses) {
        for (const p of prev.ports) {
          const k = frontendKey(a, p.port, p.protocol);
          if (this.owners.get(k) === name) this.owners.delete(k);
        }
        const set = this.byAddress.get(a);
        set?.delete(name);
        if (set?.size === 0) this.byAddress.delete(a);
      }
      for (const b of prev.backends) {
        if (b.leaseId === undefined) continue;
        const users = this.leases.get(b.leaseId);
        users?.delete(`${name}\u0000${b.address}`);
        if (users?.size === 0) this.leases.delete(b.leaseId);
      }
    }
    if (next) {
      for (const a of next.addresses) {
        for (const p of next.ports) this.owners.set(frontendKey(a, p.port, p.protocol), name);
        let set = this.byAddress.get(a);
        if (!set) this.byAddress.set(a, (set = new Set()));
        set.add(name);
      }
      for (const b of next.backends) {
        if (b.leaseId === undefined) continue;
        let users = this.leases.get(b.leaseId);
        if (!users) this.leases.set(b.leaseId, (users = new Map()));
        users.set(`${name}\u0000${b.address}`, { service: name, address: b.address });
      }
    }
  }

  /** Whether a service of this name is committed: when not, the store need not be asked for it. */
  has(name: string): boolean {
    return this.names.has(name);
  }

  /** The service that owns a (VIP, port, protocol), if any. */
  owner(address: string, port: number, protocol: Protocol): string | undefined {
    return this.owners.get(frontendKey(address, port, protocol));
  }

  /** Names of the services that have `address` among their VIPs. */
  servicesWithAddress(address: string): string[] {
    return [...(this.byAddress.get(address) ?? [])];
  }

  /** The backends a lease holds. */
  leaseUsers(leaseId: string): LeaseUser[] {
    return [...(this.leases.get(leaseId)?.values() ?? [])];
  }

  /** Whether any backend holds the lease. */
  leaseInUse(leaseId: string): boolean {
    return this.leases.has(leaseId);
  }
}
