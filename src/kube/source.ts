/**
 * The kube-proxy mode's source of services: Services, EndpointSlices and
 * this node's Node, listed and watched from the API server, translated
 * (translate.ts) and written through a Catalog as owner "kubernetes" into
 * the node's own store, which the node's reconciler follows as it follows
 * any writer. Each node watches the API server itself, as kube-proxy does;
 * nothing of it is shared.
 *
 * Changes mark their Kubernetes service dirty and ask the SyncRunner for a
 * sync: a lone change is written at once, a burst is coalesced into one
 * sync per minimum interval. The first sync waits until services, slices
 * and the node have all been listed (kube-proxy's "initialized"): an empty
 * cache would otherwise delete every service an earlier run programmed.
 */
import type { Logger } from 'pino';
import ipaddr from 'ipaddr.js';
import type { Catalog } from '../catalog/catalog.js';
import type { CatalogView } from '../catalog/view.js';
import { SluiceError } from '../errors.js';
import { normaliseDefinition, sameDefinition, type ServiceDefinition } from '../model/definition.js';
import { forgetService, keepGoneEndpoints, type GoneSince } from './drain.js';
import { familyOfText, kubeIP } from './ip.js';
import { ListWatch, type ListPage, type Watcher } from './list-watch.js';
import { objectKey, PROXY_LABEL_SELECTOR, sliceServiceKey, type KubeEndpointSlice, type KubeNode, type KubeService } from './objects.js';
import { SyncRunner } from './sync-runner.js';
import { KUBE_OWNER, kubeServiceOf, translateService } from './translate.js';

/** The API server, as the source uses it (client-node's list calls and Watch, or fakes in unit tests). */
export interface KubeApi {
  listServices(p: ListParams): Promise<ListPage<KubeService>>;
  listEndpointSlices(p: ListParams): Promise<ListPage<KubeEndpointSlice>>;
  listNodes(p: ListParams): Promise<ListPage<KubeNode>>;
  watcher: Watcher;
}

export interface ListParams {
  labelSelector?: string;
  fieldSelector?: string;
  limit: number;
  _continue?: string;
}

/** What one sync did. */
export interface SyncReport {
  /** Kubernetes services looked at. */
  services: number;
  /** Sluice services written and deleted. */
  written: number;
  deleted: number;
  ms: number;
}

export interface KubeSourceOptions {
  api: KubeApi;
  /** A catalog writing as KUBE_OWNER. */
  catalog: Catalog;
  /** The node's view of its store. */
  view: CatalogView;
  /** This node's name (kube-proxy's --hostname-override). */
  nodeName: string;
  /** CIDRs of either family whose node addresses carry node ports (empty: all of the node's addresses; ["primary"]: its first address of each family). */
  nodePortCidrs: readonly string[];
  logger: Logger;
  /** Least time between the end of a sync and the start of the next, ms (default 100). */
  minSyncMs?: number;
  /** How long a TCP endpoint that left keeps its connections, ms (default one hour). */
  drainGraceMs?: number;
  /** Services written per catalog transaction (default 500). */
  batch?: number;
  /** Called after each sync that succeeded. */
  onSync?: (r: SyncReport) => void;
  /** Called when a sync fails (it is tried again). */
  onSyncError?: (err: unknown) => void;
  /** Called with the node's addresses (both families, nodeAddresses' order) whenever its Node changes. */
  onNodeAddresses?: (addresses: string[]) => void;
  /** UDP backends a sync removed: their flows are flushed at once (kube-proxy's conntrack cleanup). */
  onUdpBackendsRemoved?: (removed: Array<{ service: string; address: string; port: number }>) => Promise<void>;
  /** Watch options for tests (server-side timeout, backoff). */
  watch?: { timeoutSeconds?: () => number; backoffMs?: { initial: number; max: number } };
}

const DEFAULT_GRACE_MS = 3_600_000;

/** How soon a service the catalog refused is tried again, ms. */
const RETRY_REFUSED_MS = 5000;

