/**
 * The one schema of what a person or a program may send as a service
 * definition, and the checks of each field, in zod. The CLI's file loader,
 * the gRPC API (after converting its message) and the registry all parse
 * through here, so every entry point accepts the same inputs and answers a
 * bad one with the same field path and message.
 *
 * Strict by design: integers are integers in range (no 80.5, no `true`, no
 * 2^32 + 80), enums are one of their values, unknown fields are refused with
 * the nearest known name suggested ("targetport: unknown field; did you mean
 * targetPort?"). Nothing is coerced or dropped.
 */
import { z } from 'zod';
import { SluiceError } from '../errors.js';
import { MAGLEV_MAX_SIZE, isPrime } from '../maglev/maglev.js';
import { addressProblem } from './address.js';

/** Largest backend weight. */
export const MAX_WEIGHT = 1000;
/** Longest affinity timeout Kubernetes allows (one day). */
export const MAX_AFFINITY_TIMEOUT = 86400;
/** Longest service name. */
export const MAX_NAME_LENGTH = 253;
/** Longest port name. */
export const MAX_PORT_NAME_LENGTH = 63;
/** Longest lease id accepted on input. */
export const MAX_LEASE_ID_LENGTH = 64;

const SERVICE_NAME_RE = /^[A-Za-z0-9._/-]+$/;
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

/** A check that returns what is wrong with `v`, or undefined. */
type Check<T> = (v: T) => string | undefined;

function checked<S extends z.ZodType>(schema: S, check: Check<z.output<S>>): S {
  return schema.superRefine((v, ctx) => {
    const message = check(v);
    if (message !== undefined) ctx.addIssue({ code: 'custom', message });
  }) as unknown as S;
}

/** An integer in min..max; anything else (a fraction, a boolean, a string) is refused as it is. */
export function intIn(min: number, max: number): z.ZodNumber {
  const error = { error: (iss: { input?: unknown }) => `must be an integer in ${min}..${max}, got ${show(iss.input)}` };
  return z.number(error).int(error).min(min, error).max(max, error);
}

/** One of `values`, written in lower case or in upper case; the lower-case value is the result. */
function caseEnum<const T extends readonly [string, ...string[]]>(values: T) {
  const all = [...values, ...values.map((v) => v.toUpperCase())] as unknown as readonly [string, ...string[]];
  const list = values.length === 2 ? `${values[0]} or ${values[1]}` : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
  return z
    .enum(all, {
      error: (iss) => (iss.input === undefined ? `required: ${list}` : `must be ${list}, got ${show(iss.input)}${suggestion(iss.input, values)}`),
    })
    .transform((v) => v.toLowerCase() as T[number]);
}

