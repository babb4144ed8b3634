// Original file: proto/sluice/v1/operations.proto

import type { DropCounters as _sluice_v1_DropCounters, DropCounters__Output as _sluice_v1_DropCounters__Output } from '../../sluice/v1/DropCounters.js';
import type { RejectCounters as _sluice_v1_RejectCounters, RejectCounters__Output as _sluice_v1_RejectCounters__Output } from '../../sluice/v1/RejectCounters.js';
import type { FlowCounters as _sluice_v1_FlowCounters, FlowCounters__Output as _sluice_v1_FlowCounters__Output } from '../../sluice/v1/FlowCounters.js';
import type { Long } from '@grpc/proto-loader';

/**
 * The dataplane's global counters, summed over CPUs.
 */
export interface GlobalStats {
  /**
   * Packets the programs saw.
   */
  'rxPackets'?: (number | string | Long);
  /**
   * Packets not for a VIP, passed untouched.
   */
  'passedOther'?: (number | string | Long);
  /**
   * Packets rewritten and redirected to a backend.
   */
  'forwarded'?: (number | string | Long);
  /**
   * Packets rewritten and handed to the kernel's stack (no FIB answer).
   */
  'forwardedStack'?: (number | string | Long);
  /**
   * Reply packets restored to the VIP.
   */
  'replies'?: (number | string | Long);
  /**
   * Malformed packets not for a VIP, passed untouched.
   */
  'passedMalformed'?: (number | string | Long);
  /**
   * Flows whose backend was gone, balanced anew.
   */
  'ctRescheduled'?: (number | string | Long);
  /**
   * New flows that followed ClientIP affinity.
   */
  'affinityHits'?: (number | string | Long);
  /**
   * Forwarded packets without a full FIB answer.
   */
  'fibMiss'?: (number | string | Long);
  /**
   * Drops, by reason.
   */
  'drops'?: (_sluice_v1_DropCounters | null);
  /**
   * Replies of flows this node had no entry for (another node placed them),
   * restored by their backend endpoint; the flow is tracked from then on.
   */
  'repliesRestored'?: (number | string | Long);
  /**
   * Replies of flows this node had no entry for, from an endpoint that
   * serves several service ports: passed unrewritten (see the README's
   * scale-out section).
   */
  'repliesAmbiguous'?: (number | string | Long);
  /**
   * Packets for services without a usable backend answered in their place
   * (a service's no_backends REJECT).
   */
  'rejects'?: (_sluice_v1_RejectCounters | null);
  /**
   * New flows whose client was its own backend (a pod reaching itself
   * through its service), source-NATed to the node's hairpin address.
   */
  'hairpinFlows'?: (number | string | Long);
  /**
   * connect()/sendmsg() calls of the node's own processes to a VIP, sent
   * to a backend by the socket programs (--socket-lb).
   */
  'socketsTranslated'?: (number | string | Long);
  /**
   * The flow lifecycle (README "Flow lifecycle").
   */
  'flows'?: (_sluice_v1_FlowCounters | null);
  /**
   * Later IP fragments translated as their datagram's first fragment was.
   */
  'fragmentsTranslated'?: (number | string | Long);
  /**
   * ICMP errors about a tracked flow, translated through the NAT.
   */
  'icmpTranslated'?: (number | string | Long);
  /**
   * DF packets over the egress MTU, answered with ICMP fragmentation
   * needed.
   */
  'icmpFragNeeded'?: (number | string | Long);
}

/**
 * The dataplane's global counters, summed over CPUs.
 */
export interface GlobalStats__Output {
  /**
   * Packets the programs saw.
   */
  'rxPackets': (string);
  /**
   * Packets not for a VIP, passed untouched.
   */
  'passedOther': (string);
  /**
   * Packets rewritten and redirected to a backend.
   */
  'forwarded': (string);
  /**
   * Packets rewritten and handed to the kernel's stack (no FIB answer).
   */
  'forwardedStack': (string);
  /**
   * Reply packets restored to the VIP.
   */
  'replies': (string);
  /**
   * Malformed packets not for a VIP, passed untouched.
   */
  'passedMalformed': (string);
  /**
   * Flows whose backend was gone, balanced anew.
   */
  'ctRescheduled': (string);
  /**
   * New flows that followed ClientIP affinity.
   */
  'affinityHits': (string);
  /**
   * Forwarded packets without a full FIB answer.
   */
  'fibMiss': (string);
  /**
   * Drops, by reason.
   */
  'drops': (_sluice_v1_DropCounters__Output | null);
  /**
   * Replies of flows this node had no entry for (another node placed them),
   * restored by their backend endpoint; the flow is tracked from then on.
   */
  'repliesRestored': (string);
  /**
   * Replies of flows this node had no entry for, from an endpoint that
   * serves several service ports: passed unrewritten (see the README's
   * scale-out section).
   */
  'repliesAmbiguous': (string);
  /**
   * Packets for services without a usable backend answered in their place
   * (a service's no_backends REJECT).
   */
  'rejects': (_sluice_v1_RejectCounters__Output | null);
  /**
   * New flows whose client was its own backend (a pod reaching itself
   * through its service), source-NATed to the node's hairpin address.
   */
  'hairpinFlows': (string);
  /**
   * connect()/sendmsg() calls of the node's own processes to a VIP, sent
   * to a backend by the socket programs (--socket-lb).
   */
  'socketsTranslated': (string);
  /**
   * The flow lifecycle (README "Flow lifecycle").
   */
  'flows': (_sluice_v1_FlowCounters__Output | null);
  /**
   * Later IP fragments translated as their datagram's first fragment was.
   */
  'fragmentsTranslated': (string);
  /**
   * ICMP errors about a tracked flow, translated through the NAT.
   */
  'icmpTranslated': (string);
  /**
   * DF packets over the egress MTU, answered with ICMP fragmentation
   * needed.
   */
  'icmpFragNeeded': (string);
}
