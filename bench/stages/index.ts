/**
 * The benchmark's stages, in the order `npm run bench` runs them. Adding a
 * stage: one import and one entry here.
 */
import type { Stage } from '../lib/types.js';
import { conntrackGcStage } from './conntrack-gc.js';
import { controlPlaneStage } from './control-plane.js';
import { dnsStage } from './dns.js';
import { failoverStage } from './failover.js';
import { fuzzStage } from './fuzz.js';
import { healthStage } from './health.js';
import { kubeProxyStage } from './kube-proxy.js';
import { maglevStage } from './maglev.js';
import { mapsStage } from './maps.js';
import { metricsStage } from './metrics.js';
import { perPacketStage } from './per-packet.js';
import { scaleoutStage } from './scaleout.js';
import { serviceCountStage, trafficStage } from './traffic.js';

export const STAGES: Stage[] = [
  perPacketStage,
  trafficStage,
  serviceCountStage,
  controlPlaneStage,
  scaleoutStage,
  kubeProxyStage,
  failoverStage,
  maglevStage,
  fuzzStage,
  mapsStage,
  conntrackGcStage,
  dnsStage,
  healthStage,
  metricsStage,
];
