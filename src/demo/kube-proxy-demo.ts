/**
 * `sluice demo kube-proxy`: sluice in place of kube-proxy on a simulated
 * node. Builds the node of pod-topology.ts (a bridge with pods serving
 * HTTP and UDP, a client outside the node), starts the test Kubernetes API
 * server (kube-apiserver.ts) with the node's Node in it, and runs `sluice
 * kube-proxy` against it, attached inside the node's namespace. Then, as a
 * person would type it: `kubectl apply -f` of two Services and their
 * EndpointSlices, `kubectl get svc`, `sluice service list`; traffic from a
 * pod to a ClusterIP, from the client to a node port, from the node's own
 * processes, each over IPv4 and IPv6 (web is a PreferDualStack service with
 * an EndpointSlice per family), UDP to a second ClusterIP; /healthz; then
 * an endpoint replaced with `kubectl apply` of the changed EndpointSlices,
 * showing a UDP flow moving to the new pod while a TCP connection to the
 * endpoint that left stays up; `sluice stats`. Everything is torn down at the end, on failure
 * and on Ctrl-C too.
 */
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent } from './agent-client.js';
import { cgroup2Root, createCgroup, removeCgroup } from './cgroup.js';
import { DaemonProcess } from './daemon-process.js';
import { DemoSession, pinsLeft, removeStaleDemoDirs } from './demo-session.js';
import { KubeApiServer } from './kube-apiserver.js';
import type { BatchResult } from './ns-agent.js';
import { CLIENT_ADDRESS, CLIENT_ADDRESS6, NODE_ADDRESS, NODE_ADDRESS6, createPodNode, podAddress6, type PodNode } from './pod-topology.js';
import { removeStaleLabs } from './scaleout-lab.js';
import { DEMO_HTTP_PORT as HTTP_PORT, DEMO_UDP_PORT as UDP_PORT } from './services.js';
import { deleteNamespaces, freePort, listNamespaces } from './topology.js';

/** Options of runKubeProxyDemo. */
export interface KubeProxyDemoOptions {
  /** The hook on the node's external link: xdp (native, default) or tc. */
  mode?: 'xdp' | 'tc';
  /** HTTP requests (per client) and UDP datagrams to send (1,000 by default). */
  requests?: number;
  /** Where to print. */
  out?: (line: string) => void;
}

/** Tags of this demo's namespaces: `sl-kd<pid in base 36>-...` (no test's tag starts with kd). */
const TAG_PREFIX = 'kd';
/** Its pins (/sys/fs/bpf/sluice-kdemo-<pid>), temp directory (sluice-kdemo-<pid>-*) and cgroup (sluice-kdemo-<pid>). */
const NAME = 'kdemo';
const NODE_NAME = 'node-1';
const NODE_PORT = 30080;
/** The pods: two behind the services, one that replaces an endpoint later, one client. */
const PODS = { 'web-1': '10.244.1.11', 'web-2': '10.244.1.12', 'web-3': '10.244.1.13', app: '10.244.1.10' } as const;
type WebPod = 'web-1' | 'web-2' | 'web-3';
/** New connections sent after the endpoint change. */
const AFTER = 300;

const SERVICES_YAML = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  ipFamilyPolicy: PreferDualStack
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: ${NODE_PORT}}
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec:
  selector: {app: web}
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: ${UDP_PORT}}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: ${HTTP_PORT}}
`;

/** The EndpointSlices of web (one per family: web is dual-stack) and dns with these pods (what the EndpointSlice controller would write). */
function slicesYaml(pods: readonly WebPod[]): string {
  const slice = (name: string, service: string, family: 'IPv4' | 'IPv6', ports: string): string => {
    const address = (p: WebPod): string => (family === 'IPv4' ? PODS[p] : `"${podAddress6(PODS[p])}"`);
    return `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}, namespace: default, labels: {kubernetes.io/service-name: ${service}}}
