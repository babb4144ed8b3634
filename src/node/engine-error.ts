/**
 * Failures of the engine (load balancer, dataplane, store) as SluiceErrors:
 * a SluiceError passes through; an addon error whose errno says a map or an
 * id space is full (E2BIG, ENOSPC, ENOMEM) is RESOURCE_EXHAUSTED; anything
 * else is INTERNAL, with the original as `cause`.
 */
import { SluiceError } from '../errors.js';

const FULL = new Set(['E2BIG', 'ENOSPC', 'ENOMEM']);

/** The SluiceError a failure of the engine maps to. */
export function engineError(err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  const e = err as { code?: unknown; errno?: unknown; message?: unknown; cause?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const causeCode = typeof (e?.cause as { code?: unknown } | undefined)?.code === 'string'
    ? ((e?.cause as { code: string }).code)
    : undefined;
  if ((code !== undefined && FULL.has(code)) || (causeCode !== undefined && FULL.has(causeCode))) {
    return new SluiceError('RESOURCE_EXHAUSTED', `the dataplane is full: ${message}`, { cause: err });
  }
  return new SluiceError('INTERNAL', message, { cause: err });
}
