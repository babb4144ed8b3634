/**
 * Helpers every handler uses: run a unary handler and answer with its
 * result or its error as a status (status.ts), and re-root the field paths
 * of errors from the domain (relative to a converted value) to the request.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { withField } from '../registry/field-path.js';
import { toStatus } from './status.js';

/** A unary handler from a function of the request. */
export function unary<Req, Res>(log: Logger, fn: (req: Req) => Res | Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(toStatus(err, log)),
      );
  };
}

/** Run `fn`; an error's field path is rewritten by `map` (e.g. f → "service." + f). */
export function reroot<T>(fn: () => T, map: (field: string) => string): T {
  try {
    return fn();
  } catch (err) {
    throw withField(err, map);
  }
}

/** reroot for async functions. */
export async function rerootAsync<T>(fn: () => Promise<T>, map: (field: string) => string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw withField(err, map);
  }
}
