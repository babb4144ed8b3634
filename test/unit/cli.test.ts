/**
 * The `sluice` CLI as a person uses it: the compiled command in a child
 * process, against a real gRPC server (over a fake dataplane and a memory
 * store), with YAML files written to disk, output piped into jq and wc, and
 * mistakes of every kind. Each mistake gets one line naming what is wrong,
 * the documented exit status, and leaves the daemon's state as it was.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import { buildProgram, version } from '../../src/cli/program.js';
import { startApiServer } from '../../src/api/server.js';
import { SluiceError } from '../../src/errors.js';
import { CT_FORWARD, CT_REPLY } from '../../src/dataplane/codec.js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import type { FlowDecision } from '../../src/dataplane/dataplane.js';
import type { ServiceMessage } from '../../src/api/messages.js';
import { dataplaneSnapshot, startApi, unary, uniqueSocket, webService, type ApiFixture } from '../helpers/api.js';
import { sluice, sluiceCommand, type CliRun } from '../helpers/cli.js';
import { makeCerts } from '../helpers/tls.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';

const sh = promisify(execFile);

function tmp(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `sluice-cli-${process.pid}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function api(t: ExecutionContext, tag: string): Promise<ApiFixture> {
  const f = await startApi(t, { tag });
  await f.client.applyService(webService('default/owner', '10.96.0.10', ['10.1.0.1', '10.1.0.2']));
  return f;
}

const web = (over: string): string => `name: default/web
addresses: [10.96.0.20]
ports: [{name: http, port: 80, protocol: tcp, targetPort: 8080}]
backends: [{address: 10.1.0.11}, {address: 10.1.0.12, weight: 2}]
${over}`;

/** Bad files: the line printed (after "sluice: FILE: ") and nothing applied. */
const BAD_FILES: Array<{ what: string; text: string; says: string }> = [
  { what: 'an empty file', text: '', says: 'no service in it (it is empty); expected a service, a list of services, or {services: [...]}' },
  { what: 'comments only', text: '# nothing yet\n', says: 'no service in it (it is empty); expected a service, a list of services, or {services: [...]}' },
  { what: 'a port beyond 32 bits', text: web('').replace('port: 80,', 'port: 4294967376,'), says: 'ports[0].port: must be an integer in 1..65535, got 4294967376' },
  { what: 'a weight of 2^32', text: web('').replace('weight: 2', 'weight: 4294967296'), says: 'backends[1].weight: must be an integer in 0..1000, got 4294967296' },
  { what: 'a boolean port', text: web('').replace('port: 80,', 'port: true,'), says: 'ports[0].port: must be an integer in 1..65535, got true' },
  { what: 'a fractional port', text: web('').replace('port: 80,', 'port: 80.5,'), says: 'ports[0].port: must be an integer in 1..65535, got 80.5' },
  { what: 'a negative port', text: web('').replace('port: 80,', 'port: -80,'), says: 'ports[0].port: must be an integer in 1..65535, got -80' },
  { what: 'a port as a string', text: web('').replace('port: 80,', 'port: "80",'), says: 'ports[0].port: must be an integer in 1..65535, got "80"' },
  { what: 'a misspelt state', text: web('').replace('weight: 2}', 'weight: 2, state: drainig}'), says: 'backends[1].state: must be active, draining or maintenance, got "drainig"; did you mean draining?' },
  { what: 'a misspelt protocol', text: web('').replace('protocol: tcp', 'protocol: tpc'), says: 'ports[0].protocol: must be tcp or udp, got "tpc"; did you mean tcp?' },
  { what: 'targetport', text: web('').replace('targetPort', 'targetport'), says: 'ports[0].targetport: unknown field; did you mean targetPort?' },
  { what: 'wieght', text: web('').replace('weight: 2', 'wieght: 2'), says: 'backends[1].wieght: unknown field; did you mean weight?' },
  { what: 'another owner', text: `owner: kubernetes\n${web('')}`, says: 'owner: "kubernetes": services the API writes are owned by "api"; one owned by another source is changed through that source (leave owner out)' },
  { what: 'snake_case', text: web('session_affinity: {timeoutSeconds: 60}\n'), says: 'session_affinity: unknown field; did you mean sessionAffinity?' },
  { what: 'an unknown field', text: web('color: blue\n'), says: 'color: unknown field (known: name, addresses, ports, backends, sessionAffinity, tableSize, noBackends, healthCheck, revision, createRevision, effectiveTableSize, ipFamilies, owner)' },
  { what: 'a misspelt noBackends', text: web('noBackends: rejet\n'), says: 'noBackends: must be reject or drop, got "rejet"; did you mean reject?' },
  { what: 'noBackends as a boolean', text: web('noBackends: false\n'), says: 'noBackends: must be reject or drop, got false' },
  { what: 'nobackends', text: web('nobackends: drop\n'), says: 'nobackends: unknown field; did you mean noBackends?' },
  { what: 'the unspecified address as a VIP', text: web('').replace('10.96.0.20', '0.0.0.0'), says: 'addresses[0]: 0.0.0.0 cannot be a VIP: it is the unspecified ("this network") range 0.0.0.0/8' },
  { what: 'the broadcast address as a VIP', text: web('').replace('10.96.0.20', '255.255.255.255'), says: 'addresses[0]: 255.255.255.255 cannot be a VIP: it is the limited broadcast address' },
  { what: 'a multicast VIP', text: web('').replace('10.96.0.20', '224.0.0.1'), says: 'addresses[0]: 224.0.0.1 cannot be a VIP: it is multicast (224.0.0.0/4): one flow cannot go to one backend' },
  { what: 'a loopback backend', text: web('').replace('10.1.0.11', '127.0.0.1'), says: 'backends[0].address: 127.0.0.1 cannot be a backend: it is loopback (127.0.0.0/8): it never leaves the host' },
  { what: 'a link-local backend', text: web('').replace('10.1.0.11', '169.254.1.1'), says: 'backends[0].address: 169.254.1.1 cannot be a backend: it is link-local (169.254.0.0/16): it is not routed' },
  { what: 'a reserved VIP', text: web('').replace('10.96.0.20', '240.0.0.1'), says: 'addresses[0]: 240.0.0.1 cannot be a VIP: it is reserved for future use (240.0.0.0/4): hosts drop it' },
  { what: 'a backend on the VIP', text: web('').replace('10.1.0.11', '10.96.0.20'), says: 'backends[0].address: 10.96.0.20 is a VIP of this service: a backend must be another host' },
  { what: 'an IPv6 backend on an IPv4-only service', text: web('').replace('10.1.0.11', '2001:db8::11'), says: 'backends[0].address: 2001:db8::11 is IPv6, and the service has no IPv6 VIP' },
  { what: 'a v4-mapped VIP', text: web('').replace('10.96.0.20', '"::ffff:10.96.0.20"'), says: 'addresses[0]: ::ffff:10.96.0.20 cannot be a VIP: it is an IPv4-mapped address (::ffff:0:0/96): write it as the IPv4 address 10.96.0.20' },
  { what: 'an address with a leading zero', text: web('').replace('10.96.0.20', '10.96.0.020'), says: 'addresses[0]: must be an IPv4 or IPv6 address, got "10.96.0.020"' },
  { what: 'a 254-character name', text: web('').replace('default/web', 'n'.repeat(254)), says: 'name: must be at most 253 characters, got 254' },
  { what: 'a name with a space', text: web('').replace('default/web', '"default web"'), says: 'name: must be letters, digits, ".", "_", "/", ":" and "-", got "default web"' },
  { what: 'no name', text: web('').replace('name: default/web\n', ''), says: 'name: required' },
  { what: 'a misspelt required field', text: web('').replace('addresses:', 'adresses:'), says: 'adresses: unknown field; did you mean addresses?' },
  { what: 'a misspelt required field of a port', text: web('').replace('port: 80,', 'prot: 80,'), says: 'ports[0].prot: unknown field; did you mean port?' },
  { what: 'an infinite weight', text: web('').replace('weight: 2', 'weight: .inf'), says: 'backends[1].weight: must be an integer in 0..1000, got Infinity' },
  { what: 'an output-only state written as a request', text: web('').replace('{address: 10.1.0.11}', '{address: 10.1.0.11, effectiveState: maintenance}'), says: 'backends[0].effectiveState: output only (the node says it; set state to drain a backend or take it out): must be STATE_UNSPECIFIED, ACTIVE, DRAINING or MAINTENANCE as service get writes it, got "maintenance"' },
  { what: 'an output-only health that is no health', text: web('').replace('{address: 10.1.0.11}', '{address: 10.1.0.11, health: bogus}'), says: 'backends[0].health: output only (the node says it; set state to drain a backend or take it out): must be HEALTH_UNSPECIFIED, UNKNOWN, HEALTHY or UNHEALTHY as service get writes it, got "bogus"' },
  { what: 'a duplicate key', text: web('name: other\n'), says: 'not valid YAML or JSON (line 5, column 1): Map keys must be unique' },
  { what: 'not YAML', text: 'name: [default/web\n', says: 'not valid YAML or JSON (line 2, column 1): Flow sequence in block collection must be sufficiently indented and end with a ]' },
  { what: 'JSON with a trailing comma', text: '{"name": "default/web", "addresses": ["10.96.0.20"],}', says: 'ports: required: at least one port' },
  { what: 'a scalar', text: '42\n', says: 'must be a service definition (an object), got 42' },
  { what: 'services that is not a list', text: 'services: {name: x}\n', says: 'services: must be a list of services, got {"name":"x"}' },
  { what: 'the second item of a list', text: `- ${web('').trim().split('\n').join('\n  ')}\n- name: default/two\n  addresses: [10.96.0.21]\n  ports: [{port: 53, protocol: udp, targetPort: 70000}]\n`, says: '[1].ports[0].targetPort: must be an integer in 1..65535, got 70000' },
  { what: 'the same service twice', text: `services:\n- {name: a, addresses: [10.96.0.21], ports: [{port: 80, protocol: tcp}]}\n- {name: a, addresses: [10.96.0.22], ports: [{port: 80, protocol: tcp}]}\n`, says: 'service a is defined twice (items 0 and 1 of the file)' },
];

