/**
 * The node's reconcile loop: the catalog view's changes, turned into
 * frontends and applied to the load balancer (and so to the maps). Changes
 * that arrive while a batch is being applied are merged into the next one,
 * so a burst costs one reconcile per service, however many writes it held.
 *
 * What reaches the load balancer is the view's definition with the node's
 * runtime overlay laid over it (overlay.ts: what this node learnt of its
 * backends, never persisted); a change of the overlay re-applies the
 * services it touches like a change of the view.
 *
 * A service the dataplane refuses (a capacity reached) is recorded with its
 * error (its runtime status, not persisted), and tried again with the next
 * change and every `retryMs`; the others go on. Writes wait for their own
 * revision (waitFor) so that the API answers once the node that took a
 * change has programmed it.
 */
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import type { LoadBalancer } from '../lb/load-balancer.js';
import { expandDefinition, type ServiceDefinition } from '../model/definition.js';
import type { ServiceSpec } from '../model/service.js';
import { hostPort } from '../model/address.js';
import type { CatalogView, ViewChange } from '../catalog/view.js';
import { engineError } from './engine-error.js';
import { RuntimeOverlay } from './overlay.js';

/** What the node holds of one service. */
export interface ServiceStatus {
  /** The store revision of the definition it last applied (or tried). */
  revision: number;
  /** Why the last attempt failed; undefined once programmed. */
  error?: SluiceError;
}

/** Options of a Syncer. */
export interface SyncerOptions {
  view: CatalogView;
  lb: LoadBalancer;
  logger: Logger;
  /** The node's runtime overlay (default: an empty one of its own). */
  overlay?: RuntimeOverlay;
  /** How often services that failed are tried again, in ms (default 5000). */
  retryMs?: number;
}

/** One batch of changes the syncer applied (Syncer.onApplied). */
export interface AppliedBatch {
  /** Wall time of the batch, ms (the retries of a refused batch one by one included). */
  ms: number;
  /** Services in it. */
  services: number;
  /** Services of it the dataplane refused (0: all programmed). */
  errors: number;
}

/** Keeps the load balancer equal to the view. */
export class Syncer {
  private readonly view: CatalogView;
  private readonly lb: LoadBalancer;
  private readonly log: Logger;
  /** The node's runtime overlay, laid over every definition applied. */
  readonly overlay: RuntimeOverlay;
  private unsubscribeOverlay: (() => void) | undefined;
  /** Frontend names installed per service. */
  private readonly installed = new Map<string, string[]>();
  private readonly status = new Map<string, ServiceStatus>();
  /** Latest change per service not applied yet. */
  private pending = new Map<string, ViewChange>();
  private running: Promise<void> | undefined;
  /** Every change up to this revision is applied (or failed). */
  private applied = 0;
  /** The highest revision among the pending changes. */
  private pendingTop = 0;
  private readonly waiters: Array<{ revision: number; resolve: () => void }> = [];
  private unsubscribe: (() => void) | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly retryMs: number;
  private readonly appliedSubs = new Set<(b: AppliedBatch) => void>();

  constructor(opts: SyncerOptions) {
    this.view = opts.view;
    this.lb = opts.lb;
    this.log = opts.logger;
    this.overlay = opts.overlay ?? new RuntimeOverlay();
    this.retryMs = opts.retryMs ?? 5000;
  }

  /**
   * Apply every service of the view (the load balancer adopts what an
   * earlier run left in the maps), remove what nothing claims, then follow
   * the view. Returns how many stale map entries were removed.
   */
  async start(): Promise<number> {
    this.unsubscribe = this.view.subscribe((changes) => this.enqueue(changes));
    this.unsubscribeOverlay = this.overlay.subscribe((names) => this.reapply(names));
    const revision = this.view.revision;
    for (const name of this.view.names()) {
      const s = this.view.get(name)!;
      this.pending.set(name, { type: 'PUT', name, revision: s.revision, service: s });
    }
    await this.drain();
    const removed = await this.lb.converge();
    this.applied = Math.max(this.applied, revision);
    this.wake();
    this.retryTimer = setInterval(() => void this.retryFailed(), this.retryMs);
    this.retryTimer.unref();
    return removed;
  }

