/**
 * Run a sync when asked, at most once per `minIntervalMs` (kube-proxy's
 * minSyncPeriod, its BoundedFrequencyRunner): a request while idle and
 * past the interval runs at once, so a lone change waits for nothing;
 * requests during a run, or within the interval after one, collapse into
 * one run when the interval is over. Runs never overlap.
 */
export interface SyncRunnerOptions {
  /** The sync; a failure goes to onError, and the next request runs it again. */
  run: () => Promise<void>;
  onError: (err: unknown) => void;
  minIntervalMs: number;
  /** Also run this long after the last run, asked or not (0: never). */
  periodMs?: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
}

export class SyncRunner {
  private readonly o: Required<SyncRunnerOptions>;
  private running = false;
  private pending = false;
  private lastEnd = -Infinity;
  private timer: { cancel(): void } | undefined;
  private stopped = false;
  private idle: Array<() => void> = [];

  constructor(o: SyncRunnerOptions) {
    this.o = {
      periodMs: 0,
      now: () => performance.now(),
      setTimer: (fn, ms) => {
        const t = setTimeout(fn, ms);
        t.unref?.();
        return { cancel: () => clearTimeout(t) };
      },
      ...o,
    };
  }

  /** Ask for a run. */
  request(): void {
    if (this.stopped) return;
    this.pending = true;
    if (this.running) return;
    const wait = this.lastEnd + this.o.minIntervalMs - this.o.now();
    if (wait <= 0) {
      void this.runNow();
      return;
    }
    this.arm(wait);
  }

  /** Resolves when no run is going on and none is asked for. */
  settled(): Promise<void> {
    if (!this.running && !this.pending) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer?.cancel();
    this.timer = this.o.setTimer(() => {
      this.timer = undefined;
      if (this.pending) void this.runNow();
      else if (this.o.periodMs > 0) this.request();
    }, ms);
  }

  private async runNow(): Promise<void> {
    if (this.stopped) return;
    this.timer?.cancel();
    this.timer = undefined;
    this.running = true;
    this.pending = false;
    try {
      await this.o.run();
    } catch (err) {
      this.o.onError(err);
    } finally {
      this.running = false;
      this.lastEnd = this.o.now();
      if (!this.stopped) {
        if (this.pending) this.arm(this.o.minIntervalMs);
        else if (this.o.periodMs > 0) this.arm(this.o.periodMs);
      }
      if (!this.pending) for (const f of this.idle.splice(0)) f();
    }
  }
}
