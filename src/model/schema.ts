/**
 * The one schema of what a person or a program may send as a service
 * definition, and the checks of each field, in valibot (zod 4 did the same
 * and cost the daemon 12 MB of RSS, valibot under 1 MB). The CLI's file loader,
 * the gRPC API (after converting its message) and the registry all parse
 * through here, so every entry point accepts the same inputs and answers a
 * bad one with the same field path and message.
 *
 * Strict by design: integers are integers in range (no 80.5, no `true`, no
 * 2^32 + 80), enums are one of their values, unknown fields are refused with
 * the nearest known name suggested ("targetport: unknown field; did you mean
 * targetPort?"). Nothing is coerced or dropped.
 */
import * as v from 'valibot';
import { SluiceError } from '../errors.js';
import { isPrime } from './primes.js';
import { MAGLEV_MAX_SIZE } from './table-size.js';
import { isAddressProblem, parseAddress } from './address.js';
import { HTTP_HOST_FORMS, parseHttpHost } from './http-host.js';

import {
  MAX_AFFINITY_TIMEOUT,
  MAX_HEALTH_INTERVAL_MS,
  MAX_HEALTH_THRESHOLD,
  MAX_NAME_LENGTH,
  MAX_WEIGHT,
  MIN_HEALTH_INTERVAL_MS,
  MIN_HEALTH_TIMEOUT_MS,
} from './limits.js';

export { MAX_AFFINITY_TIMEOUT, MAX_NAME_LENGTH, MAX_WEIGHT };
/** Longest port name. */
export const MAX_PORT_NAME_LENGTH = 63;
/** Longest lease id accepted on input. */
export const MAX_LEASE_ID_LENGTH = 64;

const SERVICE_NAME_RE = /^[A-Za-z0-9._/:-]+$/;
const PORT_NAME_RE = /^[A-Za-z0-9._-]+$/;
const LEASE_ID_RE = /^[A-Za-z0-9_-]+$/;

/** Longest rendering of a value echoed in an error message. */
const SHOW_MAX = 64;

/**
 * A value as an error message shows it: JSON, cut to a few dozen
 * characters (a long string is described by its length), so that an input
 * of any size gives a message of bounded size.
 */
export function show(v: unknown): string {
  if (typeof v === 'string' && v.length > SHOW_MAX) return `a string of ${v.length} characters`;
  let s: string;
  try {
    s = v === undefined ? 'nothing' : typeof v === 'bigint' || (typeof v === 'number' && !Number.isFinite(v)) ? `${v}` : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > SHOW_MAX ? `${s.slice(0, SHOW_MAX)}…` : s;
}

/** A check that returns what is wrong with a value, or undefined. */
type Check<T> = (x: T) => string | undefined;

/** `schema`, then `check` on what it gives. */
function checked<S extends v.GenericSchema>(schema: S, check: Check<v.InferOutput<S>>) {
  return v.pipe(
    schema,
    v.rawCheck<v.InferOutput<S>>(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const message = check(dataset.value);
      if (message !== undefined) addIssue({ message });
    }),
  );
}

/**
 * An integer in min..max; anything else (a fraction, a boolean, a string) is
 * refused as it is. `said` is the range as the message gives it (a field
 * where 0 means "unset" says 1..max).
 */
export function intIn(min: number, max: number, said = `${min}..${max}`) {
  const m = (i: { input: unknown }): string =>
    i.input === undefined ? `required: an integer in ${said}` : `must be an integer in ${said}, got ${show(i.input)}`;
  return v.pipe(v.number(m), v.integer(m), v.minValue(min, m), v.maxValue(max, m));
}

/** A list of the words: "a or b", "a, b or c". */
function either(values: readonly string[]): string {
  return values.length === 1 ? values[0]! : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
}

/** One of `values`, written in lower case or in upper case; the lower-case value is the result. */
function caseEnum<const T extends readonly [string, ...string[]]>(values: T) {
  const all = [...values, ...values.map((x) => x.toUpperCase())];
  return v.pipe(
    v.picklist(all, (i) => `must be ${either(values)}, got ${show(i.input)}${suggestion(i.input, values)}`),
    v.transform((x) => x.toLowerCase() as T[number]),
  );
}

/** An output-only enum field in a file: one of the values the API writes, which apply nothing. */
function outputOnly<const T extends readonly [string, ...string[]]>(values: T) {
  return v.picklist(values, (i) => `output only (the node says it; set state to drain a backend or take it out): must be ${either(values)} as service get writes it, got ${show(i.input)}`);
}

