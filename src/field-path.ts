/**
 * Field paths in errors. The registry names fields relative to what it was
 * given (a definition: "ports[0].port"); a caller that wrapped that value
 * (a batch item, a request message) re-roots the path without changing the
 * error's code or description.
 */
import { SluiceError } from './errors.js';

/** The description of an error without its "field: " prefix. */
export function describe(err: SluiceError): string {
  const prefix = err.field === undefined ? '' : `${err.field}: `;
  return prefix !== '' && err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}

/**
 * The same error with its field path rewritten by `map` (errors without a
 * field, and anything that is not a SluiceError, are returned as they are).
 */
export function withField(err: unknown, map: (field: string) => string): unknown {
  if (!(err instanceof SluiceError) || err.field === undefined) return err;
  return new SluiceError(err.code, describe(err), { field: map(err.field), cause: err.cause });
}

/** Join a prefix and a path: ("[3]", "ports[0]") → "[3].ports[0]"; ("[3]", "[1]") → "[3][1]". */
export function joinPath(prefix: string, path: string): string {
  if (prefix === '') return path;
  if (path === '') return prefix;
  return path.startsWith('[') ? `${prefix}${path}` : `${prefix}.${path}`;
}