  /** Stop following the view. */
  close(): void {
    this.closed = true;
    this.unsubscribe?.();
    this.unsubscribeOverlay?.();
    clearInterval(this.retryTimer);
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  /** Resolves once every change up to `revision` is applied (or failed). */
  async waitFor(revision: number): Promise<void> {
    await this.view.waitFor(revision);
    if (revision <= this.applied || this.closed) return;
    await new Promise<void>((resolve) => this.waiters.push({ revision, resolve }));
  }

  /** Resolves once nothing is pending (an overlay change, a retry, a view change applied or failed). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** The node's status of a service (undefined: none known). */
  statusOf(name: string): ServiceStatus | undefined {
    return this.status.get(name);
  }

  /** Services the dataplane refused, with why. */
  failures(): Array<[string, SluiceError]> {
    return [...this.status].flatMap(([n, s]) => (s.error ? [[n, s.error] as [string, SluiceError]] : []));
  }

  /** Slots of the Maglev table a service's frontends use now (the largest; 0: none). */
  tableSizeOf(d: ServiceDefinition): number {
    let size = 0;
    for (const spec of expandDefinition(this.overlay.apply(d))) size = Math.max(size, this.lb.tableSizeOf(spec.name) ?? 0);
    return size;
  }

  // ---------------------------------------------------------------- internals

  private enqueue(changes: ViewChange[]): void {
    for (const c of changes) {
      this.pending.set(c.name, c);
      // A service deleted takes what the node learnt of it along.
      if (c.type === 'DELETE') this.overlay.clearService(c.name);
    }
    this.pendingTop = Math.max(this.pendingTop, changes[changes.length - 1]!.revision);
    void this.drain();
  }

  /**
   * Apply what is pending; one batch at a time, the next holding whatever
   * came meanwhile. Each batch moves `applied` to the highest revision it
   * held (a relist's changes can carry an older revision than the view's).
   */
  private drain(): Promise<void> {
    this.running ??= (async () => {
      // Always asynchronous, so that `running` is set before the loop can end.
      await Promise.resolve();
      while (this.pending.size > 0 && !this.closed) {
        const batch = [...this.pending.values()];
        const top = this.pendingTop;
        this.pending = new Map();
        await this.applyBatch(batch);
        this.applied = Math.max(this.applied, top);
        this.wake();
      }
    })().finally(() => {
      this.running = undefined;
      if (this.pending.size > 0 && !this.closed) void this.drain();
    });
    return this.running;
  }

  private wake(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i]!.revision <= this.applied) this.waiters.splice(i, 1)[0]!.resolve();
    }
  }

  /** Be told of each batch applied (the metrics time them); returns the unsubscribe function. */
  onApplied(fn: (b: AppliedBatch) => void): () => void {
    this.appliedSubs.add(fn);
    return () => this.appliedSubs.delete(fn);
  }

  /** One batch: all together; if the dataplane refuses it, service by service. */
  private async applyBatch(batch: ViewChange[]): Promise<void> {
    const began = performance.now();
    let errors = 0;
    try {
      await this.applyChanges(batch);
      for (const c of batch) this.status.set(c.name, { revision: c.revision });
    } catch (err) {
      if (batch.length === 1) {
        this.fail(batch[0]!, err);
        errors = 1;
      } else {
        for (const c of batch) {
          try {
            await this.applyChanges([c]);
            this.status.set(c.name, { revision: c.revision });
          } catch (e) {
            this.fail(c, e);
            errors++;
          }
        }
      }
    }
    const b: AppliedBatch = { ms: performance.now() - began, services: batch.length, errors };
    for (const fn of this.appliedSubs) fn(b);
  }

  private fail(c: ViewChange, err: unknown): void {
    const error = engineError(err);
    const prev = this.status.get(c.name);
    if (prev?.error?.message !== error.message) {
      this.log.error({ service: c.name, revision: c.revision, err: error.message }, 'the dataplane could not take this service: it is tried again with the next change and every few seconds');
    }
    this.status.set(c.name, { revision: c.revision, error });
  }

  /** Try the services the dataplane refused again, now (the timer does it every retryMs). Resolves when done. */
  retryFailed(): Promise<void> {
    return this.reapply([...this.status].filter(([, s]) => s.error).map(([n]) => n));
  }

  /** Apply these services again as the view has them (their overlay, or their last attempt, changed). Resolves when done. */
  reapply(names: readonly string[]): Promise<void> {
    if (names.length === 0 || this.closed) return Promise.resolve();
    for (const name of names) {
      const s = this.view.get(name);
      // A service deleted since went with its DELETE change.
      if (s) this.pending.set(name, { type: 'PUT', name, revision: s.revision, service: s });
      else this.status.delete(name);
    }
    return this.drain();
  }

  /**
   * The frontends of the changed services: applied if new or changed,
   * removed if gone. A frontend moving to another service of the batch is
   * freed first.
   */
  private async applyChanges(batch: readonly ViewChange[]): Promise<void> {
    const next: ServiceSpec[] = [];
    const nextByService = new Map<string, string[]>();
    for (const c of batch) {
      const specs = c.type === 'PUT' ? expandDefinition(this.overlay.apply(c.service.definition)) : [];
      next.push(...specs);
      nextByService.set(c.name, specs.map((s) => s.name));
    }
    const nextNames = new Set(next.map((s) => s.name));
    const nextKeys = new Set(next.map((s) => frontendKey(s)));
    const vanished: string[] = [];
    for (const c of batch) {
      for (const f of this.installed.get(c.name) ?? []) if (!nextNames.has(f)) vanished.push(f);
    }
    const early = vanished.filter((f) => { const s = this.lb.peek(f); return s !== undefined && nextKeys.has(frontendKey(s)); });
    const late = vanished.filter((f) => !early.includes(f));
    const changed = next.filter((s) => !sameSpec(this.lb.peek(s.name), s));
    if (early.length > 0) await this.lb.deleteMany(early);
    if (changed.length > 0) await this.lb.applyMany(changed, { handOver: true, validated: true });
    if (late.length > 0) await this.lb.deleteMany(late);
    for (const [name, frontends] of nextByService) {
      if (frontends.length > 0) this.installed.set(name, frontends);
      else {
        this.installed.delete(name);
        this.status.delete(name);
      }
    }
  }
}

function frontendKey(s: Pick<ServiceSpec, 'address' | 'port' | 'protocol'>): string {
  return `${hostPort(s.address, s.port)}/${s.protocol}`;
}

/** Whether the load balancer already holds exactly `spec` (so applying it would write nothing). */
function sameSpec(a: Readonly<ServiceSpec> | undefined, b: ServiceSpec): boolean {
  if (!a) return false;
  if (a.address !== b.address || a.port !== b.port || a.protocol !== b.protocol) return false;
  if ((a.tableSize ?? 0) !== (b.tableSize ?? 0)) return false;
  if ((a.sessionAffinity?.timeoutSeconds ?? 0) !== (b.sessionAffinity?.timeoutSeconds ?? 0)) return false;
  if ((a.noBackends ?? 'reject') !== (b.noBackends ?? 'reject')) return false;
  if (a.backends.length !== b.backends.length) return false;
  return a.backends.every((x, i) => {
    const y = b.backends[i]!;
    return x.address === y.address && x.port === y.port && (x.weight ?? 1) === (y.weight ?? 1) && (x.state ?? 'active') === (y.state ?? 'active');
  });
}