/** A string, refused as typed otherwise. */
const str = (): v.StringSchema<(i: { input: unknown }) => string> =>
  v.string((i) => (i.input === undefined ? 'required' : `must be a string, got ${show(i.input)}`));

/** A service name: 1-253 characters of letters, digits, ".", "_", "/", ":", "-" (the kube-proxy mode names a service port "namespace/name:port"). */
export const serviceNameSchema = checked(str(), (x) => {
  if (x === '') return 'required';
  if (x.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters, got ${x.length}`;
  if (!SERVICE_NAME_RE.test(x)) return `must be letters, digits, ".", "_", "/", ":" and "-", got ${show(x)}`;
  return undefined;
});

/**
 * An IPv4 or IPv6 address that can carry a service's traffic, as its one
 * text (an IPv6 address in RFC 5952 form, so that duplicates written two
 * ways are found). `role` names it in the message ("VIP", "backend").
 */
function usableAddress(role: string) {
  return v.pipe(
    v.string((i) => `must be an IPv4 or IPv6 address, got ${show(i.input)}`),
    v.rawTransform<string, string>(({ dataset, addIssue, NEVER }) => {
      const x = dataset.value;
      const r = parseAddress(x);
      if (!isAddressProblem(r)) return r.text;
      addIssue({ message: r.kind === 'syntax' ? `must be an IPv4 or IPv6 address, got ${show(x)}` : `${x} cannot be a ${role}: it is ${r.why}` });
      return NEVER;
    }),
  );
}

/** A VIP (its one text). */
export const vipSchema = usableAddress('VIP');
/** A backend address (its one text). */
export const backendAddressSchema = usableAddress('backend');
/** A port, 1..65535. */
export const portSchema = intIn(1, 65535);
/** A backend weight, 0..MAX_WEIGHT. */
export const weightSchema = intIn(0, MAX_WEIGHT);
/** tcp or udp. */
export const protocolSchema = caseEnum(['tcp', 'udp']);
/** A backend's administrative state. */
export const backendStateSchema = caseEnum(['active', 'draining', 'maintenance']);
/** What a service's packets get while it has no usable backend: reject (answered) or drop. */
export const noBackendsSchema = caseEnum(['reject', 'drop']);

const portNameSchema = checked(str(), (x) =>
  x === '' || (x.length <= MAX_PORT_NAME_LENGTH && PORT_NAME_RE.test(x))
    ? undefined
    : `must be 1-${MAX_PORT_NAME_LENGTH} characters of letters, digits, ".", "_", "-", got ${show(x)}`,
);

const leaseIdSchema = checked(str(), (x) =>
  x === '' || (x.length <= MAX_LEASE_ID_LENGTH && LEASE_ID_RE.test(x)) ? undefined : `not a lease id: ${show(x)}`,
);

const tableSizeSchema = checked(intIn(0, MAGLEV_MAX_SIZE), (n) =>
  n === 0 || (n >= 2 && isPrime(n)) ? undefined : `must be a prime ≤ ${MAGLEV_MAX_SIZE} (or 0: chosen from the backends), got ${n}`,
);

/**
 * The message of an object's own issues: not an object (naming `what`
 * it must be), or a key missing or unknown (parse() words those, since it
 * knows the key and the object's other keys).
 */
export function objectMessage(what: string) {
  return (i: { input: unknown; expected: string | null }): string => (i.expected === 'Object' ? `must be ${what}, got ${show(i.input)}` : 'key');
}

const list = (): ((i: { input: unknown }) => string) => (i) => (i.input === undefined ? 'required: a list' : `must be a list, got ${show(i.input)}`);

/** What a required field that is missing is told, by its name. */
const REQUIRED: Readonly<Record<string, string>> = {
  addresses: 'required: at least one VIP',
  ports: 'required: at least one port',
  port: 'required: an integer in 1..65535',
  protocol: 'required: tcp or udp',
  address: 'required: an IPv4 or IPv6 address',
  timeoutSeconds: `required: an integer in 1..${MAX_AFFINITY_TIMEOUT}`,
  type: 'required: tcp, http, https or grpc',
};

/** One port of a service definition. */
export const portDefinitionSchema = v.strictObject(
  {
    /** Unique in the service; empty or absent: "<port>-<protocol>". */
    name: v.optional(portNameSchema),
    port: portSchema,
    protocol: protocolSchema,
    /** The backends' port; 0 or absent: `port`. */
    targetPort: v.optional(intIn(0, 65535, '1..65535')),
  },
  objectMessage('an object'),
);

/** One backend of a service definition. */
export const backendDefinitionSchema = v.strictObject(
  {
    address: backendAddressSchema,
    /** Absent: 1. */
    weight: v.optional(weightSchema),
    /** Absent: active. */
    state: v.optional(backendStateSchema),
    /** Set by registration; empty or absent for a static backend. */
    leaseId: v.optional(leaseIdSchema),
    /**
     * Output only (Backend.health, last_probe, effective_state, as `service
     * get -o yaml` writes them), so that such a file applies back: accepted
     * with the values the API writes, and ignored. A backend's health and
     * applied state are the node's to say; anything else written here is
     * refused, naming the field, rather than silently taken for a request.
     */
    health: v.optional(outputOnly(['HEALTH_UNSPECIFIED', 'UNKNOWN', 'HEALTHY', 'UNHEALTHY'])),
    lastProbe: v.optional(v.nullable(v.record(v.string(), v.unknown(), (i) => `output only (the last probe, as service get writes it): an object or null, got ${show(i.input)}`))),
    effectiveState: v.optional(outputOnly(['STATE_UNSPECIFIED', 'ACTIVE', 'DRAINING', 'MAINTENANCE'])),
  },
  objectMessage('an object'),
);

const HTTP_PATH_RE = /^\/[\x21-\x7e]*$/;
const GRPC_SERVICE_RE = /^[A-Za-z0-9._-]*$/;
/** Longest health-check path or Host. */
export const MAX_HEALTH_PATH_LENGTH = 1024;

/**
 * An integer in min..max. 0 is refused like any value out of range, with
 * the way to get the default: the API's path drops proto3's zero values
 * (which mean "unset") before the schema sees them, so a 0 here is one a
 * person wrote in a file.
 */
function setting(min: number, max: number, dflt: string) {
  return checked(intIn(0, max, `${min}..${max}`), (n) =>
    n >= min ? undefined : `must be an integer in ${min}..${max}, got ${n}${n === 0 ? ` (leave it out for the default: ${dflt})` : ''}`,
  );
}

/** A string matching `ok`, or "" for "unset". */
function emptyOr(ok: (x: string) => boolean, what: string) {
  return checked(str(), (x) => (x === '' || ok(x) ? undefined : `${what}, got ${show(x)}`));
}

const ON_UNHEALTHY = ['keep-connections', 'reset'] as const;

/**
 * A health check: the kind, where, how often, how many results in a row
 * count (defaults and the checks across fields: definition.ts). It takes
 * the HealthCheck message's JSON form too (as `service get -o yaml` writes
 * it): "" and null mean unset, enums may be in upper case. A number is
 * never 0 here (see `setting`).
 */
export const healthCheckSchema = v.strictObject(
  {
    type: caseEnum(['tcp', 'http', 'https', 'grpc']),
    /** A port number, or (in files) the name of one of the service's ports; absent: see portName, else the first TCP port's targetPort. */
    port: v.optional(
      v.union(
        [setting(1, 65535, "the first TCP port's targetPort"), portNameSchema],
        (i) => `must be a port number 1..65535 or the name of one of the service's ports, got ${show(i.input)}`,
      ),
    ),
    /** The name of one of the service's ports (its targetPort is probed). */
    portName: v.optional(portNameSchema),
    /** http/https: the request's path; absent: "/". */
    path: v.optional(emptyOr((x) => x.length <= MAX_HEALTH_PATH_LENGTH && HTTP_PATH_RE.test(x), `must be a path starting with "/", of at most ${MAX_HEALTH_PATH_LENGTH} visible ASCII characters`)),
    /** http/https: the Host header (and TLS server name of a DNS name), in the forms of http-host.ts; absent: the backend's address. */
    host: v.optional(emptyOr((x) => x.length <= 253 && parseHttpHost(x) !== undefined, HTTP_HOST_FORMS)),
    /** http/https: the statuses that count as healthy; absent: 200..399. */
    expectedStatus: v.nullish(v.strictObject({ min: intIn(100, 599), max: intIn(100, 599) }, objectMessage('an object {min, max}'))),
    /** grpc: the service name asked about; absent: "" (the server as a whole). */
    grpcService: v.optional(emptyOr((x) => x.length <= 253 && GRPC_SERVICE_RE.test(x), 'must be a gRPC service name such as "pkg.Service"')),
    /** Between probes of one backend, ms; absent: 5000. */
    intervalMs: v.optional(setting(MIN_HEALTH_INTERVAL_MS, MAX_HEALTH_INTERVAL_MS, '5000')),
    /** How long one probe may take, ms (less than intervalMs); absent: 1000 or half the interval, whichever is less. */
    timeoutMs: v.optional(setting(MIN_HEALTH_TIMEOUT_MS, MAX_HEALTH_INTERVAL_MS - 1, '1000 or half the interval')),
    /** Successes in a row that make a backend healthy; absent: 2. */
    rise: v.optional(setting(1, MAX_HEALTH_THRESHOLD, '2')),
    /** Failures in a row that make a backend unhealthy; absent: 3. */
    fall: v.optional(setting(1, MAX_HEALTH_THRESHOLD, '3')),
    /** What an unhealthy backend's flows get: kept (keep-connections, the default: it drains) or moved (reset). */
    onUnhealthy: v.optional(
      v.pipe(
        v.picklist(
          [...ON_UNHEALTHY, 'KEEP_CONNECTIONS', 'RESET', 'ON_UNHEALTHY_UNSPECIFIED'],
          (i) => `must be keep-connections or reset, got ${show(i.input)}${suggestion(i.input, ON_UNHEALTHY)}`,
        ),
        v.transform((x) => (x === 'ON_UNHEALTHY_UNSPECIFIED' ? undefined : (x.toLowerCase().replace('_', '-') as (typeof ON_UNHEALTHY)[number]))),
      ),
    ),
  },
  objectMessage('a health check (an object)'),
);