addressType: ${family}
ports: ${ports}
endpoints:
${pods.map((p) => `- {addresses: [${address(p)}], conditions: {ready: true}, targetRef: {kind: Pod, name: ${p}}}`).join('\n')}
`;
  };
  const web = `[{name: http, port: ${HTTP_PORT}, protocol: TCP}]`;
  return [
    slice('web-8x2kq', 'web', 'IPv4', web),
    slice('web-v6-4m7tz', 'web', 'IPv6', web),
    slice('dns-8x2kq', 'dns', 'IPv4', `[{name: dns, port: ${UDP_PORT}, protocol: UDP}, {name: dns-tcp, port: ${HTTP_PORT}, protocol: TCP}]`),
  ].join('---\n');
}


/** Whether an executable `name` is on PATH. */
function onPath(name: string): boolean {
  return (process.env['PATH'] ?? '').split(path.delimiter).some((d) => d !== '' && existsSync(path.join(d, name)));
}

/** Remove what an earlier kube-proxy demo that was killed outright left behind. */
async function cleanStale(): Promise<void> {
  await removeStaleLabs(TAG_PREFIX);
  await removeStaleDemoDirs(new RegExp(`^sluice-${NAME}-(\\d+)$`), new RegExp(`^sluice-${NAME}-(\\d+)-`));
  const root = cgroup2Root();
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const m = new RegExp(`^sluice-${NAME}-(\\d+)$`).exec(name);
    if (m && !existsSync(`/proc/${m[1]}`)) await removeCgroup(path.join(root, name));
  }
}

/** "web-1 512, web-2 488" */
function byPod(r: BatchResult): string {
  return Object.entries(r.byBackend).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`).join(', ');
}

/** "1000 answered (web-1 512, web-2 488)", with the failures and their first errors. */
function outcome(r: BatchResult): string {
  return `${r.ok} answered (${byPod(r)})${failures(r)}`;
}

/** ", 3 FAILED: <the first errors>", or nothing. */
function failures(r: BatchResult): string {
  return r.failed ? `, ${r.failed} FAILED: ${r.errors.slice(0, 3).join('; ')}` : '';
}

/** The lines of `after` that differ from those of `before` (texts of the same shape), as a diff shows them; a change made twice is shown once. */
function changedLines(before: string, after: string): string[] {
  const a = before.split('\n');
  const b = after.split('\n');
  return [...new Set(a.flatMap((l, i) => (l === b[i] ? [] : [`-${l}\n+${b[i] ?? ''}`])))].flatMap((c) => c.split('\n'));
}

