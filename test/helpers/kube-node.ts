/**
 * A simulated Kubernetes node for the kube-proxy mode's end-to-end tests: a
 * test API server (src/demo/kube-apiserver.ts) holding this node's Node, a
 * node namespace with pods on a bridge (src/demo/pod-topology.ts) and a
 * client outside it, and `sluice kube-proxy` run as a process that watches
 * the API server from here and attaches inside the node's namespace.
 * Everything goes with the test, on every path.
 */
import type { ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent } from '../../src/demo/agent-client.js';
import { createCgroup, removeCgroup } from '../../src/demo/cgroup.js';
import { KubeApiServer } from '../../src/demo/kube-apiserver.js';
import { NODE_ADDRESS, NODE_ADDRESS6, createPodNode, type PodNode } from '../../src/demo/pod-topology.js';
import { freePort, listNamespaces } from '../../src/demo/topology.js';
import { DaemonProcess } from './daemon.js';

const run = promisify(execFile);


/** An endpoint of endpointSliceYaml: its address, and its conditions (ready and serving unless said). */
export type SliceEndpoint = string | { ip: string; ready?: boolean; serving?: boolean; terminating?: boolean };

/** An EndpointSlice of `service` as the EndpointSlice controller would write it, in YAML. */
export function endpointSliceYaml(
  service: string,
  ports: ReadonlyArray<{ name: string; port: number; protocol?: string }>,
  endpoints: readonly SliceEndpoint[],
  opts: { name?: string; addressType?: 'IPv4' | 'IPv6' } = {},
): string {
  const e = endpoints.map((x) => (typeof x === 'string' ? { ip: x } : x));
  return `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${opts.name ?? `${service}-abcde`}
  namespace: default
  labels:
    kubernetes.io/service-name: ${service}
addressType: ${opts.addressType ?? 'IPv4'}
ports:
${ports.map((p) => `- name: ${JSON.stringify(p.name)}\n  port: ${p.port}\n  protocol: ${p.protocol ?? 'TCP'}`).join('\n')}
endpoints:
${e.map((x) => `- addresses: ["${x.ip}"]\n  conditions: {ready: ${x.ready ?? true}, serving: ${x.serving ?? true}, terminating: ${x.terminating ?? false}}`).join('\n')}
`;
}

export interface KubeNode {
  api: KubeApiServer;
  node: PodNode;
  nodeName: string;
  agent: DaemonProcess;
  dir: string;
  kubeconfig: string;
  cgroup: string;
  healthz: string;
  metrics: string;
  /** Start `sluice kube-proxy` (again) and wait until its API serves. */
  start(extra?: string[]): Promise<void>;
  /** `kubectl` against the test API server. */
  kubectl(...args: string[]): Promise<string>;
  /** `kubectl apply -f -` of a YAML text. */
  apply(yaml: string): Promise<string>;
  /** A helper process in a namespace (a pod's, the node's, the client's), stopped with the test. */
  agentIn(ns: string, opts?: { cgroup?: string }): Promise<Agent>;
  /** Wait until the agent holds exactly these kubernetes-owned services (by sluice name), each with these backends ("10.0.0.1" active, "10.0.0.2:draining"). */
  programmed(want: Record<string, string[]>, ms?: number): Promise<void>;
}

export async function until(what: string | (() => string), cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Build the node, the API server and the agent (not started). */
export async function kubeNode(t: ExecutionContext, prefix: string, opts: { mode?: 'xdp' | 'tc' } = {}): Promise<KubeNode> {
  const tag = `${prefix}${process.pid.toString(36)}`.slice(0, 8);
  const nodeName = `node-${tag}`;
  const dir = await mkdtemp(path.join(tmpdir(), `sluice-kube-${tag}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const api = await KubeApiServer.start({ bookmarkIntervalMs: 1000 });
  t.teardown(() => api.close());
  const kubeconfig = path.join(dir, 'kubeconfig');
  api.writeKubeconfig(kubeconfig);
  const node = await createPodNode({ tag });
  t.teardown(async () => {
    await node.destroy();
    const left = await listNamespaces(`sl-${tag}-`);
    if (left.length) throw new Error(`namespaces left behind: ${left.join(', ')}`);
  });
  const cgroup = await createCgroup(`sluice-kube-${tag}`);
  t.teardown(() => removeCgroup(cgroup));
  api.applyObjects([{ apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName }, status: { addresses: [{ type: 'InternalIP', address: NODE_ADDRESS }, { type: 'InternalIP', address: NODE_ADDRESS6 }, { type: 'Hostname', address: nodeName }] } }]);
  const [hp, mp] = [await freePort(), await freePort()];
  const healthz = `127.0.0.1:${hp}`;
  const metrics = `127.0.0.1:${mp}`;
  const agent = await DaemonProcess.create(tag, [
    '--kubeconfig', kubeconfig,
    '--hostname-override', nodeName,
    '--netns', node.nsPath,
    '--socket-lb', cgroup,
    '--mode', opts.mode ?? 'xdp',
    '--healthz-bind-address', healthz,
    '--metrics-bind-address', metrics,
  ], { command: 'kube-proxy' });
  t.teardown(() => agent.destroy());
  const env = { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: path.join(dir, 'kubecache') };
  const kubectl = async (...args: string[]): Promise<string> => {
    try {
      return (await run('kubectl', args, { env, timeout: 30_000 })).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`kubectl ${args.join(' ')}: ${e.stderr || e.message}`);
    }
  };
  let n = 0;
  const k: KubeNode = {
    api, node, nodeName, agent, dir, kubeconfig, cgroup, healthz, metrics,
    start: (extra = []) => agent.start(extra),
    kubectl,
    apply: async (yaml: string) => {
      const f = path.join(dir, `manifest-${n++}.yaml`);
      await writeFile(f, yaml);
      return kubectl('apply', '-f', f);
    },
    agentIn: async (ns, o = {}) => {
      const a = new Agent(ns, o);
      t.teardown(() => a.stop());
      await a.ready;
      return a;
    },
    programmed: async (want, ms = 15_000) => {
      let last = '';
      await until(() => `the agent to program ${JSON.stringify(want)} (it holds ${last}); its log: ${agent.log().slice(-3000)}`, async () => {
        const c = agent.client();
        try {
          const got: Record<string, string[]> = {};
          for (const s of (await c.listServices({ pageSize: 1000 })).services) {
            if (s.owner !== 'kubernetes') continue;
            got[s.name] = s.backends.map((b) => (b.state === 'ACTIVE' ? b.address : `${b.address}:${String(b.state).toLowerCase()}`)).sort();
          }
          last = JSON.stringify(got);
          const norm = Object.fromEntries(Object.entries(want).map(([k2, v]) => [k2, [...v].sort()]));
          return JSON.stringify(Object.fromEntries(Object.entries(got).sort())) === JSON.stringify(Object.fromEntries(Object.entries(norm).sort()));
        } catch {
          return false;
        } finally {
          c.close();
        }
      }, ms);
    },
  };
  return k;
}
