/**
 * The scale-out topology with its programs running, as lab.ts does for the
 * single-node one: an agent in the client namespace and, in every backend
 * namespace, an agent serving HTTP and UDP as "backend-N".
 */
import { Agent } from './agent-client.js';
import { DEMO_HTTP_PORT, DEMO_UDP_PORT } from './services.js';
import { createScaleoutTopology, type ScaleoutOptions, type ScaleoutTopology } from './scaleout-topology.js';
import { deleteNamespaces, listNamespaces } from './topology.js';

/** A running scale-out topology. */
export interface ScaleoutLab {
  topo: ScaleoutTopology;
  /** The agent in the client namespace. */
  client: Agent;
  /** The agents serving in the backend namespaces, in order. */
  servers: Agent[];
  /** Stop the agents and remove the namespaces. Idempotent. */
  destroy(): Promise<void>;
}

/** Build the topology and start its agents; on failure everything made is removed. */
export async function startScaleoutLab(opts: ScaleoutOptions): Promise<ScaleoutLab> {
  const agents: Agent[] = [];
  let topo: ScaleoutTopology | undefined;
  let destroyed: Promise<void> | undefined;
  const destroy = (): Promise<void> =>
    (destroyed ??= (async () => {
      await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
      await topo?.destroy();
    })());
  try {
    topo = await createScaleoutTopology(opts);
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

/**
 * Remove the namespaces of labs whose owner was killed outright (SIGKILL
 * runs no teardown): those named `sl-<tagPrefix><pid in base 36>-…` whose
 * process is gone. The tag must be made as `${tagPrefix}${pid.toString(36)}`.
 */
export async function removeStaleLabs(tagPrefix: string): Promise<string[]> {
  const stale: string[] = [];
  for (const ns of await listNamespaces(`sl-${tagPrefix}`)) {
    const pid = parseInt(ns.slice(3 + tagPrefix.length).split('-')[0] ?? '', 36);
    if (!Number.isFinite(pid) || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') stale.push(ns);
    }
  }
  await deleteNamespaces(stale);
  return stale;
}
