/**
 * The message types in src/api/generated/ are generated from proto/ and
 * committed: they must be what scripts/gen-types.sh makes of the .proto
 * files now, with the loader options the server uses, and they must
 * describe what the loader gives at run time.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import protobuf from 'protobufjs';
import { PROTO_FILES, loaderOptions, protoDir } from '../../src/api/protos.js';
import { packageRoot } from '../../src/package-root.js';

const root = packageRoot();
const generatedDir = path.join(root, 'src', 'api', 'generated');
const script = path.join(root, 'scripts', 'gen-types.sh');

/** The .ts files under `dir`, relative to it, sorted. */
function tsFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[]).filter((f) => f.endsWith('.ts')).sort();
}

test('the committed types are what the generator makes of proto/ now', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'sluice-gen-types-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  await promisify(execFile)('bash', [script, out]);
  const fix = 'run `npm run gen:types` and commit src/api/generated/';
  const want = tsFiles(out);
  const have = tsFiles(generatedDir);
  t.deepEqual(have, want, `the generated files differ from proto/: ${fix}`);
  const stale = want.filter((f) => have.includes(f) && readFileSync(path.join(out, f), 'utf8') !== readFileSync(path.join(generatedDir, f), 'utf8'));
  t.deepEqual(stale, [], `these generated files differ from proto/: ${fix}`);
});

test('the generator runs with the loader options of protos.ts', (t) => {
  const text = readFileSync(script, 'utf8').replace(/^\s*#.*$/gm, '');
  const opts = loaderOptions();
  const flags = [
    [opts.keepCase === true, '--keepCase'],
    [opts.longs === String, '--longs=String'],
    [opts.enums === String, '--enums=String'],
    [opts.defaults === true, '--defaults'],
    [opts.oneofs === true, '--oneofs'],
  ] as const;
  for (const [wanted, flag] of flags) t.is(text.includes(flag), wanted, `${flag} ${wanted ? 'missing from' : 'given in'} scripts/gen-types.sh`);
});

/** The fields of a generated `__Output` interface: name → [optional, declared type]. */
function outputFields(file: string, name: string): Map<string, [boolean, string]> {
  const text = readFileSync(file, 'utf8');
  const body = new RegExp(`^export interface ${name}__Output \\{\\n([\\s\\S]*?)^\\}`, 'm').exec(text)?.[1];
  if (body === undefined) throw new Error(`no interface ${name}__Output in ${file}`);
  const fields = new Map<string, [boolean, string]>();
  for (const m of body.matchAll(/^ {2}'(\w+)'(\?)?: (.*);$/gm)) fields.set(m[1]!, [m[2] === '?', m[3]!]);
  return fields;
}

/** What a declared type says about an unset field's value: its typeof, 'array' or 'null'. */
function kindOf(declared: string): string {
  if (declared.endsWith('[]')) return 'array';
  if (declared.includes('| null')) return 'null';
  if (declared.startsWith('({[key: string]:')) return 'object';
  const plain = /^\((string|number|boolean)\)$/.exec(declared)?.[1];
  return plain ?? 'string'; // an enum, by name
}

function kindOfValue(v: unknown): string {
  return Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v;
}

test('every generated output type has the fields, and kinds, the loader gives for an empty message', (t) => {
  const pb = new protobuf.Root();
  pb.resolvePath = (_origin, target) => path.join(protoDir(), target);
  pb.loadSync([...PROTO_FILES], { keepCase: loaderOptions().keepCase ?? false });
  pb.resolveAll();
  const types: protobuf.Type[] = [];
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const child of ns.nestedArray) {
      if (child instanceof protobuf.Type) types.push(child);
      if (child instanceof protobuf.Namespace || child instanceof protobuf.Type) walk(child);
    }
  };
  walk(pb);
  t.true(types.length >= 40, `${types.length} message types`);
  for (const type of types) {
    const fullName = type.fullName.slice(1);
    const file = path.join(generatedDir, ...fullName.split('.')) + '.ts';
    const fields = outputFields(file, type.name);
    // What proto-loader's deserializer does (toObject with the loader options).
    const decoded = type.toObject(type.decode(new Uint8Array()), loaderOptions()) as Record<string, unknown>;
    const required = [...fields].filter(([, [optional]]) => !optional).map(([k]) => k);
    t.deepEqual(Object.keys(decoded).sort(), required.sort(), `${fullName}: fields present when unset`);
    for (const [k, v] of Object.entries(decoded)) {
      t.is(kindOfValue(v), kindOf(fields.get(k)?.[1] ?? ''), `${fullName}.${k}: unset value ${JSON.stringify(v)} vs declared ${fields.get(k)?.[1]}`);
    }
    // Optional fields come back only when set, with their virtual oneof field.
    for (const [k, [optional]] of fields) {
      if (optional && !k.startsWith('_')) t.true(fields.has(`_${k}`), `${fullName}.${k}: optional without its oneof field`);
    }
  }
});
