// Original file: proto/sluice/v1/service.proto

import type { ServicePort as _sluice_v1_ServicePort, ServicePort__Output as _sluice_v1_ServicePort__Output } from '../../sluice/v1/ServicePort.js';
import type { Backend as _sluice_v1_Backend, Backend__Output as _sluice_v1_Backend__Output } from '../../sluice/v1/Backend.js';
import type { SessionAffinity as _sluice_v1_SessionAffinity, SessionAffinity__Output as _sluice_v1_SessionAffinity__Output } from '../../sluice/v1/SessionAffinity.js';
import type { HealthCheck as _sluice_v1_HealthCheck, HealthCheck__Output as _sluice_v1_HealthCheck__Output } from '../../sluice/v1/HealthCheck.js';
import type { IpFamily as _sluice_v1_IpFamily, IpFamily__Output as _sluice_v1_IpFamily__Output } from '../../sluice/v1/IpFamily.js';
import type { Long } from '@grpc/proto-loader';

// Original file: proto/sluice/v1/service.proto

/**
 * What packets for a service get while it has no usable backend (none,
 * or every one draining, in maintenance or of weight 0).
 */
export const _sluice_v1_Service_NoBackends = {
  /**
   * On input: REJECT. Returned only in the BASIC view, which leaves the
   * field out.
   */
  NO_BACKENDS_UNSPECIFIED: 'NO_BACKENDS_UNSPECIFIED',
  /**
   * Answered from the VIP so that clients fail at once, as kube-proxy
   * does: a TCP SYN with a RST (connect() gets ECONNREFUSED), a UDP
   * datagram with ICMP port unreachable (a connected socket gets
   * ECONNREFUSED). Other TCP packets are dropped, and so are answers over
   * the dataplane's rate limit (1,000 a second per CPU, bursts of 100).
   */
  REJECT: 'REJECT',
  /**
   * Dropped: clients wait for their timeouts.
   */
  DROP: 'DROP',
} as const;

/**
 * What packets for a service get while it has no usable backend (none,
 * or every one draining, in maintenance or of weight 0).
 */
export type _sluice_v1_Service_NoBackends =
  /**
   * On input: REJECT. Returned only in the BASIC view, which leaves the
   * field out.
   */
  | 'NO_BACKENDS_UNSPECIFIED'
  | 0
  /**
   * Answered from the VIP so that clients fail at once, as kube-proxy
   * does: a TCP SYN with a RST (connect() gets ECONNREFUSED), a UDP
   * datagram with ICMP port unreachable (a connected socket gets
   * ECONNREFUSED). Other TCP packets are dropped, and so are answers over
   * the dataplane's rate limit (1,000 a second per CPU, bursts of 100).
   */
  | 'REJECT'
  | 1
  /**
   * Dropped: clients wait for their timeouts.
   */
  | 'DROP'
  | 2

/**
 * What packets for a service get while it has no usable backend (none,
 * or every one draining, in maintenance or of weight 0).
 */
export type _sluice_v1_Service_NoBackends__Output = typeof _sluice_v1_Service_NoBackends[keyof typeof _sluice_v1_Service_NoBackends]

/**
 * A load-balanced service: one or more virtual IPs (VIPs) times one or more
 * ports, balanced over one set of backends by Maglev consistent hashing. Each
 * (VIP, port, protocol) of a service is one frontend in the dataplane, and
 * belongs to exactly one service. In the CLI's service files (this message
 * in JSON or YAML) an unknown field is refused, with the nearest known name
 * suggested; the OUTPUT_ONLY fields are accepted and ignored.
 */
