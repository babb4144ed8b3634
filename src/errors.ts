/**
 * The one error class of sluice. `code` says what kind of failure it is (the
 * gRPC edge maps it to a status), `field` names the offending input, and
 * `cause` keeps the underlying error (an addon errno, say).
 */

/** Kinds of failure, named after the gRPC statuses they become at the edge. */
export type SluiceErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'RESOURCE_EXHAUSTED'
  | 'ABORTED'
  | 'UNAVAILABLE'
  | 'INTERNAL';

/** An error with a code, the field it concerns, and its cause. */
export class SluiceError extends Error {
  /** What kind of failure this is. */
  readonly code: SluiceErrorCode;
  /** The input field at fault, as a path ("backends[2].port"), if any. */
  readonly field: string | undefined;

  constructor(code: SluiceErrorCode, message: string, opts: { field?: string; cause?: unknown } = {}) {
    super(opts.field === undefined ? message : `${opts.field}: ${message}`, { cause: opts.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.field = opts.field;
  }
}

/** Shorthand for an INVALID_ARGUMENT naming `field`. */
export function invalid(field: string, message: string): SluiceError {
  return new SluiceError('INVALID_ARGUMENT', message, { field });
}
