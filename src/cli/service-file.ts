/**
 * Service files for `sluice service apply -f`: YAML or JSON (JSON is YAML),
 * holding one service, a list of services, or `{services: [...]}`, in one
 * document or several (`---`). Each service is the API's Service message in
 * its JSON form (camelCase fields; enums as tcp/udp and
 * active/draining/maintenance, in lower or upper case), checked by the one
 * service schema (model/schema.ts) before anything is sent: a mistake is
 * reported with its place in the file ("web.yaml: ports[0].targetport:
 * unknown field; did you mean targetPort?") and nothing is applied.
 *
 * The output of `sluice service get -o yaml` is a service file: its
 * `revision` makes the apply conditional (the service must still be at that
 * revision, so that an old file does not undo a newer change), and the
 * other OUTPUT_ONLY fields (createRevision, effectiveTableSize, ipFamilies) are
 * ignored, as the API ignores them; `owner` may only be the API's ("api"):
 * a service of another owner is not the CLI's to write.
 */
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import * as v from 'valibot';
import { SluiceError } from '../errors.js';
import { API_OWNER, normaliseDefinition, type ServiceDefinition } from '../model/definition.js';
import { objectMessage, parse, serviceDefinitionEntries, show } from '../model/schema.js';
import { describe, joinPath, withField } from '../field-path.js';

/** A mistake in a service file: exit status 1, the message says where. */
export class ServiceFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServiceFileError';
  }
}

/** The Service message's output-only fields, accepted on input (revision as a condition, the others ignored). */
const revision = v.union([v.pipe(v.string(), v.regex(/^\d+$/)), v.pipe(v.number(), v.integer(), v.minValue(0))], (i) => `must be a revision number, got ${show(i.input)}`);
const fileServiceSchema = v.strictObject(
  {
    ...serviceDefinitionEntries,
    revision: v.optional(revision),
    createRevision: v.optional(revision),
    effectiveTableSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)), 0),
    ipFamilies: v.optional(
      v.array(
        v.picklist(['IPV4', 'IPV6'], (i) => `output only (the VIPs' families, as service get writes them): must be IPV4 or IPV6, got ${show(i.input)}`),
        (i) => `output only (the VIPs' families, as service get writes them): a list, got ${show(i.input)}`,
      ),
    ),
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
  try {
    const { revision, createRevision: _c, effectiveTableSize: _e, ipFamilies: _f, owner: _o, ...definition } = parse(fileServiceSchema, item);
    const out = { definition: normaliseDefinition(definition) };
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

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (c: string) => (data += c));
    process.stdin.on('end', () => resolve(data));
    process.stdin.on('error', reject);
  });
}