/** The cluster autoscaler's taint on a node it is about to delete. */
const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

/** Does `address` (IPv4 or IPv6, in sluice's text) fall in one of `cidrs` (of either family)? */
export function inCidrs(address: string, cidrs: readonly string[]): boolean {
  if (cidrs.length === 0) return true;
  const ip = ipaddr.parse(address);
  return cidrs.some((c) => {
    try {
      const [net, bits] = ipaddr.parseCIDR(c);
      return net.kind() === ip.kind() && ip.match(net, bits);
    } catch {
      return false;
    }
  });
}

/** The node's addresses of both families (InternalIP, then ExternalIP), in order, once each, in sluice's text. */
export function nodeAddresses(node: KubeNode | undefined): string[] {
  const out: string[] = [];
  for (const type of ['InternalIP', 'ExternalIP']) {
    for (const a of node?.status?.addresses ?? []) {
      const ip = a.type === type ? kubeIP(a.address) : undefined;
      if (ip && !out.includes(ip.text)) out.push(ip.text);
    }
  }
  return out;
}

/**
 * The node's primary addresses (kube-proxy's "primary" node port
 * addresses): its first address, then the first of the other family, if
 * it has one.
 */
export function primaryAddresses(addresses: readonly string[]): string[] {
  const first = addresses[0];
  if (first === undefined) return [];
  const other = addresses.find((a) => familyOfText(a) !== familyOfText(first));
  return other === undefined ? [first] : [first, other];
}

export class KubeSource {
  private readonly o: KubeSourceOptions;
  private readonly log: Logger;
  private readonly services = new Map<string, KubeService>();
  /** Slices by their service's key, then by the slice's own key. */
  private readonly slices = new Map<string, Map<string, KubeEndpointSlice>>();
  /** A slice's service, as last seen (a slice's label may change). */
  private readonly sliceService = new Map<string, string>();
  private nodePortAddresses: string[] = [];
  private readonly dirty = new Set<string>();
  private allDirty = true;
  /** The sluice services written for each Kubernetes service. */
  private readonly programmed = new Map<string, Set<string>>();
  private readonly gone: GoneSince = new Map();
  private readonly expiries = new Map<string, NodeJS.Timeout>();
  private readonly problemsBy = new Map<string, string[]>();
  private readonly runner: SyncRunner;
  private readonly watches: Array<ListWatch<never>>;
  private retryTimer: NodeJS.Timeout | undefined;
  /** When the oldest change not yet written arrived (ms since epoch), or undefined. */
  oldestPending: number | undefined = Date.now();
  /** When the last sync succeeded (ms since epoch), or undefined. */
  lastSynced: number | undefined;
  /** Syncs that failed. */
  syncErrors = 0;
  /**
   * False while this node is being deleted or is marked for deletion by the
   * cluster autoscaler (kube-proxy's "node eligible"): /healthz then says
   * 503 so that load balancers stop sending to it.
   */
  nodeEligible = true;

