/**
 * Output of the CLI: tables for people by default, JSON or YAML for
 * programs (-o json|yaml). Errors are one line on stderr and a non-zero
 * exit, never a stack trace.
 */
import { stringify as toYaml } from 'yaml';

/** An output format. */
export type OutputFormat = 'table' | 'json' | 'yaml';

/** Parse -o. */
export function parseFormat(v: string | undefined): OutputFormat {
  if (v === undefined || v === 'table' || v === 'wide') return 'table';
  if (v === 'json' || v === 'yaml') return v;
  throw new UsageError(`-o: must be table, json or yaml, got ${JSON.stringify(v)}`);
}

/** A mistake in the command line (exit status 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Render rows as an aligned text table. */
export function table(headers: string[], rows: Array<Array<string | number | bigint>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i] ?? 0))).join('  ').trimEnd())
    .join('\n');
}

/**
 * Drop the loader's bookkeeping keys (proto3 `optional` fields come with a
 * synthetic "_name" oneof) and turn bigints into strings.
 */
function clean(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map(clean);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (!k.startsWith('_')) out[k] = clean(x);
    return out;
  }
  return v;
}

/** Print `data` as JSON or YAML, or call `asTable` for people. */
export function emit(format: OutputFormat, data: unknown, asTable: () => string): string {
  if (format === 'json') return JSON.stringify(clean(data), null, 2);
  if (format === 'yaml') return toYaml(clean(data)).trimEnd();
  return asTable();
}