test('bad service files: one line naming the field, exit 1, nothing applied', async (t) => {
  const f = await api(t, 'cli-bad');
  const dir = tmp(t);
  const before = { revision: await f.store.revision(), dp: dataplaneSnapshot(f.dp) };
  for (const [i, c] of BAD_FILES.entries()) {
    const file = path.join(dir, `bad-${i}.yaml`);
    writeFileSync(file, c.text);
    const r = await sluice(['--server', f.server.address, 'service', 'apply', '-f', file]);
    t.is(r.stderr, `sluice: ${file}: ${c.says}\n`, c.what);
    t.is(r.code, 1, `${c.what}: exit status`);
    t.is(r.stdout, '', `${c.what}: nothing on stdout`);
  }
  t.is(await f.store.revision(), before.revision, 'no revision was made');
  t.is(dataplaneSnapshot(f.dp), before.dp, 'the dataplane is as it was');
});

test('a directory, a missing file and standard input', async (t) => {
  const f = await api(t, 'cli-files');
  const dir = tmp(t);
  let r = await sluice(['--server', f.server.address, 'service', 'apply', '-f', dir]);
  t.is(r.stderr, `sluice: ${dir}: is a directory; give a YAML or JSON file (or - for standard input)\n`);
  t.is(r.code, 1);
  r = await sluice(['--server', f.server.address, 'service', 'apply', '-f', path.join(dir, 'nope.yaml')]);
  t.is(r.stderr, `sluice: ${path.join(dir, 'nope.yaml')}: no such file\n`);
  t.is(r.code, 1);
  r = await sluice(['--server', f.server.address, 'service', 'apply', '-f', '-'], { input: 'name: x\n' });
  t.is(r.stderr, 'sluice: stdin: addresses: required: at least one VIP\n');
  r = await sluice(['--server', f.server.address, 'service', 'apply', '-f', '-'], { input: web('') });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'service default/web applied (revision 2)\n');
});

test('an unchanged apply makes no revision and no event, and says so; get -o yaml applies back', async (t) => {
  const f = await api(t, 'cli-unchanged');
  const dir = tmp(t);
  const file = path.join(dir, 'web.yaml');
  writeFileSync(file, web(''));
  let r = await sluice(['--server', f.server.address, 'service', 'apply', '-f', file]);
  t.is(r.stdout, 'service default/web applied (revision 2)\n', r.stderr);
  const events: string[] = [];
  const watch = f.client.watchServices({ startRevision: 2 });
  watch.on('data', (e: { type: string; name: string }) => events.push(`${e.type} ${e.name}`));
  watch.on('error', () => undefined);
  t.teardown(() => watch.cancel());
  r = await sluice(['--server', f.server.address, 'service', 'apply', '-f', file]);
  t.is(r.stdout, 'service default/web unchanged (revision 2)\n', r.stderr);
  r = await sluice(['--server', f.server.address, '-o', 'json', 'service', 'apply', '-f', file]);
  t.true((JSON.parse(r.stdout) as Array<{ unchanged: boolean }>)[0]!.unchanged);
  // The output of `get -o yaml` is a service file: applied back, it changes nothing.
  r = await sluice(['service', 'get', 'default/web', '-o', 'yaml', '--server', f.server.address]);
  writeFileSync(file, r.stdout);
  r = await sluice(['--server', f.server.address, 'service', 'apply', '-f', file]);
  t.is(r.stdout, 'service default/web unchanged (revision 2)\n', r.stderr);
  await new Promise((res) => setTimeout(res, 200));
  t.deepEqual(events, [], 'no watch event for an unchanged service');
  t.is(await f.store.revision(), 2);
});

test('an apply keeps registered backends; a file\'s revision keeps an old file from undoing a newer change; no-op changes keep their revision', async (t) => {
  const f = await api(t, 'cli-merge');
  const dir = tmp(t);
  const file = path.join(dir, 'web.yaml');
  const other = path.join(dir, 'other.yaml');
  writeFileSync(file, web(''));
  writeFileSync(other, 'name: default/other\naddresses: [10.96.0.30]\nports: [{port: 53, protocol: udp}]\n');
  const srv = ['--server', f.server.address];
  let r = await sluice([...srv, 'service', 'apply', '-f', file, '-f', other]);
  t.is(r.stdout, 'service default/web applied (revision 2)\nservice default/other applied (revision 2)\n', `two files at once, one transaction: ${r.stderr}`);
  r = await sluice([...srv, 'backend', 'register', 'default/web', '10.1.0.99', '--ttl', '600']);
  t.is(r.code, 0, r.stderr);
  // The file names only the static backends: the registered one stays.
  writeFileSync(file, web('').replace('weight: 2}', 'weight: 3}'));
  r = await sluice([...srv, 'service', 'apply', '-f', file]);
  t.is(r.stdout, 'service default/web applied (revision 4; 1 registered backend kept)\n', r.stderr);
  const now = await f.client.getService('default/web');
  t.deepEqual(now.backends.map((b) => [b.address, b.weight, b.leaseId !== '']), [['10.1.0.11', 1, false], ['10.1.0.12', 3, false], ['10.1.0.99', 1, true]]);

  // A drain twice: the second changes nothing and makes no revision.
  r = await sluice([...srv, 'backend', 'drain', 'default/web', '10.1.0.11']);
  t.is(r.stdout, 'backend 10.1.0.11 of default/web is now draining (revision 5)\n');
  r = await sluice([...srv, 'backend', 'drain', 'default/web', '10.1.0.11']);
  t.is(r.stdout, 'backend 10.1.0.11 of default/web is already draining: unchanged (revision 5)\n');

  // A file taken at revision 4, applied after the drain (revision 5), would undo it: refused.
  writeFileSync(file, `revision: "4"\n${web('').replace('weight: 2}', 'weight: 3}')}`);
  r = await sluice([...srv, 'service', 'apply', '-f', file]);
  t.is(r.code, 1);
  t.is(r.stderr, `sluice: FAILED_PRECONDITION: ${file}: revision: service "default/web" is at revision 5, not 4: the file is older than the service; get it again (sluice service get NAME -o yaml), or remove its revision line to apply regardless\n`);
  t.is((await f.client.getService('default/web')).backends[0]!.state, 'DRAINING', 'the drain stands');
  // A server-side mistake in a file is said where it is in the file.
  writeFileSync(other, '- name: default/third\n  addresses: [10.96.0.10]\n  ports: [{name: http, port: 80, protocol: tcp}]\n');
  r = await sluice([...srv, 'service', 'apply', '-f', other]);
  t.is(r.stderr, `sluice: INVALID_ARGUMENT: ${other}: [0].addresses[0]: 10.96.0.10:80/tcp (with ports[0]) is already owned by service "default/owner"\n`);
  // Deleting several at once.
  r = await sluice([...srv, 'service', 'delete', 'default/web', 'default/other']);
  t.is(r.stdout, 'service default/web deleted (revision 6)\nservice default/other deleted (revision 7)\n', r.stderr);
});

