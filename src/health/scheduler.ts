/**
 * When each target is probed: a timing wheel driven by one timer (ticks of
 * `tickMs`), not a timer per target, so 100,000 targets cost one wakeup a
 * tick. A target's first probe falls at a phase given by a hash of its key
 * (so targets spread evenly over their interval), and each later one an interval on, moved by up to ±`jitter` of
 * it from an injected random source so that targets added together drift
 * apart. At most `maxInFlight` probes run at once; those due beyond it wait
 * in order and start as others finish. A target's probe is never started
 * while its last one still runs.
 */

/** The timers the scheduler uses (default: the global ones). */
export interface SchedulerTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** Options of a Scheduler. */
export interface SchedulerOptions<T> {
  /** Run one probe of a target; the promise settles when it is done (it should not reject). */
  run(key: string, item: T): Promise<void>;
  /** Milliseconds now (default Date.now). */
  now?: () => number;
  timers?: SchedulerTimers;
  /** A random number in [0, 1) (default Math.random). */
  rng?: () => number;
  /** Resolution of the wheel, ms (default 10). */
  tickMs?: number;
  /** Probes running at once at most (default 2,048; each holds a socket). */
  maxInFlight?: number;
  /** Largest move of a probe from its interval, as a fraction of it (default 0.1). */
  jitter?: number;
}

interface Entry<T> {
  key: string;
  item: T;
  intervalMs: number;
  /** The tick it is due at. */
  due: number;
  running: boolean;
  /** In the waiting queue. */
  queued: boolean;
  /** Removed: its slot entries are skipped. */
  gone: boolean;
}

/** FNV-1a of a string, 32 bits. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Calls `run` for each target every interval. */
export class Scheduler<T> {
  readonly #run: (key: string, item: T) => Promise<void>;
  readonly #now: () => number;
  readonly #timers: SchedulerTimers;
  readonly #rng: () => number;
  readonly #tickMs: number;
  readonly #maxInFlight: number;
  readonly #jitter: number;
  readonly #entries = new Map<string, Entry<T>>();
  /** Entries due at a tick, by tick number. */
  readonly #slots = new Map<number, Entry<T>[]>();
  /** Due but waiting for a free place in flight. */
  #waiting: Entry<T>[] = [];
  #waitingHead = 0;
  #inFlight = 0;
  /** The last tick processed. */
  #tick: number;
  #timer: unknown;
  #started = 0;

  constructor(o: SchedulerOptions<T>) {
    this.#run = o.run;
    this.#now = o.now ?? Date.now;
    this.#timers = o.timers ?? { setInterval: (fn, ms) => setInterval(fn, ms).unref(), clearInterval: (h) => clearInterval(h as NodeJS.Timeout) };
    this.#rng = o.rng ?? Math.random;
    this.#tickMs = o.tickMs ?? 10;
    this.#maxInFlight = o.maxInFlight ?? 2048;
    this.#jitter = o.jitter ?? 0.1;
    this.#tick = this.#tickOf(this.#now());
  }

  /** Targets scheduled. */
  get size(): number {
    return this.#entries.size;
  }

  /** Probes running now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Probes started since the scheduler was made. */
  get started(): number {
    return this.#started;
  }

  /** Ticks with entries placed at them (a figure for tests: it stays bounded). */
  get slotCount(): number {
    return this.#slots.size;
  }

  /** Probes due but held back by the in-flight cap. */
  get waiting(): number {
    return this.#waiting.length - this.#waitingHead;
  }

  /**
   * Probe `key` every `intervalMs` (replacing its item and interval if it
   * is there; its phase stays when the interval does).
   */
  add(key: string, intervalMs: number, item: T): void {
    const old = this.#entries.get(key);
    if (old && old.intervalMs === intervalMs) {
      old.item = item;
      return;
    }
    if (old) old.gone = true;
    if (this.#timer === undefined) this.#tick = Math.max(this.#tick, this.#tickOf(this.#now()));
    const ticks = Math.max(1, Math.round(intervalMs / this.#tickMs));
    const e: Entry<T> = { key, item, intervalMs, due: this.#tick + 1 + (hash32(key) % ticks), running: old?.running ?? false, queued: false, gone: false };
    this.#entries.set(key, e);
    this.#place(e);
    this.#arm();
  }

  /** Stop probing `key` (a probe of it in flight still finishes). */
  remove(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    e.gone = true;
    this.#entries.delete(key);
    if (this.#entries.size === 0) {
      // The next add() starts the wheel at the tick of its time, past the
      // slots placed so far, which would then never be visited: drop them.
      this.#slots.clear();
      this.#waiting = [];
      this.#waitingHead = 0;
      this.#disarm();
    }
  }

  /** Stop everything. */
  close(): void {
    for (const e of this.#entries.values()) e.gone = true;
    this.#entries.clear();
    this.#slots.clear();
    this.#waiting = [];
    this.#waitingHead = 0;
    this.#disarm();
  }

  /** Process the ticks up to now (the timer calls it; tests may too). */
  advance(): void {
    const now = this.#tickOf(this.#now());
    while (this.#tick < now) {
      this.#tick++;
      const due = this.#slots.get(this.#tick);
      if (!due) continue;
      this.#slots.delete(this.#tick);
      for (const e of due) {
        if (e.gone || e.due !== this.#tick) continue;
        this.#reschedule(e);
        if (e.running || e.queued) continue;
        if (this.#inFlight < this.#maxInFlight) this.#start(e);
        else {
          e.queued = true;
          this.#waiting.push(e);
        }
      }
    }
  }

  #tickOf(ms: number): number {
    return Math.floor(ms / this.#tickMs);
  }

  #reschedule(e: Entry<T>): void {
    const ticks = e.intervalMs / this.#tickMs;
    const move = (this.#rng() * 2 - 1) * this.#jitter * ticks;
    e.due = this.#tick + Math.max(1, Math.round(ticks + move));
    this.#place(e);
  }

  #place(e: Entry<T>): void {
    const slot = this.#slots.get(e.due);
    if (slot) slot.push(e);
    else this.#slots.set(e.due, [e]);
  }

  #start(e: Entry<T>): void {
    e.running = true;
    this.#inFlight++;
    this.#started++;
    const done = (): void => {
      e.running = false;
      const cur = this.#entries.get(e.key);
      if (cur && cur !== e) cur.running = false;
      this.#inFlight--;
      this.#drain();
    };
    let p: Promise<void>;
    try {
      p = this.#run(e.key, e.item);
    } catch {
      done();
      return;
    }
    p.then(done, done);
  }

  #drain(): void {
    while (this.#inFlight < this.#maxInFlight && this.#waitingHead < this.#waiting.length) {
      const e = this.#waiting[this.#waitingHead++]!;
      e.queued = false;
      if (!e.gone && !e.running) this.#start(e);
    }
    if (this.#waitingHead > 1024 && this.#waitingHead * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#waitingHead);
      this.#waitingHead = 0;
    }
  }

  #arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = this.#timers.setInterval(() => this.advance(), this.#tickMs);
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    this.#timers.clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
