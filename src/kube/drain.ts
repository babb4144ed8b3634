/**
 * Endpoints that left a TCP service port keep their connections: they stay
 * in its definition as draining backends (no new flow goes to them, the
 * dataplane keeps forwarding the flows they have) for a grace period, then
 * go. kube-proxy leaves such flows to netfilter's conntrack, whose
 * established timeout it sets to a day; sluice's own flow table has no
 * idle expiry yet, so a time bound stands in for "until they end".
 */
import type { ServiceDefinition } from '../model/definition.js';
import { familyOfText } from './ip.js';

/** When each gone endpoint of each service port left: `${service}|${address}` → ms. */
export type GoneSince = Map<string, number>;

/**
 * Add to `next` (the definition from the current EndpointSlices) the TCP
 * backends of `previous` that are gone from it, as draining, until
 * `graceMs` after they went (recorded in `since`). Returns the time of the
 * next expiry, or undefined if none is pending.
 *
 * A gone backend of a family `next` has no VIP of (a dual-stack service
 * made single-stack) goes at once: a backend is balanced only under a VIP
 * of its own family, so there is nothing left for it to drain under, and
 * the model refuses such a definition.
 */
export function keepGoneEndpoints(next: ServiceDefinition, previous: ServiceDefinition | undefined, since: GoneSince, now: number, graceMs: number): number | undefined {
  const tcp = next.ports.every((p) => p.protocol === 'tcp');
  const present = new Set(next.backends.map((b) => b.address));
  let expiry: number | undefined;
  for (const a of present) since.delete(`${next.name}|${a}`);
  if (!tcp || !previous || graceMs <= 0) return undefined;
  const families = new Set(next.addresses.map(familyOfText));
  for (const b of previous.backends) {
    if (present.has(b.address)) continue;
    const key = `${next.name}|${b.address}`;
    if (!families.has(familyOfText(b.address))) {
      since.delete(key);
      continue;
    }
    let t = since.get(key);
    if (t === undefined) since.set(key, (t = now));
    if (now - t >= graceMs) {
      since.delete(key);
      continue;
    }
    next.backends.push({ address: b.address, weight: b.weight, state: 'draining' });
    expiry = Math.min(expiry ?? Infinity, t + graceMs);
  }
  next.backends.sort((x, y) => (x.address < y.address ? -1 : x.address > y.address ? 1 : 0));
  return expiry;
}

/** Forget the gone endpoints of a service port that is itself gone. */
export function forgetService(since: GoneSince, name: string): void {
  for (const k of since.keys()) if (k.startsWith(`${name}|`)) since.delete(k);
}
