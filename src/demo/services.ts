/**
 * The services of the built-in topology: `web` (TCP) and `dns` (UDP) on one
 * VIP, served by every backend's ns-agent servers.
 */
import type { ServiceSpec } from '../model/service.js';
import type { Host } from './topology.js';

/** The VIP of the demo services. */
export const DEMO_VIP = '10.96.0.10';
/** The IPv6 VIP beside DEMO_VIP, for the dual-stack demo and tests (the lab's backends have fd77 addresses). */
export const DEMO_VIP6 = 'fd96::10';
/** Where each backend's HTTP server listens. */
export const DEMO_HTTP_PORT = 8080;
/** Where each backend's UDP server listens. */
export const DEMO_UDP_PORT = 5353;

/** web: DEMO_VIP:80/tcp and dns: DEMO_VIP:53/udp over these backends. */
export function demoServices(backends: readonly Host[]): { web: ServiceSpec; dns: ServiceSpec } {
  return {
    web: {
      name: 'web', address: DEMO_VIP, port: 80, protocol: 'tcp',
      backends: backends.map((b) => ({ address: b.address, port: DEMO_HTTP_PORT })),
    },
    dns: {
      name: 'dns', address: DEMO_VIP, port: 53, protocol: 'udp',
      backends: backends.map((b) => ({ address: b.address, port: DEMO_UDP_PORT })),
    },
  };
}
