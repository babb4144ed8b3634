/**
 * Request bodies in Kubernetes protobuf (application/vnd.kubernetes.protobuf),
 * which kubectl's generator commands send (`kubectl create namespace`,
 * `kubectl create service ...`): the `k8s\0` magic, a runtime.Unknown
 * envelope with the TypeMeta, and the object's message. Decoded to the JSON
 * the rest of the server handles; responses stay JSON (kubectl accepts both).
 *
 * The messages are declared inline with the field numbers of
 * k8s.io/api core/v1 and discovery/v1 and k8s.io/apimachinery generated.proto,
 * for the four served kinds only (fields of other features left out; an
 * unknown field is skipped). Go's gogo-protobuf writes every non-pointer
 * field, zero or not, so a zero value is dropped unless the Go field is a
 * pointer (POINTER_FIELDS), where zero means something (ready: false).
 */
import protobuf from 'protobufjs';
import { badRequest, isObject, type JsonObject } from './status.js';

const root = protobuf.parse(`
syntax = "proto2";
package k8s;
message Unknown { optional TypeMeta typeMeta = 1; optional bytes raw = 2; optional string contentEncoding = 3; optional string contentType = 4; }
message TypeMeta { optional string apiVersion = 1; optional string kind = 2; }
message Time { optional int64 seconds = 1; optional int32 nanos = 2; }
message IntOrString { optional int64 type = 1; optional int32 intVal = 2; optional string strVal = 3; }
message Quantity { optional string string = 1; }
message OwnerReference { optional string apiVersion = 5; optional string kind = 1; optional string name = 3; optional string uid = 4; optional bool controller = 6; optional bool blockOwnerDeletion = 7; }
message ObjectMeta {
  optional string name = 1; optional string generateName = 2; optional string namespace = 3; optional string selfLink = 4;
  optional string uid = 5; optional string resourceVersion = 6; optional int64 generation = 7; optional Time creationTimestamp = 8;
  optional Time deletionTimestamp = 9; optional int64 deletionGracePeriodSeconds = 10; map<string, string> labels = 11;
  map<string, string> annotations = 12; repeated OwnerReference ownerReferences = 13; repeated string finalizers = 14;
}
message Condition { optional string type = 1; optional string status = 2; optional int64 observedGeneration = 3; optional Time lastTransitionTime = 4; optional string reason = 5; optional string message = 6; }
message ObjectReference { optional string kind = 1; optional string namespace = 2; optional string name = 3; optional string uid = 4; optional string apiVersion = 5; optional string resourceVersion = 6; optional string fieldPath = 7; }

message Namespace { optional ObjectMeta metadata = 1; optional NamespaceSpec spec = 2; optional NamespaceStatus status = 3; }
message NamespaceSpec { repeated string finalizers = 1; }
message NamespaceStatus { optional string phase = 1; repeated NamespaceCondition conditions = 2; }
message NamespaceCondition { optional string type = 1; optional string status = 2; optional Time lastTransitionTime = 4; optional string reason = 5; optional string message = 6; }

message Service { optional ObjectMeta metadata = 1; optional ServiceSpec spec = 2; optional ServiceStatus status = 3; }
message ServiceSpec {
  repeated ServicePort ports = 1; map<string, string> selector = 2; optional string clusterIP = 3; repeated string clusterIPs = 18;
  optional string type = 4; repeated string externalIPs = 5; optional string sessionAffinity = 7; optional string loadBalancerIP = 8;
  repeated string loadBalancerSourceRanges = 9; optional string externalName = 10; optional string externalTrafficPolicy = 11;
  optional int32 healthCheckNodePort = 12; optional bool publishNotReadyAddresses = 13; optional SessionAffinityConfig sessionAffinityConfig = 14;
  repeated string ipFamilies = 19; optional string ipFamilyPolicy = 17; optional bool allocateLoadBalancerNodePorts = 20;
  optional string loadBalancerClass = 21; optional string internalTrafficPolicy = 22; optional string trafficDistribution = 23;
}
message ServicePort { optional string name = 1; optional string protocol = 2; optional string appProtocol = 6; optional int32 port = 3; optional IntOrString targetPort = 4; optional int32 nodePort = 5; }
message ServiceStatus { optional LoadBalancerStatus loadBalancer = 1; repeated Condition conditions = 2; }
message LoadBalancerStatus { repeated LoadBalancerIngress ingress = 1; }
message LoadBalancerIngress { optional string ip = 1; optional string hostname = 2; optional string ipMode = 3; repeated PortStatus ports = 4; }
message PortStatus { optional int32 port = 1; optional string protocol = 2; optional string error = 3; }
message SessionAffinityConfig { optional ClientIPConfig clientIP = 1; }
message ClientIPConfig { optional int32 timeoutSeconds = 1; }

message Node { optional ObjectMeta metadata = 1; optional NodeSpec spec = 2; optional NodeStatus status = 3; }
message NodeSpec { optional string podCIDR = 1; repeated string podCIDRs = 7; optional string providerID = 3; optional bool unschedulable = 4; repeated Taint taints = 5; optional string externalID = 2; }
message Taint { optional string key = 1; optional string value = 2; optional string effect = 3; optional Time timeAdded = 4; }
message NodeStatus {
  map<string, Quantity> capacity = 1; map<string, Quantity> allocatable = 2; optional string phase = 3; repeated NodeCondition conditions = 4;
  repeated NodeAddress addresses = 5; optional NodeDaemonEndpoints daemonEndpoints = 6; optional NodeSystemInfo nodeInfo = 7;
}
message NodeCondition { optional string type = 1; optional string status = 2; optional Time lastHeartbeatTime = 3; optional Time lastTransitionTime = 4; optional string reason = 5; optional string message = 6; }
message NodeAddress { optional string type = 1; optional string address = 2; }
message NodeDaemonEndpoints { optional DaemonEndpoint kubeletEndpoint = 1; }
message DaemonEndpoint { optional int32 Port = 1; }
message NodeSystemInfo {
  optional string machineID = 1; optional string systemUUID = 2; optional string bootID = 3; optional string kernelVersion = 4; optional string osImage = 5;
  optional string containerRuntimeVersion = 6; optional string kubeletVersion = 7; optional string kubeProxyVersion = 8; optional string operatingSystem = 9; optional string architecture = 10;
}

message EndpointSlice { optional ObjectMeta metadata = 1; optional string addressType = 4; repeated Endpoint endpoints = 2; repeated EndpointPort ports = 3; }
message Endpoint {
  repeated string addresses = 1; optional EndpointConditions conditions = 2; optional string hostname = 3; optional ObjectReference targetRef = 4;
  map<string, string> deprecatedTopology = 5; optional string nodeName = 6; optional string zone = 7; optional EndpointHints hints = 8;
}
message EndpointConditions { optional bool ready = 1; optional bool serving = 2; optional bool terminating = 3; }
message EndpointHints { repeated ForZone forZones = 1; repeated ForNode forNodes = 2; }
message ForZone { optional string name = 1; }
message ForNode { optional string name = 1; }
message EndpointPort { optional string name = 1; optional string protocol = 2; optional int32 port = 3; optional string appProtocol = 4; }
`, { keepCase: true }).root.resolveAll();

