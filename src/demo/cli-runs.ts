/**
 * The CLI commands a demo runs as a person would, tracked so that a Ctrl-C
 * of the demo leaves none behind: stop() refuses new ones (a command the
 * demo's main flow was about to start when the signal came) and ends those
 * in flight, waiting until they have exited.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { cliPath } from './daemon-process.js';

export class CliRuns {
  readonly #running = new Set<ChildProcess>();
  #stopped = false;

  /** Run `sluice args...`; resolves with its stdout, rejects with its stderr (or why it did not run). */
  run(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
    if (this.#stopped) return Promise.reject(new Error('the demo is being torn down'));
    return new Promise((resolve, reject) => {
      const child = execFile(process.execPath, [cliPath(), ...args], { env }, (err, stdout, stderr) => {
        this.#running.delete(child);
        if (err) reject(new Error((stderr || err.message).trim(), { cause: err }));
        else resolve(stdout);
      });
      this.#running.add(child);
    });
  }

  /** Refuse new commands; SIGTERM those in flight and wait for them to exit. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(
      [...this.#running].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
  }
}