/** A service name: 1-253 characters of letters, digits, ".", "_", "/", "-". */
export const serviceNameSchema = checked(
  z.string({ error: (iss) => (iss.input === undefined ? 'required' : `must be a string, got ${show(iss.input)}`) }),
  (v) => {
    if (v === '') return 'required';
    if (v.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters, got ${v.length}`;
    if (!SERVICE_NAME_RE.test(v)) return `must be letters, digits, ".", "_", "/" and "-", got ${show(v)}`;
    return undefined;
  },
);

/** An IPv4 address that can carry a service's traffic. `role` names it in the message ("VIP", "backend"). */
function usableIPv4(role: string) {
  return checked(z.string({ error: (iss) => `must be an IPv4 address, got ${show(iss.input)}` }), (v) => {
    const p = addressProblem(v);
    if (p === undefined) return undefined;
    return p.kind === 'syntax' ? `must be an IPv4 address, got ${show(v)}` : `${v} cannot be a ${role}: it is ${p.why}`;
  });
}

/** A VIP. */
export const vipSchema = usableIPv4('VIP');
/** A backend address. */
export const backendAddressSchema = usableIPv4('backend');
/** A port, 1..65535. */
export const portSchema = intIn(1, 65535);
/** A backend weight, 0..MAX_WEIGHT. */
export const weightSchema = intIn(0, MAX_WEIGHT);
/** tcp or udp. */
export const protocolSchema = caseEnum(['tcp', 'udp']);
/** A backend's administrative state. */
export const backendStateSchema = caseEnum(['active', 'draining', 'maintenance']);

const portNameSchema = checked(z.string({ error: (iss) => `must be a string, got ${show(iss.input)}` }), (v) =>
  v === '' || (v.length <= MAX_PORT_NAME_LENGTH && PORT_NAME_RE.test(v))
    ? undefined
    : `must be 1-${MAX_PORT_NAME_LENGTH} characters of letters, digits, ".", "_", "-", got ${show(v)}`,
);

const leaseIdSchema = checked(z.string({ error: (iss) => `must be a string, got ${show(iss.input)}` }), (v) =>
  v === '' || (v.length <= MAX_LEASE_ID_LENGTH && LEASE_ID_RE.test(v)) ? undefined : `not a lease id: ${show(v)}`,
);

const tableSizeSchema = checked(intIn(0, MAGLEV_MAX_SIZE), (n) =>
  n === 0 || (n >= 2 && isPrime(n)) ? undefined : `must be a prime ≤ ${MAGLEV_MAX_SIZE} (or 0: chosen from the backends), got ${n}`,
);

const requiredList = (what: string) => ({
  error: (iss: { input?: unknown }) => (iss.input === undefined ? `required: ${what}` : `must be a list, got ${show(iss.input)}`),
});

/** One port of a service definition. */
export const portDefinitionSchema = z.strictObject({
  /** Unique in the service; empty or absent: "<port>-<protocol>". */
  name: portNameSchema.optional(),
  port: portSchema,
  protocol: protocolSchema,
  /** The backends' port; 0 or absent: `port`. */
  targetPort: z.union([z.literal(0), portSchema], { error: (iss) => `must be an integer in 1..65535, got ${show(iss.input)}` }).optional(),
}, { error: (iss) => `must be an object, got ${show(iss.input)}` });

/** One backend of a service definition. */
export const backendDefinitionSchema = z.strictObject({
  address: backendAddressSchema,
  /** Absent: 1. */
  weight: weightSchema.optional(),
  /** Absent: active. */
  state: backendStateSchema.optional(),
  /** Set by registration; empty or absent for a static backend. */
  leaseId: leaseIdSchema.optional(),
}, { error: (iss) => `must be an object, got ${show(iss.input)}` });

/** A service definition as given (before defaults and the checks across fields, see definition.ts). */
export const serviceDefinitionSchema = z.strictObject({
  name: serviceNameSchema,
  addresses: z.array(vipSchema, requiredList('at least one VIP')),
  ports: z.array(portDefinitionSchema, requiredList('at least one port')),
  /** Absent: none (packets to the service are dropped). */
  backends: z.array(backendDefinitionSchema, { error: (iss) => `must be a list, got ${show(iss.input)}` }).optional(),
  /** Absent or null: no affinity. */
  sessionAffinity: z
    .strictObject({ timeoutSeconds: intIn(1, MAX_AFFINITY_TIMEOUT) }, { error: (iss) => `must be an object, got ${show(iss.input)}` })
    .nullable()
    .optional(),
  /** Absent or 0: chosen from the backend count. */
  tableSize: tableSizeSchema.optional(),
}, { error: (iss) => `must be a service definition (an object), got ${show(iss.input)}` });

/** What serviceDefinitionSchema gives. */
export type ServiceDefinitionInput = z.output<typeof serviceDefinitionSchema>;

/**
 * Parse `input` with `schema`; on failure throw SluiceError
 * INVALID_ARGUMENT naming the first offending field ("ports[0].port").
 */
export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  // A misspelt required field shows up twice: as missing, and as an unknown
  // key; the unknown key with its suggestion says what happened.
  const misspelt = r.error.issues.find((i) => i.code === 'unrecognized_keys' && suggestion(i.keys[0], knownKeys(schema, i.path)) !== '');
  throw issueError(schema, misspelt ?? r.error.issues[0]!);
}

/** A field path as sluice writes it: ["ports", 0, "port"] → "ports[0].port". */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function issueError(schema: z.ZodType, issue: z.core.$ZodIssue): SluiceError {
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const known = knownKeys(schema, issue.path);
    const field = formatPath([...issue.path, key]);
    const hint = suggestion(key, known);
    return new SluiceError('INVALID_ARGUMENT', `unknown field${hint || (known.length ? ` (known: ${known.join(', ')})` : '')}`, { field });
  }
  const field = formatPath(issue.path);
  return new SluiceError('INVALID_ARGUMENT', issue.message, field === '' ? {} : { field });
}

/** The keys of the object schema found by following `path` through `schema`. */
function knownKeys(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  let s: z.core.$ZodType | undefined = schema;
  const unwrap = (): void => {
    for (;;) {
      const def = s?._zod.def as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType } | undefined;
      if (def?.innerType) s = def.innerType;
      else if (def?.type === 'pipe') s = def.in;
      else return;
    }
  };
  for (const p of path) {
    unwrap();
    const def = s?._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType } | undefined;
    s = typeof p === 'number' ? def?.element : def?.shape?.[String(p)];
  }
  unwrap();
  const def = s?._zod.def as { shape?: Record<string, unknown> } | undefined;
  return Object.keys(def?.shape ?? {});
}

/**
 * "; did you mean X?" for the known word nearest to `given` (the same
 * letters in another case or with "_" or "-", or at most two edits away),
 * else "".
 */
export function suggestion(given: unknown, known: readonly string[]): string {
  if (typeof given !== 'string' || given.length > SHOW_MAX) return '';
  const fold = (s: string): string => s.toLowerCase().replace(/[_-]/g, '');
  const same = known.find((k) => fold(k) === fold(given));
  if (same !== undefined) return `; did you mean ${same}?`;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(given.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  const limit = given.length <= 4 ? 1 : 2;
  return best !== undefined && bestDistance <= limit ? `; did you mean ${best}?` : '';
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** Check a service name given as an argument (GetService, a registration...); INVALID_ARGUMENT naming `field`. */
export function checkServiceName(v: unknown, field: string): string {
  try {
    return parse(serviceNameSchema, v);
  } catch (err) {
    throw new SluiceError('INVALID_ARGUMENT', (err as Error).message, { field });
  }
}
