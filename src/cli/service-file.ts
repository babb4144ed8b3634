/**
 * Service files for `sluice service apply -f`: YAML or JSON (JSON is YAML),
 * holding one service, a list of services, or `{services: [...]}`, in one
 * document or several (`---`). Each service is the API's Service message in
 * its JSON form (camelCase fields; enums as tcp/udp and
 * active/draining/maintenance, in lower or upper case), checked by the one
 * service schema (model/schema.ts) before anything is sent: a mistake is
 * reported with its place in the file ("web.yaml: ports[0].targetport:
 * unknown field; did you mean targetPort?") and nothing is applied. Unknown
 * fields are reported first, all of a service's at once: a misspelt field
 * is what makes a required one look missing.
 *
 * The output of `sluice service get -o yaml` is a service file: its
 * `revision` makes the apply conditional (the service must still be at that
 * revision, so that an old file does not undo a newer change), and the
 * other OUTPUT_ONLY fields (createRevision, effectiveTableSize) are ignored,
 * as the API ignores them. `ipFamilies` must be what the API writes for the
 * file's addresses: in Kubernetes it is an input, and a person who writes
 * it to make a service dual-stack is told to add a VIP instead of being
 * silently ignored. `owner` may only be the API's ("api"): a service of
 * another owner is not the CLI's to write.
 */
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import * as v from 'valibot';
import { SluiceError } from '../errors.js';
import { API_OWNER, normaliseDefinition, type ServiceDefinition } from '../model/definition.js';
import { familyOf, familyName } from '../model/address.js';
import { formatPath, objectMessage, parse, serviceDefinitionEntries, show, unknownKeys } from '../model/schema.js';
import { describe, joinPath, withField } from '../field-path.js';

/** A mistake in a service file: exit status 1, the message says where. */
export class ServiceFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServiceFileError';
  }
}

/** The Service message's output-only fields, accepted on input (revision as a condition, ipFamilies checked against addresses, the others ignored). */
const revision = v.union([v.pipe(v.string(), v.regex(/^\d+$/)), v.pipe(v.number(), v.integer(), v.minValue(0))], (i) => `must be a revision number, got ${show(i.input)}`);
const fileServiceSchema = v.strictObject(
  {
    ...serviceDefinitionEntries,
    revision: v.optional(revision),
    createRevision: v.optional(revision),
    effectiveTableSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)), 0),
    // Any list: what is in it is checked against addresses (ipFamiliesProblem).
    ipFamilies: v.optional(v.array(v.unknown(), (i) => `output only (the VIPs' families, as service get writes them): a list, got ${show(i.input)}`)),
    owner: v.optional(
      v.literal(API_OWNER, (i) => `${show(i.input)}: services the API writes are owned by "api"; one owned by another source is changed through that source (leave owner out)`),
    ),
  },
  objectMessage('a service definition (an object)'),
);

/** `{services: [...]}` */
const wrapperSchema = v.strictObject(
  { services: v.array(v.unknown(), (i) => `must be a list of services, got ${show(i.input)}`) },
  objectMessage('an object'),
);

/** One service of a file: its definition, the revision the file says it is at, and where it is. */
export interface FileService {
  definition: ServiceDefinition;
  /** The file's `revision:` for it, if any: apply only over that revision. */
  revision?: number;
  /** "web.yaml" or "web.yaml: document 2". */
  where: string;
  /** Its path in that document: "", "[1]", "services[0]". */
  path: string;
}

export async function readServiceFile(file: string): Promise<FileService[]> {
  const text = file === '-' ? await readStdin() : await readText(file);
  return parseServiceFile(text, file === '-' ? 'stdin' : file);
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ServiceFileError(`${file}: no such file`);
    if (code === 'EISDIR') throw new ServiceFileError(`${file}: is a directory; give a YAML or JSON file (or - for standard input)`);
    if (code === 'EACCES') throw new ServiceFileError(`${file}: permission denied`);
    throw new ServiceFileError(`${file}: cannot read: ${(err as Error).message}`);
  }
}

/** Parse a service file's text; `source` names it in messages. */
export function parseServiceFile(text: string, source: string): FileService[] {
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  if (!Array.isArray(docs)) {
    throw new ServiceFileError(`${source}: no service in it (it is empty); expected a service, a list of services, or {services: [...]}`);
  }
  const multi = docs.length > 1;
  const out: FileService[] = [];
  docs.forEach((doc, d) => {
    const where = multi ? `${source}: document ${d + 1}` : source;
    const bad = doc.errors[0];
    if (bad) {
      const line = bad.linePos?.[0];
      const what = bad.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      throw new ServiceFileError(`${where}: not valid YAML or JSON${line ? ` (line ${line.line}, column ${line.col})` : ''}: ${what}`);
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) {
      if (multi) return;
      throw new ServiceFileError(`${where}: no service in it (it is empty); expected a service, a list of services, or {services: [...]}`);
    }
    for (const { path, item } of servicesOf(value, where)) out.push({ ...checkService(item, where, path), where, path });
  });
  if (out.length === 0) {
    throw new ServiceFileError(`${source}: no service in it (it is empty); expected a service, a list of services, or {services: [...]}`);
  }
  const seen = new Map<string, number>();
  out.forEach(({ definition: { name } }, i) => {
    const first = seen.get(name);
    if (first !== undefined) throw new ServiceFileError(`${source}: service ${name} is defined twice (items ${first} and ${i} of the file)`);
    seen.set(name, i);
  });
  return out;
}

