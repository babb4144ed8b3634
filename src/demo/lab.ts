/**
 * The topology with its programs running: an agent in the client namespace
 * and, in every backend namespace, an agent serving HTTP and UDP as
 * "backend-N". The demo and the end-to-end tests start from this.
 */
import { Agent } from './agent-client.js';
import { DEMO_HTTP_PORT, DEMO_UDP_PORT } from './services.js';
import { createTopology, type Topology } from './topology.js';

/** A running topology. */
export interface Lab {
  topo: Topology;
  /** The agent in the client namespace. */
  client: Agent;
  /** The agents serving in the backend namespaces, in order. */
  servers: Agent[];
  /** Stop the agents and remove the namespaces. Idempotent. */
  destroy(): Promise<void>;
}

/** Build the topology and start its agents; on failure everything made is removed. */
export async function startLab(tag: string, backends = 3): Promise<Lab> {
  const agents: Agent[] = [];
  let topo: Topology | undefined;
  let destroyed: Promise<void> | undefined;
  const destroy = (): Promise<void> =>
    (destroyed ??= (async () => {
      await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
      await topo?.destroy();
    })());
  try {
    topo = await createTopology({ tag, backends });
    const client = new Agent(topo.client.ns);
    const servers = topo.backends.map((b) => new Agent(b.ns));
    agents.push(client, ...servers);
    await Promise.all(agents.map((a) => a.ready));
    await Promise.all(servers.map((s, i) => s.serve(`backend-${i + 1}`, DEMO_HTTP_PORT, DEMO_UDP_PORT)));
    return { topo, client, servers, destroy };
  } catch (err) {
    await destroy();
    throw err;
  }
}
