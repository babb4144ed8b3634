/**
 * The API server's errors as the real one writes them: a `Status` object
 * (kind Status, apiVersion v1, status Failure, reason, code, message,
 * details) with apimachinery's message formats (k8s.io/apimachinery
 * pkg/api/errors and pkg/util/validation/field), so that clients that parse
 * messages or reasons see what a cluster would send.
 */

/** A JSON object as decoded from a request or kept in the store. */
export type JsonObject = { [key: string]: unknown };

/** True for a plain JSON object (not an array, not null). */
export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A resource as errors name it: its plural, its group ('' for core) and its kind. */
export interface ErrorResource {
  plural: string;
  group: string;
  kind: string;
}

/** `services` for core, `endpointslices.discovery.k8s.io` otherwise (schema.GroupResource.String). */
function groupResource(r: ErrorResource): string {
  return r.group === '' ? r.plural : `${r.plural}.${r.group}`;
}

/** `Service` for core, `EndpointSlice.discovery.k8s.io` otherwise (schema.GroupKind.String). */
function groupKind(r: ErrorResource): string {
  return r.group === '' ? r.kind : `${r.kind}.${r.group}`;
}

/** One failed check on a field, as field.Error holds it. */
export interface FieldError {
  type: 'Required' | 'Invalid' | 'Duplicate' | 'NotSupported' | 'Forbidden' | 'TooMany';
  /** The path, as the real server writes it: `spec.ports[0].port`. */
  field: string;
  /** The offending value (absent for Required and Forbidden). */
  value?: unknown;
  detail?: string;
}

const TYPE_TEXT: Record<FieldError['type'], string> = {
  Required: 'Required value',
  Invalid: 'Invalid value',
  Duplicate: 'Duplicate value',
  NotSupported: 'Unsupported value',
  Forbidden: 'Forbidden',
  TooMany: 'Too many',
};

const TYPE_REASON: Record<FieldError['type'], string> = {
  Required: 'FieldValueRequired',
  Invalid: 'FieldValueInvalid',
  Duplicate: 'FieldValueDuplicate',
  NotSupported: 'FieldValueNotSupported',
  Forbidden: 'FieldValueForbidden',
  TooMany: 'FieldValueTooMany',
};

/** A value whose Go rendering (%#v of a struct) is given as text. */
export class GoLiteral {
  constructor(readonly text: string) {}
}

/** A value as Go's %v/%q/%#v prints it in field.Error: numbers bare, strings quoted, string slices as []string{...}. */
export function goValue(v: unknown): string {
  if (v instanceof GoLiteral) return v.text;
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return `[]string{${v.map((x) => JSON.stringify(x)).join(', ')}}`;
  return JSON.stringify(v);
}

/** The part after the field path: `Invalid value: 70000: must be between 1 and 65535, inclusive` (field.Error.ErrorBody). */
export function fieldErrorBody(e: FieldError): string {
  let s = TYPE_TEXT[e.type];
  if (e.type !== 'Required' && e.type !== 'Forbidden' && e.type !== 'TooMany') s += `: ${goValue(e.value)}`;
  if (e.detail) s += `: ${e.detail}`;
  return s;
}

/** The whole Status body of an error. */
export interface StatusBody extends JsonObject {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: JsonObject;
  status: 'Failure';
  message: string;
  reason: string;
  details?: JsonObject;
  code: number;
}

/** An error the server answers with a Status object and its HTTP code. */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: JsonObject | undefined;
  /** Extra list metadata (the inconsistent continue token of an expired continue). */
  readonly listMeta: JsonObject;

  constructor(code: number, reason: string, message: string, details?: JsonObject, listMeta: JsonObject = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.reason = reason;
    this.details = details;
    this.listMeta = listMeta;
  }

  /** The Status object, field order as the real server writes it. */
  status(): StatusBody {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: { ...this.listMeta },
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

function details(r: ErrorResource, name: string, kind = r.plural): JsonObject {
  return { name, ...(r.group ? { group: r.group } : {}), kind };
}

/** 404: `services "web" not found`. */
export function notFound(r: ErrorResource, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${groupResource(r)} ${JSON.stringify(name)} not found`, details(r, name));
}

/** 409: `services "web" already exists`. */
export function alreadyExists(r: ErrorResource, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${groupResource(r)} ${JSON.stringify(name)} already exists`, details(r, name));
}

/** 409 on a stale resourceVersion (or another failed precondition). */
export function conflict(r: ErrorResource, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): ApiError {
  return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${groupResource(r)} ${JSON.stringify(name)}: ${why}`, details(r, name));
}

/** 422: `Service "web" is invalid: spec.ports[0].port: Invalid value: ...` with one cause per field error. */
export function invalid(r: ErrorResource, name: string, errs: readonly FieldError[]): ApiError {
  const texts = errs.map((e) => `${e.field}: ${fieldErrorBody(e)}`);
  const agg = texts.length === 1 ? texts[0] : `[${texts.join(', ')}]`;
  const causes = errs.map((e) => ({ reason: TYPE_REASON[e.type], message: fieldErrorBody(e), field: e.field }));
  return new ApiError(422, 'Invalid', `${groupKind(r)} ${JSON.stringify(name)} is invalid: ${agg}`, { ...details(r, name, r.kind), causes });
}

/** 400 BadRequest with a free message. */
export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

/** 403: `namespaces "default" is forbidden: this namespace may not be deleted`. */
export function forbidden(r: ErrorResource, name: string, why: string): ApiError {
  return new ApiError(403, 'Forbidden', `${groupResource(r)} ${JSON.stringify(name)} is forbidden: ${why}`, details(r, name));
}

/** 410 Expired (a compacted resourceVersion or continue token). */
export function expired(message: string, listMeta: JsonObject = {}): ApiError {
  return new ApiError(410, 'Expired', message, undefined, listMeta);
}

/** 405: the verb is not served on this path. */
export function methodNotSupported(r: ErrorResource, verb: string): ApiError {
  return new ApiError(405, 'MethodNotAllowed', `${verb} is not supported on resources of kind ${JSON.stringify(groupResource(r))}`, {
    ...(r.group ? { group: r.group } : {}),
    kind: r.plural,
  });
}

/** 404 for a path the server does not serve. */
export function pathNotFound(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource', { causes: [{ reason: 'UnexpectedServerResponse', message: '404 page not found' }] });
}

/** 401 without a valid bearer token. */
export function unauthorized(): ApiError {
  return new ApiError(401, 'Unauthorized', 'Unauthorized');
}

/** 415 for a patch or body type the server does not take. */
export function unsupportedMediaType(type: string, supported: readonly string[]): ApiError {
  return new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${supported.join(', ')}`, {
    causes: [{ reason: 'UnexpectedServerResponse', message: `unsupported media type ${JSON.stringify(type)}` }],
  });
}

/** 500 InternalError (what the real storage layer says for some refusals). */
export function internalError(message: string): ApiError {
  return new ApiError(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] });
}