  constructor(o: KubeSourceOptions) {
    this.o = o;
    this.log = o.logger.child({ component: 'kube' });
    this.runner = new SyncRunner({
      run: () => this.sync(),
      onError: (err) => this.syncFailed(err),
      minIntervalMs: o.minSyncMs ?? 100,
    });
    for (const name of o.view.names()) {
      const s = o.view.get(name);
      const key = kubeServiceOf(name);
      if (s?.owner !== KUBE_OWNER || key === undefined) continue;
      let set = this.programmed.get(key);
      if (!set) this.programmed.set(key, (set = new Set()));
      set.add(name);
    }
    const common = { logger: this.log, ...(o.watch?.timeoutSeconds ? { timeoutSeconds: o.watch.timeoutSeconds } : {}), ...(o.watch?.backoffMs ? { backoffMs: o.watch.backoffMs } : {}) };
    const services = new ListWatch<KubeService>({
      ...common,
      resource: 'services',
      path: '/api/v1/services',
      labelSelector: PROXY_LABEL_SELECTOR,
      list: (p) => o.api.listServices(p),
      watcher: o.api.watcher,
      onList: (items) => this.listedServices(items),
      onEvent: (type, svc) => this.serviceEvent(type, svc),
    });
    const slices = new ListWatch<KubeEndpointSlice>({
      ...common,
      resource: 'endpointslices',
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      labelSelector: PROXY_LABEL_SELECTOR,
      list: (p) => o.api.listEndpointSlices(p),
      watcher: o.api.watcher,
      onList: (items) => this.listedSlices(items),
      onEvent: (type, s) => this.sliceEvent(type, s),
    });
    const nodes = new ListWatch<KubeNode>({
      ...common,
      resource: 'nodes',
      path: '/api/v1/nodes',
      fieldSelector: `metadata.name=${o.nodeName}`,
      list: (p) => o.api.listNodes(p),
      watcher: o.api.watcher,
      onList: (items) => this.setNode(items.find((n) => n.metadata?.name === o.nodeName)),
      onEvent: (type, n) => this.setNode(type === 'DELETED' ? undefined : n, type === 'DELETED'),
    });
    this.watches = [services, slices, nodes] as unknown as Array<ListWatch<never>>;
  }

  /** Start listing and watching. */
  start(): void {
    for (const w of this.watches) w.start();
  }

  /** Stop watching; a sync under way finishes. */
  async stop(): Promise<void> {
    this.runner.stop();
    clearTimeout(this.retryTimer);
    for (const t of this.expiries.values()) clearTimeout(t);
    await Promise.all(this.watches.map((w) => w.stop()));
    await this.runner.settled();
  }

  /** True once services, slices and the node have been listed. */
  get initialized(): boolean {
    return this.watches.every((w) => w.synced);
  }

  /** True while every watch reaches the API server. */
  get apiReachable(): boolean {
    return this.watches.every((w) => w.healthy);
  }

  /** Lists done per resource (a relist after 410 counts). */
  get listCounts(): Record<string, number> {
    return { services: this.watches[0]!.lists, endpointslices: this.watches[1]!.lists, nodes: this.watches[2]!.lists };
  }

  /** What could not be programmed, by Kubernetes service. */
  get problems(): ReadonlyMap<string, readonly string[]> {
    return this.problemsBy;
  }

  /** Kubernetes services held, sluice services written by this source, and their endpoints. */
  counts(): { kubeServices: number; services: number; endpoints: number } {
    let services = 0;
    let endpoints = 0;
    for (const names of this.programmed.values()) {
      for (const n of names) {
        const s = this.o.view.get(n);
        if (!s) continue;
        services++;
        endpoints += s.definition.backends.length;
      }
    }
    return { kubeServices: this.services.size, services, endpoints };
  }

  /** Resolves when no sync is going on or asked for. */
  settled(): Promise<void> {
    return this.runner.settled();
  }

  private changed(key: string | undefined): void {
    if (key !== undefined) this.dirty.add(key);
    this.oldestPending ??= Date.now();
    if (this.initialized) this.runner.request();
  }

  private listedServices(items: KubeService[]): void {
    const seen = new Set<string>();
    for (const s of items) {
      const k = objectKey(s);
      seen.add(k);
      this.services.set(k, s);
    }
    for (const k of this.services.keys()) if (!seen.has(k)) this.services.delete(k);
    this.allDirty = true;
    this.changed(undefined);
  }

  private serviceEvent(type: string, svc: KubeService): void {
    const k = objectKey(svc);
    if (type === 'DELETED') this.services.delete(k);
    else this.services.set(k, svc);
    this.changed(k);
  }

  private listedSlices(items: KubeEndpointSlice[]): void {
    this.slices.clear();
    this.sliceService.clear();
    for (const s of items) this.putSlice(s);
    this.allDirty = true;
    this.changed(undefined);
  }

