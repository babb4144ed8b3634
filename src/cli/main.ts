#!/usr/bin/env -S node --max-semi-space-size=8
/**
 * The `sluice` command: the daemon, the demo, and commands for people on
 * the same gRPC API that programs use. Tables by default, `-o json|yaml`
 * for scripts; errors are one line on stderr and a non-zero exit (1 for a
 * failed call, 2 for a wrong command line).
 *
 * The `#!` line caps V8's young generation at 8 MB a semi-space (V8's own
 * cap is 16 MB), for the daemon's sake: V8 grows the nursery to the cap
 * during a bulk load and keeps it, and a long-running server with a steady
 * heap does not need it that large. With 10,000 services x 10 backends
 * applied, the daemon's RSS was 184-206 MB at 16 MB, 171-183 MB at 8 and
 * 159-167 MB at 4; a smaller nursery means more scavenges during the load
 * (its time was within this machine's noise at 8 and 4, the daemon's CPU
 * about 10% higher at 4), hence 8. V8 reads the flag only when the process
 * starts (setting it from inside, as an earlier version did, changes
 * nothing), so it is on the `#!` line, and
 * DaemonProcess takes the flags from there too (nodeFlagsOf).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { status as grpcStatus } from '@grpc/grpc-js';
import { runDemo } from '../demo/demo.js';
import type { AttachMode } from '../dataplane/dataplane.js';
import { connect, ApiError, type SluiceClient, type ClientTlsOptions } from '../api/client.js';
import type { ServiceInput, ServiceMessage, BackendStateName, ProtocolName } from '../api/messages.js';
import { resolveDaemonOptions, startDaemon } from '../daemon/daemon.js';
import { SluiceError } from '../errors.js';
import { emit, parseFormat, table, UsageError, type OutputFormat } from './output.js';

const DEFAULT_SERVER = 'unix:///run/sluice/sluice.sock';

const USAGE = `usage: sluice <command> [options]

  demo [--mode xdp|xdp-generic|tc] [--requests N]
      run the daemon on a built-in topology of network namespaces, drive it
      with these commands, balance real HTTP and UDP traffic, drain, tear down
  daemon [--interface IF[@NETNS_PATH]]... [--mode xdp|xdp-generic|tc]
         [--listen unix:///PATH|HOST:PORT] [--tls-cert F --tls-key F [--tls-ca F]
         [--require-client-cert]] [--state-dir DIR] [--pin-dir DIR]
         [--detach-on-exit] [--conntrack-size N] [--log-level LEVEL] [--exit-with-parent]
  service apply -f FILE [--expected-revision N]    (YAML or JSON: one service or a list)
  service list [--prefix P] [--address VIP]
  service get NAME
  service delete NAME [--expected-revision N]
  backend register SERVICE ADDRESS [--weight W] [--ttl SECONDS] [--keepalive]
  backend deregister SERVICE ADDRESS
  backend drain|activate|maintenance SERVICE ADDRESS
  stats [SERVICE]
  flow lookup --client IP:PORT --vip IP:PORT [--protocol tcp|udp]
  conntrack list [--service S] [--backend IP] [--client IP]
  conntrack flush (--service S | --backend IP | --client IP | --all)

client options: --server ADDR (default $SLUICE_SERVER or ${DEFAULT_SERVER}),
  -o table|json|yaml, --tls-ca F, --tls-cert F, --tls-key F, --tls-server-name NAME
`;

const CLIENT_OPTIONS = {
  server: { type: 'string' },
  output: { type: 'string', short: 'o' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-server-name': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

type Values = Record<string, string | boolean | string[] | undefined>;

function parse(args: string[], options: ParseArgsConfig['options']): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({ args, options: { ...CLIENT_OPTIONS, ...options }, allowPositionals: true, strict: true });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function str(v: Values, name: string): string | undefined {
  const x = v[name];
  return typeof x === 'string' ? x : undefined;
}

function int(v: Values, name: string): number | undefined {
  const s = str(v, name);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--${name}: must be a non-negative integer, got ${s}`);
  return n;
}

function positional(p: string[], i: number, what: string): string {
  const x = p[i];
  if (x === undefined) throw new UsageError(`missing ${what}`);
  return x;
}

function client(v: Values): SluiceClient {
  const tls: ClientTlsOptions = {};
  const ca = str(v, 'tls-ca');
  const cert = str(v, 'tls-cert');
  const key = str(v, 'tls-key');
  const name = str(v, 'tls-server-name');
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  if (name) tls.serverName = name;
  const server = str(v, 'server') ?? process.env['SLUICE_SERVER'] ?? DEFAULT_SERVER;
  return connect(server, ca || cert || key ? tls : undefined);
}

async function withClient<T>(v: Values, fn: (c: SluiceClient) => Promise<T>): Promise<T> {
  const c = client(v);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

const lower = (s: string | number): string => String(s).toLowerCase();

function serviceRows(services: ServiceMessage[]): string {
  return table(
    ['NAME', 'VIPS', 'PORTS', 'BACKENDS', 'AFFINITY', 'REVISION'],
    services.map((s) => [
      s.name,
      s.addresses.join(','),
      s.ports.map((p) => `${p.port}/${lower(p.protocol)}${p.targetPort !== p.port ? `->${p.targetPort}` : ''}`).join(','),
      `${s.backends.filter((b) => b.state === 'ACTIVE').length}/${s.backends.length}`,
      s.sessionAffinity ? `${s.sessionAffinity.timeoutSeconds}s` : '-',
      s.revision,
    ]),
  );
}

function serviceDetail(s: ServiceMessage): string {
  return [
    `name:      ${s.name}`,
    `vips:      ${s.addresses.join(', ')}`,
    `ports:     ${s.ports.map((p) => `${p.name} ${p.port}/${lower(p.protocol)} -> ${p.targetPort}`).join(', ')}`,
    `affinity:  ${s.sessionAffinity ? `ClientIP, ${s.sessionAffinity.timeoutSeconds}s` : 'none'}`,
    `table:     ${s.tableSize || 'default'}`,
    `revision:  ${s.revision} (created at ${s.createRevision})`,
    '',
    table(['BACKEND', 'WEIGHT', 'STATE', 'LEASE'], s.backends.map((b) => [b.address, b.weight ?? 1, lower(b.state), b.leaseId || '-'])),
  ].join('\n');
}

/** Read a service file: one service, a list, or {services: [...]}; YAML or JSON. */
async function readServices(file: string): Promise<ServiceInput[]> {
  const text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new UsageError(`${file}: not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  const list = Array.isArray(doc) ? doc : (doc as { services?: unknown })?.services ?? [doc];
  if (!Array.isArray(list) || list.length === 0) throw new UsageError(`${file}: no service in it`);
  return list.map((s) => normaliseInput(s as Record<string, unknown>));
}

/** Accept friendly spellings (tcp, draining) for the API's enum names. */
function normaliseInput(s: Record<string, unknown>): ServiceInput {
  const out = { ...s } as ServiceInput & Record<string, unknown>;
  if (Array.isArray(s['ports'])) {
    out.ports = (s['ports'] as Array<Record<string, unknown>>).map((p) => ({
      ...p,
      ...(typeof p['protocol'] === 'string' ? { protocol: p['protocol'].toUpperCase() as ProtocolName } : {}),
    }));
  }
  if (Array.isArray(s['backends'])) {
    out.backends = (s['backends'] as Array<Record<string, unknown>>).map((b) => ({
      ...b,
      ...(typeof b['state'] === 'string' ? { state: b['state'].toUpperCase() as BackendStateName } : {}),
    }));
  }
  return out;
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

function hostPort(s: string | undefined, flag: string): { address: string; port: number } {
  const m = s === undefined ? null : /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(s);
  if (!m) throw new UsageError(`--${flag}: must be IP:PORT, got ${s ?? 'nothing'}`);
  return { address: m[1]!, port: Number(m[2]) };
}

async function serviceCommand(args: string[], print: (s: string) => void): Promise<void> {
  const [sub, ...rest] = args;
  const { values: v, positionals: p } = parse(rest, {
    file: { type: 'string', short: 'f' },
    'expected-revision': { type: 'string' },
    prefix: { type: 'string' },
    address: { type: 'string' },
  });
  const fmt = parseFormat(str(v, 'output'));
  const expected = int(v, 'expected-revision');
  switch (sub) {
    case 'apply': {
      const file = str(v, 'file');
      if (!file) throw new UsageError('service apply: -f FILE is required');
      const services = await readServices(file);
      const applied = await withClient(v, async (c) => {
        if (services.length === 1) {
          return [await c.applyService(services[0]!, expected === undefined ? {} : { expectedRevision: expected })];
        }
        if (expected !== undefined) throw new UsageError('--expected-revision applies to a file with one service');
        return (await c.applyServices(services.map((service) => ({ service })))).services;
      });
      print(emit(fmt, applied, () => applied.map((s) => `service ${s.name} applied (revision ${s.revision})`).join('\n')));
      return;
    }
    case 'list': {
      const all = await withClient(v, async (c) => {
        const out: ServiceMessage[] = [];
        let pageToken = '';
        do {
          const page = await c.listServices({ pageSize: 500, pageToken, namePrefix: str(v, 'prefix') ?? '', address: str(v, 'address') ?? '' });
          out.push(...page.services);
          pageToken = page.nextPageToken;
        } while (pageToken);
        return out;
      });
      print(emit(fmt, all, () => serviceRows(all)));
      return;
    }
    case 'get': {
      const name = positional(p, 0, 'service name');
      const s = await withClient(v, (c) => c.getService(name));
      print(emit(fmt, s, () => serviceDetail(s)));
      return;
    }
    case 'delete': {
      const name = positional(p, 0, 'service name');
      const rev = await withClient(v, (c) => c.deleteService(name, expected === undefined ? {} : { expectedRevision: expected }));
      print(emit(fmt, { name, revision: rev }, () => `service ${name} deleted (revision ${rev})`));
      return;
    }
    default:
      throw new UsageError(`service: unknown subcommand ${JSON.stringify(sub ?? '')} (apply, list, get, delete)`);
  }
}

async function backendCommand(args: string[], print: (s: string) => void): Promise<void> {
  const [sub, ...rest] = args;
  const { values: v, positionals: p } = parse(rest, {
    weight: { type: 'string' },
    ttl: { type: 'string' },
    keepalive: { type: 'boolean' },
  });
  const fmt = parseFormat(str(v, 'output'));
  const service = positional(p, 0, 'service name');
  const address = positional(p, 1, 'backend address');
  const states: Record<string, BackendStateName> = { drain: 'DRAINING', activate: 'ACTIVE', maintenance: 'MAINTENANCE' };
  switch (sub) {
    case 'register': {
      const c = client(v);
      try {
        const weight = int(v, 'weight');
        const ttl = int(v, 'ttl');
        const r = await c.registerBackend({ service, address, ...(weight !== undefined ? { weight } : {}), ...(ttl !== undefined ? { ttlSeconds: ttl } : {}) });
        print(emit(fmt, r, () => `backend ${address} registered in ${service}: lease ${r.leaseId}, ttl ${r.ttlSeconds}s`));
        if (v['keepalive']) await keepAlive(c, r.leaseId, r.ttlSeconds, print);
      } finally {
        c.close();
      }
      return;
    }
    case 'deregister': {
      const s = await withClient(v, (c) => c.deregisterBackend(service, address));
      print(emit(fmt, s, () => `backend ${address} removed from ${service} (revision ${s.revision})`));
      return;
    }
    default: {
      const state = states[sub ?? ''];
      if (!state) throw new UsageError(`backend: unknown subcommand ${JSON.stringify(sub ?? '')} (register, deregister, drain, activate, maintenance)`);
      const s = await withClient(v, (c) => c.setBackendState(service, address, state));
      print(emit(fmt, s, () => `backend ${address} of ${service} is now ${lower(state)} (revision ${s.revision})`));
    }
  }
}

/** Keep a lease alive over the KeepAlive stream until Ctrl-C or the server ends it. */
function keepAlive(c: SluiceClient, leaseId: string, ttl: number, print: (s: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = c.keepAlive();
    const every = Math.max(250, (ttl * 1000) / 3);
    const timer = setInterval(() => stream.write({ leaseId }), every);
    stream.write({ leaseId });
    const stop = (): void => {
      clearInterval(timer);
      stream.end();
    };
    process.once('SIGINT', () => {
      print('keepalive stopped');
      stop();
      resolve();
    });
    stream.on('error', (err: Error) => {
      clearInterval(timer);
      reject(err);
    });
    stream.on('end', () => {
      clearInterval(timer);
      resolve();
    });
  });
}

const n = (x: string | undefined | null): string => x ?? '0';

async function statsCommand(args: string[], print: (s: string) => void): Promise<void> {
  const { values: v, positionals: p } = parse(args, {});
  const fmt = parseFormat(str(v, 'output'));
  const r = await withClient(v, (c) => c.getStats(p[0]));
  print(emit(fmt, r, () => {
    const rows: Array<Array<string | number>> = [];
    for (const s of r.services) {
      rows.push([s.name, '', n(s.counters?.packets), n(s.counters?.bytes), n(s.counters?.newConnections), n(s.counters?.replyPackets)]);
      for (const b of s.backends) {
        rows.push(['', `${b.address} (${lower(b.state)})`, n(b.counters?.packets), n(b.counters?.bytes), n(b.counters?.newConnections), n(b.counters?.replyPackets)]);
      }
    }
    const g = r.globalStats;
    const d = g?.drops;
    return [
      table(['SERVICE', 'BACKEND', 'PACKETS', 'BYTES', 'CONNECTIONS', 'REPLIES'], rows),
      '',
      `global: rx ${n(g?.rxPackets)}, forwarded ${n(g?.forwarded)}, via stack ${n(g?.forwardedStack)}, replies ${n(g?.replies)}, passed ${n(g?.passedOther)}`,
      `drops:  no_service ${n(d?.noService)}, no_backend ${n(d?.noBackend)}, malformed ${n(d?.malformed)}, fragment ${n(d?.fragment)}, ct_full ${n(d?.ctFull)}`,
    ].join('\n');
  }));
}

async function flowCommand(args: string[], print: (s: string) => void): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'lookup') throw new UsageError(`flow: unknown subcommand ${JSON.stringify(sub ?? '')} (lookup)`);
  const { values: v } = parse(rest, { client: { type: 'string' }, vip: { type: 'string' }, protocol: { type: 'string' } });
  const fmt = parseFormat(str(v, 'output'));
  const cl = hostPort(str(v, 'client'), 'client');
  const vip = hostPort(str(v, 'vip'), 'vip');
  const proto = (str(v, 'protocol') ?? 'tcp').toUpperCase();
  if (proto !== 'TCP' && proto !== 'UDP') throw new UsageError(`--protocol: must be tcp or udp, got ${str(v, 'protocol')}`);
  const r = await withClient(v, (c) =>
    c.lookupFlow({ clientAddress: cl.address, clientPort: cl.port, address: vip.address, port: vip.port, protocol: proto }));
  print(emit(fmt, r, () =>
    r.reason === 'NO_BACKEND'
      ? `${cl.address}:${cl.port} -> ${vip.address}:${vip.port}/${lower(proto)}: no backend (service ${r.service})`
      : `${cl.address}:${cl.port} -> ${vip.address}:${vip.port}/${lower(proto)} goes to ${r.backendAddress}:${r.backendPort} ` +
        `(service ${r.service}, by ${lower(r.reason)}${r.reason === 'MAGLEV' ? `: hash ${r.flowHash >>> 0}, slot ${r.maglevSlot} of ${r.tableSize}` : ''})`));
}

async function conntrackCommand(args: string[], print: (s: string) => void): Promise<void> {
  const [sub, ...rest] = args;
  const { values: v } = parse(rest, { service: { type: 'string' }, backend: { type: 'string' }, client: { type: 'string' }, all: { type: 'boolean' } });
  const fmt = parseFormat(str(v, 'output'));
  const filter = { service: str(v, 'service') ?? '', backendAddress: str(v, 'backend') ?? '', clientAddress: str(v, 'client') ?? '' };
  if (sub === 'list') {
    const all = await withClient(v, async (c) => {
      const out = [];
      let pageToken = '';
      do {
        const page = await c.listConnections({ ...filter, pageSize: 1000, pageToken });
        out.push(...page.connections);
        pageToken = page.nextPageToken;
      } while (pageToken);
      return out;
    });
    print(emit(fmt, all, () => table(
      ['CLIENT', 'VIP', 'PROTO', 'BACKEND', 'SERVICE', 'AGE', 'IDLE'],
      all.map((x) => [`${x.clientAddress}:${x.clientPort}`, `${x.address}:${x.port}`, lower(x.protocol), `${x.backendAddress}:${x.backendPort}`, x.service, `${Math.round(Number(x.ageMs) / 1000)}s`, `${Math.round(Number(x.idleMs) / 1000)}s`]),
    )));
    return;
  }
  if (sub === 'flush') {
    const all = v['all'] === true;
    if (!all && !filter.service && !filter.backendAddress && !filter.clientAddress) {
      throw new UsageError('conntrack flush: give --service, --backend, --client or --all');
    }
    const count = await withClient(v, (c) => c.flushConnections({ ...filter, ...(all ? { all } : {}) }));
    print(emit(fmt, { flushed: count }, () => `flushed ${count} conntrack entries`));
    return;
  }
  throw new UsageError(`conntrack: unknown subcommand ${JSON.stringify(sub ?? '')} (list, flush)`);
}

/** The daemon's options; a value it rejects is a wrong command line (exit 2), named by its flag. */
function daemonOptions(o: Parameters<typeof resolveDaemonOptions>[0]): ReturnType<typeof resolveDaemonOptions> {
  try {
    return resolveDaemonOptions(o);
  } catch (err) {
    if (err instanceof SluiceError && err.code === 'INVALID_ARGUMENT') {
      if (err.field === undefined) throw new UsageError(err.message);
      // The message starts with the field's name; the flag's replaces it.
      const reason = err.message.slice(`${err.field}: `.length);
      throw new UsageError(`--${DAEMON_FLAG[err.field] ?? err.field}: ${reason}`);
    }
    throw err;
  }
}

/** resolveDaemonOptions' field names, as the command line spells them. */
const DAEMON_FLAG: Record<string, string> = { mode: 'mode', listen: 'listen', tls: 'tls-cert', conntrackSize: 'conntrack-size', logLevel: 'log-level' };

async function daemonCommand(args: string[]): Promise<void> {
  const { values: v } = parse(args, {
    interface: { type: 'string', multiple: true },
    mode: { type: 'string' },
    listen: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'require-client-cert': { type: 'boolean' },
    'state-dir': { type: 'string' },
    'pin-dir': { type: 'string' },
    'detach-on-exit': { type: 'boolean' },
    'conntrack-size': { type: 'string' },
    'log-level': { type: 'string' },
    'exit-with-parent': { type: 'boolean' },
  });
  const cert = str(v, 'tls-cert');
  const key = str(v, 'tls-key');
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  const ca = str(v, 'tls-ca');
  const ctSize = int(v, 'conntrack-size');
  const opts = daemonOptions({
    interfaces: (v['interface'] as string[] | undefined) ?? [],
    ...(str(v, 'mode') ? { mode: str(v, 'mode') as AttachMode } : {}),
    ...(str(v, 'listen') ? { listen: str(v, 'listen')! } : {}),
    ...(cert && key ? { tls: { cert, key, ...(ca ? { ca } : {}), requireClientCert: v['require-client-cert'] === true } } : {}),
    ...(str(v, 'state-dir') ? { stateDir: str(v, 'state-dir')! } : {}),
    ...(str(v, 'pin-dir') ? { pinDir: str(v, 'pin-dir')! } : {}),
    detachOnExit: v['detach-on-exit'] === true,
    ...(ctSize !== undefined ? { conntrackSize: ctSize } : {}),
    ...(str(v, 'log-level') ? { logLevel: str(v, 'log-level')! } : {}),
  });
  const d = await startDaemon(opts);
  await new Promise<void>((resolve) => {
    let watch: NodeJS.Timeout | undefined;
    const stop = (): void => {
      clearInterval(watch);
      void d.stop().then(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    // For the demo and tests: a daemon whose parent was killed outright stops too.
    if (v['exit-with-parent']) {
      const parent = process.ppid;
      watch = setInterval(() => {
        if (process.ppid !== parent) stop();
      }, 500);
    }
  });
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const print = (s: string): void => {
    process.stdout.write(s.endsWith('\n') || s === '' ? s : s + '\n');
  };
  switch (cmd) {
    case 'demo': {
      const { values } = parse(rest, { mode: { type: 'string' }, requests: { type: 'string' } });
      const mode = (str(values, 'mode') ?? 'xdp') as AttachMode;
      if (!['xdp', 'xdp-generic', 'tc'].includes(mode)) throw new UsageError(`--mode: must be xdp, xdp-generic or tc, got ${mode}`);
      const requests = int(values, 'requests') ?? 1000;
      if (requests < 1 || requests > 40000) throw new UsageError('--requests: must be in 1..40000');
      await runDemo({ mode, requests });
      return process.exitCode === undefined ? 0 : Number(process.exitCode);
    }
    case 'daemon':
      await daemonCommand(rest);
      return 0;
    case 'service':
      await serviceCommand(rest, print);
      return 0;
    case 'backend':
      await backendCommand(rest, print);
      return 0;
    case 'stats':
      await statsCommand(rest, print);
      return 0;
    case 'flow':
      await flowCommand(rest, print);
      return 0;
    case 'conntrack':
      await conntrackCommand(rest, print);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(cmd)}; see sluice --help`);
  }
}

/** One line per failure: what failed and why; 2 for usage errors, 1 otherwise. */
function describe(err: unknown): { line: string; code: number } {
  if (err instanceof UsageError) return { line: err.message, code: 2 };
  if (err instanceof ApiError) return { line: `${grpcStatus[err.code] ?? err.code}: ${err.message}`, code: 1 };
  if (err instanceof SluiceError) return { line: `${err.code}: ${err.message}`, code: 1 };
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT' && e.path) return { line: `${e.path}: no such file`, code: 1 };
  return { line: (e.message ?? String(err)).split('\n')[0] ?? 'failed', code: 1 };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const { line, code } = describe(err);
    process.stderr.write(`sluice: ${line}\n`);
    process.exit(code);
  },
);

export type { OutputFormat };
