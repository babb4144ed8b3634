/**
 * A queue that runs async tasks one at a time, in the order they were
 * queued: each task sees the state the previous one left, whether it
 * succeeded or failed.
 */

/** Runs tasks one after another. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Queue `fn`; resolves or rejects with its outcome once every earlier task has settled. */
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
