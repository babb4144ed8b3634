/**
 * How `service list`, `service get` and `service apply` say a service's
 * backends, family by family: each VIP is balanced over the backends of its
 * own family only, so a dual-stack service whose backends are all IPv4 has
 * its IPv6 VIP answer no one, whatever its total count says.
 */
import type { ServiceMessage } from '../api/messages.js';
import { familyName, familyOf, type IPFamily } from '../model/address.js';

type Backend = ServiceMessage['backends'][number];

/**
 * A backend that takes new flows as the node applies it: its effective
 * state (the catalog's, with a failing health check's draining or
 * maintenance laid over it) is active and its weight above 0, as `top` and
 * the status page count.
 */
export function takesFlows(b: Backend): boolean {
  const state = b.effectiveState === 'STATE_UNSPECIFIED' ? b.state : b.effectiveState;
  return state === 'ACTIVE' && (b.weight ?? 1) > 0;
}

/** One family of a service: its VIPs, and its backends taking new flows of all it has. */
export interface FamilyCount {
  family: IPFamily;
  vips: string[];
  up: number;
  total: number;
}

/**
 * A service's families in the order of its VIPs, each with its VIPs and its
 * backends' counts (`up` says which take new flows: `top` has its own rule).
 */
export function countByFamily<B extends { address: string }>(vips: readonly string[], backends: readonly B[], up: (b: B) => boolean): FamilyCount[] {
  const out: FamilyCount[] = [];
  for (const vip of vips) {
    const family = familyOf(vip) ?? 4;
    const seen = out.find((c) => c.family === family);
    if (seen) {
      seen.vips.push(vip);
      continue;
    }
    const mine = backends.filter((b) => familyOf(b.address) === family);
    out.push({ family, vips: [vip], up: mine.filter(up).length, total: mine.length });
  }
  return out;
}

/** "IPv4 2/2, IPv6 0/0": each family's backends that are up (by the caller's rule), of all it has. */
export function familyCountsText(counts: readonly FamilyCount[]): string {
  return counts.map((c) => `${familyName(c.family)} ${c.up}/${c.total}`).join(', ');
}

/** The service's families, counted as the node applies its backends. */
function familyCounts(s: ServiceMessage): FamilyCount[] {
  return countByFamily(s.addresses, s.backends, takesFlows);
}

/**
 * The BACKENDS column of `service list`: taking new flows/all ("2/2"), and
 * by family for a dual-stack service ("2/2 (IPv4 2/2, IPv6 0/0)"), the
 * total first as for a single-stack one, for scripts that read it.
 */
export function backendsColumn(s: ServiceMessage): string {
  const counts = familyCounts(s);
  const total = `${s.backends.filter(takesFlows).length}/${s.backends.length}`;
  return counts.length < 2 ? total : `${total} (${familyCountsText(counts)})`;
}

/** `service get`'s families line: "IPv4", or both with what that means. */
export function familiesLine(s: ServiceMessage): string {
  const counts = familyCounts(s);
  const names = counts.map((c) => familyName(c.family)).join(', ');
  return counts.length < 2 ? names : `${names} (dual-stack: each VIP is balanced over the backends of its family)`;
}

/**
 * `service get`'s backends line of a dual-stack service ("IPv4 2/2, IPv6
 * 0/0 take new flows/all", and what a family without backends gets), or
 * undefined for a single-stack one (its table says it all).
 */
export function backendsLine(s: ServiceMessage): string | undefined {
  const counts = familyCounts(s);
  if (counts.length < 2) return undefined;
  const empty = counts.filter((c) => c.total === 0);
  return `${familyCountsText(counts)} (taking new flows/all)${empty.map((c) => `; no ${familyName(c.family)} backend: ${fate(s, c.vips)}`).join('')}`;
}

/** What connections to `vips` get while they have no backend, by the service's noBackends. */
function fate(s: ServiceMessage, vips: string[]): string {
  const to = vips.join(', ');
  return s.noBackends === 'DROP' ? `packets to ${to} are dropped (noBackends: drop)` : `connections to ${to} are refused (noBackends: reject)`;
}

/**
 * The warnings of `service apply` for a service with backends, none of them
 * of one of its VIPs' families: one per such VIP, saying what its
 * connections get and the two ways out. A service without any backend is
 * left alone: it is how a service waiting for registrations starts.
 */
export function missingFamilyWarnings(s: ServiceMessage): string[] {
  if (s.backends.length === 0) return [];
  return familyCounts(s)
    .filter((c) => c.total === 0)
    .flatMap((c) => c.vips.map((vip) => {
      const f = familyName(c.family);
      return `warning: service ${s.name}: VIP ${vip} has no ${f} backend, so ${fate(s, [vip])}; add an ${f} backend to backends (or register one), or remove ${vip} from addresses`;
    }));
}
