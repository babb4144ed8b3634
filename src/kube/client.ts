/**
 * The API server through @kubernetes/client-node: a kubeconfig file, or the
 * in-cluster configuration (service account token and CA) when none is
 * given. client-node is loaded here only, when the kube-proxy mode starts:
 * the daemon does not pay for it.
 */
import type { KubeApi } from './source.js';
import type { KubeEndpointSlice, KubeNode, KubeService } from './objects.js';
import type { ListPage } from './list-watch.js';
import { existsSync } from 'node:fs';
import { SluiceError } from '../errors.js';

/**
 * Everything the agent asks of the API server, as RBAC rules: list and
 * watch of Services, EndpointSlices, and Nodes (its own, by a field
 * selector on its name, which one ClusterRole for every node cannot
 * name). deploy/kube-proxy.yaml's ClusterRole grants exactly these, and
 * test/unit/deploy.test.ts records the requests the agent makes against
 * them: a new call goes here and into the ClusterRole together.
 */
export const KUBE_API_ACCESS = [
  { apiGroup: '', resource: 'services', verbs: ['list', 'watch'] },
  { apiGroup: 'discovery.k8s.io', resource: 'endpointslices', verbs: ['list', 'watch'] },
  { apiGroup: '', resource: 'nodes', verbs: ['list', 'watch'] },
] as const;

/** Connect to the API server described by `kubeconfig` (or the in-cluster configuration). */
export async function connectKube(kubeconfig: string | undefined): Promise<{ api: KubeApi; server: string }> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  if (kubeconfig !== undefined && !existsSync(kubeconfig)) throw new SluiceError('FAILED_PRECONDITION', `${kubeconfig}: no such file`, { field: 'kubeconfig' });
  if (kubeconfig === undefined && process.env['KUBERNETES_SERVICE_HOST'] === undefined) {
    throw new SluiceError('FAILED_PRECONDITION', 'not in a cluster (KUBERNETES_SERVICE_HOST is unset): give --kubeconfig FILE', { field: 'kubeconfig' });
  }
  try {
    if (kubeconfig !== undefined) kc.loadFromFile(kubeconfig);
    else kc.loadFromCluster();
  } catch (err) {
    throw new SluiceError('FAILED_PRECONDITION', `${kubeconfig === undefined ? 'the in-cluster configuration' : kubeconfig}: ${(err as Error).message}`, { field: 'kubeconfig', cause: err });
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new SluiceError('FAILED_PRECONDITION', kubeconfig === undefined ? 'the in-cluster configuration names no API server' : `${kubeconfig}: no current cluster (set current-context)`, { field: 'kubeconfig' });
  }
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  const api: KubeApi = {
    listServices: (p) => core.listServiceForAllNamespaces(p) as Promise<ListPage<KubeService>>,
    listEndpointSlices: (p) => discovery.listEndpointSliceForAllNamespaces(p) as unknown as Promise<ListPage<KubeEndpointSlice>>,
    listNodes: (p) => core.listNode(p) as Promise<ListPage<KubeNode>>,
    watcher: new k8s.Watch(kc),
  };
  return { api, server: cluster.server };
}