export interface Service {
  /**
   * REQUIRED, IMMUTABLE. The service's identifier: 1-253 characters of
   * letters, digits, ".", "_", "/", ":" and "-" (e.g. "default/web"). Another name
   * is another service.
   */
  'name'?: (string);
  /**
   * REQUIRED. The VIPs: IPv4 or IPv6 addresses (RFC 5952 form on output),
   * at least one, without duplicates (an IPv6 address written two ways is
   * one address). A service with VIPs of both families is dual-stack.
   * Addresses that cannot carry a flow are refused, with the reason: 0.0.0.0/8,
   * loopback 127.0.0.0/8, link-local 169.254.0.0/16, multicast 224.0.0.0/4,
   * 240.0.0.0/4 and 255.255.255.255; for IPv6 ::, ::1, IPv4-mapped
   * ::ffff:0:0/96 (write the IPv4 address), IPv4-compatible ::/96,
   * link-local fe80::/10, site-local fec0::/10, multicast ff00::/8 and
   * discard-only 100::/64; a zone id ("%eth0") is not accepted (for backends
   * too).
   */
  'addresses'?: (string)[];
  /**
   * REQUIRED. The ports, at least one, unique by (port, protocol) and by name.
   * VIPs x ports may be at most 64.
   */
  'ports'?: (_sluice_v1_ServicePort)[];
  /**
   * OPTIONAL. The backends (at most 1310), unique by address, none on one of
   * the service's own VIPs, each of the family of at least one VIP. Each
   * serves every port of the service at that port's target_port, for the
   * VIPs of its family (an IPv6 VIP's packets go to the IPv6 backends). Empty (or none active): packets to the service are
   * answered or dropped, as no_backends says. Each backend of each frontend
   * (VIP x port) takes one of the daemon's --max-backends entries.
   */
  'backends'?: (_sluice_v1_Backend)[];
  /**
   * OPTIONAL. ClientIP session affinity. Unset: none.
   */
  'sessionAffinity'?: (_sluice_v1_SessionAffinity | null);
  /**
   * OPTIONAL. Size of the Maglev lookup table: a prime, at most 131071 and at
   * least 100 x the number of active backends (of each family, for a
   * dual-stack service). 0: chosen from the backend count.
   */
  'tableSize'?: (number);
  /**
   * OUTPUT_ONLY. Store revision of the last change to this service's
   * definition (a registered backend coming, changing or going does not move
   * it). This is the service's etag: pass it as `expected_revision` to update
   * or delete it
   * only if nobody changed it since.
   */
  'revision'?: (number | string | Long);
  /**
   * OUTPUT_ONLY. Store revision at which the service was created.
   */
  'createRevision'?: (number | string | Long);
  /**
   * OUTPUT_ONLY. Size of the Maglev table the dataplane uses for the service
   * now (table_size if set, else the size chosen from the backends); 0 when
   * no backend takes new flows. Set on the services calls return; 0 in
   * WatchServices events.
   */
  'effectiveTableSize'?: (number);
  /**
   * OUTPUT_ONLY. Who writes the service: "api" for services made through
   * this API; another source of services (the kube-proxy mode's
   * "kubernetes") writes its own, and the API may read them but not change
   * or delete them (FAILED_PRECONDITION). On input it may be empty or
   * "api"; any other value is INVALID_ARGUMENT.
   */
  'owner'?: (string);
  /**
   * OPTIONAL. What packets for the service get while it has no usable
   * backend. NO_BACKENDS_UNSPECIFIED on input: REJECT.
   */
  'noBackends'?: (_sluice_v1_Service_NoBackends);
  /**
   * OPTIONAL. An active health check of the backends, run by every node
   * that programs the service (each node keeps its own verdicts; they are
   * never stored). Unset: none, every backend counts as up. See HealthCheck
   * and Backend.effective_state for how health and the backend's state
   * combine.
   */
  'healthCheck'?: (_sluice_v1_HealthCheck | null);
  /**
   * OUTPUT_ONLY. The families of the VIPs, one per address, in the order of
   * `addresses`.
   */
  'ipFamilies'?: (_sluice_v1_IpFamily)[];
}

/**
 * A load-balanced service: one or more virtual IPs (VIPs) times one or more
 * ports, balanced over one set of backends by Maglev consistent hashing. Each
 * (VIP, port, protocol) of a service is one frontend in the dataplane, and
 * belongs to exactly one service. In the CLI's service files (this message
 * in JSON or YAML) an unknown field is refused, with the nearest known name
 * suggested; the OUTPUT_ONLY fields are accepted and ignored.
 */