test('a weight-0 or health-drained backend does not count as taking flows; a server that never answers is given up after --timeout', async (t) => {
  const f = await api(t, 'cli-weight0');
  await f.client.applyService(webService('default/zero', '10.96.0.40', [], { backends: [{ address: '10.1.0.5', weight: 0 }] }));
  let r = await sluice(['--server', f.server.address, 'service', 'list', '--prefix', 'default/zero']);
  t.regex(r.stdout, /^default\/zero +10\.96\.0\.40 +80\/tcp->8080 +0\/1 /m);
  // Backends a failing health check took out (the node's overlay) do not count either.
  await f.client.applyService(webService('default/sick', '10.96.0.41', ['10.1.0.6', '10.1.0.7', '10.1.0.8']));
  f.plane.overlay.set('default/sick', '10.1.0.6', 'draining', 'health: 3 checks failed');
  f.plane.overlay.set('default/sick', '10.1.0.7', 'maintenance', 'health: 3 checks failed');
  r = await sluice(['--server', f.server.address, 'service', 'list', '--prefix', 'default/sick']);
  t.regex(r.stdout, /^default\/sick +10\.96\.0\.41 +80\/tcp->8080 +1\/3 /m, 'BACKENDS counts what the node applies');
  r = await sluice(['--server', f.server.address, 'service', 'get', 'default/zero']);
  t.regex(r.stdout, /^table: {8}none: no backend takes new flows \(all draining, in maintenance or of weight 0\)$/m);

  const silent = net.createServer(() => undefined).listen(0, '127.0.0.1');
  await new Promise((res) => silent.once('listening', res));
  t.teardown(() => silent.close());
  const port = (silent.address() as net.AddressInfo).port;
  const started = Date.now();
  r = await sluice(['--server', `127.0.0.1:${port}`, '--timeout', '2', 'service', 'list'], { timeoutMs: 20_000 });
  t.is(r.code, 1);
  t.is(r.stderr, `sluice: the daemon at 127.0.0.1:${port} did not answer in time (--timeout): is it the sluice API there, and is it overloaded?\n`);
  t.true(Date.now() - started < 15_000);
});

test('names: 230 and 253 characters with ports are accepted, 254 refused, a huge one refused at once with a short message', async (t) => {
  const f = await api(t, 'cli-names');
  for (const len of [230, 253]) {
    const s = await f.client.applyService(webService('n'.repeat(len), `10.96.1.${len - 200}`, ['10.1.0.1'], {
      ports: [{ port: 80, protocol: 'TCP' }, { port: 443, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }],
    }));
    t.is(s.name.length, len);
  }
  const huge = 'x'.repeat(100_000);
  const r = await sluice(['--server', f.server.address, 'service', 'get', huge]);
  t.is(r.code, 1);
  t.is(r.stderr, 'sluice: INVALID_ARGUMENT: name: must be at most 253 characters, got 100000\n');
  // A raw client with a 1 MB name gets its answer, not its deadline.
  const started = Date.now();
  const err = await t.throwsAsync(unary(f.raw.registry, 'GetService', { name: 'y'.repeat(1 << 20) })) as grpc.ServiceError;
  t.is(err.code, grpc.status.INVALID_ARGUMENT);
  t.is(err.details, 'name: must be at most 253 characters, got 1048576');
  t.true(Date.now() - started < 10_000);
  const err2 = await t.throwsAsync(unary(f.raw.registry, 'ApplyService', { service: webService('z'.repeat(1 << 20), '10.96.3.1', []) })) as grpc.ServiceError;
  t.is(err2.details, 'service.name: must be at most 253 characters, got 1048576');
});

