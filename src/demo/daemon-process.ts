/**
 * Run `sluice daemon` as a real child process (the demo and the end-to-end
 * tests do), and clean up after it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packageRoot } from '../package-root.js';
import { connect, type SluiceClient } from '../api/client.js';

/** The compiled CLI (dist/src/cli/main.js), from src/ under tsx or from dist/. */
export function cliPath(): string {
  return path.join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
}

/**
 * The node flags on a script's `#!/usr/bin/env -S node ...` line, so that a
 * script run as `node <flags> script` gets what running it directly gives.
 */
export function nodeFlagsOf(script: string): string[] {
  const first = readFileSync(script, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\S*env -S node((?:\s+--\S+)*)\s*$/.exec(first);
  return m ? m[1]!.split(/\s+/).filter(Boolean) : [];
}

/** A daemon child process (`sluice daemon`, or `sluice kube-proxy`) and what it needs. */
export class DaemonProcess {
  private child: ChildProcess | undefined;
  private output = '';
  readonly socket: string;
  readonly address: string;

  private constructor(
    readonly dir: string,
    readonly pinDir: string,
    private readonly args: string[],
    private readonly command: 'daemon' | 'kube-proxy',
  ) {
    this.socket = path.join(dir, 'sluice.sock');
    this.address = `unix://${this.socket}`;
  }

  /** Prepare (not start) a daemon with its own state dir, socket and pin dir. */
  static async create(tag: string, extraArgs: string[], opts: { command?: 'daemon' | 'kube-proxy' } = {}): Promise<DaemonProcess> {
    const dir = await mkdtemp(path.join(tmpdir(), `sluice-${tag}-${process.pid}-`));
    const pinDir = `/sys/fs/bpf/sluice-${tag}-${process.pid}`;
    return new DaemonProcess(dir, pinDir, extraArgs, opts.command ?? 'daemon');
  }

  /** Kill it if it runs, and remove its state dir, socket and pins. Idempotent. */
  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    await rm(this.dir, { recursive: true, force: true });
    await rm(this.pinDir, { recursive: true, force: true });
  }

  /** Start it (with `extraArgs` after its own) and wait until its API answers. */
  async start(extraArgs: string[] = []): Promise<void> {
    this.output = '';
    // SLUICE_DAEMON_NODE_ARGS (e.g. "--cpu-prof") lets a benchmark profile the daemon.
    const nodeArgs = (process.env['SLUICE_DAEMON_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [
      ...nodeFlagsOf(cliPath()),
      ...nodeArgs,
      cliPath(), this.command,
      '--listen', this.address,
      '--state-dir', path.join(this.dir, 'state'),
      '--pin-dir', this.pinDir,
      '--conntrack-size', '65536',
      '--log-level', 'warn',
      '--exit-with-parent',
      // Many daemons run at once (tests, the demo's nodes): none takes the
      // default metrics port; one that wants /metrics gives its own
      // --metrics-bind-address in its args, which come after (the last wins).
      ...(this.command === 'daemon' ? ['--metrics-bind-address', ''] : []),
      ...this.args,
      ...extraArgs,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (b: Buffer) => (this.output += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (this.output += b.toString()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`daemon exited (${child.exitCode}): ${this.output}`);
      const c = connect(this.address);
      try {
        if ((await c.health()) === 'SERVING') return;
      } catch {
        /* not yet */
      } finally {
        c.close();
      }
      if (Date.now() > deadline) throw new Error(`daemon did not serve within 30 s: ${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Send a signal and wait for the process to end. */
  async stop(signal: NodeJS.Signals): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill(signal);
    return done;
  }

  /** Kill without waiting (teardown). */
  kill(signal: NodeJS.Signals): void {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** A client of this daemon (close it yourself). */
  client(): SluiceClient {
    return connect(this.address);
  }

  /** The daemon's process id while it runs. */
  pid(): number | undefined {
    return this.child?.pid;
  }

  /** What the daemon printed. */
  log(): string {
    return this.output;
  }
}
