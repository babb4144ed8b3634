/**
 * What a stage sets up and must take down (etcd clusters, daemons,
 * namespaces, opened maps), released in reverse order at the stage's end
 * however it ends. Each cleanup is registered with the runner as well
 * (ctx.onCleanup), so that a Ctrl-C in the middle runs it too; released
 * here, it is unregistered there.
 */
import type { StageContext } from './types.js';

/** Cleanups of one stage (or one run of it), last added first released. */
export class Resources {
  readonly #fns: Array<{ fn: () => Promise<void> | void; unregister: () => void }> = [];

  constructor(
    private readonly ctx: Pick<StageContext, 'onCleanup' | 'log'>,
    /** Names the stage in a failed cleanup's log line. */
    private readonly label: string,
  ) {}

  /** Add a cleanup; it should be idempotent (the runner may have run it on a signal). */
  add(fn: () => Promise<void> | void): void {
    this.#fns.push({ fn, unregister: this.ctx.onCleanup(fn) });
  }

  /** Run every cleanup, last added first; a failure is logged and the others still run. */
  async release(): Promise<void> {
    const fns = this.#fns.splice(0).reverse();
    for (const { fn, unregister } of fns) {
      unregister();
      try {
        await fn();
      } catch (err) {
        this.ctx.log(`${this.label}: cleanup failed: ${(err as Error).message}`);
      }
    }
  }
}
