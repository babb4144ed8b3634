/**
 * The benchmark's own garbage collector, kept out of timed round trips.
 *
 * A latency measured from this process includes any GC pause this process
 * takes while it waits for the answer. After a bulk load the benchmark's
 * heap is large (the whole service set, the encoded batches), and a major
 * GC of it inside the change loop pauses the client for 3-10 ms: figures
 * of the benchmark, not of the daemon. So the timed loops start from a
 * freshly collected heap, and the pauses that still fall inside a timed
 * interval are counted and reported, not hidden.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Run a full GC in this process now (exposing gc() without --expose-gc). */
export function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
}

/** Records this process's GC pauses so that timed intervals overlapping one can be counted. */
export class ClientGcWatch {
  private readonly pauses: Array<{ start: number; end: number }> = [];
  private readonly observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) this.pauses.push({ start: e.startTime, end: e.startTime + e.duration });
  });

  constructor() {
    this.observer.observe({ entryTypes: ['gc'] });
  }

  /** Now, on the clock the intervals must use (performance.now()). */
  now(): number {
    return performance.now();
  }

  /** Stop recording; returns how many of `intervals` ([start, end] in ms) overlapped a pause of this process, and the pauses' total. */
  stop(intervals: ReadonlyArray<readonly [number, number]>): { overlapped: number; pauses: number; pauseMs: number } {
    // Entries are delivered asynchronously; take what is queued.
    for (const e of this.observer.takeRecords()) this.pauses.push({ start: e.startTime, end: e.startTime + e.duration });
    this.observer.disconnect();
    const from = intervals.length > 0 ? Math.min(...intervals.map(([s]) => s)) : 0;
    const inside = this.pauses.filter((p) => p.end >= from);
    const overlapped = intervals.filter(([s, e]) => inside.some((p) => p.end >= s && p.start <= e)).length;
    return { overlapped, pauses: inside.length, pauseMs: inside.reduce((a, p) => a + (p.end - p.start), 0) };
  }
}
