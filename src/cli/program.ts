/**
 * The command tree of `sluice`, on commander: every command and
 * subcommand has `--help`, `sluice --version` prints the version, and the
 * global options (--server, -o, the TLS files) are taken before or after
 * the command. Option values are checked as they are parsed: a wrong one is
 * a wrong command line (exit 2) named by its flag.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import path from 'node:path';
import { Command, Option } from 'commander';
import type { AttachMode } from '../dataplane/dataplane.js';
import type { ClientTlsOptions, SluiceClient } from '../api/client.js';
import type { BackendStateName, ConntrackGcStatsMessage, GetStatsResponse, MapStatsMessage, ServiceMessage } from '../api/messages.js';
import { CAPACITY_FLAG } from '../daemon/capacity.js';
import { DAEMON_FLAGS, type DaemonFlag, type DaemonFlags } from './daemon-flags.js';
import { KUBE_PROXY_FLAGS, parseDuration, type KubeProxyFlags } from './kube-proxy-flags.js';
import { canonicalAddress, compareAddresses, familyName, familyOf as addressFamily, flowAddressProblem, hostPort, unbracketedIPv6 } from '../model/address.js';
import { MAX_WEIGHT } from '../model/limits.js';
import { LEASE_TTL } from '../store/lease.js';
import { SluiceError } from '../errors.js';
import { packageRoot } from '../package-root.js';
import { checkHostPort } from './host-port.js';
import { emit, table, UsageError, type OutputFormat } from './output.js';
import { backendsColumn, backendsLine, familiesLine, missingFamilyWarnings } from './service-view.js';

/** Where the CLI looks for the daemon without --server or $SLUICE_SERVER. */
export const DEFAULT_SERVER = 'unix:///run/sluice/sluice.sock';

/** The global options, as commander gives them. */
interface GlobalOptions {
  server?: string;
  timeout: number;
  output: OutputFormat;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
}

/** sluice's version, from its package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** A value typed on the command line as a message quotes it: a long one by its length. */
function typed(v: string): string {
  return v.length <= 64 ? v : `a value of ${v.length} characters`;
}

/** An integer option in min..max, refused as typed otherwise. */
function intOption(flag: string, min: number, max: number) {
  return (v: string): number => {
    const n = /^-?\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${flag}: must be an integer in ${min}..${max}, got ${typed(v)}`);
    return n;
  };
}

/** One of `values`, refused as typed otherwise. */
export function choice<T extends string>(flag: string, values: readonly T[]) {
  return (v: string): T => {
    // Any case: `-o json` prints enums in capitals (ESTABLISHED), and people
    // type back what they read.
    const lower = v.toLowerCase();
    const hit = values.find((x) => x.toLowerCase() === lower);
    if (hit === undefined) {
      throw new UsageError(`${flag}: must be ${values.slice(0, -1).join(', ')} or ${values.at(-1)}, got ${typed(v)}`);
    }
    return hit;
  };
}

/**
 * IPv4:PORT or [IPv6]:PORT (the brackets tell the address's colons from the
 * port's), the address in its one text, refused when no flow has it as its
 * `role`.
 */
function ipPort(flag: string, example: string, role: 'client' | 'VIP') {
  return (v: string): { address: string; port: number } => {
    const unbracketed = unbracketedIPv6(v, Number(example.split(':').at(-1)));
    if (unbracketed) throw new UsageError(`--${flag}: ${unbracketed}`);
    const m = /^(?:([^:[\]]+)|\[([^\]]+)\]):(\d+)$/.exec(v);
    const port = m ? Number(m[3]) : NaN;
    const given = m ? (m[1] ?? m[2]) : undefined;
    const address = canonicalAddress(given);
    const family = m?.[1] !== undefined ? address?.includes(':') === false : address?.includes(':') === true;
    if (!m || address === undefined || !family || !(port >= 1 && port <= 65535)) {
      throw new UsageError(`--${flag}: must be IP:PORT (e.g. ${example}, or [2001:db8::5]:${example.split(':').at(-1)} for IPv6), got ${typed(v)}`);
    }
    const why = flowAddressProblem(address, role);
    if (why !== undefined) throw new UsageError(`--${flag}: ${why}`);
    return { address, port };
  };
}

/** An address of either family in its one text; with a `role`, refused when no flow has it as that (a filter that would match nothing). */
function ipAddress(flag: string, role?: 'client' | 'backend') {
  return (v: string): string => {
    const address = canonicalAddress(v);
    const name = flag.startsWith('<') ? flag : `--${flag}`;
    if (address === undefined) throw new UsageError(`${name}: must be an IPv4 or IPv6 address, got ${typed(v)}`);
    const why = role === undefined ? undefined : flowAddressProblem(address, role);
    if (why !== undefined) throw new UsageError(`${name}: ${why}`);
    return address;
  };
}

/** --interval of top: a duration in 100ms..1h, in ms. */
function topInterval(v: string): number {
  // A bare number could be seconds or milliseconds: the unit is asked for.
  if (/^\d+(\.\d+)?$/.test(v)) throw new UsageError(`--interval: give a duration with a unit, e.g. 1s or 500ms, got ${v}`);
  const ms = parseDuration('interval', v);
  if (ms < 100 || ms > 3_600_000) throw new UsageError(`--interval: must be between 100ms and 1h, got ${typed(v)}`);
  return ms;
}

/** A TLS file's contents; a UsageError naming the flag if it cannot be read. */
function readTlsFile(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`${flag}: ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
  }
}

/**
 * A server error about item i of an apply ("requests[3].service.ports[0]
 * .target_port") said where the item is in its file ("web.yaml:
 * [3].ports[0].targetPort"), as a file's own mistakes are.
 */
