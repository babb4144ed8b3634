/**
 * `sluice demo`: the main job on a built-in topology. Builds namespaces (a
 * client, the load balancer, three backends running real HTTP and UDP
 * servers), loads and attaches sluice, defines a TCP and a UDP service,
 * sends real traffic through the VIP, prints what sluice counted next to
 * what each backend saw, then drains a backend and shows a long-lived
 * connection to it surviving while new connections avoid it. Everything is
 * torn down at the end, on failure and on Ctrl-C too.
 */
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { NativeDataplane } from '../dataplane/native-dataplane.js';
import type { AttachMode } from '../dataplane/dataplane.js';
import { LoadBalancer } from '../lb/load-balancer.js';
import { DEMO_HTTP_PORT as HTTP_PORT, DEMO_UDP_PORT as UDP_PORT, DEMO_VIP as VIP, demoServices } from './services.js';
import { Agent } from './agent-client.js';
import { createTopology, deleteNamespaces, listNamespaces, type Topology } from './topology.js';

/** Options of runDemo. */
export interface DemoOptions {
  /** How to attach: xdp (native, default), xdp-generic or tc. */
  mode?: AttachMode;
  /** HTTP requests and UDP datagrams to send (each at least 1,000 by default). */
  requests?: number;
  /** Where to print. */
  out?: (line: string) => void;
}

const BPFFS = '/sys/fs/bpf';

const pidAlive = (pid: number): boolean => existsSync(`/proc/${pid}`);

/** Remove what an earlier demo that was killed outright (SIGKILL) left behind. */
async function cleanStale(): Promise<void> {
  for (const ns of await listNamespaces('sl-d')) {
    const pid = parseInt(ns.slice(4).split('-')[0] ?? '', 36);
    if (Number.isFinite(pid) && !pidAlive(pid)) await deleteNamespaces([ns]);
  }
  for (const dir of await readdir(BPFFS).catch(() => [] as string[])) {
    const m = /^sluice-demo-(\d+)$/.exec(dir);
    if (m && !pidAlive(Number(m[1]))) await rm(`${BPFFS}/${dir}`, { recursive: true, force: true });
  }
}

function pad(s: string | number | bigint, n: number, left = false): string {
  const v = String(s);
  return left ? v.padEnd(n) : v.padStart(n);
}

