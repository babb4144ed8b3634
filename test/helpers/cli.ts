/**
 * Run the compiled `sluice` CLI as a person would: a child process, its
 * output collected whole, its exit status.
 */
import { spawn } from 'node:child_process';
import { cliPath, nodeFlagsOf } from '../../src/demo/daemon-process.js';

/** What a run printed and how it ended. */
export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run `sluice ...args`; `input` is written to its standard input. */
export function sluice(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlagsOf(cliPath()), cliPath(), ...args], {
      env: { ...process.env, SLUICE_SERVER: '', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** The shell-quoted command line of the CLI, for pipelines run with `sh -c`. */
export function sluiceCommand(): string {
  return [process.execPath, ...nodeFlagsOf(cliPath()), cliPath()].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
}