/** A service definition's fields, for schemas that extend it (the CLI's files). */
export const serviceDefinitionEntries = {
  name: serviceNameSchema,
  addresses: v.array(vipSchema, list()),
  ports: v.array(portDefinitionSchema, list()),
  /** Absent: none (packets to the service are dropped). */
  backends: v.optional(v.array(backendDefinitionSchema, list())),
  /** Absent or null: no affinity. */
  sessionAffinity: v.nullish(v.strictObject({ timeoutSeconds: intIn(1, MAX_AFFINITY_TIMEOUT) }, objectMessage('an object'))),
  /** Absent or 0: chosen from the backend count. */
  tableSize: v.optional(tableSizeSchema),
  /** Absent: reject. */
  noBackends: v.optional(noBackendsSchema),
  /** Absent or null: no health check (every backend counts as up). */
  healthCheck: v.nullish(healthCheckSchema),
};

/** A service definition as given (before defaults and the checks across fields, see definition.ts). */
export const serviceDefinitionSchema = v.strictObject(serviceDefinitionEntries, objectMessage('a service definition (an object)'));

/** What serviceDefinitionSchema gives. */
export type ServiceDefinitionInput = v.InferOutput<typeof serviceDefinitionSchema>;

/**
 * Parse `input` with `schema`; on failure throw SluiceError
 * INVALID_ARGUMENT naming the first offending field ("ports[0].port").
 */