export interface Service__Output {
  /**
   * REQUIRED, IMMUTABLE. The service's identifier: 1-253 characters of
   * letters, digits, ".", "_", "/", ":" and "-" (e.g. "default/web"). Another name
   * is another service.
   */
  'name': (string);
  /**
   * REQUIRED. The VIPs: IPv4 or IPv6 addresses (RFC 5952 form on output),
   * at least one, without duplicates (an IPv6 address written two ways is
   * one address). A service with VIPs of both families is dual-stack.
   * Addresses that cannot carry a flow are refused, with the reason: 0.0.0.0/8,
   * loopback 127.0.0.0/8, link-local 169.254.0.0/16, multicast 224.0.0.0/4,
   * 240.0.0.0/4 and 255.255.255.255; for IPv6 ::, ::1, IPv4-mapped
   * ::ffff:0:0/96 (write the IPv4 address), IPv4-compatible ::/96,
   * link-local fe80::/10, site-local fec0::/10, multicast ff00::/8 and
   * discard-only 100::/64; a zone id ("%eth0") is not accepted (for backends
   * too).
   */
  'addresses': (string)[];
  /**
   * REQUIRED. The ports, at least one, unique by (port, protocol) and by name.
   * VIPs x ports may be at most 64.
   */
  'ports': (_sluice_v1_ServicePort__Output)[];
  /**
   * OPTIONAL. The backends (at most 1310), unique by address, none on one of
   * the service's own VIPs, each of the family of at least one VIP. Each
   * serves every port of the service at that port's target_port, for the
   * VIPs of its family (an IPv6 VIP's packets go to the IPv6 backends). Empty (or none active): packets to the service are
   * answered or dropped, as no_backends says. Each backend of each frontend
   * (VIP x port) takes one of the daemon's --max-backends entries.
   */
  'backends': (_sluice_v1_Backend__Output)[];
  /**
   * OPTIONAL. ClientIP session affinity. Unset: none.
   */
  'sessionAffinity': (_sluice_v1_SessionAffinity__Output | null);
  /**
   * OPTIONAL. Size of the Maglev lookup table: a prime, at most 131071 and at
   * least 100 x the number of active backends (of each family, for a
   * dual-stack service). 0: chosen from the backend count.
   */
  'tableSize': (number);
  /**
   * OUTPUT_ONLY. Store revision of the last change to this service's
   * definition (a registered backend coming, changing or going does not move
   * it). This is the service's etag: pass it as `expected_revision` to update
   * or delete it
   * only if nobody changed it since.
   */
  'revision': (string);
  /**
   * OUTPUT_ONLY. Store revision at which the service was created.
   */
  'createRevision': (string);
  /**
   * OUTPUT_ONLY. Size of the Maglev table the dataplane uses for the service
   * now (table_size if set, else the size chosen from the backends); 0 when
   * no backend takes new flows. Set on the services calls return; 0 in
   * WatchServices events.
   */
  'effectiveTableSize': (number);
  /**
   * OUTPUT_ONLY. Who writes the service: "api" for services made through
   * this API; another source of services (the kube-proxy mode's
   * "kubernetes") writes its own, and the API may read them but not change
   * or delete them (FAILED_PRECONDITION). On input it may be empty or
   * "api"; any other value is INVALID_ARGUMENT.
   */
  'owner': (string);
  /**
   * OPTIONAL. What packets for the service get while it has no usable
   * backend. NO_BACKENDS_UNSPECIFIED on input: REJECT.
   */
  'noBackends': (_sluice_v1_Service_NoBackends__Output);
  /**
   * OPTIONAL. An active health check of the backends, run by every node
   * that programs the service (each node keeps its own verdicts; they are
   * never stored). Unset: none, every backend counts as up. See HealthCheck
   * and Backend.effective_state for how health and the backend's state
   * combine.
   */
  'healthCheck': (_sluice_v1_HealthCheck__Output | null);
  /**
   * OUTPUT_ONLY. The families of the VIPs, one per address, in the order of
   * `addresses`.
   */
  'ipFamilies': (_sluice_v1_IpFamily__Output)[];
}
