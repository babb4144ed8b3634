/**
 * The stages' own flags (`npm run bench -- --dns-services 2000`): one
 * reader, so every stage takes "10_000" and refuses a value out of range
 * the same way, naming the flag.
 */
import type { StageContext } from './types.js';

/** The integer flag `--key` in 1..max, or `fallback` when it is not given. */
export function intArg(ctx: StageContext, key: string, fallback: number, max: number): number {
  const v = ctx.args?.[key];
  if (v === undefined) return fallback;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${key}: want an integer in 1..${max}, got ${v}`);
  return n;
}
