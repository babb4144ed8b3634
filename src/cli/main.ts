#!/usr/bin/env -S node --max-semi-space-size=8
/**
 * The `sluice` command: the daemon, the demo, and commands for people on
 * the same gRPC API that programs use (program.ts). Tables by default,
 * `-o json|yaml` for scripts; errors are one line on stderr and a non-zero
 * exit: 1 for a failed call or a bad input file, 2 for a wrong command line.
 *
 * Output is flushed before the process exits: a large listing piped into
 * `jq` or `wc` arrives whole (stdout is asynchronous on a pipe, and
 * process.exit() does not wait for it).
 *
 * The `#!` line caps V8's young generation at 8 MB a semi-space (V8's own
 * cap is 16 MB), for the daemon's sake: V8 grows the nursery to the cap
 * during a bulk load and keeps it, and a long-running server with a steady
 * heap does not need it that large. With 10,000 services x 10 backends
 * applied, the daemon's RSS was 184-206 MB at 16 MB, 171-183 MB at 8 and
 * 159-167 MB at 4; a smaller nursery means more scavenges during the load
 * (its time was within this machine's noise at 8 and 4, the daemon's CPU
 * about 10% higher at 4), hence 8. V8 reads the flag only when the process
 * starts, so it is on the `#!` line, and DaemonProcess takes the flags from
 * there too (nodeFlagsOf).
 */
import { CommanderError } from 'commander';
import { SluiceError } from '../errors.js';
import { UsageError } from './output.js';
import { buildProgram } from './program.js';

/** gRPC's status codes by number (grpc-js is loaded only by the commands that call the daemon). */
const STATUS_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];
const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;

/** One line per failure: what failed and why; 2 for usage errors, 1 otherwise. */
function describe(err: unknown, server: string): { line: string; code: number } {
  if (err instanceof UsageError) return { line: err.message, code: 2 };
  if (err instanceof CommanderError) return { line: oneLine(err.message.replace(/^error: /, '')), code: 2 };
  // Recognised by name: the modules that define these are loaded only by the commands that need them.
  if (err instanceof Error && err.name === 'ServiceFileError') return { line: err.message, code: 1 };
  if (err instanceof Error && err.name === 'ApiError') {
    const e = err as Error & { code: number; codeName: string; fromDaemon?: boolean };
    if (e.code === UNAVAILABLE && e.fromDaemon) return { line: `${e.codeName}: ${oneLine(err.message)}`, code: 1 };
    if (e.code === UNAVAILABLE && /Connection dropped|Call ended without|RST_STREAM/i.test(err.message)) {
      return {
        line: `the connection to the daemon at ${server} dropped during the call (${oneLine(err.message)}): a change may or may not have been made; look (sluice service list) before trying again (applying the same file again is safe)`,
        code: 1,
      };
    }
    if (e.code === UNAVAILABLE) {
      const raw = err.message.replace(/\s*Resolution note:.*$/s, '').replace(/^No connection established\.\s*Last error:\s*/, '').replace(/\.$/, '');
      if (/SSL|TLS|certificate|handshake|self.signed|wrong version number/i.test(raw)) {
        return {
          line: `TLS with the daemon at ${server} failed (${oneLine(raw)}): check --tls-ca (the CA of the daemon's certificate), --tls-server-name, and --tls-cert/--tls-key if it asks for a client certificate`,
          code: 1,
        };
      }
      const why = /ENOENT/.test(err.message) ? 'no socket there' : /ECONNREFUSED/.test(err.message) ? 'connection refused' : raw;
      const tcp = !server.startsWith('unix://');
      return {
        line: `cannot reach the daemon at ${server} (${oneLine(why)}): is \`sluice daemon\` (or \`sluice kube-proxy\`) running there${tcp ? ', and with TLS (then give --tls-ca)' : ''}? --server or $SLUICE_SERVER names another address`,
        code: 1,
      };
    }
    if (e.code === DEADLINE_EXCEEDED) {
      return { line: `the daemon at ${server} did not answer in time (--timeout): is it the sluice API there, and is it overloaded?`, code: 1 };
    }
    return { line: `${e.codeName}: ${oneLine(err.message)}`, code: 1 };
  }
  if (err instanceof SluiceError) return { line: `${err.code}: ${oneLine(err.message)}`, code: 1 };
  // A stream's error, straight from grpc-js: its status, said as the other calls say theirs.
  const status = err as { code?: unknown; details?: unknown };
  if (typeof status.code === 'number' && typeof status.details === 'string') {
    return { line: `${STATUS_NAMES[status.code] ?? status.code}: ${oneLine(status.details)}`, code: 1 };
  }
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT' && e.path) return { line: `${e.path}: no such file`, code: 1 };
  return { line: oneLine(e.message ?? String(err)), code: 1 };
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/** Resolve once everything written to `stream` so far has been handed to the OS. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

async function exit(code: number): Promise<never> {
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}

// A reader that went away (`sluice service list | head`) is not an error of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode === undefined ? 0 : Number(process.exitCode));
    throw err;
  });
}

let settled = false;
// A command whose promise can no longer settle (nothing left on the event
// loop) would otherwise end with status 0 and no output.
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  process.stderr.write('sluice: internal error: the command ended without an answer\n');
  process.exitCode = 1;
});

const { program, server } = buildProgram();
program.parseAsync(process.argv.slice(2), { from: 'user' }).then(
  async () => {
    settled = true;
    await exit(process.exitCode === undefined ? 0 : Number(process.exitCode));
  },
  async (err: unknown) => {
    settled = true;
    if (err instanceof CommanderError && (err.code === 'commander.helpDisplayed' || err.code === 'commander.version')) await exit(0);
    // A command group without its subcommand: its help went to stderr.
    if (err instanceof CommanderError && err.code === 'commander.help') await exit(2);
    const { line, code } = describe(err, server());
    process.stderr.write(`sluice: ${line}\n`);
    await exit(code);
  },
);
