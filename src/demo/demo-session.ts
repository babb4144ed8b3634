/**
 * What the demos share around their own steps: one teardown for the
 * normal path, failures and Ctrl-C (SIGINT exits 130, SIGTERM 143, after
 * the teardown); the commands (`sluice`, `kubectl`) run as a person would,
 * shown with their output, and tracked so that a Ctrl-C leaves none behind
 * (a command the main flow was about to start when the signal came is
 * refused, those in flight get SIGTERM and are waited for); and the sweep
 * of what a demo killed outright left in bpffs and the temp directory.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cliPath } from './daemon-process.js';

const BPFFS = '/sys/fs/bpf';

/** Options of DemoSession.command. */
export interface CommandOptions {
  /** The environment (default: the demo's own). */
  env?: NodeJS.ProcessEnv;
  /** The working directory (default: the demo's own). */
  cwd?: string;
  /** The command line to print (default: the file and its arguments). */
  shown?: string;
  /** Print neither the command nor its output (a `-o json` run the demo reads itself). */
  quiet?: boolean;
}

export class DemoSession {
  readonly #running = new Set<ChildProcess>();
  #stopping = false;
  #tornDown: Promise<void> | undefined;
  #interrupted: NodeJS.Signals | undefined;
  readonly #onSignal = (sig: NodeJS.Signals): void => {
    this.out(`\n${sig}: tearing down`);
    this.#interrupted = sig;
    void this.teardown().finally(() => process.exit(exitStatus(sig)));
  };

  /** `teardown` removes what the demo made; it runs once, after the CLI commands have ended. */
  constructor(
    readonly out: (line: string) => void,
    private readonly steps: () => Promise<void>,
  ) {
    process.once('SIGINT', this.#onSignal);
    process.once('SIGTERM', this.#onSignal);
  }

  /** Run `sluice args...` against `server` and show it (not with `-o json`); rejects with the command and its stderr. */
  sluice(server: string, args: readonly string[], shownArgs: readonly string[] = args): Promise<string> {
    return this.command(process.execPath, [cliPath(), ...args], {
      env: { ...process.env, SLUICE_SERVER: server },
      shown: `sluice ${shownArgs.join(' ')}`,
      quiet: args.includes('json'),
    });
  }

  /**
   * Run a program and show it as `$ <shown>` (by default the file and its
   * arguments) with its output indented, unless `quiet`; resolves with its
   * stdout, rejects with the command and its stderr.
   */
  async command(file: string, args: readonly string[], opts: CommandOptions = {}): Promise<string> {
    const shown = opts.shown ?? [file, ...args].join(' ');
    if (!opts.quiet) this.out(`$ ${shown}`);
    try {
      const stdout = await this.#run(file, args, opts);
      if (!opts.quiet) this.out(stdout.trimEnd().split('\n').map((l) => `  ${l}`).join('\n'));
      return stdout;
    } catch (err) {
      throw new Error(`${shown}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** End the CLI commands, then remove what the demo made. Idempotent. */
  teardown(): Promise<void> {
    this.#tornDown ??= (async () => {
      this.#stopping = true;
      await Promise.all([...this.#running].map(endChild));
      await this.steps();
    })();
    return this.#tornDown;
  }

  /** After the demo's own last words: stop listening for signals, and exit as an interrupted demo does. */
  finish(): void {
    process.removeListener('SIGINT', this.#onSignal);
    process.removeListener('SIGTERM', this.#onSignal);
    if (this.#interrupted) process.exit(exitStatus(this.#interrupted));
  }

  #run(file: string, args: readonly string[], opts: CommandOptions): Promise<string> {
    if (this.#stopping) return Promise.reject(new Error('the demo is being torn down'));
    return new Promise((resolve, reject) => {
      const child = execFile(file, args, { env: opts.env ?? process.env, ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}) }, (err, stdout, stderr) => {
        this.#running.delete(child);
        if (err) reject(new Error((stderr || err.message).trim(), { cause: err }));
        else resolve(stdout);
      });
      this.#running.add(child);
    });
  }
}

function exitStatus(sig: NodeJS.Signals): number {
  return sig === 'SIGINT' ? 130 : 143;
}

function endChild(c: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGTERM');
  });
}

/**
 * Remove pin directories and temp directories of demos that died without
 * their teardown: `pattern` matches such a name and captures the pid that
 * made it; those whose process is gone are removed.
 */
export async function removeStaleDemoDirs(pins: RegExp, temps: RegExp): Promise<void> {
  const alive = (pid: number): boolean => existsSync(`/proc/${pid}`);
  for (const [dir, re] of [[BPFFS, pins], [tmpdir(), temps]] as const) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const m = re.exec(name);
      if (m && !alive(Number(m[1]))) await rm(path.join(dir, name), { recursive: true, force: true });
    }
  }
}

/** Pin directories under bpffs whose names start with `prefix` (what a demo checks it left none of). */
export async function pinsLeft(prefix: string): Promise<string[]> {
  return (await readdir(BPFFS).catch(() => [] as string[])).filter((p) => p.startsWith(prefix));
}
