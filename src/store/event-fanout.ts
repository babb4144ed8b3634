/**
 * Delivery of committed events to subscribers, shared by the stores:
 * synchronous, in revision order, isolated from subscribers that throw.
 */
import type { StoreEvent } from './store.js';

interface Subscription {
  fn: (e: StoreEvent) => void;
  active: boolean;
}

/**
 * Subscribers of one store. A subscriber that writes to the store from its
 * callback does not get ahead of the others: the new events are queued and
 * delivered, to everyone, after the event in flight. A subscriber removed
 * during delivery is not called again; one added during delivery gets the
 * events committed after it subscribed.
 *
 * Every subscriber receives the same event object: it must not modify it.
 */
export class EventFanout {
  readonly #onError: (err: unknown, event: StoreEvent) => void;
  #subs: Subscription[] = [];
  #queue: StoreEvent[] = [];
  #delivering = false;

  /** `onError` is told about every subscriber that throws. */
  constructor(onError: (err: unknown, event: StoreEvent) => void) {
    this.#onError = onError;
  }

  /** How many subscribers there are (the stores skip building events when none). */
  get size(): number {
    return this.#subs.length;
  }

  /** Add a subscriber; returns its (idempotent) unsubscribe function. */
  subscribe(fn: (e: StoreEvent) => void): () => void {
    const sub: Subscription = { fn, active: true };
    this.#subs = [...this.#subs, sub];
    return () => {
      if (!sub.active) return;
      sub.active = false;
      this.#subs = this.#subs.filter((s) => s !== sub);
    };
  }

  /** Drop every subscriber. */
  clear(): void {
    for (const s of this.#subs) s.active = false;
    this.#subs = [];
  }

  /** Deliver committed events, oldest first. */
  publish(events: readonly StoreEvent[]): void {
    for (const e of events) this.#queue.push(e);
    if (this.#delivering) return; // an outer publish() on the stack delivers them, in order
    this.#delivering = true;
    try {
      for (let i = 0; i < this.#queue.length; i++) {
        const event = this.#queue[i]!;
        for (const sub of this.#subs) {
          if (!sub.active) continue;
          try {
            sub.fn(event);
          } catch (err) {
            try {
              this.#onError(err, event);
            } catch {
              // The error reporter failed too: nothing more can be done for this event.
            }
          }
        }
      }
    } finally {
      this.#queue = [];
      this.#delivering = false;
    }
  }
}
