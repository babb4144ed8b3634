/**
 * Progress of a run: a cli-progress bar per stage on a terminal, log lines
 * printed above the bars (through the MultiBar, so that they do not break
 * them); when stdout is not a terminal, plain lines instead, at most one
 * progress line per stage every few seconds.
 */
import cliProgress from 'cli-progress';

import type { StageContext } from './types.js';

/** What a stage's progress reporter gives the stage, and how the runner ends it. */
export interface StageProgress extends Pick<StageContext, 'progress' | 'log'> {
  /** Mark the stage finished: the bar full and "done", or "FAILED". */
  finish(ok: boolean, seconds: number): void;
}

export interface ProgressOptions {
  /** Draw bars (default: whether stdout is a terminal). */
  tty?: boolean;
  /** Where lines go (default: stdout). */
  stream?: NodeJS.WriteStream;
  /** Seconds between two plain progress lines of a stage (default 5). */
  plainEverySeconds?: number;
  /** Width of the stage-name column (default 13, "control-plane"). */
  nameWidth?: number;
}

export class Progress {
  readonly #stream: NodeJS.WriteStream;
  readonly #multi: cliProgress.MultiBar | null;
  readonly #every: number;
  readonly #width: number;
  #stopped = false;

  constructor(options: ProgressOptions = {}) {
    this.#stream = options.stream ?? process.stdout;
    this.#every = (options.plainEverySeconds ?? 5) * 1000;
    this.#width = options.nameWidth ?? 13;
    const tty = options.tty ?? this.#stream.isTTY === true;
    this.#multi = tty
      ? new cliProgress.MultiBar({
        stream: this.#stream,
        format: ' {stage} {bar} {percentage}% | {duration_formatted} | {label}',
        barsize: 28,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        // The runner handles SIGINT/SIGTERM itself (cleanup first) and stops the bars.
        gracefulExit: false,
        autopadding: true,
      }, cliProgress.Presets.shades_classic)
      : null;
  }

  /** A line for the log, above the bars. */
  log(line: string): void {
    if (this.#multi) this.#multi.log(`${line}\n`);
    else this.#stream.write(`${line}\n`);
  }

  /** A stage's bar (or its plain lines). */
  stage(id: string): StageProgress {
    const name = id.padEnd(this.#width);
    if (this.#multi) {
      const multi = this.#multi;
      const bar = multi.create(1, 0, { stage: name, label: 'starting' });
      let total = 1;
      return {
        progress: (done, t, label) => {
          if (t !== total) bar.setTotal((total = Math.max(1, t)));
          bar.update(Math.min(done, total), label === undefined ? {} : { label });
        },
        log: (line) => this.log(`[${id}] ${line}`),
        finish: (ok, seconds) => {
          bar.update(ok ? total : bar.getProgress() * total, { label: ok ? `done in ${seconds.toFixed(1)} s` : 'FAILED' });
          bar.stop();
        },
      };
    }
    let last = 0;
    let lastLabel: string | undefined;
    this.#stream.write(`[${id}] started\n`);
    return {
      progress: (done, total, label) => {
        const now = Date.now();
        if (now - last < this.#every && done < total) return;
        if (done >= total && label === lastLabel && now - last < this.#every) return;
        last = now;
        lastLabel = label;
        this.#stream.write(`[${id}] ${done}/${total}${label ? ` ${label}` : ''}\n`);
      },
      log: (line) => this.log(`[${id}] ${line}`),
      finish: (ok, seconds) => this.#stream.write(`[${id}] ${ok ? 'done' : 'FAILED'} in ${seconds.toFixed(1)} s\n`),
    };
  }

  /** Stop the bars, flushing any log lines not yet drawn. Idempotent. */
  stop(): void {
    if (!this.#multi || this.#stopped) return;
    this.#stopped = true;
    this.#multi.update();
    this.#multi.stop();
  }
}