/** Run the kube-proxy demo; resolves when everything is torn down. */
export async function runKubeProxyDemo(opts: KubeProxyDemoOptions = {}): Promise<void> {
  const out = opts.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const mode = opts.mode ?? 'xdp';
  const requests = opts.requests ?? 1000;
  if (process.getuid?.() !== 0) throw new Error('the demo needs root (network namespaces and BPF)');
  if (!onPath('kubectl')) throw new Error('the kube-proxy demo runs kubectl: install it (https://kubernetes.io/docs/tasks/tools/) and put it on PATH');

  await cleanStale();
  const tag = `${TAG_PREFIX}${process.pid.toString(36)}`;
  const cgroupDir = path.join(cgroup2Root(), `sluice-${NAME}-${process.pid}`);
  let node: PodNode | undefined;
  let api: KubeApiServer | undefined;
  let agent: DaemonProcess | undefined;
  const agents: Agent[] = [];
  const session = new DemoSession(out, async () => {
    await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
    await agent?.stop('SIGTERM').catch(() => undefined);
    await agent?.destroy();
    await api?.close();
    await node?.destroy();
    // A signal while createPodNode runs leaves `node` unset: its namespaces are found by their tag.
    await deleteNamespaces(await listNamespaces(`sl-${tag}-`));
    await removeCgroup(cgroupDir);
  });
  const sluice = (...args: string[]): Promise<string> => session.sluice(agent!.address, args);
  /** An ns-agent in a namespace, stopped in the teardown. */
  const agentIn = async (ns: string, o: { cgroup?: string } = {}): Promise<Agent> => {
    const a = new Agent(ns, o);
    agents.push(a);
    await a.ready;
    return a;
  };

  try {
    out('sluice demo kube-proxy: building a node (pods web-1, web-2 and app on the bridge cni0) and a client outside it ...');
    node = await createPodNode({ tag });
    for (const name of ['web-1', 'web-2', 'app'] as const) await node.addPod(name, PODS[name]);
    const cgroup = await createCgroup(path.basename(cgroupDir));
    const nsOf = (name: string): string => node!.pods.get(name)!.ns;
    const [web1, web2, app, client, nodeProc] = await Promise.all([
      agentIn(nsOf('web-1')), agentIn(nsOf('web-2')), agentIn(nsOf('app')), agentIn(node.client.ns),
      // The node's own processes run in the cgroup that --socket-lb names.
      agentIn(node.ns, { cgroup }),
    ]);
    await Promise.all([web1.serve('web-1', HTTP_PORT, UDP_PORT), web2.serve('web-2', HTTP_PORT, UDP_PORT)]);

    api = await KubeApiServer.start();
    api.applyObjects([{
      apiVersion: 'v1', kind: 'Node', metadata: { name: NODE_NAME },
      status: { addresses: [{ type: 'InternalIP', address: NODE_ADDRESS }, { type: 'InternalIP', address: NODE_ADDRESS6 }, { type: 'Hostname', address: NODE_NAME }] },
    }]);
    out(`a Kubernetes API server for the demo on ${api.url}, with the Node ${NODE_NAME} (InternalIPs ${NODE_ADDRESS} and ${NODE_ADDRESS6}) as its kubelet registers it`);

    const port = await freePort();
    const health = `127.0.0.1:${port}`;
    // DaemonProcess.create makes the demo's directory: the agent's socket and state, the kubeconfig, the manifests.
    agent = await DaemonProcess.create(NAME, [], { command: 'kube-proxy' });
    const dir = agent.dir;
    const kubeconfig = path.join(dir, 'kubeconfig');
    api.writeKubeconfig(kubeconfig);
    const args = [
      '--kubeconfig', kubeconfig, '--hostname-override', NODE_NAME, '--mode', mode,
      '--netns', node.nsPath, '--socket-lb', cgroup,
      '--healthz-bind-address', health, '--metrics-bind-address', health,
    ];
    out(`starting: sluice kube-proxy ${args.slice(0, 6).join(' ')} \\\n            ${args.slice(6, 10).join(' ')} \\\n            ${args.slice(10).join(' ')} --listen ${agent.address}`);
    await agent.start(args);
    out(`the agent watches the API server, attached inside ${node.ns}; its maps are pinned in ${agent.pinDir}`);

    /** Wait until the agent holds exactly these kubernetes-owned services, with these backends ("10.0.0.1", "10.0.0.2:draining"). */
    const programmed = async (want: Record<string, string[]>): Promise<void> => {
      const key = (m: Record<string, string[]>): string =>
        JSON.stringify(Object.entries(m).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, [...v].sort()]));
      let got: Record<string, string[]> = {};
      for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
        const c = agent!.client();
        try {
          got = {};
          for (const s of (await c.listServices({ pageSize: 1000 })).services) {
            if (s.owner === 'kubernetes') got[s.name] = s.backends.map((b) => (b.state === 'ACTIVE' ? b.address : `${b.address}:${String(b.state).toLowerCase()}`));
          }
          if (key(got) === key(want)) return;
        } catch {
          /* not yet */
        } finally {
          c.close();
        }
      }
      throw new Error(`the agent did not program ${key(want)} within 15 s (it holds ${key(got)}); its log: ${agent!.log().slice(-2000)}`);
    };

    const env = { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: path.join(dir, 'kubecache') };
    const kubectl = (...a: string[]): Promise<string> => session.command('kubectl', a, { env, cwd: dir, shown: `kubectl ${a.join(' ')}` });
    const indent = (lines: string[]): string => lines.map((l) => `  ${l}`).join('\n');
    out(`\nkubectl runs in ${dir} with KUBECONFIG=kubeconfig; sluice's CLI talks to the agent (SLUICE_SERVER=${agent.address})`);
    await writeFile(path.join(dir, 'services.yaml'), SERVICES_YAML);
    out('\nservices.yaml: web (dual-stack: a ClusterIP of each family and node port 30080, its port named http) and dns (53, UDP and TCP)');
    out(indent(SERVICES_YAML.trimEnd().split('\n')));
    const slices = slicesYaml(['web-1', 'web-2']);
    await writeFile(path.join(dir, 'endpointslices.yaml'), slices);
    out('endpointslices.yaml: their endpoints, web-1 and web-2 (web\'s in a slice per family), as the EndpointSlice controller would write them (none runs here)');
    out(indent(slices.trimEnd().split('\n')));
    await kubectl('apply', '-f', 'services.yaml', '-f', 'endpointslices.yaml');
    const both = [PODS['web-1'], PODS['web-2']];
    const both6 = [...both, ...both.map(podAddress6)];
    await programmed({ 'default/web:http': both6, 'default/web:http/nodeport': both6, 'default/dns:dns': both, 'default/dns:dns-tcp': both });
    await kubectl('get', 'svc');
    await sluice('service', 'list');
    const clusterIPs = (name: string): string[] => (api!.get('services', 'default', name)?.['spec'] as { clusterIPs: string[] }).clusterIPs;
    const [web = '', web6 = ''] = clusterIPs('web');
    const [dns = ''] = clusterIPs('dns');
    if (!web6.includes(':')) throw new Error(`the API server gave web no IPv6 ClusterIP: ${clusterIPs('web').join(', ')}`);

    out(`\nsending ${requests} HTTP requests (a new connection each) from three places, and ${requests} UDP datagrams (a new source port each):`);
    const row = (from: string, to: string, r: BatchResult): void =>
      out(`  ${from.padEnd(28)} ${to.padEnd(38)} ${String(r.ok).padStart(8)}  ${byPod(r)}${failures(r)}`);
    out(`  ${'from'.padEnd(28)} ${'to'.padEnd(38)} answered  by pod`);
    /** Connections the pods took from the client's own address of `family`. */
    const fromClientAddress = async (family: 4 | 6): Promise<number> =>
      (await Promise.all([web1.stats(), web2.stats()])).reduce((n, s) => n + (s.httpPeers[family === 4 ? CLIENT_ADDRESS : CLIENT_ADDRESS6] ?? 0), 0);
    const peersBefore = [await fromClientAddress(4), await fromClientAddress(6)];
    const fromPod = await app.http(`http://${web}/`, requests, 16);
    row('pod app', `web's ClusterIP ${web}:80`, fromPod);
    const fromPod6 = await app.http(`http://[${web6}]/`, requests, 16);
    row('pod app', `web's ClusterIP [${web6}]:80`, fromPod6);
    const fromClient = await client.http(`http://${NODE_ADDRESS}:${NODE_PORT}/`, requests, 16);
    row(`the client ${CLIENT_ADDRESS}`, `the node port ${NODE_ADDRESS}:${NODE_PORT}`, fromClient);
    const fromClient6 = await client.http(`http://[${NODE_ADDRESS6}]:${NODE_PORT}/`, requests, 16);
    row(`the client ${CLIENT_ADDRESS6}`, `the node port [${NODE_ADDRESS6}]:${NODE_PORT}`, fromClient6);
    const peers = (await fromClientAddress(4)) - peersBefore[0]!;
    const peers6 = (await fromClientAddress(6)) - peersBefore[1]!;
    const fromNode = await nodeProc.http(`http://${web}/`, requests, 16);
    row('a process on the node', `web's ClusterIP ${web}:80`, fromNode);
    const fromNode6 = await nodeProc.http(`http://[${web6}]/`, requests, 16);
    row('a process on the node', `web's ClusterIP [${web6}]:80`, fromNode6);
    const udp = await app.udp(dns, 53, requests, 16, 20000);
    row('pod app (UDP)', `dns's ClusterIP ${dns}:53`, udp);
    out('the node\'s own processes are balanced at connect() and sendmsg() (--socket-lb), the rest by the programs on the node\'s links' +
      `${peers > 0 && peers6 > 0 ? `;\nthrough the node port, the pods saw the client's own addresses (${CLIENT_ADDRESS}, ${CLIENT_ADDRESS6})` : ''}`);

    const h = await fetch(`http://${health}/healthz`);
    out(`\nGET http://${health}/healthz (kube-proxy's health check, for load balancers in front of the node): ${h.status}`);
    out(`  ${await h.text()}`);

    // The endpoint that goes serves a long-lived TCP connection and a UDP flow with a fixed source port.
    out('\nreplacing an endpoint:');
    const conn = await app.open(`http://${web}/`);
    const gone = conn.backend as WebPod;
    let flowPort = 0;
    for (let p = 40000; p < 40064 && flowPort === 0; p++) {
      if (Object.keys((await app.udp(dns, 53, 1, 1, p)).byBackend)[0] === gone) flowPort = p;
    }
    if (flowPort === 0) throw new Error(`no UDP source port of 64 went to ${gone}`);
    const stays = gone === 'web-1' ? 'web-2' : 'web-1';
    out(`a long-lived HTTP connection from app to web is served by ${gone}, and so are app's datagrams from port ${flowPort} to dns`);
    out(`starting pod web-3 (${PODS['web-3']}); ${gone} leaves every EndpointSlice (its pod keeps running, as a terminating pod does for its grace period)`);
    const web3 = await agentIn((await node.addPod('web-3', PODS['web-3'])).ns);
    await web3.serve('web-3', HTTP_PORT, UDP_PORT);
    const replaced = slicesYaml((['web-1', 'web-2'] as const).map((p) => (p === gone ? 'web-3' : p)));
    await writeFile(path.join(dir, 'endpointslices.yaml'), replaced);
    out(`endpointslices.yaml, edited: in every slice (web-8x2kq, web-v6-4m7tz, dns-8x2kq), ${gone}'s endpoint gives way to web-3's`);
    out(indent(changedLines(slices, replaced)));
    await kubectl('apply', '-f', 'endpointslices.yaml');
    const now = [PODS[stays], PODS['web-3']];
    const draining = [...now, `${PODS[gone]}:draining`];
    const draining6 = [...draining, ...now.map(podAddress6), `${podAddress6(PODS[gone])}:draining`];
    await programmed({ 'default/web:http': draining6, 'default/web:http/nodeport': draining6, 'default/dns:dns': now, 'default/dns:dns-tcp': draining });
    await sluice('service', 'get', 'default/web:http');
    const moved = Object.keys((await app.udp(dns, 53, 1, 1, flowPort)).byBackend)[0];
    out(`UDP from app's port ${flowPort} to dns: answered by ${moved ?? 'nobody'} -> ${moved !== undefined && moved !== gone ? `moved off ${gone} at once (its flows went with the endpoint)` : 'DID NOT MOVE'}`);
    const again = await app.request(conn.conn).catch((err: Error) => {
      out(`  the long-lived connection failed: ${err.message}`);
      return undefined;
    });
    const survived = again?.backend === gone;
    out(`the long-lived connection: answered by ${again?.backend ?? 'nobody'} on the same socket -> ${survived ? 'still up (draining: it keeps its endpoint, new connections do not get it)' : 'BROKE'}`);
    const after = await app.http(`http://${web}/`, AFTER, 16);
    out(`${AFTER} new connections to web: ${outcome(after)} -> ${after.byBackend[gone] ? `SOME WENT TO ${gone}` : `none to ${gone}`}`);

    out('');
    await sluice('stats');
    const batches = [fromPod, fromPod6, fromClient, fromClient6, fromNode, fromNode6, udp, after];
    const ok = batches.every((r) => r.failed === 0) && h.status === 200 &&
      moved !== undefined && moved !== gone && survived && !after.byBackend[gone];
    out(ok ? '\ndemo OK' : '\ndemo FAILED');
    if (!ok) process.exitCode = 1;
  } finally {
    out('tearing down: the agent, the API server, pods and namespaces, the cgroup, pins, the demo\'s directory ...');
    await session.teardown();
    const left = [
      ...(await listNamespaces(`sl-${tag}-`)),
      ...(await pinsLeft(`sluice-${NAME}-${process.pid}`)),
      ...(existsSync(cgroupDir) ? [cgroupDir] : []),
      ...(agent && existsSync(agent.dir) ? [agent.dir] : []),
    ];
    out(left.length ? `left behind: ${left.join(', ')}` : 'clean: no namespace, link, pin, attachment, cgroup, process or file left');
    session.finish();
  }
}