/** Go pointer fields: written only when set, and a zero value is a value. */
const POINTER_FIELDS = new Set([
  'ObjectMeta.deletionGracePeriodSeconds', 'OwnerReference.controller', 'OwnerReference.blockOwnerDeletion',
  'ServiceSpec.ipFamilyPolicy', 'ServiceSpec.allocateLoadBalancerNodePorts', 'ServiceSpec.loadBalancerClass',
  'ServiceSpec.internalTrafficPolicy', 'ServiceSpec.trafficDistribution', 'ServicePort.appProtocol',
  'LoadBalancerIngress.ipMode', 'PortStatus.error', 'ClientIPConfig.timeoutSeconds',
  'Endpoint.hostname', 'Endpoint.nodeName', 'Endpoint.zone', 'EndpointConditions.ready', 'EndpointConditions.serving',
  'EndpointConditions.terminating', 'EndpointPort.name', 'EndpointPort.protocol', 'EndpointPort.port', 'EndpointPort.appProtocol',
]);

const KINDS: Record<string, string> = { 'v1/Namespace': 'Namespace', 'v1/Service': 'Service', 'v1/Node': 'Node', 'discovery.k8s.io/v1/EndpointSlice': 'EndpointSlice' };

/** A metav1.Time as JSON has it (RFC 3339, seconds); undefined for the zero time. */
function time(v: JsonObject): string | undefined {
  const s = Number(v['seconds'] ?? 0);
  return s === 0 ? undefined : new Date(s * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

function isZero(v: unknown): boolean {
  return v === '' || v === 0 || v === false;
}

/** Turn protobufjs's object for `type` into the object's JSON form. */
function toJson(type: protobuf.Type, obj: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(obj)) {
    const field = type.fields[key];
    if (!field) continue;
    const convert = (v: unknown): unknown => {
      const t = field.resolvedType;
      if (!(t instanceof protobuf.Type) || !isObject(v)) return v;
      switch (t.name) {
        case 'Time':
          return time(v);
        case 'Quantity':
          return v['string'] ?? '';
        case 'IntOrString':
          return Number(v['type'] ?? 0) === 1 ? (v['strVal'] ?? '') : (v['intVal'] ?? 0);
        default:
          return toJson(t, v);
      }
    };
    let json: unknown;
    if (field.map && isObject(value)) json = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, convert(v)]));
    else if (field.repeated && Array.isArray(value)) json = value.map(convert);
    else json = convert(value);
    const pointer = POINTER_FIELDS.has(`${type.name}.${key}`);
    if (json === undefined || (!pointer && (isZero(json) || (field.name === 'targetPort' && json === 0)))) continue;
    out[key] = json;
  }
  return out;
}

/** Decode a request body in Kubernetes protobuf into the object's JSON. */
export function decodeKubeProtobuf(body: Buffer): JsonObject {
  if (body.length < 4 || body.subarray(0, 4).toString('latin1') !== 'k8s\u0000') throw badRequest('protobuf body without the k8s magic prefix');
  try {
    const unknownType = root.lookupType('k8s.Unknown');
    const env = unknownType.toObject(unknownType.decode(body.subarray(4)), { longs: Number }) as JsonObject;
    const typeMeta = isObject(env['typeMeta']) ? env['typeMeta'] : {};
    const apiVersion = String(typeMeta['apiVersion'] ?? '');
    const kind = String(typeMeta['kind'] ?? '');
    const name = KINDS[`${apiVersion}/${kind}`];
    if (!name) throw badRequest(`no kind ${JSON.stringify(kind)} is registered for version ${JSON.stringify(apiVersion)}`);
    const type = root.lookupType(`k8s.${name}`);
    const raw = env['raw'] instanceof Uint8Array ? env['raw'] : new Uint8Array();
    const obj = type.toObject(type.decode(raw), { longs: Number }) as JsonObject;
    return { apiVersion, kind, ...toJson(type, obj) };
  } catch (err) {
    if (err instanceof Error && err.name === 'ApiError') throw err;
    throw badRequest(`the protobuf body could not be decoded: ${(err as Error).message}`);
  }
}