  private putSlice(s: KubeEndpointSlice): void {
    const own = objectKey(s);
    const svc = sliceServiceKey(s);
    // A slice without the service-name label belongs to nothing (kube-proxy ignores it).
    if (svc === undefined) return;
    let m = this.slices.get(svc);
    if (!m) this.slices.set(svc, (m = new Map()));
    m.set(own, s);
    this.sliceService.set(own, svc);
  }

  private dropSlice(own: string): string | undefined {
    const svc = this.sliceService.get(own);
    if (svc === undefined) return undefined;
    this.sliceService.delete(own);
    const m = this.slices.get(svc);
    m?.delete(own);
    if (m?.size === 0) this.slices.delete(svc);
    return svc;
  }

  private sliceEvent(type: string, s: KubeEndpointSlice): void {
    const own = objectKey(s);
    const before = this.dropSlice(own);
    if (type !== 'DELETED') this.putSlice(s);
    if (before !== undefined) this.dirty.add(before);
    this.changed(sliceServiceKey(s));
  }

  private setNode(node: KubeNode | undefined, deleted = false): void {
    this.nodeEligible = !deleted && (node === undefined || (!node.metadata?.deletionTimestamp && !(node.spec?.taints ?? []).some((t) => t.key === TO_BE_DELETED_TAINT)));
    if (!node) this.log.warn({ node: this.o.nodeName }, 'no Node object by this name: node ports have no address (give --hostname-override the name the node is registered under)');
    const all = nodeAddresses(node);
    this.o.onNodeAddresses?.(all);
    // "primary" (kube-proxy's): the node's primary address of each family.
    const next = this.o.nodePortCidrs.includes('primary') ? primaryAddresses(all) : all.filter((a) => inCidrs(a, this.o.nodePortCidrs));
    if (next.join(',') !== this.nodePortAddresses.join(',')) {
      this.nodePortAddresses = next;
      this.log.info({ nodePortAddresses: next }, 'node port addresses');
      this.allDirty = true;
    }
    this.changed(undefined);
  }

  private async sync(): Promise<void> {
    if (!this.initialized) return;
    const started = performance.now();
    const pendingSince = this.oldestPending;
    this.oldestPending = undefined;
    const keys = this.allDirty ? new Set([...this.services.keys(), ...this.programmed.keys()]) : new Set(this.dirty);
    this.allDirty = false;
    this.dirty.clear();
    const now = Date.now();
    const grace = this.o.drainGraceMs ?? DEFAULT_GRACE_MS;
    const puts: ServiceDefinition[] = [];
    const deletes: string[] = [];
    const udpRemoved: Array<{ service: string; address: string; port: number }> = [];
    const nextProgrammed = new Map<string, Set<string>>();
    try {
      for (const key of keys) {
        const svc = this.services.get(key);
        const t = svc ? translateService(svc, this.slices.get(key)?.values() ?? [], { nodePortAddresses: this.nodePortAddresses }) : { definitions: [], problems: [] };
        const names = new Set<string>();
        for (const def of t.definitions) {
          const stored = this.o.view.get(def.name);
          if (stored && stored.owner !== KUBE_OWNER) {
            t.problems.push(`${def.name}: a service of this name belongs to ${stored.owner}: left as it is`);
            continue;
          }
          const prev = stored?.definition;
          const expiry = keepGoneEndpoints(def, prev, this.gone, now, grace);
          if (expiry !== undefined) this.expireAt(key, expiry);
          let norm: ServiceDefinition;
          try {
            norm = normaliseDefinition(def);
          } catch (err) {
            t.problems.push(`${def.name}: ${(err as Error).message}`);
            continue;
          }
          names.add(def.name);
          if (prev && sameDefinition(prev, norm)) continue;
          puts.push(norm);
          if (prev && norm.ports[0]?.protocol === 'udp') {
            const kept = new Set(norm.backends.map((b) => b.address));
            for (const b of prev.backends) if (!kept.has(b.address)) udpRemoved.push({ service: def.name, address: b.address, port: prev.ports[0]!.targetPort });
          }
        }
        for (const old of this.programmed.get(key) ?? []) {
          if (names.has(old)) continue;
          deletes.push(old);
          forgetService(this.gone, old);
        }
        nextProgrammed.set(key, names);
        this.noteProblems(key, t.problems);
      }
      for (const name of deletes) {
        try {
          await this.o.catalog.delete(name);
        } catch (err) {
          if (!(err instanceof SluiceError && err.code === 'NOT_FOUND')) throw err;
        }
      }
      const written = await this.write(puts, nextProgrammed);
      for (const [key, names] of nextProgrammed) {
        if (names.size === 0) this.programmed.delete(key);
        else this.programmed.set(key, names);
      }
      if (udpRemoved.length > 0 && this.o.onUdpBackendsRemoved) await this.o.onUdpBackendsRemoved(udpRemoved);
      const first = this.lastSynced === undefined;
      this.lastSynced = Date.now();
      const ms = performance.now() - started;
      const c = first || written > 0 || deletes.length > 0 ? this.counts() : undefined;
      if (first) this.log.info({ kubeServices: c!.kubeServices, services: c!.services, endpoints: c!.endpoints, ms: Math.round(ms) }, 'first sync: the dataplane holds the cluster\'s services');
      else if (c) this.log.info({ written, deleted: deletes.length, services: c.services, ms: Math.round(ms) }, 'synced');
      else this.log.debug({ services: keys.size, ms }, 'synced: nothing changed');
      this.o.onSync?.({ services: keys.size, written, deleted: deletes.length, ms });
    } catch (err) {
      // Everything looked at is looked at again.
      for (const k of keys) this.dirty.add(k);
      this.oldestPending = Math.min(this.oldestPending ?? Infinity, pendingSince ?? Date.now());
      throw err;
    }
  }