/** The services of one document, each with its path in the document. */
function servicesOf(value: unknown, where: string): Array<{ path: string; item: unknown }> {
  if (Array.isArray(value)) {
    if (value.length === 0) throw new ServiceFileError(`${where}: the list is empty: no service in it`);
    return value.map((item, i) => ({ path: `[${i}]`, item }));
  }
  if (typeof value === 'object' && value !== null && 'services' in value) {
    let list: unknown[];
    try {
      list = parse(wrapperSchema, value).services;
    } catch (err) {
      throw new ServiceFileError(`${where}: ${(err as Error).message}`);
    }
    if (list.length === 0) throw new ServiceFileError(`${where}: services: the list is empty: no service in it`);
    return list.map((item, i) => ({ path: `services[${i}]`, item }));
  }
  return [{ path: '', item: value }];
}

function checkService(item: unknown, where: string, path: string): { definition: ServiceDefinition; revision?: number } {
  const unknown = unknownFields(item, path);
  // One field as parse() says it ("x: unknown field; did you mean y?"), several in one line.
  const [one] = unknown;
  const known = (u: UnknownField): string => (u.known.length > 0 ? `known: ${u.known.join(', ')}` : '');
  if (unknown.length === 1) {
    throw new ServiceFileError(`${where}: ${one!.field}: unknown field${one!.near !== undefined ? `; did you mean ${one!.near}?` : one!.known.length > 0 ? ` (${known(one!)})` : ''}`);
  }
  if (unknown.length > 1) {
    const each = unknown.map((u) => `${u.field}${u.near !== undefined ? ` (did you mean ${u.near}?)` : u.known.length > 0 ? ` (${known(u)})` : ''}`);
    throw new ServiceFileError(`${where}: unknown fields: ${each.join(', ')}`);
  }
  try {
    const { revision, createRevision: _c, effectiveTableSize: _e, ipFamilies, owner: _o, ...definition } = parse(fileServiceSchema, item);
    const out = { definition: normaliseDefinition(definition) };
    const bad = ipFamilies === undefined ? undefined : ipFamiliesProblem(ipFamilies, out.definition.addresses);
    if (bad !== undefined) throw new ServiceFileError(`${where}: ${joinPath(path, 'ipFamilies')}: ${bad}`);
    return revision === undefined ? out : { ...out, revision: Number(revision) };
  } catch (err) {
    const e = withField(err, (f) => joinPath(path, f));
    if (e instanceof SluiceError) {
      const at = e.field ?? path;
      throw new ServiceFileError(`${where}: ${at === '' ? '' : `${at}: `}${describe(e)}`);
    }
    throw e;
  }
}

/** An unknown field of a service file: its path in the document, the known field it is near, the known fields beside it. */
interface UnknownField {
  field: string;
  near?: string;
  known: string[];
}

/** Every unknown field of one service, top-level ones first, with its path in the document (model/schema.ts unknownKeys). */
function unknownFields(item: unknown, path: string): UnknownField[] {
  return unknownKeys(fileServiceSchema, item).map(({ path: keys, ...rest }) => ({ field: joinPath(path, formatPath(keys)), ...rest }));
}

/**
 * What is wrong with a file's ipFamilies, or undefined: it must be what the
 * API writes (convert.ts serviceToMessage), one family per VIP in the order
 * of addresses. `addresses` are the checked VIPs.
 */
function ipFamiliesProblem(given: readonly unknown[], addresses: readonly string[]): string | undefined {
  const want = addresses.map((a) => (familyOf(a) === 6 ? 'IPV6' : 'IPV4'));
  if (given.length === want.length && given.every((f, i) => f === want[i])) return undefined;
  const families = new Set(addresses.map((a) => familyOf(a) ?? 4));
  const list = (x: readonly unknown[]): string =>
    x.length > 8 ? `a list of ${x.length}` : `[${x.map((f) => (typeof f === 'string' && /^\w{1,16}$/.test(f) ? f : show(f))).join(', ')}]`;
  const [only] = families;
  const vips = families.size > 1 ? 'one family per VIP' : want.length === 1 ? `one ${familyName(only!)} VIP` : `${familyName(only!)} VIPs only`;
  // A family written here that no VIP has: most likely a request for a dual-stack service.
  const asked = [4, 6].find((f) => !families.has(f as 4 | 6) && given.some((g) => typeof g === 'string' && g.toUpperCase() === `IPV${f}`));
  const fix = asked !== undefined ? `add an IPv${asked} VIP to addresses to make the service dual-stack, or delete ipFamilies` : 'delete ipFamilies';
  return `output only: it follows addresses (${vips}, so ${list(want)}), got ${list(given)}; ${fix} (service get writes it from addresses: delete it when you change them)`;
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (c: string) => (data += c));
    process.stdin.on('end', () => resolve(data));
    process.stdin.on('error', reject);
  });
}
