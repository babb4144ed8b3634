/**
 * The parts of Kubernetes objects the kube-proxy mode reads, as structural
 * types: the raw JSON of a watch event and the objects client-node's list
 * calls deserialize both fit them, so translation never depends on which
 * one it got. Field names and meanings are the Kubernetes API's (core/v1
 * Service and Node, discovery.k8s.io/v1 EndpointSlice).
 */

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
}

export interface KubeServicePort {
  name?: string;
  protocol?: string;
  port: number;
  targetPort?: number | string;
  nodePort?: number;
}

export interface KubeService {
  metadata?: ObjectMeta;
  spec?: {
    type?: string;
    clusterIP?: string;
    clusterIPs?: string[];
    externalIPs?: string[];
    ports?: KubeServicePort[];
    sessionAffinity?: string;
    sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
  };
  status?: { loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string; ipMode?: string }> } };
}

export interface KubeEndpoint {
  addresses: string[];
  conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
  nodeName?: string;
}

export interface KubeEndpointSlice {
  metadata?: ObjectMeta;
  addressType?: string;
  endpoints?: KubeEndpoint[] | null;
  ports?: Array<{ name?: string | null; port?: number | null; protocol?: string | null }> | null;
}

export interface KubeNode {
  metadata?: ObjectMeta & { deletionTimestamp?: string | Date };
  spec?: { taints?: Array<{ key: string; effect?: string }> };
  status?: { addresses?: Array<{ type: string; address: string }> };
}

/** The label an EndpointSlice names its service with. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * kube-proxy's label selector for Services and EndpointSlices: a service
 * another proxy serves (service-proxy-name) or a headless one is not ours.
 */
export const PROXY_LABEL_SELECTOR = '!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless';

/** "namespace/name" of a namespaced object. */
export function objectKey(o: { metadata?: ObjectMeta }): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

/** "namespace/service" of the service an EndpointSlice belongs to, or undefined if it names none. */
export function sliceServiceKey(s: KubeEndpointSlice): string | undefined {
  const svc = s.metadata?.labels?.[SERVICE_NAME_LABEL];
  return svc === undefined || svc === '' ? undefined : `${s.metadata?.namespace ?? ''}/${svc}`;
}