  /**
   * Write `puts` in batches. A definition the catalog refuses (a VIP and
   * port another service holds, say) is left out and reported; the rest
   * are written.
   */
  private async write(puts: ServiceDefinition[], programmed: Map<string, Set<string>>): Promise<number> {
    const size = this.o.batch ?? 500;
    let written = 0;
    for (let i = 0; i < puts.length; i += size) {
      let batch = puts.slice(i, i + size);
      while (batch.length > 0) {
        try {
          const r = await this.o.catalog.apply(batch.map((definition) => ({ definition })));
          written += batch.length - r.unchanged.length;
          break;
        } catch (err) {
          const m = err instanceof SluiceError ? /^\[(\d+)\]/.exec(err.field ?? '') : null;
          if (!m) throw err;
          const bad = batch[Number(m[1])]!;
          const key = kubeServiceOf(bad.name);
          if (key !== undefined) {
            programmed.get(key)?.delete(bad.name);
            this.noteProblems(key, [...(this.problemsBy.get(key) ?? []), `${bad.name}: ${(err as Error).message}`]);
            // What refused it (a VIP and port another service holds) may go: tried again.
            this.expireAt(key, Date.now() + RETRY_REFUSED_MS);
          }
          batch = batch.filter((d) => d !== bad);
        }
      }
    }
    return written;
  }

  private noteProblems(key: string, problems: string[]): void {
    const before = this.problemsBy.get(key);
    if (problems.length === 0) {
      this.problemsBy.delete(key);
      return;
    }
    this.problemsBy.set(key, problems);
    if (before?.join('\n') !== problems.join('\n')) this.log.warn({ service: key, problems }, 'part of a Kubernetes service is not programmed');
  }

  private expireAt(key: string, at: number): void {
    if (this.expiries.has(key)) return;
    const t = setTimeout(() => {
      this.expiries.delete(key);
      this.changed(key);
    }, Math.max(0, at - Date.now()) + 10);
    t.unref();
    this.expiries.set(key, t);
  }

  private syncFailed(err: unknown): void {
    this.syncErrors++;
    this.o.onSyncError?.(err);
    this.log.warn({ err: (err as Error)?.message ?? String(err) }, 'sync failed: trying again in 1 s');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.runner.request(), 1000);
    this.retryTimer.unref();
  }
}