function inFile(err: unknown, items: ReadonlyArray<{ where: string; path: string }>): unknown {
  const e = err as { name?: string; field?: string; message?: string; codeName?: string };
  if (e.name !== 'ApiError' || e.field === undefined) return err;
  const m = /^requests\[(\d+)\](?:\.service)?(?:\.(.*))?$/.exec(e.field);
  const item = m ? items[Number(m[1])] : undefined;
  if (!m || !item) return err;
  const camel = (m[2] ?? '').replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const field = m[2] === 'expected_revision' ? `${item.path ? `${item.path}.` : ''}revision` : [item.path, camel].filter(Boolean).join(camel.startsWith('[') ? '' : '.');
  let description = (e.message ?? '').replace(/^[^:]*: /, '');
  if (m[2] === 'expected_revision' && e.codeName === 'FAILED_PRECONDITION') {
    description += ': the file is older than the service; get it again (sluice service get NAME -o yaml), or remove its revision line to apply regardless';
  }
  return new SluiceError(e.codeName as never, `${item.where}: ${field ? `${field}: ` : ''}${description}`, { cause: err });
}

/** A backend address given as an argument, checked before anything is sent. */
function addressArg(v: string): string {
  const address = canonicalAddress(v);
  if (address === undefined) throw new UsageError(`<address>: must be an IPv4 or IPv6 address, got ${typed(v)}`);
  return address;
}

const lower = (s: string | number): string => String(s).toLowerCase();
const n = (x: string | undefined | null): string => x ?? '0';

/** A table of flags (daemon-flags.ts, kube-proxy-flags.ts) as a command's options. */
function addFlags(cmd: Command, flags: readonly DaemonFlag[]): void {
  for (const f of flags) {
    const opt = new Option(f.flags, f.description);
    if (f.choices) opt.argParser(choice(f.flags.split(' ')[0]!, f.choices));
    if (f.parse) opt.argParser(f.parse);
    if (f.hidden) opt.hideHelp();
    cmd.addOption(opt);
  }
}

/**
 * The program, and a function that tells the daemon address the command
 * used (for error messages). Each action loads what it needs when it runs
 * (the gRPC client, the daemon, the demo), so that `--help` and a wrong
 * command line answer without loading them.
 */
