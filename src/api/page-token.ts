/**
 * Page tokens (AIP-158): opaque to clients, base64url of a small JSON
 * object holding the cursor and the filters of the request that produced
 * it, so that a token reused with other filters is refused instead of
 * silently skipping or repeating items.
 */
import { show } from '../model/schema.js';
import { invalid } from '../errors.js';

/** Default and largest page sizes. */
export const PAGE_SIZE = { default: 100, max: 1000 } as const;

/** The effective page size: 0 → default, above max → max, negative → INVALID_ARGUMENT (field `pageSize`). */
export function pageSize(requested: number): number {
  if (!Number.isInteger(requested) || requested < 0) {
    throw invalid('pageSize', `must be a non-negative integer, got ${show(requested)}`);
  }
  if (requested === 0) return PAGE_SIZE.default;
  return Math.min(requested, PAGE_SIZE.max);
}

/** A token for the page after `cursor`, bound to `filters`. */
export function encodePageToken(cursor: string, filters: Record<string, string>): string {
  return Buffer.from(JSON.stringify({ c: cursor, f: filters })).toString('base64url');
}

/**
 * The cursor in `token` (undefined for an empty token: the first page), as
 * `parse` reads it (default: the string itself). INVALID_ARGUMENT (field
 * `pageToken`) if it is malformed, `parse` refuses its cursor (returns
 * undefined), or it was made for other filters.
 */
export function decodePageToken(token: string, filters: Record<string, string>): string | undefined;
export function decodePageToken<T>(token: string, filters: Record<string, string>, parse: (cursor: string) => T | undefined): T | undefined;
export function decodePageToken<T>(
  token: string,
  filters: Record<string, string>,
  parse?: (cursor: string) => T | undefined,
): T | string | undefined {
  if (token === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid('pageToken', 'malformed page token');
  }
  const p = parsed as { c?: unknown; f?: unknown } | null;
  if (typeof p?.c !== 'string' || typeof p.f !== 'object' || p.f === null) throw invalid('pageToken', 'malformed page token');
  const f = p.f as Record<string, unknown>;
  const same = Object.keys(filters).every((k) => f[k] === filters[k]) && Object.keys(f).length === Object.keys(filters).length;
  if (!same) throw invalid('pageToken', 'the page token was made for other filters: keep them the same across pages');
  if (parse === undefined) return p.c;
  const cursor = parse(p.c);
  if (cursor === undefined) throw invalid('pageToken', 'malformed page token');
  return cursor;
}
