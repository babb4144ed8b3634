/**
 * Leases as the embedded stores hold them: the TTL range (etcd's own limits
 * are wider; sluice keeps one range for every store) and new ids.
 */
import { randomBytes } from 'node:crypto';
import { invalid } from '../errors.js';

/** Shortest and longest lease TTL, in seconds. */
export const LEASE_TTL = { min: 1, max: 86_400 } as const;

/** Check a lease TTL (INVALID_ARGUMENT naming ttlSeconds). */
export function checkLeaseTtl(ttlSeconds: number): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < LEASE_TTL.min || ttlSeconds > LEASE_TTL.max) {
    throw invalid('ttlSeconds', `must be an integer in ${LEASE_TTL.min}..${LEASE_TTL.max}, got ${String(ttlSeconds)}`);
  }
}

/** A new lease id: 16 random hex characters. */
export function newLeaseId(): string {
  return randomBytes(8).toString('hex');
}
