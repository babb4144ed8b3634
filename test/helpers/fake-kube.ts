/**
 * A KubeApi for unit tests: lists from arrays, and watches the test drives
 * (emit an event, end a stream, answer 410). The real protocol is held by
 * the test API server in the e2e tests.
 */
import type { KubeApi, ListParams } from '../../src/kube/source.js';
import type { ListPage, Watcher } from '../../src/kube/list-watch.js';
import type { KubeEndpointSlice, KubeNode, KubeService } from '../../src/kube/objects.js';

interface OpenWatch {
  path: string;
  query: Record<string, unknown>;
  callback: (phase: string, obj: unknown) => void;
  done: (err: unknown) => void;
  controller: AbortController;
}

export class FakeKube implements KubeApi {
  services: KubeService[] = [];
  slices: KubeEndpointSlice[] = [];
  nodes: KubeNode[] = [];
  rv = 1;
  lists: Record<string, number> = { services: 0, endpointslices: 0, nodes: 0 };
  /** Fail lists while set. */
  down = false;
  readonly open: OpenWatch[] = [];
  readonly watcher: Watcher;

  constructor() {
    this.watcher = {
      watch: async (path, query, callback, done) => {
        const controller = new AbortController();
        if (this.down) {
          // As client-node's Watch: a failed fetch calls done before the controller is returned.
          done(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
          return controller;
        }
        const w: OpenWatch = { path, query, callback, done, controller };
        this.open.push(w);
        controller.signal.addEventListener('abort', () => this.close(w, new Error('aborted')));
        return controller;
      },
    };
  }

  private page<T>(items: T[], what: string): Promise<ListPage<T>> {
    if (this.down) return Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    this.lists[what]!++;
    return Promise.resolve({ items: structuredClone(items), metadata: { resourceVersion: String(this.rv) } });
  }

  listServices(_p: ListParams): Promise<ListPage<KubeService>> {
    return this.page(this.services, 'services');
  }
  listEndpointSlices(_p: ListParams): Promise<ListPage<KubeEndpointSlice>> {
    return this.page(this.slices, 'endpointslices');
  }
  listNodes(_p: ListParams): Promise<ListPage<KubeNode>> {
    return this.page(this.nodes, 'nodes');
  }

  private close(w: OpenWatch, err: unknown): void {
    const i = this.open.indexOf(w);
    if (i < 0) return;
    this.open.splice(i, 1);
    w.done(err);
  }

  /** Send an event to the open watches of `path` (and keep the arrays in step). */
  emit(path: string, type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeService | KubeEndpointSlice | KubeNode): void {
    this.rv++;
    obj.metadata = { ...obj.metadata, resourceVersion: String(this.rv) };
    const arr = (path.includes('endpointslices') ? this.slices : path.includes('nodes') ? this.nodes : this.services) as Array<typeof obj>;
    const i = arr.findIndex((o) => o.metadata?.namespace === obj.metadata?.namespace && o.metadata?.name === obj.metadata?.name);
    if (type === 'DELETED') {
      if (i >= 0) arr.splice(i, 1);
    } else if (i >= 0) arr[i] = obj;
    else arr.push(obj);
    for (const w of this.open.filter((x) => x.path === path)) w.callback(type, structuredClone(obj));
  }

  /** End every open watch cleanly (a server-side timeout). */
  endAll(): void {
    for (const w of [...this.open]) this.close(w, null);
  }

  /** Answer every open watch with the ERROR event of a compacted resourceVersion. */
  goneAll(): void {
    for (const w of [...this.open]) {
      w.callback('ERROR', { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version' });
      this.close(w, null);
    }
  }

  /** Wait until `n` watches are open. */
  async watching(n = 3): Promise<void> {
    for (let i = 0; i < 500 && this.open.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    if (this.open.length < n) throw new Error(`only ${this.open.length} watches open`);
  }
}