export function parse<S extends v.GenericSchema>(schema: S, input: unknown): v.InferOutput<S> {
  const r = v.safeParse(schema, input);
  if (r.success) return r.output;
  const issues = r.issues as unknown as Issue[];
  // A misspelt required field shows up twice: as missing, and as an unknown
  // key; the unknown key with its suggestion says what happened.
  const misspelt = issues.find((i) => isUnknownKey(i) && suggestion(lastKey(i), knownKeys(schema, parentPath(i))) !== '');
  throw issueError(schema, misspelt ?? issues[0]!);
}

/** What parse() reads of a valibot issue. */
interface Issue {
  type: string;
  message: string;
  input: unknown;
  expected: string | null;
  path?: Array<{ key: unknown }>;
}

const isUnknownKey = (i: Issue): boolean => i.type.endsWith('_object') && i.expected === 'never';
const isMissingKey = (i: Issue): boolean => i.type.endsWith('_object') && i.message === 'key' && i.expected !== 'never';
const keys = (i: Issue): PropertyKey[] => (i.path ?? []).map((p) => p.key as PropertyKey);
const lastKey = (i: Issue): string => String(keys(i).at(-1));
const parentPath = (i: Issue): PropertyKey[] => keys(i).slice(0, -1);

/** A field path as sluice writes it: ["ports", 0, "port"] → "ports[0].port". */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function issueError(schema: v.GenericSchema, issue: Issue): SluiceError {
  const field = formatPath(keys(issue));
  const at = field === '' ? {} : { field };
  if (isUnknownKey(issue)) {
    const known = knownKeys(schema, parentPath(issue));
    const hint = suggestion(lastKey(issue), known);
    return new SluiceError('INVALID_ARGUMENT', `unknown field${hint || (known.length ? ` (known: ${known.join(', ')})` : '')}`, at);
  }
  if (isMissingKey(issue)) return new SluiceError('INVALID_ARGUMENT', REQUIRED[lastKey(issue)] ?? 'required', at);
  return new SluiceError('INVALID_ARGUMENT', issue.message, at);
}