/** Run the demo; resolves when everything is torn down. */
export async function runDemo(opts: DemoOptions = {}): Promise<void> {
  const out = opts.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const mode = opts.mode ?? 'xdp';
  const requests = opts.requests ?? 1000;
  if (process.getuid?.() !== 0) throw new Error('the demo needs root (network namespaces and BPF)');

  await cleanStale();
  const tag = `d${process.pid.toString(36)}`;
  const pinDir = `${BPFFS}/sluice-demo-${process.pid}`;
  let topo: Topology | undefined;
  let dp: NativeDataplane | undefined;
  const agents: Agent[] = [];
  let tornDown: Promise<void> | undefined;
  let interrupted: NodeJS.Signals | undefined;

  // One teardown, shared by the normal path, failures and signals.
  const teardown = (): Promise<void> => (tornDown ??= teardownOnce());
  const teardownOnce = async (): Promise<void> => {
    await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
    if (dp && topo) {
      for (const ifname of topo.lb.ifnames) {
        try {
          dp.detach({ ifname, netns: topo.lb.nsPath, mode });
        } catch {
          /* the namespace going away removes it anyway */
        }
      }
    }
    try {
      dp?.unpin();
    } catch {
      /* nothing pinned */
    }
    dp?.close();
    await topo?.destroy();
    await rm(pinDir, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    out(`\n${sig}: tearing down`);
    interrupted = sig;
    void teardown().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    out('sluice demo: building the topology (client, load balancer, 3 backends) ...');
    topo = await createTopology({ tag, backends: 3 });
    const client = new Agent(topo.client.ns);
    agents.push(client);
    const servers = topo.backends.map((b) => new Agent(b.ns));
    agents.push(...servers);
    await Promise.all(agents.map((a) => a.ready));
    await Promise.all(servers.map((s, i) => s.serve(`backend-${i + 1}`, HTTP_PORT, UDP_PORT)));

    dp = await NativeDataplane.open({ pinDir });
    for (const ifname of topo.lb.ifnames) dp.attach({ ifname, netns: topo.lb.nsPath, mode });
    out(`loaded sluice, attached (${mode}) to ${topo.lb.ifnames.join(', ')} in ${topo.lb.ns}; maps pinned in ${pinDir}`);

    const lb = new LoadBalancer(dp);
    const { web, dns } = demoServices(topo.backends);
    await lb.apply(web);
    await lb.apply(dns);
    out(`services: web ${VIP}:80/tcp and dns ${VIP}:53/udp -> ${topo.backends.map((b) => b.address).join(', ')}`);

    out(`\nsending ${requests} HTTP requests (a new connection each) and ${requests} UDP datagrams to ${VIP} ...`);
    const httpRes = await client.http(`http://${VIP}:80/`, requests, 16);
    const udpRes = await client.udp(VIP, 53, requests, 16, 20000);
    out(`HTTP: ${httpRes.ok} answered, ${httpRes.failed} failed;  UDP: ${udpRes.ok} answered, ${udpRes.failed} failed`);
    if (httpRes.failed || udpRes.failed) out(`errors: ${[...httpRes.errors, ...udpRes.errors].join('; ')}`);

    const seen = await Promise.all(servers.map((s) => s.stats()));
    const ws = lb.stats('web');
    const ds = lb.stats('dns');
    out('');
    out('                         |        sluice: web (tcp/80)        |  sluice: dns (udp/53)  |     what the backend saw');
    out('backend                  |  packets    bytes  conns  replies  |  packets  bytes flows  | HTTP reqs  conns  UDP dgrams');
    out('-------------------------+------------------------------------+------------------------+---------------------------');
    topo.backends.forEach((b, i) => {
      const w = ws.backends[i]!;
      const d = ds.backends[i]!;
      const s = seen[i]!;
      out(
        `${pad(`backend-${i + 1} ${b.address}`, 24, true)} | ${pad(w.packets, 8)} ${pad(w.bytes, 8)} ${pad(w.newConnections, 6)} ${pad(w.replyPackets, 8)}  |` +
        ` ${pad(d.packets, 8)} ${pad(d.bytes, 6)} ${pad(d.newConnections, 5)}  | ${pad(s.httpRequests, 9)} ${pad(s.httpConnections, 6)} ${pad(s.udpDatagrams, 11)}`,
      );
    });
    out(
      `${pad('total', 24, true)} | ${pad(ws.packets, 8)} ${pad(ws.bytes, 8)} ${pad(ws.newConnections, 6)} ${pad(ws.replyPackets, 8)}  |` +
      ` ${pad(ds.packets, 8)} ${pad(ds.bytes, 6)} ${pad(ds.newConnections, 5)}  | ${pad(seen.reduce((a, s) => a + s.httpRequests, 0), 9)}` +
      ` ${pad(seen.reduce((a, s) => a + s.httpConnections, 0), 6)} ${pad(seen.reduce((a, s) => a + s.udpDatagrams, 0), 11)}`,
    );
    const g = dp.globalStats();
    out(`\nglobal: rx ${g.rx_packets}, forwarded by XDP/tc redirect ${g.forwarded}, via the stack ${g.forwarded_stack}, ` +
      `replies ${g.replies}, passed ${g.passed_other}, drops: no_service ${g.drop_no_service} no_backend ${g.drop_no_backend} ` +
      `malformed ${g.drop_malformed} fragment ${g.drop_fragment}`);

    // Drain: a long-lived connection keeps its backend, new ones avoid it.
    out('\ndraining: opening a long-lived HTTP connection ...');
    const conn = await client.open(`http://${VIP}:80/`);
    const victim = topo.backends[Number(conn.backend.split('-')[1]) - 1]!;
    out(`the long-lived connection is served by ${conn.backend} (${victim.address}); draining it`);
    await lb.setBackendState('web', victim.address, HTTP_PORT, 'draining');
    const again = await client.request(conn.conn).catch((err: Error) => {
      out(`  the long-lived connection failed: ${err.message}`);
      return undefined;
    });
    const after = await client.http(`http://${VIP}:80/`, 300, 16);
    const survived = again?.backend === conn.backend;
    out(`  the long-lived connection, after the drain: answered by ${again?.backend} on the same socket -> ${survived ? 'survived' : 'BROKE'}`);
    out(`  300 new connections after the drain: ${Object.entries(after.byBackend).map(([k, v]) => `${k} ${v}`).join(', ')}` +
      `${after.failed ? `, ${after.failed} failed` : ''} -> ${after.byBackend[conn.backend] ? 'SOME REACHED THE DRAINED BACKEND' : `none to ${conn.backend}`}`);
    const ok = httpRes.failed === 0 && udpRes.failed === 0 && survived && !after.byBackend[conn.backend] && after.failed === 0;
    out(ok ? '\ndemo OK' : '\ndemo FAILED');
    if (!ok) process.exitCode = 1;
  } finally {
    out('tearing down: agents, attachments, pins, namespaces ...');
    await teardown();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    const left = await listNamespaces(`sl-${tag}-`);
    out(left.length ? `left behind: ${left.join(', ')}` : 'clean: no namespace, link, pin or attachment left');
    if (interrupted) process.exit(interrupted === 'SIGINT' ? 130 : 143);
  }
}