export function buildProgram(): { program: Command; server: () => string } {
  let globals: GlobalOptions = { output: 'table', timeout: 30 };
  const serverOf = (g: GlobalOptions): string => g.server ?? (process.env['SLUICE_SERVER'] || DEFAULT_SERVER);

  const program = new Command('sluice')
    .description('sluice: an eBPF service load balancer (XDP/tc dataplane, gRPC control plane)')
    .version(version(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .option('--server <address>', `the daemon's API: unix:///path, host:port or [v6]:port, e.g. [::1]:19470 (default $SLUICE_SERVER or ${DEFAULT_SERVER})`)
    .option('-o, --output <format>', 'output format: table, json or yaml', choice('-o', ['table', 'json', 'yaml'] as const), 'table')
    .option('--tls-ca <file>', 'CA certificate (PEM) that the other end\'s certificate must chain to')
    .option('--tls-cert <file>', 'certificate (PEM): the client\'s, for mutual TLS; for `daemon`, the server\'s')
    .option('--tls-key <file>', 'private key (PEM) of --tls-cert')
    .option('--tls-server-name <name>', 'name to verify in the server\'s certificate (clients only)')
    .option('--timeout <seconds>', 'give up on a call the daemon does not answer within this time', intOption('timeout', 1, 86400), 30)
    .showSuggestionAfterError()
    .showHelpAfterError(false)
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({ outputError: () => undefined })
    .exitOverride()
    .hook('preAction', (_, action) => {
      globals = action.optsWithGlobals<GlobalOptions>();
    });
  program.addHelpText('after', `
Exit status: 0 done, 1 a call failed or an input file is wrong, 2 a wrong command line.
Run \`sluice <command> --help\` for a command's options.`);

  const print = (s: string): void => {
    process.stdout.write(s.endsWith('\n') || s === '' ? s : s + '\n');
  };
  const client = async (): Promise<SluiceClient> => {
    const given = serverOf(globals);
    const server = /^unix:\/\/\/./.test(given)
      ? given
      : checkHostPort(given, { flag: '--server', forms: 'unix:///absolute/path, host:port or [v6]:port', examplePort: 19470, minPort: 1, ...(globals.server === undefined ? { from: ' (from $SLUICE_SERVER)' } : {}) });
    if ((globals.tlsCert === undefined) !== (globals.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
    const tls: ClientTlsOptions = {};
    for (const [flag, file, key] of [['--tls-ca', globals.tlsCa, 'ca'], ['--tls-cert', globals.tlsCert, 'cert'], ['--tls-key', globals.tlsKey, 'key']] as const) {
      if (file !== undefined) tls[key] = readTlsFile(flag, file);
    }
    if (tls.cert && tls.key) {
      try {
        createSecureContext({ cert: tls.cert, key: tls.key });
      } catch (err) {
        throw new UsageError(`--tls-cert, --tls-key: ${globals.tlsCert} and ${globals.tlsKey} do not make a certificate and its key: ${(err as Error).message}`);
      }
    }
    if (globals.tlsServerName) tls.serverName = globals.tlsServerName;
    const useTls = Object.keys(tls).length > 0;
    if (useTls && server.startsWith('unix://')) throw new UsageError(`--tls-*: TLS applies to a TCP address, not ${server}`);
    const { connect } = await import('../api/client.js');
    return connect(server, useTls ? tls : undefined, { callTimeoutMs: globals.timeout * 1000 });
  };
  const withClient = async <T>(fn: (c: SluiceClient) => Promise<T>): Promise<T> => {
    const c = await client();
    try {
      return await fn(c);
    } finally {
      c.close();
    }
  };
  const out = (data: unknown, asTable: () => string): void => print(emit(globals.output, data, asTable));

  // ---- demo
  program
    .command('demo')
    .description('run sluice on a built-in topology of network namespaces (or a simulated Kubernetes node) and balance real HTTP and UDP traffic through it, then tear everything down')
    .argument('[topology]', 'single: one load balancer (default); scale-out: three behind ECMP, on one etcd cluster; kube-proxy: `sluice kube-proxy` on a simulated Kubernetes node, driven with kubectl',
      choice('<topology>', ['single', 'scale-out', 'kube-proxy'] as const), 'single')
    .option('--mode <mode>', 'how to attach: xdp, xdp-generic or tc (kube-proxy: xdp or tc, on the node\'s external link)', choice('--mode', ['xdp', 'xdp-generic', 'tc'] as const), 'xdp')
    .option('--requests <n>', 'HTTP requests and UDP datagrams to send', intOption('requests', 1, 40000), 1000)
    .action(async (topology: 'single' | 'scale-out' | 'kube-proxy', o: { mode: AttachMode; requests: number }) => {
      if (topology === 'kube-proxy') {
        if (o.mode === 'xdp-generic') throw new UsageError('--mode: the kube-proxy demo attaches with xdp or tc, got xdp-generic');
        const { runKubeProxyDemo } = await import('../demo/kube-proxy-demo.js');
        await runKubeProxyDemo({ mode: o.mode, requests: o.requests });
        return;
      }
      if (topology === 'scale-out') {
        const { runScaleoutDemo } = await import('../demo/scaleout-demo.js');
        await runScaleoutDemo({ mode: o.mode, requests: o.requests });
        return;
      }
      const { runDemo } = await import('../demo/demo.js');
      await runDemo({ mode: o.mode, requests: o.requests });
    });

  // ---- kube-proxy
  const kubeProxy = program
    .command('kube-proxy')
    .description('replace kube-proxy on a Kubernetes node: program Services and EndpointSlices into the dataplane until SIGTERM');
  addFlags(kubeProxy, KUBE_PROXY_FLAGS);
  kubeProxy.action(async (o: KubeProxyFlags) => {
    for (const [flag, given] of [['server', globals.server], ['tls-server-name', globals.tlsServerName], ['tls-cert', globals.tlsCert], ['tls-key', globals.tlsKey], ['tls-ca', globals.tlsCa]] as const) {
      if (given !== undefined) throw new UsageError(`--${flag}: not an option of kube-proxy (its API listens on --listen, a local socket)`);
    }
    if (o.cleanup === true) {
      const { runKubeProxyCleanup } = await import('./kube-proxy-command.js');
      const { report, text } = await runKubeProxyCleanup(o);
      out(report, () => text);
      return;
    }
    if (globals.output !== 'table') throw new UsageError('-o: kube-proxy writes JSON logs; -o applies to client commands');
    const { kubeProxyOptions, runKubeProxy } = await import('./kube-proxy-command.js');
    await runKubeProxy(kubeProxyOptions(o), o.exitWithParent === true);
  });

  // ---- daemon
  const daemon = program
    .command('daemon')
    .description('run the control plane: load (or adopt) the dataplane, attach it, serve the API until SIGTERM');
  addFlags(daemon, DAEMON_FLAGS);
  daemon.addHelpText('after', `
TLS: --tls-cert and --tls-key (the server's certificate and key) serve TLS on a
TCP --listen address; add --tls-ca and --require-client-cert for mutual TLS.`);
  daemon.action(async (o: DaemonFlags) => {
    for (const [flag, given] of [['server', globals.server], ['tls-server-name', globals.tlsServerName]] as const) {
      if (given !== undefined) throw new UsageError(`--${flag}: a client option; the daemon listens on --listen`);
    }
    if (globals.output !== 'table') throw new UsageError('-o: the daemon writes JSON logs; -o applies to client commands');
    const { daemonOptions, runDaemon } = await import('./daemon-command.js');
    const opts = daemonOptions(o, { tlsCert: globals.tlsCert, tlsKey: globals.tlsKey, tlsCa: globals.tlsCa });
    await runDaemon(opts, o.exitWithParent === true);
  });

  // ---- service
  const service = program.command('service').description('define, list, show and delete services');
  service
    .command('apply')
    .description('create or replace the services in YAML or JSON files (each: one service, a list, {services: [...]}, or several documents), all or nothing')
    .requiredOption('-f, --file <file>', 'a file, or - for standard input; repeat for more', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--expected-revision <n>', 'apply only if the service is at this revision (0: create only); for one service', intOption('expected-revision', 0, Number.MAX_SAFE_INTEGER))
    .addHelpText('after', `
A service's revision: in its file (as \`service get -o yaml\` writes it) makes the apply
conditional: it fails if the service changed since. Remove the line to apply regardless.
Backends registered with a lease are kept when the file does not name them.`)
    .action(async (o: { file: string[]; expectedRevision?: number }) => {
      const { readServiceFile } = await import('./service-file.js');
      const { definitionToMessage } = await import('../api/convert.js');
      const items = (await Promise.all(o.file.map((f) => readServiceFile(f)))).flat();
      if (o.expectedRevision !== undefined && items.length !== 1) {
        throw new UsageError(`--expected-revision applies to one service; ${o.file.join(', ')} hold ${items.length}`);
      }
      const seen = new Map<string, string>();
      for (const it of items) {
        const first = seen.get(it.definition.name);
        if (first !== undefined) throw new UsageError(`service ${it.definition.name} is in ${first} and in ${it.where}: give it once`);
        seen.set(it.definition.name, it.where);
      }
      const expected = (it: (typeof items)[number]): number | undefined => o.expectedRevision ?? it.revision;
      const r = await withClient((c) =>
        c.applyServices(items.map((it) => {
          const e = expected(it);
          return { service: definitionToMessage(it.definition), ...(e !== undefined ? { expectedRevision: e } : {}) };
        })),
      ).catch((err: unknown) => {
        throw inFile(err, items);
      });
      const unchanged = new Set(r.unchanged);
      const fileBackends = new Map(items.map((it) => [it.definition.name, new Set(it.definition.backends.map((b) => b.address))]));
      const keptNote = (s: ServiceMessage): string => {
        const kept = s.backends.filter((b) => b.leaseId && !fileBackends.get(s.name)?.has(b.address)).length;
        return kept === 0 ? '' : `; ${kept} registered backend${kept === 1 ? '' : 's'} kept`;
      };
      out(
        r.services.map((s) => ({ ...asFile(s), unchanged: unchanged.has(s.name) })),
        () => r.services.map((s) => `service ${s.name} ${unchanged.has(s.name) ? 'unchanged' : 'applied'} (revision ${s.revision}${keptNote(s)})`).join('\n'),
      );
      // Applied all the same: the backends of the missing family may register later.
      for (const w of r.services.flatMap(missingFamilyWarnings)) process.stderr.write(`sluice: ${w}\n`);
    });
  service
    .command('list')
    .description('list services')
    .option('--prefix <prefix>', 'only names starting with this')
    .option('--address <vip>', 'only services with this VIP', ipAddress('address'))
    .action(async (o: { prefix?: string; address?: string }) => {
      const all = await withClient(async (c) => {
        const acc: ServiceMessage[] = [];
        let pageToken = '';
        do {
          const page = await c.listServices({ pageSize: 1000, pageToken, namePrefix: o.prefix ?? '', address: o.address ?? '' });
          acc.push(...page.services);
          pageToken = page.nextPageToken;
        } while (pageToken);
        return acc;
      });
      out(all.map(asFile), () => serviceRows(all));
    });
  service
    .command('get')
    .description('show one service: its VIPs, ports, backends and Maglev table size')
    .argument('<name>', 'the service')
    .action(async (name: string) => {
      const s = await withClient((c) => c.getService(name));
      out(asFile(s), () => serviceDetail(s));
    });
  service
    .command('delete')
    .description('delete services, one after another')
    .argument('<name...>', 'the services')
    .option('--expected-revision <n>', 'delete only if the service is at this revision (one service)', intOption('expected-revision', 1, Number.MAX_SAFE_INTEGER))
    .action(async (names: string[], o: { expectedRevision?: number }) => {
      if (o.expectedRevision !== undefined && names.length !== 1) throw new UsageError('--expected-revision applies to one service');
      const done: Array<{ name: string; revision: string }> = [];
      await withClient(async (c) => {
        for (const name of names) {
          const rev = await c.deleteService(name, o.expectedRevision === undefined ? {} : { expectedRevision: o.expectedRevision });
          done.push({ name, revision: String(rev) });
          // Said as each one goes: a failure further on leaves these deleted.
          if (globals.output === 'table') print(`service ${name} deleted (revision ${rev})`);
        }
      });
      if (globals.output !== 'table') out(names.length === 1 ? done[0] : done, () => '');
    });

  // ---- backend
  const backend = program.command('backend').description('register backends and change their state');
  backend
    .command('register')
    .description('add a backend under a lease: it is removed when the lease expires (or at once on Ctrl-C with --keepalive)')
    .argument('<service>', 'the service')
    .argument('<address>', 'the backend\'s IPv4 or IPv6 address', addressArg)
    .option('--weight <w>', `weight in the Maglev table, 0..${MAX_WEIGHT} (default: 1, or the backend's current weight)`, intOption('weight', 0, MAX_WEIGHT))
    .option('--ttl <seconds>', `lease TTL, ${LEASE_TTL.min}..${LEASE_TTL.max} (default 10)`, intOption('ttl', LEASE_TTL.min, LEASE_TTL.max))
    .option('--keepalive', 'keep the lease alive until Ctrl-C (or SIGTERM), then deregister')
    .action(async (svc: string, address: string, o: { weight?: number; ttl?: number; keepalive?: boolean }) => {
      const c = await client();
      try {
        const r = await c.registerBackend({ service: svc, address, ...(o.weight !== undefined ? { weight: o.weight } : {}), ...(o.ttl !== undefined ? { ttlSeconds: o.ttl } : {}) });
        out(r, () => `backend ${address} registered in ${svc}: lease ${r.leaseId}, ttl ${r.ttlSeconds}s`);
        if (o.keepalive) {
          await keepAlive(c, { service: svc, address, ttlSeconds: r.ttlSeconds, ...(o.weight !== undefined ? { weight: o.weight } : {}) }, r.leaseId, print);
        }
      } finally {
        c.close();
      }
    });
  backend
    .command('deregister')
    .description('remove a backend (its lease is revoked if no other backend holds it)')
    .argument('<service>', 'the service')
    .argument('<address>', 'the backend\'s address', addressArg)
    .action(async (svc: string, address: string) => {
      const s = await withClient((c) => c.deregisterBackend(svc, address));
      out(s, () => `backend ${address} removed from ${svc} (revision ${s.revision})`);
    });
  const states: Array<[string, BackendStateName, string]> = [
    ['drain', 'DRAINING', 'keep the backend\'s connections, send it no new ones'],
    ['activate', 'ACTIVE', 'take new connections again'],
    ['maintenance', 'MAINTENANCE', 'take the backend out of the dataplane: its connections move to other backends'],
  ];
  for (const [verb, state, what] of states) {
    backend
      .command(verb)
      .description(what)
      .argument('<service>', 'the service')
      .argument('<address>', 'the backend\'s address', addressArg)
      .action(async (svc: string, address: string) => {
        const { s, already } = await withClient(async (c) => {
          // Read first only to say so when there was nothing to change (the call itself makes no revision then).
          const before = await c.getService(svc).catch(() => undefined);
          const after = await c.setBackendState(svc, address, state);
          const was = before?.backends.find((b) => b.address === address)?.state;
          return { s: after, already: was === state && before?.revision === after.revision };
        });
        out(s, () => (already
          ? `backend ${address} of ${svc} is already ${lower(state)}: unchanged (revision ${s.revision})`
          : `backend ${address} of ${svc} is now ${lower(state)} (revision ${s.revision})`));
      });
  }

  // ---- stats
  program
    .command('stats')
    .description('counters of every service (or one) and of the dataplane as a whole')
    .argument('[service]', 'only this service')
    .action(async (name: string | undefined) => {
      const r = await withClient((c) => c.getStats(name));
      out(r, () => statsTable(r));
    });

  // ---- top
  program
    .command('top')
    .description('a live view of the services (sorted by packets/s) and, on Enter, of one service\'s backends; keys: Up/Down/j/k select, Enter backends, Esc/Backspace back, s sort (packets/s, bytes/s, name), q quit')
    .argument('[service]', 'start in this service\'s backends')
    // No default value for commander: it would print "(default: 1000)" beside the duration.
    .option('--interval <duration>', 'time between two samples, 100ms..1h (default 1s)', topInterval)
    .option('--once', 'print one frame (two samples an interval apart) and exit; needs no terminal, works in pipes and with -o json|yaml')
    .action(async (service: string | undefined, o: { interval?: number; once?: boolean }) => {
      const once = o.once === true;
      if (!once && globals.output !== 'table') throw new UsageError(`-o ${globals.output}: top prints ${globals.output} only with --once`);
      if (!once && (!process.stdout.isTTY || !process.stdin.isTTY)) {
        throw new UsageError(`top needs a terminal (standard ${process.stdout.isTTY ? 'input' : 'output'} is not one): use --once to print one frame (it works in pipes and with -o json)`);
      }
      const { runTop } = await import('./top.js');
      await withClient((c) => runTop({ client: c, server: serverOf(globals), intervalMs: o.interval ?? 1000, once, output: globals.output, ...(service !== undefined ? { service } : {}) }));
    });

  // ---- flow
  const flow = program.command('flow').description('ask where a flow goes');
  flow
    .command('lookup')
    .description('where a packet of a flow would go now, and why, as the dataplane decides it (nothing is tracked or counted)')
    .requiredOption('--client <ip:port>', 'the client\'s address and port: IPv4:port or [IPv6]:port, e.g. 192.168.1.5:40000 or [2001:db8::5]:40000', ipPort('client', '192.168.1.5:40000', 'client'))
    .requiredOption('--vip <ip:port>', 'the service\'s VIP and port: IPv4:port or [IPv6]:port, e.g. 10.96.0.10:80 or [fd96::10]:80', ipPort('vip', '10.96.0.10:80', 'VIP'))
    .option('--protocol <protocol>', 'tcp or udp', choice('--protocol', ['tcp', 'udp'] as const), 'tcp')
    .option('--syn', 'TCP: ask about a SYN (a new connection on this tuple: a draining backend\'s flow is placed again) rather than a packet of the flow')
    .action(async (o: { client: { address: string; port: number }; vip: { address: string; port: number }; protocol: 'tcp' | 'udp'; syn?: boolean }) => {
      const syn = o.syn === true;
      if (syn && o.protocol !== 'tcp') throw new UsageError(`--syn: a SYN is TCP, not ${o.protocol}`);
      const proto = o.protocol.toUpperCase() as 'TCP' | 'UDP';
      const cl = o.client;
      const vip = o.vip;
      const r = await withClient((c) =>
        c.lookupFlow({ clientAddress: cl.address, clientPort: cl.port, address: vip.address, port: vip.port, protocol: proto, syn }));
      const packet = `${hostPort(cl.address, cl.port)} -> ${hostPort(vip.address, vip.port)}/${o.protocol}${syn ? ' SYN' : ''}`;
      out(r, () =>
        r.reason === 'NO_BACKEND'
          ? `${packet}: no backend (service ${r.service})`
          : r.reason === 'TUPLE_CLASH'
          ? `${packet}: refused: its reply tuple belongs to another live flow of this client port (service ${r.service})`
          : `${packet} goes to ${hostPort(r.backendAddress, r.backendPort)} ` +
            `(service ${r.service}, by ${lower(r.reason)}${r.reason === 'MAGLEV' ? `: hash ${r.flowHash >>> 0}, slot ${r.maglevSlot} of ${r.tableSize}` : ''})`);
    });

  // ---- conntrack
  const conntrack = program.command('conntrack').description('list and flush tracked connections');
  const filters = (cmd: Command): Command =>
    cmd
      .option('--service <name>', 'only this service\'s connections')
      .option('--backend <ip>', 'only connections to this backend', ipAddress('backend', 'backend'))
      .option('--client <ip>', 'only connections from this client', ipAddress('client', 'client'))
      .option('--family <4|6>', 'only IPv4 or only IPv6 connections', choice('--family', ['4', '6'] as const));
  const familyOf = (f: '4' | '6' | undefined): { family?: 'IPV4' | 'IPV6' } => (f === undefined ? {} : { family: f === '4' ? 'IPV4' : 'IPV6' });
  // Each family's flows are in a table of their own: filters of two
  // families match nothing, which is a mistake of the command line, said
  // in its flags before the daemon says it in the API's fields.
  const checkFamilies = (o: { backend?: string; client?: string; family?: '4' | '6' }): void => {
    const v = (a: string): string => familyName(addressFamily(a) ?? 4);
    for (const [flag, a] of [['--client', o.client], ['--backend', o.backend]] as const) {
      if (a !== undefined && o.family !== undefined && v(a) !== `IPv${o.family}`) throw new UsageError(`${flag} ${a} is ${v(a)}, and --family is ${o.family}`);
    }
    if (o.client !== undefined && o.backend !== undefined && v(o.client) !== v(o.backend)) {
      throw new UsageError(`--client ${o.client} is ${v(o.client)}, and --backend ${o.backend} is ${v(o.backend)}: a connection's addresses are of one family`);
    }
  };
  filters(conntrack.command('list').description('list tracked connections that are alive (an entry idle past its state\'s timeout is dead: its next packet is placed afresh)'))
    .option('--state <state>', 'only connections in this state: new (TCP, only the SYN seen), established (TCP, or UDP) or closing (TCP, a FIN or RST seen)', choice('--state', ['new', 'established', 'closing'] as const))
    .action(async (o: { service?: string; backend?: string; client?: string; family?: '4' | '6'; state?: 'new' | 'established' | 'closing' }) => {
      checkFamilies(o);
      const filter = { service: o.service ?? '', backendAddress: o.backend ?? '', clientAddress: o.client ?? '', ...familyOf(o.family), ...(o.state !== undefined ? { state: o.state.toUpperCase() as 'NEW' | 'ESTABLISHED' | 'CLOSING' } : {}) };
      const all = await withClient(async (c) => {
        const acc = [];
        let pageToken = '';
        do {
          const page = await c.listConnections({ ...filter, pageSize: 1000, pageToken });
          acc.push(...page.connections);
          pageToken = page.nextPageToken;
        } while (pageToken);
        return acc;
      });
      // The API pages in the table's order; people read them by client.
      all.sort((a, b) => compareAddresses(a.clientAddress, b.clientAddress) || a.clientPort - b.clientPort || compareAddresses(a.address, b.address) || a.port - b.port || a.protocol.localeCompare(b.protocol));
      out(all, () => table(
        ['CLIENT', 'VIP', 'PROTO', 'BACKEND', 'SERVICE', 'STATE', 'AGE', 'EXPIRES IN'],
        all.map((x) => [hostPort(x.clientAddress, x.clientPort), hostPort(x.address, x.port), lower(x.protocol), hostPort(x.backendAddress, x.backendPort), x.service, lower(x.state), span(Number(x.ageMs)), span(Number(x.expiresInMs))]),
      ));
    });
  filters(conntrack.command('flush').description('forget tracked connections: give a filter, or --all'))
    .option('--all', 'every connection')
    .action(async (o: { service?: string; backend?: string; client?: string; family?: '4' | '6'; all?: boolean }) => {
      const filter = { service: o.service ?? '', backendAddress: o.backend ?? '', clientAddress: o.client ?? '', ...familyOf(o.family) };
      const any = o.service !== undefined || o.backend !== undefined || o.client !== undefined || o.family !== undefined;
      if (!any && !o.all) throw new UsageError('conntrack flush: give --service, --backend, --client, --family or --all');
      if (any && o.all) throw new UsageError('conntrack flush: --all goes alone, without filters');
      checkFamilies(o);
      const count = await withClient((c) => c.flushConnections({ ...filter, ...(o.all ? { all: true } : {}) }));
      // A count as the API's JSON gives it (a 64-bit counter is a string), and said in connections, not entries (two a flow).
      out({ flushed: String(count) }, () => `flushed ${count} ${count === 1 ? 'connection' : 'connections'}`);
    });

  return { program, server: () => serverOf(globals) };
}

function serviceRows(services: ServiceMessage[]): string {
  return table(
    ['NAME', 'VIPS', 'PORTS', 'BACKENDS', 'AFFINITY', 'NO BACKENDS', 'REVISION', 'OWNER'],
    services.map((s) => [
      s.name,
      s.addresses.join(','),
      s.ports.map((p) => `${p.port}/${lower(p.protocol)}${p.targetPort !== p.port ? `->${p.targetPort}` : ''}`).join(','),
      backendsColumn(s),
      s.sessionAffinity ? `${s.sessionAffinity.timeoutSeconds}s` : '-',
      lower(s.noBackends),
      s.revision,
      s.owner,
    ]),
  );
}

/**
 * A service for -o json|yaml, as a service file may say it: the health
 * check's unset port (0) and port name ("") are left out, since a file may
 * not write `port: 0` (it would mean a port, not the default).
 */
function asFile(s: ServiceMessage): ServiceMessage | Record<string, unknown> {
  if (!s.healthCheck) return s;
  const unset = (k: string, x: unknown): boolean => (k === 'port' && x === 0) || (k === 'portName' && x === '');
  return { ...s, healthCheck: Object.fromEntries(Object.entries(s.healthCheck).filter(([k, x]) => !unset(k, x))) };
}

function serviceDetail(s: ServiceMessage): string {
  const size = s.effectiveTableSize
    ? `${s.effectiveTableSize} slots${s.tableSize ? ' (set)' : ' (chosen from the backend count)'}`
    : 'none: no backend takes new flows (all draining, in maintenance or of weight 0)';
  // Wide enough for the longest label ("health check:") and a space.
  const line = (label: string, value: string): string => `${`${label}:`.padEnd(14)}${value}`;
  const backends = backendsLine(s);
  return [
    line('name', s.name),
    line('vips', s.addresses.join(', ')),
    line('families', familiesLine(s)),
    ...(backends !== undefined ? [line('backends', backends)] : []),
    line('ports', s.ports.map((p) => `${p.name} ${p.port}/${lower(p.protocol)} -> ${p.targetPort}`).join(', ')),
    line('affinity', s.sessionAffinity ? `ClientIP, ${s.sessionAffinity.timeoutSeconds}s` : 'none'),
    line('table', size),
    line('no backends', s.noBackends === 'DROP'
      ? 'drop (clients wait for their timeouts)'
      : 'reject (a SYN is answered with a RST, UDP with ICMP port unreachable)'),
    line('revision', `${s.revision} (created at ${s.createRevision})`),
    line('owner', s.owner),
    line('health check', s.healthCheck ? healthCheckLine(s.healthCheck) : 'none (every backend counts as up)'),
    '',
    s.healthCheck
      ? table(
          ['BACKEND', 'WEIGHT', 'STATE', 'HEALTH', 'EFFECTIVE', 'LAST PROBE', 'LEASE'],
          s.backends.map((b) => [b.address, b.weight ?? 1, lower(b.state), healthWord(b.health), lower(b.effectiveState === 'STATE_UNSPECIFIED' ? b.state : b.effectiveState), lastProbeWord(b.lastProbe), b.leaseId || '-']),
        )
      : table(['BACKEND', 'WEIGHT', 'STATE', 'LEASE'], s.backends.map((b) => [b.address, b.weight ?? 1, lower(b.state), b.leaseId || '-'])),
  ].join('\n');
}

function healthCheckLine(h: NonNullable<ServiceMessage['healthCheck']>): string {
  const port = h.portName || (h.port ? String(h.port) : 'first TCP port');
  const what = h.type === 'HTTP' || h.type === 'HTTPS'
    ? `${lower(h.type)} GET ${h.path}${h.host ? ` (Host ${h.host})` : ''} on ${port}, status ${h.expectedStatus?.min ?? 200}-${h.expectedStatus?.max ?? 399}`
    : h.type === 'GRPC' ? `grpc health ${h.grpcService ? `of ${h.grpcService} ` : ''}on ${port}` : `tcp connect on ${port}`;
  return `${what}; every ${h.intervalMs} ms, timeout ${h.timeoutMs} ms, rise ${h.rise}, fall ${h.fall}; unhealthy: ${h.onUnhealthy === 'RESET' ? 'flows moved (reset)' : 'flows kept (draining)'}`;
}

function healthWord(h: string): string {
  return h === 'HEALTH_UNSPECIFIED' ? 'not checked' : lower(h);
}

function lastProbeWord(p: ServiceMessage['backends'][number]['lastProbe']): string {
  if (!p) return '-';
  const ago = Math.max(0, Date.now() - Number(p.timeMs));
  const ms = (p.latencyUs / 1000).toFixed(p.latencyUs < 10_000 ? 2 : 0);
  return `${p.ok ? 'ok' : `failed: ${p.error}`} in ${ms} ms, ${span(ago)} ago`;
}

function statsTable(r: GetStatsResponse): string {
  const rows: Array<Array<string | number>> = [];
  for (const s of r.services) {
    rows.push([s.name, '', n(s.counters?.packets), n(s.counters?.bytes), n(s.counters?.newConnections), n(s.counters?.replyPackets)]);
    for (const b of s.backends) {
      rows.push(['', `${b.address} (${lower(b.state)})`, n(b.counters?.packets), n(b.counters?.bytes), n(b.counters?.newConnections), n(b.counters?.replyPackets)]);
    }
  }
  const g = r.globalStats;
  const d = g?.drops;
  const j = g?.rejects;
  const big = (x: string | undefined | null): bigint => BigInt(x ?? '0');
  // `forwarded` and `forwardedStack` count every rewritten packet by how it
  // left (FIB redirect or the stack), replies and translated ICMP errors
  // included.
  const toBackends = big(g?.forwarded) + big(g?.forwardedStack) - big(g?.replies) - big(g?.icmpTranslated);
  const fl = g?.flows;
  return [
    table(['SERVICE', 'BACKEND', 'PACKETS', 'BYTES', 'CONNECTIONS', 'REPLIES'], rows),
    '',
    `packets: rx ${n(g?.rxPackets)}, to backends ${toBackends}, replies ${n(g?.replies)}, passed ${n(g?.passedOther)}, passed malformed ${n(g?.passedMalformed)}`,
    `egress:  redirected ${n(g?.forwarded)}, via stack ${n(g?.forwardedStack)} (of which fib misses ${n(g?.fibMiss)})`,
    `flows:   rescheduled ${n(g?.ctRescheduled)}, affinity hits ${n(g?.affinityHits)}, replies restored without an entry ${n(g?.repliesRestored)} (ambiguous, passed ${n(g?.repliesAmbiguous)}), hairpin ${n(g?.hairpinFlows)}, node sockets ${n(g?.socketsTranslated)}`,
    `lifecycle: expired ${n(fl?.expired)}, untracked ${n(fl?.untracked)}, reply clashes (dropped) ${n(fl?.replyClashes)}, reply entries rewritten ${n(fl?.repliesRecreated)}, stale reply entries removed ${n(fl?.repliesStale)}`,
    `icmp and fragments: icmp errors translated ${n(g?.icmpTranslated)}, fragmentation needed sent ${n(g?.icmpFragNeeded)}, later fragments translated ${n(g?.fragmentsTranslated)}`,
    `rejects: tcp_rst ${n(j?.tcpRst)}, icmp_unreach ${n(j?.icmpUnreachable)} (rate limited, dropped ${n(j?.rateLimited)})`,
    `drops:   no_service ${n(d?.noService)}, no_backend ${n(d?.noBackend)}, malformed ${n(d?.malformed)}, fragment ${n(d?.fragment)}, ct_full ${n(d?.ctFull)}`,
    ...(r.conntrackGc ? [conntrackGcLine(r.conntrackGc)] : []),
    ...(r.maps.length > 0 ? ['', mapsTable(r.maps)] : []),
  ].join('\n');
}

/** 2097152 → "2,097,152" (by hand, as daemon-flags.ts: no ICU). */
const thousands = (x: number): string => String(x).replace(/\B(?=(\d{3})+$)/g, ',');

/** Bytes in MiB, one decimal ("28.0 MiB"), or KiB below one MiB. */
function mem(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** Each map: entries in use of how many, its kernel memory, the flag that sizes it; then the total. */
function mapsTable(maps: readonly MapStatsMessage[]): string {
  const total = maps.reduce((a, m) => a + Number(m.bytes), 0);
  const rows = maps.map((m) => [
    m.name,
    `${m.estimated ? '~' : ''}${thousands(m.entries)}`,
    thousands(m.maxEntries),
    m.maxEntries > 0 ? `${((100 * m.entries) / m.maxEntries).toFixed(1)}%` : '-',
    mem(Number(m.bytes)),
    CAPACITY_FLAG[m.capacity as keyof typeof CAPACITY_FLAG] ?? '',
  ]);
  rows.push(['total', '', '', '', mem(total), '']);
  return table(['MAP', 'ENTRIES', 'MAX', 'USED', 'MEMORY', 'FLAG'], rows);
}

/** Milliseconds as the two largest units: 42s, 3m12s, 5h59m, 2d3h. */
function span(ms: number): string {
  const s = Math.round(ms / 1000);
  const [d, h, m, sec] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60), s % 60];
  if (d) return `${d}d${h ? `${h}h` : ''}`;
  if (h) return `${h}h${m ? `${m}m` : ''}`;
  if (m) return `${m}m${sec ? `${sec}s` : ''}`;
  return `${sec}s`;
}

function conntrackGcLine(c: ConntrackGcStatsMessage): string {
  const last = c.passes === '0' ? 'no pass yet' : `last pass ${n(c.lastPassEntries)} entries in ${(Number(c.lastPassMs) / 1000).toFixed(1)} s (CPU ${(Number(c.lastPassCpuMs) / 1000).toFixed(1)} s)`;
  return `conntrack gc: ${n(c.passes)} ${c.passes === '1' ? 'pass' : 'passes'} every ${c.intervalSeconds}s, deleted ${n(c.entriesDeleted)} entries: expired new ${n(c.expiredNew)}, established ${n(c.expiredEstablished)}, closing ${n(c.expiredClosing)}, orphaned replies ${n(c.orphanedReplies)} (raced, kept ${n(c.raced)}); ${last}`;
}

/**
 * Keep a lease alive over the KeepAlive stream until Ctrl-C (or SIGTERM),
 * then deregister the backend: a backend that stops keeping its lease
 * alive is gone, and waiting for the TTL would send it new flows meanwhile.
 * A daemon that restarts (or is briefly unreachable) is waited for, and a
 * lease that expired meanwhile is replaced by registering again; each event
 * is one line on stderr. One stream at a time: only the current stream's
 * end leads to the next.
 */
function keepAlive(
  c: SluiceClient,
  reg: { service: string; address: string; weight?: number; ttlSeconds: number },
  first: string,
  print: (s: string) => void,
): Promise<void> {
  const note = (s: string): void => void process.stderr.write(`sluice: keepalive: ${s}\n`);
  return new Promise((resolve, reject) => {
    let leaseId = first;
    let stopping = false;
    let waiting = false;
    let stream: ReturnType<SluiceClient['keepAlive']> | undefined;
    let timer: NodeJS.Timeout | undefined;
    let retry: NodeJS.Timeout | undefined;
    const every = Math.max(250, (reg.ttlSeconds * 1000) / 3);
    const fail = (err: unknown): void => {
      stopping = true;
      clearInterval(timer);
      clearTimeout(retry);
      reject(err);
    };
    const reopen = (ms: number): void => {
      clearInterval(timer);
      if (!stopping) retry = setTimeout(open, ms);
    };
    const open = (): void => {
      const s = c.keepAlive();
      stream = s;
      const current = (): boolean => s === stream && !stopping;
      s.write({ leaseId });
      timer = setInterval(() => s.write({ leaseId }), every);
      s.on('data', () => {
        if (!current()) return;
        if (waiting) note('the daemon is back; the lease is alive');
        waiting = false;
      });
      s.on('error', (err: Error & { code?: number; details?: string }) => {
        if (!current()) return;
        stream = undefined;
        if (err.code === grpcCode.NOT_FOUND) {
          clearInterval(timer);
          note(`lease ${leaseId} is gone (${oneLine(err.details ?? err.message)}); registering again`);
          c.registerBackend({ service: reg.service, address: reg.address, ttlSeconds: reg.ttlSeconds, ...(reg.weight !== undefined ? { weight: reg.weight } : {}) }).then(
            (r) => {
              if (stopping) return;
              leaseId = r.leaseId;
              waiting = false;
              note(`registered again: lease ${leaseId}`);
              open();
            },
            fail,
          );
        } else if (err.code === grpcCode.UNAVAILABLE || err.code === grpcCode.CANCELLED || /shutting down/.test(err.message)) {
          if (!waiting) note(`the daemon went away (${oneLine(err.details ?? err.message)}); waiting for it`);
          waiting = true;
          reopen(250);
        } else {
          fail(err);
        }
      });
      s.on('end', () => {
        if (!current()) return;
        stream = undefined;
        reopen(250);
      });
    };
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      clearInterval(timer);
      clearTimeout(retry);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      stream?.end();
      c.deregisterBackend(reg.service, reg.address).then(
        () => {
          print(`keepalive stopped; backend ${reg.address} deregistered from ${reg.service}`);
          resolve();
        },
        (err: unknown) => reject(err),
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    open();
  });
}

/** The gRPC status codes the keepalive loop tells apart. */
const grpcCode = { CANCELLED: 1, NOT_FOUND: 5, UNAVAILABLE: 14 } as const;

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