test('large outputs arrive whole through a pipe (jq, wc)', async (t) => {
  const dp = new FakeDataplane();
  dp.capacity = 1 << 24; // 5,000 tables of 1,021 slots
  const f = await startApi(t, { tag: 'cli-pipe', dataplane: dp });
  const n = 5000;
  await f.client.applyServices(
    Array.from({ length: n }, (_, i) => ({ service: webService(`ns/svc-${String(i).padStart(5, '0')}`, `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, ['10.1.0.1', '10.1.0.2']) })),
    { view: 'BASIC' },
  ).catch((err: unknown) => t.fail(String(err)));
  // pipefail: sluice's own exit status counts, not only the last command's.
  const run = async (pipeline: string): Promise<string> => (await sh('bash', ['-o', 'pipefail', '-c', pipeline], { maxBuffer: 1 << 26 })).stdout.trim();
  const cmd = `${sluiceCommand()} --server '${f.server.address}'`;
  t.is(await run(`${cmd} service list -o json | jq length`), String(n), 'service list -o json | jq length');
  t.is(await run(`${cmd} -o json service list | jq -r '.[-1].name'`), 'ns/svc-04999');
  const dir = tmp(t);
  await run(`${cmd} service list -o yaml > ${dir}/list.yaml`);
  t.is(await run(`${cmd} service list -o yaml | wc -c`), await run(`wc -c < ${dir}/list.yaml`), 'the pipe carries as many bytes as a file');
  // stats: a header, one line per service and per backend, a blank line and seven summary lines,
  // then a blank line, the maps' header, one line per map (the fake has 12) and their total.
  t.is(await run(`${cmd} stats | wc -l`), String(1 + n * 3 + 1 + 7 + 1 + 1 + 12 + 1));
  t.regex(await run(`${cmd} stats | head -1`), /^SERVICE +BACKEND +PACKETS +BYTES +CONNECTIONS +REPLIES$/, 'a reader that leaves early is no error');
});

/** Every command path of the program ("service apply", ...). */
function commandPaths(cmd: Command, prefix: string[] = []): string[][] {
  return cmd.commands.flatMap((c) => [[...prefix, c.name()], ...commandPaths(c, [...prefix, c.name()])]);
}

test('--help on every command and subcommand, --version', async (t) => {
  const paths = commandPaths(buildProgram().program);
  t.true(paths.length >= 18, `commands: ${paths.map((p) => p.join(' ')).join(', ')}`);
  for (const p of [[], ...paths]) {
    const r = await sluice([...p, '--help']);
    t.is(r.code, 0, `${p.join(' ')} --help: ${r.stderr}`);
    t.true(r.stdout.startsWith(`Usage: sluice${p.length ? ` ${p.join(' ')}` : ''} `), `${p.join(' ')} --help: ${r.stdout.split('\n')[0]}`);
    t.is(r.stderr, '');
  }
  const h = await sluice(['help', 'service']);
  t.true(h.stdout.startsWith('Usage: sluice service [options] [command]'));
  const v = await sluice(['--version']);
  t.is(v.stdout, `${version()}\n`);
  t.is(v.code, 0);
  const bare = await sluice([]);
  t.is(bare.code, 2, 'no command is a wrong command line');
  t.true(bare.stderr.startsWith('Usage: sluice [options] [command]'));
});

test('global options before or after the command; $SLUICE_SERVER; an unreachable daemon is said to be one', async (t) => {
  const f = await api(t, 'cli-globals');
  for (const args of [
    ['--server', f.server.address, '-o', 'json', 'service', 'list'],
    ['service', '--server', f.server.address, 'list', '-o', 'json'],
    ['service', 'list', '-o', 'json', '--server', f.server.address],
  ]) {
    const r = await sluice(args);
    t.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    t.deepEqual((JSON.parse(r.stdout) as ServiceMessage[]).map((s) => s.name), ['default/owner'], args.join(' '));
  }
  const env = await sluice(['service', 'list'], { env: { SLUICE_SERVER: f.server.address } });
  t.true(env.stdout.includes('default/owner'));
  const unbracketed = await sluice(['service', 'list'], { env: { SLUICE_SERVER: '::1:19470' } });
  t.is(unbracketed.stderr, 'sluice: --server: ::1:19470 is an IPv6 address and a port: an IPv6 address goes in brackets, write [::1]:19470 (from $SLUICE_SERVER)\n');
  t.is(unbracketed.code, 2);
  const gone = `unix://${uniqueSocket('cli-nothing')}`;
  const r = await sluice(['--server', gone, 'service', 'list']);
  t.is(r.code, 1);
  t.is(r.stderr, `sluice: cannot reach the daemon at ${gone} (no socket there): is \`sluice daemon\` (or \`sluice kube-proxy\`) running there? --server or $SLUICE_SERVER names another address\n`);
});

test('wrong command lines exit 2 with one line naming the flag', async (t) => {
  const dir = tmp(t);
  const pins = `/sys/fs/bpf/sluice-cli-usage-${process.pid}`;
  t.teardown(() => rmSync(pins, { recursive: true, force: true }));
  for (const [args, line] of [
    [['-o', 'jsn', 'service', 'list'], '-o: must be table, json or yaml, got jsn'],
    [['service', 'aply'], "unknown command 'aply' (Did you mean apply?)"],
    [['service', 'list', '--prefx', 'a'], "unknown option '--prefx' (Did you mean --prefix?)"],
    [['service', 'get'], "missing required argument 'name'"],
    [['service', 'apply'], "required option '-f, --file <file>' not specified"],
    [['service', 'delete', 'x', '--expected-revision', '0'], '--expected-revision: must be an integer in 1..9007199254740991, got 0'],
    [['backend', 'register', 'web', '10.1.0.1', '--ttl', '0'], '--ttl: must be an integer in 1..86400, got 0'],
    [['backend', 'register', 'web', '10.1.0.1', '--weight', '1.5'], '--weight: must be an integer in 0..1000, got 1.5'],
    [['flow', 'lookup', '--client', '1.2.3.4', '--vip', '10.96.0.10:80'], '--client: must be IP:PORT (e.g. 192.168.1.5:40000, or [2001:db8::5]:40000 for IPv6), got 1.2.3.4'],
    [['flow', 'lookup', '--client', '1.2.3.4:5', '--vip', '10.96.0.10:80', '--protocol', 'sctp'], '--protocol: must be tcp or udp, got sctp'],
    [['flow', 'lookup', '--client', '1.2.3.4:5', '--vip', '10.96.0.10:53', '--protocol', 'udp', '--syn'], '--syn: a SYN is TCP, not udp'],
    [['conntrack', 'flush'], 'conntrack flush: give --service, --backend, --client, --family or --all'],
    [['conntrack', 'flush', '--all', '--client', '1.2.3.4'], 'conntrack flush: --all goes alone, without filters'],
    [['conntrack', 'list', '--client', 'nope'], '--client: must be an IPv4 or IPv6 address, got nope'],
    [['service', 'list', '--address', '10.96.0.300'], '--address: must be an IPv4 or IPv6 address, got 10.96.0.300'],
    [['backend', 'register', 'web', '10.77.1.999'], '<address>: must be an IPv4 or IPv6 address, got 10.77.1.999'],
    [['backend', 'drain', 'web', 'x'.repeat(5000)], '<address>: must be an IPv4 or IPv6 address, got a value of 5000 characters'],
    [['flow', 'lookup', '--client', '2001:db8::5:40000', '--vip', '[2001:db8::10]:80'], '--client: 2001:db8::5:40000 is an IPv6 address and a port: an IPv6 address goes in brackets, write [2001:db8::5]:40000'],
    [['flow', 'lookup', '--client', '[fe80::1]:40000', '--vip', '[fd96::10]:80'], '--client: fe80::1 is link-local (fe80::/10): the dataplane passes packets from it untouched'],
    [['flow', 'lookup', '--client', '[fd00::1]:40000', '--vip', '[::ffff:10.0.0.1]:80'], '--vip: ::ffff:10.0.0.1 cannot be a VIP: it is an IPv4-mapped address (::ffff:0:0/96): write it as the IPv4 address 10.0.0.1'],
    [['flow', 'lookup', '--client', '[192.168.1.5]:40000', '--vip', '10.96.0.10:80'], '--client: must be IP:PORT (e.g. 192.168.1.5:40000, or [2001:db8::5]:40000 for IPv6), got [192.168.1.5]:40000'],
    [['flow', 'lookup', '--client', '[2001:db8::5]:1', '--vip', '[fe80::1%eth0]:80'], '--vip: must be IP:PORT (e.g. 10.96.0.10:80, or [2001:db8::5]:80 for IPv6), got [fe80::1%eth0]:80'],
    [['conntrack', 'list', '--backend', '2001:db8::g'], '--backend: must be an IPv4 or IPv6 address, got 2001:db8::g'],
    [['flow', 'lookup', '--client', 'y'.repeat(5000), '--vip', '10.96.0.10:80'], '--client: must be IP:PORT (e.g. 192.168.1.5:40000, or [2001:db8::5]:40000 for IPv6), got a value of 5000 characters'],
    [['--server', '', 'service', 'list'], '--server: must be unix:///absolute/path, host:port or [v6]:port (e.g. 127.0.0.1:19470 or [::1]:19470), got ""'],
    [['--server', 'sluice.sock', 'service', 'list'], '--server: must be unix:///absolute/path, host:port or [v6]:port (e.g. 127.0.0.1:19470 or [::1]:19470), got "sluice.sock"'],
    [['--server', '::1:19470', 'service', 'list'], '--server: ::1:19470 is an IPv6 address and a port: an IPv6 address goes in brackets, write [::1]:19470'],
    [['--server', '[::1]', 'service', 'list'], '--server: [::1] has no port: write [::1]:PORT (e.g. [::1]:19470)'],
    [['--server', '127.0.0.1:0', 'service', 'list'], '--server: the port must be in 1..65535, got 0'],
    [['conntrack', 'list', '--family', '6', '--client', '192.168.88.2'], '--client 192.168.88.2 is IPv4, and --family is 6'],
    [['conntrack', 'list', '--family', '4', '--backend', 'FD00::1'], '--backend fd00::1 is IPv6, and --family is 4'],
    [['conntrack', 'list', '--family', '4', '--client', '::ffff:192.168.88.2'], '--client: ::ffff:192.168.88.2 is an IPv4-mapped address (::ffff:0:0/96): write it as the IPv4 address 192.168.88.2'],
    [['conntrack', 'flush', '--client', '::FFFF:c0a8:5802', '--backend', '10.1.0.1'], '--client: ::ffff:192.168.88.2 is an IPv4-mapped address (::ffff:0:0/96): write it as the IPv4 address 192.168.88.2'],
    [['conntrack', 'list', '--backend', 'fe80::1'], '--backend: fe80::1 cannot be a backend: it is link-local (fe80::/10): it is not routed'],
    [['conntrack', 'flush', '--family', '6', '--client', '10.0.0.1'], '--client 10.0.0.1 is IPv4, and --family is 6'],
    [['conntrack', 'flush', '--client', '10.0.0.1', '--backend', 'fd00::1'], '--client 10.0.0.1 is IPv4, and --backend fd00::1 is IPv6: a connection\'s addresses are of one family'],
    [['--server', '127.0.0.1:1', '--tls-ca', path.join(dir, 'none.pem'), 'service', 'list'], `--tls-ca: ${path.join(dir, 'none.pem')}: no such file`],
    [['--timeout', '0', 'service', 'list'], '--timeout: must be an integer in 1..86400, got 0'],
    [['service', 'delete', 'a', 'b', '--expected-revision', '3'], '--expected-revision applies to one service'],
    [['daemon', '--pin-dir', '/sys/fs/bpf'], '--pin-dir: /sys/fs/bpf is the root of a BPF filesystem, shared with other tools: give a directory of its own under it (e.g. /sys/fs/bpf/sluice)'],
    [['daemon', '--listen', '127.0.0.1:99999'], '--listen: the port must be in 0..65535, got 99999'],
    [['daemon', '--listen', '::1:19470'], '--listen: ::1:19470 is an IPv6 address and a port: an IPv6 address goes in brackets, write [::1]:19470'],
    [['daemon', '--listen', '[::1]'], '--listen: [::1] has no port: write [::1]:PORT (e.g. [::1]:19470)'],
    [['daemon', '--listen', 'localhost'], '--listen: must be unix:///absolute/path, host:port or [v6]:port (e.g. 127.0.0.1:19470 or [::1]:19470), got "localhost"'],
    [['daemon', '--mode', 'fast'], '--mode: must be xdp, xdp-generic or tc, got fast'],
    [['daemon', '--conntrack-size', '100'], '--conntrack-size: must be an integer in 1024..268435456, got 100'],
    [['daemon', '--maglev-slots', '300001'], '--maglev-slots: must be an even integer in 262144..1073741824, got 300001'],
    [['daemon', '--conntrack-udp-timeout', '60'], '--conntrack-udp-timeout: a duration needs its unit: 60s for 60 seconds (e.g. 90s, 1h30m or 24h0m0s), got "60"'],
    [['daemon', '--conntrack-tcp-timeout-established', '1500ms'], '--conntrack-tcp-timeout-established: must be whole seconds (e.g. 90s, 1h30m or 24h0m0s), got "1500ms"'],
    [['daemon', '--conntrack-tcp-timeout-syn', '0s'], '--conntrack-tcp-timeout-syn: must be 1s..8760h (e.g. 90s, 1h30m or 24h0m0s), got "0s"'],
    [['daemon', '--conntrack-gc-interval', '48h'], '--conntrack-gc-interval: must be 1s..24h (e.g. 90s, 1h30m or 24h0m0s), got "48h"'],
    [['daemon', '--conntrack-flood-rate', '-1'], '--conntrack-flood-rate: must be an integer in 0..4294967295 (new flows a second per CPU, e.g. 125000; 0: no limit), got -1'],
    [['kube-proxy', '--conntrack-tcp-timeout-close', '10'], '--conntrack-tcp-timeout-close: a duration needs its unit: 10s for 10 seconds (e.g. 90s, 1h30m or 24h0m0s), got "10"'],
    [['daemon', '--metrics-bind-address', 'localhost'], '--metrics-bind-address: must be host:port or [v6]:port (e.g. 127.0.0.1:9469 or [::1]:9469), or "" to turn it off, got "localhost"'],
    [['daemon', '--metrics-bind-address', '::1:9469'], '--metrics-bind-address: ::1:9469 is an IPv6 address and a port: an IPv6 address goes in brackets, write [::1]:9469'],
    [['daemon', '--dns-bind-address', '127.0.0.1'], '--dns-bind-address: must be host:port or [v6]:port (e.g. 127.0.0.1:5353 or [::1]:5353), or "" to turn it off, got "127.0.0.1"'],
    [['daemon', '--dns-bind-address', 'fd00::53'], '--dns-bind-address: fd00::53 is an IPv6 address without a port: write [fd00::53]:PORT (e.g. [fd00::53]:5353)'],
    [['kube-proxy', '--healthz-bind-address', '10256'], '--healthz-bind-address: must be host:port or [v6]:port (e.g. 127.0.0.1:10256 or [::1]:10256), or "" to turn it off, got "10256"'],
    [['kube-proxy', '--metrics-bind-address', 'localhost'], '--metrics-bind-address: must be host:port or [v6]:port (e.g. 127.0.0.1:10249 or [::1]:10249), or "" to turn it off, got "localhost"'],
    [['kube-proxy', '--metrics-bind-address', '::1:10249'], '--metrics-bind-address: ::1:10249 is an IPv6 address and a port: an IPv6 address goes in brackets, write [::1]:10249'],
    [['kube-proxy', '--listen', 'fd00::1'], '--listen: fd00::1 is an IPv6 address without a port: write [fd00::1]:PORT (e.g. [fd00::1]:19470)'],
    [['daemon', '--metrics-bind-address', '127.0.0.1:70000'], '--metrics-bind-address: the port must be in 0..65535, got 70000'],
    [['daemon', '--netns', '/var/run/netns/lb'], '--netns: the daemon attaches inside a namespace interface by interface: --interface IF@/var/run/netns/lb (sluice kube-proxy takes --netns)'],
    [['kube-proxy', '--conntrack-tcp-timeout-close-wait', '1h0m0s'], '--conntrack-tcp-timeout-close-wait: kube-proxy\'s timeout of the kernel\'s CLOSE_WAIT state, which sluice\'s own table does not use; its closing flows (a FIN or RST seen) expire after --conntrack-tcp-timeout-close (default 10s): drop the flag, or give that one'],
    [['kube-proxy', '--conntrack-tcp-timeout-established', '0'], '--conntrack-tcp-timeout-established: 0 keeps kube-proxy from setting the kernel\'s timeout; sluice\'s own table always needs one: give a duration (e.g. 90s, 1h30m or 24h0m0s), got "0"'],
    [['daemon', '--state-dir', 'relative'], '--state-dir: must be an absolute path, got relative'],
    [['daemon', '--interface', 'eth0@netns/lb'], '--interface: the namespace after @ must be an absolute path (e.g. /var/run/netns/lb), got eth0@netns/lb'],
    [['daemon', '--tls-cert', 'c.pem', '--tls-key', 'k.pem', '--listen', '127.0.0.1:0', '--require-client-cert'], '--require-client-cert: needs the CA that signs client certificates (--tls-ca): without it every client would be refused'],
    [['daemon', '--require-client-cert'], '--require-client-cert: applies to a TLS listener: give --tls-cert and --tls-key too'],
    [['daemon', '--tls-cert', path.join(dir, 'none.pem'), '--tls-key', path.join(dir, 'none.key'), '--listen', '127.0.0.1:0', '--state-dir', path.join(dir, 'state')], `--tls-cert: ${path.join(dir, 'none.pem')}: no such file`],
    [['daemon', '--server', 'unix:///x.sock'], '--server: a client option; the daemon listens on --listen'],
    [['daemon', '--adopt-dataplane', '--reset-dataplane'], '--adopt-dataplane and --reset-dataplane: give one or the other'],
    [['daemon', '--store', 'etcd:/127.0.0.1:2379'], '--store: want etcd://HOST:PORT[,HOST:PORT...], got "etcd:/127.0.0.1:2379"'],
    [['daemon', '--store', 'etcd://127.0.0.1:2379,127.0.0.1'], '--store: "127.0.0.1" is not HOST:PORT with a port in 1..65535'],
    [['daemon', '--store-ca', 'ca.pem'], '--store-ca: applies to an etcd store: give --store etcd://HOST:PORT too'],
    [['daemon', '--store', 'etcd://127.0.0.1:2379', '--store-cert', 'c.pem'], '--store-key: a client certificate and its key go together: give --store-cert and --store-key'],
    [['daemon', '--store-prefix', '/other'], '--store-prefix: applies to an etcd store (SQLite in --state-dir holds one node\'s state): give --store etcd://HOST:PORT too'],
    [['daemon', '--store', 'etcd://127.0.0.1:2379', '--store-prefix', 'sluice/'], '--store-prefix: must be a path of [A-Za-z0-9._-] parts such as /sluice or /prod/lb, without a trailing slash, got "sluice/"'],
    [['daemon', '--follow-interfaces', 'veth*@netns/node'], '--follow-interfaces: the namespace after @ must be an absolute path (e.g. /var/run/netns/node), got veth*@netns/node'],
    [['daemon', '--follow-interfaces', 'pods/veth*'], '--follow-interfaces: not a pattern of interface names: "pods/veth*" (in pods/veth*); e.g. veth* or veth*@/var/run/netns/node'],
    [['daemon', '--follow-interfaces', 'veth*', '--follow-interfaces', 'veth*'], '--follow-interfaces: veth* is given twice'],
    [['daemon', '--follow-interfaces', 'veth*@/var/run/netns/sluice-no-such-ns'], '--follow-interfaces: veth*@/var/run/netns/sluice-no-such-ns: no network namespace at /var/run/netns/sluice-no-such-ns'],
    [['daemon', '--hairpin-snat-address', 'node'], '--hairpin-snat-address: not an IPv4 address: "node"'],
    [['daemon', '--hairpin-snat-address', 'fd88:1::1'], '--hairpin-snat-address: takes an IPv4 address of the node, and fd88:1::1 is IPv6; the IPv6 hairpin address is set by kube-proxy mode (sluice kube-proxy), from the Node\'s first IPv6 address'],
    [['daemon', '--hairpin-snat-address', '::FFFF:10.0.0.5'], '--hairpin-snat-address: ::FFFF:10.0.0.5 is an IPv4-mapped address: write it as the IPv4 address 10.0.0.5'],
    [['daemon', '--hairpin-snat-address', '127.0.0.1'], '--hairpin-snat-address: 127.0.0.1 is in loopback (127.0.0.0/8): it never leaves the host'],
    [['daemon', '--socket-lb', 'sys/fs/cgroup'], '--socket-lb: must be an absolute cgroup v2 directory, optionally @ an absolute namespace path (e.g. /sys/fs/cgroup or /sys/fs/cgroup/node@/var/run/netns/node), got sys/fs/cgroup'],
    [['daemon', '--socket-lb', '/sluice-no-such-cgroup'], '--socket-lb: /sluice-no-such-cgroup: not a cgroup directory'],
  ] as Array<[string[], string]>) {
    // A daemon that started by mistake would use this test's own directories (a flag given again wins).
    const safe = args[0] === 'daemon'
      ? ['daemon', '--pin-dir', pins, '--state-dir', path.join(dir, 'state'), '--listen', `unix://${path.join(dir, 'd.sock')}`, '--exit-with-parent', ...args.slice(1)]
      : args;
    const r = await sluice(safe, { timeoutMs: 15_000 });
    t.is(r.stderr, `sluice: ${line}\n`, args.join(' '));
    t.is(r.code, 2, `${args.join(' ')}: exit status`);
  }
  t.false(existsSync(pins), 'no daemon started');
});

test('a daemon whose etcd does not answer exits 1 naming --store, and leaves nothing behind', async (t) => {
  const dir = tmp(t);
  const pins = `/sys/fs/bpf/sluice-cli-etcd-${process.pid}`;
  t.teardown(() => rmSync(pins, { recursive: true, force: true }));
  const r = await sluice(['daemon', '--store', 'etcd://127.0.0.1:1', '--pin-dir', pins, '--state-dir', path.join(dir, 'state'),
    '--listen', `unix://${path.join(dir, 'd.sock')}`, '--exit-with-parent'], { timeoutMs: 30_000 });
  t.is(r.code, 1);
  t.regex(r.stderr, /^sluice: UNAVAILABLE: --store etcd:\/\/127\.0\.0\.1:1: etcd at 127\.0\.0\.1:1 did not answer .*Check that the etcd members run/);
  t.is(r.stderr.split('\n').length, 2, 'one line');
  t.false(existsSync(pins), 'no pins made');
  t.false(existsSync(path.join(dir, 'state')), 'no state directory left');
});

test('the client: a request it cannot encode is not sent and says so; a body the server cannot decode is INVALID_ARGUMENT', async (t) => {
  const f = await api(t, 'cli-encode');
  const err = await t.throwsAsync(f.client.applyService({ name: 'x', addresses: ['10.96.0.9'], ports: 'eighty' as never }));
  t.true(err instanceof SluiceError);
  t.is((err as SluiceError).code, 'INVALID_ARGUMENT');
  t.regex(err!.message, /^the request was not sent: it cannot be encoded \(/);
  // Raw bytes that are no protobuf message: a field of wire type 7.
  const raw = new grpc.Client(f.server.address, grpc.credentials.createInsecure());
  t.teardown(() => raw.close());
  for (const method of ['/sluice.v1.ServiceRegistry/ApplyService', '/grpc.health.v1.Health/Watch']) {
    const e = await new Promise<grpc.ServiceError>((resolve) => {
      if (method.endsWith('Watch')) {
        const s = raw.makeServerStreamRequest(method, (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0f, 0xff, 0xff]));
        s.on('data', () => undefined);
        s.on('error', resolve);
      } else {
        raw.makeUnaryRequest(method, (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0f, 0xff, 0xff]), (er) => resolve(er!));
      }
    });
    t.is(e.code, grpc.status.INVALID_ARGUMENT, `${method}: ${e.details}`);
    t.regex(e.details, /^the request is not a valid protobuf message of this method: /);
  }
  t.is(await f.store.revision(), 1);
});

test('the daemon refuses TLS files that do not make a certificate and its key, before anything starts', async (t) => {
  const certs = makeCerts(t);
  const dir = tmp(t);
  // Were the check missing, the daemon would start: its pins go to a directory of this test's own.
  const pins = `/sys/fs/bpf/sluice-cli-tls-${process.pid}`;
  t.teardown(() => rmSync(pins, { recursive: true, force: true }));
  const r = await sluice(['daemon', '--listen', '127.0.0.1:0', '--tls-cert', certs.serverCert, '--tls-key', certs.clientKey, '--state-dir', path.join(dir, 'state'), '--pin-dir', pins, '--exit-with-parent'], { timeoutMs: 10_000 });
  t.is(r.code, 2);
  t.regex(r.stderr, new RegExp(`^sluice: --tls-cert: ${certs.serverCert} and ${certs.clientKey} do not make a certificate and its key: .*key values mismatch\\n$`));
  const ca = await sluice(['daemon', '--listen', '127.0.0.1:0', '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tls-ca', certs.serverKey, '--state-dir', path.join(dir, 'state'), '--pin-dir', pins, '--exit-with-parent'], { timeoutMs: 10_000 });
  t.is(ca.code, 2);
  t.is(ca.stderr, `sluice: --tls-ca: ${certs.serverKey}: not a PEM certificate: no certificate in it\n`);
  t.false(existsSync(path.join(dir, 'state')), 'nothing was made');
});

test('TLS to an IP address: no deprecation warning on stderr', async (t) => {
  const f = await api(t, 'cli-tls');
  const certs = makeCerts(t);
  const server = await startApiServer({ plane: f.plane, listen: '127.0.0.1:0', tls: { cert: certs.serverCert, key: certs.serverKey } });
  t.teardown(() => server.close());
  const r = await sluice(['--server', server.address, '--tls-ca', certs.ca, 'service', 'list']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '', 'nothing but the answer');
  t.true(r.stdout.includes('default/owner'));
});

test('get shows the table size in use; stats shows every counter, replies apart from forwarded packets', async (t) => {
  const f = await api(t, 'cli-show');
  let r = await sluice(['--server', f.server.address, 'service', 'get', 'default/owner']);
  t.regex(r.stdout, /^table: {8}1021 slots \(chosen from the backend count\)$/m);
  t.is(Number((JSON.parse((await sluice(['--server', f.server.address, 'service', 'get', 'default/owner', '-o', 'json'])).stdout) as ServiceMessage).effectiveTableSize), 1021);
  const counters: Array<[string, bigint]> = [['rx_packets', 100n], ['forwarded', 70n], ['forwarded_stack', 10n], ['replies', 30n], ['passed_other', 9n], ['passed_malformed', 2n],
    ['fib_miss', 4n], ['ct_rescheduled', 5n], ['affinity_hits', 6n], ['drop_no_service', 1n], ['drop_no_backend', 3n], ['drop_malformed', 7n], ['drop_fragment', 8n], ['drop_ct_full', 11n],
    ['reply_restored', 12n], ['reply_ambiguous', 13n], ['reject_tcp_rst', 14n], ['reject_icmp_unreach', 15n], ['reject_rate_limited', 16n], ['hairpin_flows', 17n], ['sock_translated', 18n],
    ['ct_expired', 19n], ['ct_untracked', 20n], ['ct_reply_clash', 21n], ['ct_reply_recreated', 22n], ['ct_reply_stale', 23n], ['frag_translated', 24n], ['icmp_translated', 25n], ['icmp_frag_needed', 26n]];
  for (const [k, v] of counters) f.dp.global.set(k as never, v);
  r = await sluice(['--server', f.server.address, 'stats']);
  const tail = r.stdout.split('\n\nMAP ')[0]!.trimEnd().split('\n').slice(-7).join('\n');
  t.is(tail, [
    'packets: rx 100, to backends 25, replies 30, passed 9, passed malformed 2',
    'egress:  redirected 70, via stack 10 (of which fib misses 4)',
    'flows:   rescheduled 5, affinity hits 6, replies restored without an entry 12 (ambiguous, passed 13), hairpin 17, node sockets 18',
    'lifecycle: expired 19, untracked 20, reply clashes (dropped) 21, reply entries rewritten 22, stale reply entries removed 23',
    'icmp and fragments: icmp errors translated 25, fragmentation needed sent 26, later fragments translated 24',
    'rejects: tcp_rst 14, icmp_unreach 15 (rate limited, dropped 16)',
    'drops:   no_service 1, no_backend 3, malformed 7, fragment 8, ct_full 11',
  ].join('\n'));
  const plain = JSON.parse((await sluice(['--server', f.server.address, 'stats', '-o', 'json'])).stdout) as { conntrackGc: unknown; globalStats: Record<string, unknown> };
  t.is(plain.conntrackGc, null, 'no collector, no figures');
  t.deepEqual(plain.globalStats['flows'], { expired: '19', untracked: '20', replyClashes: '21', repliesRecreated: '22', repliesStale: '23' });
  t.like(plain.globalStats, { fragmentsTranslated: '24', icmpTranslated: '25', icmpFragNeeded: '26' });
  // The daemon's collector, as it reports itself.
  f.plane.conntrackGc = {
    stats: () => ({ passes: 3, expired: { new: 4, established: 5, closing: 6 }, orphanedReplies: 7, entriesDeleted: 27, raced: 1, lastPass: { entries: 2000, deleted: 9, wallMs: 2500, cpuMs: 160 }, intervalMs: 300_000 }),
  };
  r = await sluice(['--server', f.server.address, 'stats']);
  t.is(r.stdout.split('\n').find((l) => l.startsWith('conntrack gc:')), 'conntrack gc: 3 passes every 300s, deleted 27 entries: expired new 4, established 5, closing 6, orphaned replies 7 (raced, kept 1); last pass 2000 entries in 2.5 s (CPU 0.2 s)');
  const json = JSON.parse((await sluice(['--server', f.server.address, 'stats', '-o', 'json'])).stdout) as { conntrackGc: Record<string, unknown> };
  t.like(json.conntrackGc, { passes: '3', expiredNew: '4', expiredEstablished: '5', expiredClosing: '6', orphanedReplies: '7', entriesDeleted: '27', raced: '1', intervalSeconds: 300, lastPassEntries: '2000', lastPassMs: '2500', lastPassCpuMs: '160' });
});

test('stats shows each map: entries used of its size, kernel memory, the flag that sizes it; -o json pipes into jq', async (t) => {
  const f = await api(t, 'cli-maps');
  f.dp.maxIds = { services: 16_384, backends: 65_536 };
  f.dp.capacity = 2_097_152;
  const value = { dir: CT_FORWARD, natAddress: '10.1.0.1', natPort: 8080, backendId: 1, serviceId: 1, state: 'established', created: 0, expires: 0 } as const;
  for (let i = 0; i < 1000; i++) f.dp.addConntrack({ key: { saddr: '192.168.1.5', sport: 10_000 + i, daddr: '10.96.0.10', dport: 80, protocol: 'tcp' }, value });
  const r = await sluice(['--server', f.server.address, 'stats']);
  t.is(r.code, 0, r.stderr);
  const maps = r.stdout.slice(r.stdout.indexOf('\nMAP ') + 1).trimEnd().split('\n');
  t.deepEqual(maps.map((l) => l.split(/\s{2,}/)), [
    ['MAP', 'ENTRIES', 'MAX', 'USED', 'MEMORY', 'FLAG'],
    ['services', '1', '16,384', '0.0%', '1.0 MiB', '--max-frontends'],
    ['vips', '1', '16,384', '0.0%', '1.0 MiB', '--max-frontends'],
    ['svc_frontends', '1', '16,384', '0.0%', '1.0 MiB', '--max-frontends'],
    ['backends', '2', '65,536', '0.0%', '4.0 MiB', '--max-backends'],
    ['reply_nat', '2', '65,536', '0.0%', '4.0 MiB', '--max-backends'],
    ['maglev_slots', '1,021', '2,097,152', '0.0%', '128.0 MiB', '--maglev-slots'],
    ['conntrack', '1,000', '262,144', '0.4%', '16.0 MiB', '--conntrack-size'],
    ['affinity', '0', '65,536', '0.0%', '4.0 MiB', '--affinity-size'],
    ['svc_stats', '1', '16,384', '0.0%', '1.0 MiB', '--max-frontends'],
    ['backend_stats', '2', '65,536', '0.0%', '4.0 MiB', '--max-backends'],
    ['global_stats', '1', '1', '100.0%', '0.1 KiB'],
    ['sock_rnat', '0', '16,384', '0.0%', '1.0 MiB', '--socket-lb-size'],
    ['total', '165.0 MiB'],
  ]);
  const cmd = `${sluiceCommand()} --server '${f.server.address}'`;
  const run = async (c: string): Promise<string> => (await sh('bash', ['-o', 'pipefail', '-c', c])).stdout.trim();
  t.is(await run(`${cmd} stats -o json | jq -r '.maps[] | select(.name == "conntrack") | "\\(.entries)/\\(.maxEntries) \\(.bytes) \\(.capacity) \\(.estimated)"'`), '1000/262144 16777216 conntrack false');
  t.is(await run(`${cmd} stats -o json | jq '[.maps[] | .bytes | tonumber] | add'`), String(173_015_104));
  t.is(JSON.parse((await sluice(['--server', f.server.address, '-o', 'json', 'stats', 'default/owner'])).stdout).maps.length, 0, 'one service: no maps');
});

test('flow lookup asks about an ACK, or with --syn a SYN, and says which it asked about', async (t) => {
  const f = await api(t, 'cli-lookup');
  const ids = f.lb.ids('default/owner|10.96.0.10:80/tcp');
  const packet = { saddr: '192.168.1.5', sport: 40000, daddr: '10.96.0.10', dport: 80, protocol: 'tcp' as const };
  const decision = (outcome: 'CONNTRACK' | 'MAGLEV', backend: string): FlowDecision => ({
    outcome, serviceId: ids.service, backendId: ids.backends.get(`${backend}:8080`)!, rewrite: { address: backend, port: 8080 },
    rescheduled: outcome === 'MAGLEV', replyRestored: false, replyAmbiguous: false, ctExpired: false, replyStale: false, hash: 123456, tableSize: 1021, slot: 123456 % 1021,
  });
  // A flow on a draining backend: its packets follow it, a SYN on its tuple is placed again.
  f.dp.decideFlow({ ...packet, syn: false }, decision('CONNTRACK', '10.1.0.1'));
  f.dp.decideFlow({ ...packet, syn: true }, decision('MAGLEV', '10.1.0.2'));
  const ask = (...more: string[]): Promise<CliRun> =>
    sluice(['--server', f.server.address, 'flow', 'lookup', '--client', '192.168.1.5:40000', '--vip', '10.96.0.10:80', ...more]);

  let r = await ask();
  t.is(r.stdout, '192.168.1.5:40000 -> 10.96.0.10:80/tcp goes to 10.1.0.1:8080 (service default/owner, by conntrack)\n', r.stderr);
  t.deepEqual(f.dp.lookups.at(-1), { ...packet, syn: false });
  r = await ask('--syn');
  t.is(r.stdout, `192.168.1.5:40000 -> 10.96.0.10:80/tcp SYN goes to 10.1.0.2:8080 (service default/owner, by maglev: hash 123456, slot ${123456 % 1021} of 1021)\n`, r.stderr);
  t.deepEqual(f.dp.lookups.at(-1), { ...packet, syn: true });
  r = await ask('--syn', '-o', 'json');
  t.like(JSON.parse(r.stdout), { reason: 'MAGLEV', backendAddress: '10.1.0.2' });
});

test('IPv6: a dual-stack file applies in RFC 5952 form; --address, [v6]:port and <address> take any spelling', async (t) => {
  const f = await api(t, 'cli-ipv6');
  const file = path.join(tmp(t), 'dual.yaml');
  writeFileSync(file, `name: default/dual
addresses: [10.96.0.30, "2001:DB8:0::30"]
ports: [{port: 80, protocol: tcp, targetPort: 8080}]
backends: [{address: 10.1.0.31}, {address: "2001:db8:0:0::31"}]
`);
  let r = await sluice(['--server', f.server.address, 'service', 'apply', '-f', file]);
  t.is(r.code, 0, r.stderr);
  r = await sluice(['--server', f.server.address, '-o', 'json', 'service', 'list', '--address', '2001:db8::0:30']);
  t.is(r.code, 0, r.stderr);
  const [svc] = JSON.parse(r.stdout) as Array<{ name: string; addresses: string[]; ipFamilies: string[]; backends: Array<{ address: string }> }>;
  t.like(svc, { name: 'default/dual', addresses: ['10.96.0.30', '2001:db8::30'], ipFamilies: ['IPV4', 'IPV6'] });
  t.deepEqual(svc!.backends.map((b) => b.address), ['10.1.0.31', '2001:db8::31']);
  // get -o yaml (with ipFamilies, output only) applies back unchanged.
  r = await sluice(['--server', f.server.address, '-o', 'yaml', 'service', 'get', 'default/dual']);
  writeFileSync(file, r.stdout);
  r = await sluice(['--server', f.server.address, 'service', 'apply', '-f', file]);
  t.regex(r.stdout, /^service default\/dual unchanged/, r.stderr);

  const ids = f.lb.ids('default/dual|[2001:db8::30]:80/tcp');
  const packet = { saddr: '2001:db8::5', sport: 40000, daddr: '2001:db8::30', dport: 80, protocol: 'tcp' as const };
  f.dp.decideFlow({ ...packet, syn: false }, {
    outcome: 'MAGLEV', serviceId: ids.service, backendId: ids.backends.get('[2001:db8::31]:8080')!, rewrite: { address: '2001:db8::31', port: 8080 },
    rescheduled: false, replyRestored: false, replyAmbiguous: false, ctExpired: false, replyStale: false, hash: 7, tableSize: 1021, slot: 0,
  });
  r = await sluice(['--server', f.server.address, 'flow', 'lookup', '--client', '[2001:DB8::5]:40000', '--vip', '[2001:db8:0::30]:80']);
  t.is(r.stdout, '[2001:db8::5]:40000 -> [2001:db8::30]:80/tcp goes to [2001:db8::31]:8080 (service default/dual, by maglev: hash 7, slot 0 of 1021)\n', r.stderr);
  t.deepEqual(f.dp.lookups.at(-1), { ...packet, syn: false });
  r = await sluice(['--server', f.server.address, 'backend', 'drain', 'default/dual', '2001:DB8::31']);
  t.is(r.code, 0, r.stderr);
  t.is((await f.client.getService('default/dual')).backends.find((b) => b.address === '2001:db8::31')?.state, 'DRAINING');
});

test('conntrack list follows every page (more than one) and sorts by client; a filter goes with each page', async (t) => {
  const f = await api(t, 'cli-conntrack');
  const serviceId = f.lb.ids('default/owner|10.96.0.10:80/tcp').service;
  const flows = 2500; // two and a half pages of the 1,000 the CLI asks for
  // Clients numbered in reverse, so that sorting by client is no accident of insertion order.
  const client = (i: number): string => `10.0.${(flows - i) >> 8}.${(flows - i) & 255}`;
  for (let i = 0; i < flows; i++) {
    const value = { backendId: 1, serviceId, state: 'established' as const, created: 0, expires: Number(process.hrtime.bigint() / 1_000_000_000n) + 3600 };
    f.dp.addConntrack({ key: { saddr: client(i), daddr: '10.96.0.10', sport: 40_000, dport: 80, protocol: 'tcp' }, value: { ...value, dir: CT_FORWARD, natAddress: '10.1.0.1', natPort: 8080 } });
    f.dp.addConntrack({ key: { saddr: '10.1.0.1', daddr: client(i), sport: 8080, dport: 40_000, protocol: 'tcp' }, value: { ...value, dir: CT_REPLY, natAddress: '10.96.0.10', natPort: 80 } });
  }
  const list = async (...args: string[]): Promise<Array<{ clientAddress: string; service: string }>> => {
    const r = await sluice(['--server', f.server.address, '-o', 'json', 'conntrack', 'list', ...args]);
    t.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Array<{ clientAddress: string; service: string }>;
  };
  const all = await list();
  t.is(all.length, flows, 'every flow, once: the CLI read every page');
  t.deepEqual(all.map((c) => c.clientAddress), Array.from({ length: flows }, (_, i) => client(flows - 1 - i)), 'sorted by client address, as numbers');
  t.true(all.every((c) => c.service === 'default/owner'));
  t.deepEqual((await list('--client', client(7))).map((c) => c.clientAddress), [client(7)]);
  const table = await sluice(['--server', f.server.address, 'conntrack', 'list']);
  t.is(table.stdout.trimEnd().split('\n').length, 1 + flows, 'a header and a line per flow');
});

test('conntrack list: state, age and lifetime; --state filters; dead flows are not listed', async (t) => {
  const f = await api(t, 'cli-ct-state');
  const serviceId = f.lb.ids('default/owner|10.96.0.10:80/tcp').service;
  const now = Number(process.hrtime.bigint() / 1_000_000_000n);
  const flow = (client: string, state: 'new' | 'established' | 'closing', created: number, expires: number): void => {
    const value = { backendId: 1, serviceId, state, created, expires };
    f.dp.addConntrack({ key: { saddr: client, daddr: '10.96.0.10', sport: 40_000, dport: 80, protocol: 'tcp' }, value: { ...value, dir: CT_FORWARD, natAddress: '10.1.0.1', natPort: 8080 } });
    f.dp.addConntrack({ key: { saddr: '10.1.0.1', daddr: client, sport: 8080, dport: 40_000, protocol: 'tcp' }, value: { ...value, dir: CT_REPLY, natAddress: '10.96.0.10', natPort: 80 } });
  };
  // Lifetimes far longer than a CLI run on a loaded machine takes.
  flow('10.0.0.1', 'new', now - 5, now + 600);
  flow('10.0.0.2', 'established', now - 7300, now + 21_000);
  flow('10.0.0.3', 'closing', now - 100, now + 300);
  flow('10.0.0.4', 'established', now - 4000, now - 2); // dead, not yet collected
  const r = await sluice(['--server', f.server.address, 'conntrack', 'list']);
  const lines = r.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^CLIENT +VIP +PROTO +BACKEND +SERVICE +STATE +AGE +EXPIRES IN$/);
  t.is(lines.length, 4, 'the dead flow is not a connection');
  t.regex(lines[1]!, /^10\.0\.0\.1:40000 .* new +\d+s +(9m\d+s|10m)$/);
  // Minutes only: a CLI run on a loaded machine takes tens of seconds.
  t.regex(lines[2]!, /^10\.0\.0\.2:40000 .* established +2h[12]m +5h(4[89]|50)m$/);
  t.regex(lines[3]!, /^10\.0\.0\.3:40000 .* closing +[12]m\d+s +(4m\d+s|5m)$/);
  const json = await sluice(['--server', f.server.address, '-o', 'json', 'conntrack', 'list', '--state', 'closing']);
  const got = JSON.parse(json.stdout) as Array<{ clientAddress: string; state: string; expiresInMs: string }>;
  t.deepEqual(got.map((c) => [c.clientAddress, c.state]), [['10.0.0.3', 'CLOSING']]);
  const jq = await sh('sh', ['-c', `${sluiceCommand()} --server '${f.server.address}' -o json conntrack list | jq -r '.[] | .state'`]);
  t.deepEqual(jq.stdout.trim().split('\n'), ['NEW', 'ESTABLISHED', 'CLOSING']);
  // What -o json prints (CLOSING) is taken back as typed.
  const upper = await sluice(['--server', f.server.address, '-o', 'json', 'conntrack', 'list', '--state', 'CLOSING']);
  t.deepEqual((JSON.parse(upper.stdout) as Array<{ clientAddress: string }>).map((c) => c.clientAddress), ['10.0.0.3']);
  const bad = await sluice(['--server', f.server.address, 'conntrack', 'list', '--state', 'open']);
  t.is(bad.stderr, 'sluice: --state: must be new, established or closing, got open\n');
  t.is(bad.code, 2);
});

test('registering an address that is a static backend is refused; --keepalive deregisters on Ctrl-C', async (t) => {
  const f = await api(t, 'cli-register');
  let r = await sluice(['--server', f.server.address, 'backend', 'register', 'default/owner', '10.1.0.1']);
  t.is(r.code, 1);
  t.is(r.stderr, 'sluice: ALREADY_EXISTS: address: 10.1.0.1 is a static backend of default/owner (defined without a lease); remove it from the definition first if it should live by a lease\n');
  t.deepEqual((await f.client.getService('default/owner')).backends.map((b) => b.leaseId), ['', ''], 'the static backends keep no lease');

  const { spawn } = await import('node:child_process');
  const { cliPath, nodeFlagsOf } = await import('../../src/demo/daemon-process.js');
  const child = spawn(process.execPath, [...nodeFlagsOf(cliPath()), cliPath(), '--server', f.server.address, 'backend', 'register', 'default/owner', '10.1.0.9', '--ttl', '60', '--keepalive']);
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  for (const end = Date.now() + 15_000; !out.includes('registered') && Date.now() < end;) await new Promise((res) => setTimeout(res, 50));
  t.true(out.includes('registered'), out);
  const lease = /lease (\w+)/.exec(out)![1]!;
  t.truthy(await f.store.lease(lease));
  t.true((await f.client.getService('default/owner')).backends.some((b) => b.address === '10.1.0.9'));
  child.kill('SIGINT');
  t.is(await exited, 0);
  t.regex(out, /keepalive stopped; backend 10\.1\.0\.9 deregistered from default\/owner\n$/);
  t.false((await f.client.getService('default/owner')).backends.some((b) => b.address === '10.1.0.9'), 'the backend is gone at once');
  t.is(await f.store.lease(lease), undefined, 'its lease is revoked');
});

test('the daemon\'s own UNAVAILABLE (its store away) is said as the daemon said it, not as a failure to reach the daemon', async (t) => {
  const store = new MemoryKvStore();
  let away = false;
  // The store as etcd with every member down: writes fail UNAVAILABLE, naming the endpoints.
  const flaky = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'txn' && typeof v === 'function') {
        return (...args: unknown[]) =>
          away
            ? Promise.reject(new SluiceError('UNAVAILABLE', 'etcd at 127.0.0.1:2379 did not answer a transaction (ECONNREFUSED); it was not applied. Check that the etcd members run (addresses, firewall, TLS).'))
            : (v as (...a: unknown[]) => unknown).apply(target, args);
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const f = await startApi(t, { tag: 'cli-unavail', store: flaky });
  const dir = tmp(t);
  const file = path.join(dir, 'web.yaml');
  writeFileSync(file, web(''));
  away = true;
  const r = await sluice(['--server', f.server.address, 'service', 'apply', '-f', file]);
  t.is(r.code, 1);
  t.is(r.stderr, 'sluice: UNAVAILABLE: etcd at 127.0.0.1:2379 did not answer a transaction (ECONNREFUSED); it was not applied. Check that the etcd members run (addresses, firewall, TLS).\n');
  // A daemon that is not there is still said as such.
  const gone = await sluice(['--server', `unix://${path.join(dir, 'nothing.sock')}`, 'service', 'list']);
  t.regex(gone.stderr, /^sluice: cannot reach the daemon at unix:\/\/.*nothing\.sock \(no socket there\)/);
});

test('conntrack flush counts connections, not entries; -o json gives the count as a string, as 64-bit counters are', async (t) => {
  const f = await api(t, 'cli-ct-flush');
  const serviceId = f.lb.ids('default/owner|10.96.0.10:80/tcp').service;
  const now = Number(process.hrtime.bigint() / 1_000_000_000n);
  // A flow is two entries, forward and reply.
  const flow = (client: string, vip: string, backend: string): void => {
    const value = { backendId: 1, serviceId, state: 'established' as const, created: now - 5, expires: now + 3600 };
    f.dp.addConntrack({ key: { saddr: client, daddr: vip, sport: 40_000, dport: 80, protocol: 'tcp' }, value: { ...value, dir: CT_FORWARD, natAddress: backend, natPort: 8080 } });
    f.dp.addConntrack({ key: { saddr: backend, daddr: client, sport: 8080, dport: 40_000, protocol: 'tcp' }, value: { ...value, dir: CT_REPLY, natAddress: vip, natPort: 80 } });
  };
  flow('fd00:2::5', 'fd96::10', 'fd00:1::1');
  flow('fd00:2::6', 'fd96::10', 'fd00:1::1');
  flow('10.0.0.7', '10.96.0.10', '10.1.0.1');
  t.is(f.dp.conntrack.size, 6);
  let r = await sluice(['--server', f.server.address, 'conntrack', 'flush', '--family', '6']);
  t.is(r.stdout, 'flushed 2 connections\n', r.stderr);
  t.is(f.dp.conntrack.size, 2, 'the IPv4 flow stays');
  r = await sluice(['--server', f.server.address, 'conntrack', 'flush', '--client', '10.0.0.7']);
  t.is(r.stdout, 'flushed 1 connection\n', r.stderr);
  flow('fd00:2::5', 'fd96::10', 'fd00:1::1');
  r = await sluice(['--server', f.server.address, '-o', 'json', 'conntrack', 'flush', '--all']);
  t.deepEqual(JSON.parse(r.stdout), { flushed: '1' }, r.stderr);
  r = await sluice(['--server', f.server.address, '-o', 'json', 'conntrack', 'flush', '--all']);
  t.deepEqual(JSON.parse(r.stdout), { flushed: '0' }, r.stderr);
  const jq = await sh('sh', ['-c', `${sluiceCommand()} --server '${f.server.address}' -o json conntrack flush --family 4 | jq -r '.flushed | tonumber'`]);
  t.is(jq.stdout, '0\n');
});
