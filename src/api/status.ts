/**
 * The one place where errors become gRPC statuses. A SluiceError keeps its
 * code (INVALID_ARGUMENT, NOT_FOUND, ...); its field path, already rooted
 * at the request by the handler, is written in proto field names
 * (snake_case) in the message ("service.ports[0].target_port: ...") and
 * in a google.rpc.BadRequest detail. Anything else is INTERNAL.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { SluiceError, type SluiceErrorCode } from '../errors.js';
import { describe } from '../field-path.js';
import { ORIGIN_KEY, STATUS_DETAILS_KEY, encodeBadRequestStatus } from './error-details.js';

const CODES: Readonly<Record<SluiceErrorCode, grpc.status>> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  ABORTED: grpc.status.ABORTED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  INTERNAL: grpc.status.INTERNAL,
};

/** A camelCase field path in proto (snake_case) field names: "sessionAffinity.timeoutSeconds" → "session_affinity.timeout_seconds". */
export function protoFieldPath(path: string): string {
  return path.replace(/([a-z0-9])([A-Z])/g, (_, a: string, b: string) => `${a}_${b.toLowerCase()}`);
}

/**
 * Longest status message sent. Messages echo inputs only in bounded form
 * (show() in model/schema.ts); this is the backstop, so that no input can
 * make a status too large for the HTTP/2 trailers that carry it.
 */
const MAX_DETAILS = 1024;

function bounded(s: string): string {
  return s.length <= MAX_DETAILS ? s : `${s.slice(0, MAX_DETAILS - 1)}…`;
}

/** The status a failure is answered with. INTERNAL failures are logged. */
export function toStatus(err: unknown, log?: Logger): Partial<grpc.StatusObject> & { code: grpc.status; details: string } {
  const s = statusOf(err, log);
  // Marks the status as the daemon's answer: a client tells it from a
  // failure of its own to reach the daemon (both can be UNAVAILABLE).
  const metadata = s.metadata ?? new grpc.Metadata();
  metadata.set(ORIGIN_KEY, 'daemon');
  if (s.details.length <= MAX_DETAILS) return { ...s, metadata };
  return { ...s, metadata, details: bounded(s.details) };
}

function statusOf(err: unknown, log?: Logger): Partial<grpc.StatusObject> & { code: grpc.status; details: string } {
  if (err instanceof SluiceError) {
    const code = CODES[err.code] ?? grpc.status.INTERNAL;
    if (code === grpc.status.INTERNAL) log?.error({ err }, 'internal error');
    if (err.field === undefined || err.field === '') return { code, details: err.message };
    const field = protoFieldPath(err.field);
    const description = bounded(describe(err));
    const details = `${field}: ${description}`;
    const metadata = new grpc.Metadata();
    metadata.set(STATUS_DETAILS_KEY, encodeBadRequestStatus(code, details, { field, description }));
    return { code, details, metadata };
  }
  log?.error({ err }, 'internal error');
  return { code: grpc.status.INTERNAL, details: `internal error: ${err instanceof Error ? err.message : String(err)}` };
}
