/**
 * Helpers every handler uses: run a unary handler and answer with its
 * result or its error as a status (status.ts), and re-root the field paths
 * of errors from the domain (relative to a converted value) to the request.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { withField } from '../field-path.js';
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

/**
 * Told of each unary call as it is answered: its method
 * ("sluice.v1.ServiceRegistry/ApplyService"), status code name ("OK",
 * "NOT_FOUND") and how long it took, seconds. The daemon gives one that
 * feeds its metrics.
 */
export type ApiObserver = (method: string, code: string, seconds: number) => void;

/** Where a request that does not decode keeps why (see tolerantDeserializers). */
const MALFORMED = Symbol('malformed request');

/** Why a request did not decode, or undefined for a decoded request. */
export function malformed(req: unknown): string | undefined {
  return typeof req === 'object' && req !== null ? (req as { [MALFORMED]?: string })[MALFORMED] : undefined;
}

/** The status of a request that did not decode. */
export function malformedStatus(why: string): { code: grpc.status; details: string } {
  return { code: grpc.status.INVALID_ARGUMENT, details: `the request is not a valid protobuf message of this method: ${why}` };
}

/**
 * The service with deserializers that do not throw: a request that does
 * not decode becomes a marker object, which every handler answers with
 * INVALID_ARGUMENT (grpc-js answers a throwing deserializer with INTERNAL,
 * as if the server had failed). Unary and server-streaming handlers are
 * guarded here; a handler that reads a stream of requests checks
 * malformed() on each one itself.
 */
export function guardMalformed(
  def: grpc.ServiceDefinition,
  impl: grpc.UntypedServiceImplementation,
  observe?: ApiObserver,
): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
  const outDef: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const outImpl: grpc.UntypedServiceImplementation = {};
  for (const [name, m] of Object.entries(def) as Array<[string, grpc.MethodDefinition<unknown, unknown>]>) {
    outDef[name] = {
      ...m,
      requestDeserialize: (buf: Buffer) => {
        try {
          return m.requestDeserialize(buf);
        } catch (err) {
          return { [MALFORMED]: err instanceof Error ? err.message : String(err) };
        }
      },
    };
    // grpc-js finds a handler by the method's name or by its original (camelCase) name.
    const handler = impl[name] ?? (m.originalName === undefined ? undefined : impl[m.originalName]);
    if (handler === undefined || m.requestStream) {
      if (handler !== undefined) outImpl[name] = handler;
      continue;
    }
    if (!m.responseStream) {
      const h = handler as grpc.handleUnaryCall<unknown, unknown>;
      const method = m.path.replace(/^\//, '');
      outImpl[name] = ((call, callback) => {
        let done = callback;
        if (observe) {
          const began = performance.now();
          done = (err, value) => {
            const code = err ? ((err as { code?: number }).code ?? grpc.status.UNKNOWN) : grpc.status.OK;
            observe(method, grpc.status[code] ?? String(code), (performance.now() - began) / 1000);
            callback(err, value);
          };
        }
        const why = malformed(call.request);
        if (why !== undefined) done(malformedStatus(why));
        else h(call, done);
      }) as grpc.handleUnaryCall<unknown, unknown>;
    } else {
      const h = handler as grpc.handleServerStreamingCall<unknown, unknown>;
      outImpl[name] = ((call) => {
        const why = malformed(call.request);
        if (why !== undefined) call.emit('error', malformedStatus(why));
        else h(call);
      }) as grpc.handleServerStreamingCall<unknown, unknown>;
    }
  }
  return [outDef as grpc.ServiceDefinition, outImpl];
}