/** The keys of the object schema found by following `path` through `schema`. */
function knownKeys(schema: v.GenericSchema, path: ReadonlyArray<PropertyKey>): string[] {
  type Node = { type?: string; entries?: Record<string, Node>; item?: Node; wrapped?: Node; pipe?: Node[] } | undefined;
  let s = schema as unknown as Node;
  const unwrap = (): void => {
    for (;;) {
      if (s?.wrapped) s = s.wrapped;
      else if (s?.pipe && s.pipe[0] !== s) s = s.pipe[0];
      else return;
    }
  };
  for (const p of path) {
    unwrap();
    s = typeof p === 'number' ? s?.item : s?.entries?.[String(p)];
  }
  unwrap();
  return Object.keys(s?.entries ?? {});
}

/**
 * Names people give the VIPs: `service list` and `service get` label them
 * VIPS and vips, Kubernetes calls them clusterIPs.
 */
const VIP_ALIASES = new Set(['vip', 'vips', 'clusterip', 'clusterips']);

/**
 * The known word nearest to `given`: the same letters in another case or
 * with "_" or "-", at most two edits away, a name of the VIPs (vips,
 * clusterIPs) where `addresses` is known, or the singular or plural of a
 * known word (ipFamily, ipFamilies); undefined if none is.
 */
export function nearestKnown(given: unknown, known: readonly string[]): string | undefined {
  if (typeof given !== 'string' || given.length > SHOW_MAX) return undefined;
  const fold = (s: string): string => s.toLowerCase().replace(/[_-]/g, '');
  const same = known.find((k) => fold(k) === fold(given));
  if (same !== undefined) return same;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(given.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  const limit = given.length <= 4 ? 1 : 2;
  if (best !== undefined && bestDistance <= limit) return best;
  if (VIP_ALIASES.has(fold(given)) && known.includes('addresses')) return 'addresses';
  const variants = [`${given}s`, `${given}es`, given.replace(/y$/, 'ies'), given.replace(/s$/, ''), given.replace(/es$/, ''), given.replace(/ies$/, 'y')].map(fold);
  return known.find((k) => variants.includes(fold(k)));
}

/** "; did you mean X?" for nearestKnown, else "". */
export function suggestion(given: unknown, known: readonly string[]): string {
  const near = nearestKnown(given, known);
  return near === undefined ? '' : `; did you mean ${near}?`;
}

/** An unknown field of an input: its path, the known field it is near, the known fields beside it. */
export interface UnknownKey {
  path: PropertyKey[];
  near?: string;
  known: string[];
}

/** Every unknown field of `input` for `schema`, the shallowest first (a misspelt top-level field is the likelier mistake). */
export function unknownKeys(schema: v.GenericSchema, input: unknown): UnknownKey[] {
  const r = v.safeParse(schema, input);
  if (r.success) return [];
  return (r.issues as unknown as Issue[])
    .filter(isUnknownKey)
    .map(keys)
    .sort((a, b) => a.length - b.length)
    .map((path) => {
      const known = knownKeys(schema, path.slice(0, -1));
      const near = nearestKnown(String(path.at(-1)), known);
      return { path, ...(near !== undefined ? { near } : {}), known };
    });
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** Check one argument of a call (a name, a port) with `schema`; INVALID_ARGUMENT naming `field`. */
export function checkArgument<S extends v.GenericSchema>(schema: S, value: unknown, field: string): v.InferOutput<S> {
  try {
    return parse(schema, value);
  } catch (err) {
    throw new SluiceError('INVALID_ARGUMENT', (err as Error).message, { field });
  }
}

/** Check a service name given as an argument (GetService, a registration...); INVALID_ARGUMENT naming `field`. */
export function checkServiceName(name: unknown, field: string): string {
  return checkArgument(serviceNameSchema, name, field);
}
