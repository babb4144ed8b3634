/**
 * `sluice demo scale-out`: three load-balancer nodes on one etcd cluster.
 * Builds the ECMP topology of scaleout-topology.ts (a client behind a
 * router that spreads flows over three load balancers, three backends
 * behind a second router whose way back is the same three), starts a
 * three-member etcd and one `sluice daemon --store etcd://...` per load
 * balancer, and drives them with the `sluice` CLI as a person would: a
 * service applied through one node is listed by the others, traffic spreads
 * over the three, the nodes pick the same backend for a flow, and a load
 * balancer taken out of the ECMP group (its daemon killed) loses none of
 * the long-lived connections it carried. Everything is torn down at the
 * end, on failure and on Ctrl-C too.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DemoSession, pinsLeft, removeStaleDemoDirs } from './demo-session.js';
import type { AttachMode } from '../dataplane/dataplane.js';
import type { GetStatsResponse, LookupFlowResponse } from '../api/messages.js';
import { DaemonProcess } from './daemon-process.js';
import { cleanStaleEtcdClusters, startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';
import { removeStaleLabs, startScaleoutLab, type ScaleoutLab } from './scaleout-lab.js';
import { scaleoutNamespaces } from './scaleout-topology.js';
import { DEMO_HTTP_PORT as HTTP_PORT, DEMO_VIP as VIP } from './services.js';
import { deleteNamespaces } from './topology.js';


/** Options of runScaleoutDemo. */
export interface ScaleoutDemoOptions {
  /** How to attach: xdp (native, default), xdp-generic or tc. */
  mode?: AttachMode;
  /** New HTTP connections to send (1,000 by default). */
  requests?: number;
  /** Where to print. */
  out?: (line: string) => void;
}

/** Tags of this demo's namespaces: `sl-x<pid in base 36>-...`. */
const TAG_PREFIX = 'x';
/** Long-lived connections kept open across the failover. */
const LONG_LIVED = 30;

/** Remove what an earlier scale-out demo that was killed outright left behind. */
async function cleanStale(): Promise<void> {
  await removeStaleLabs(TAG_PREFIX);
  await cleanStaleEtcdClusters();
  await removeStaleDemoDirs(/^sluice-x[0-9a-z]+n\d-(\d+)$/, /^sluice-x[0-9a-z]+n\d-(\d+)-/);
}

/** Run the scale-out demo; resolves when everything is torn down. */
export async function runScaleoutDemo(opts: ScaleoutDemoOptions = {}): Promise<void> {
  const out = opts.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const mode = opts.mode ?? 'xdp';
  const requests = opts.requests ?? 1000;
  if (process.getuid?.() !== 0) throw new Error('the demo needs root (network namespaces and BPF)');

  await cleanStale();
  const tag = `${TAG_PREFIX}${process.pid.toString(36)}`.slice(0, 8);
  let lab: ScaleoutLab | undefined;
  let etcd: EtcdCluster | undefined;
  const daemons: DaemonProcess[] = [];
  const session = new DemoSession(out, async () => {
    // SIGTERM with --detach-on-exit: each daemon detaches its programs.
    await Promise.all(daemons.map((d) => d.stop('SIGTERM').catch(() => undefined)));
    for (const d of daemons) await d.destroy();
    await lab?.destroy();
    await deleteNamespaces(await scaleoutNamespaces(tag));
    await etcd?.destroy();
  });
  /** Run the CLI against node i (1-based) as a person would, and show it. */
  const sluice = (node: number, ...args: string[]): Promise<string> => {
    const server = daemons[node - 1]!.address;
    return session.sluice(server, args, ['--server', server, ...args]);
  };

  try {
    out('sluice demo scale-out: building the topology (a client, a router, 3 load balancers, a router, 3 backends) ...');
    lab = await startScaleoutLab({ tag });
    const { topo, client } = lab;
    out('starting a 3-member etcd cluster ...');
    etcd = await startEtcdCluster({ tag: 'demo' });
    out(`etcd: ${etcd.url}\n`);

    for (const lb of topo.lbs) {
      const args = [
        ...lb.ifnames.flatMap((i) => ['--interface', `${i}@${lb.nsPath}`]),
        '--mode', mode, '--store', etcd.url, '--detach-on-exit',
      ];
      const d = await DaemonProcess.create(`${tag}n${lb.index}`, args);
      daemons.push(d);
      out(`node ${lb.index}: sluice daemon ${args.join(' ')} --listen ${d.address}`);
    }
    await Promise.all(daemons.map((d) => d.start()));
    out('three daemons serve, each on its own load balancer, all on one etcd\n');

    const file = path.join(daemons[0]!.dir, 'services.yaml');
    await writeFile(file, [
      '# one service, applied through node 1: every node takes it from etcd',
      '- name: default/web',
      `  addresses: [${VIP}]`,
      `  ports: [{name: http, port: 80, protocol: tcp, targetPort: ${HTTP_PORT}}]`,
      `  backends: [${topo.backends.map((b) => `{address: ${b.address}}`).join(', ')}]`,
      '',
    ].join('\n'));
    await sluice(1, 'service', 'apply', '-f', file);
    await sluice(2, 'service', 'list');
    await sluice(3, 'service', 'get', 'default/web');

    out(`\nsending ${requests} HTTP requests (a new connection each) to ${VIP} from ${topo.client.address} ...`);
    const before = await topo.counters();
    const http = await client.http(`http://${VIP}/`, requests, 16);
    const after = await topo.counters();
    out(`HTTP: ${http.ok} answered, ${http.failed} failed; by backend: ${Object.entries(http.byBackend).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    out('packets per load balancer (requests in at its front, replies in at its back): ' +
      after.map((c, i) => `lb${c.index} ${c.front.rxPackets - before[i]!.front.rxPackets}/${c.back.rxPackets - before[i]!.back.rxPackets}`).join(', '));
    let restoredBefore = 0n;
    for (let i = 1; i <= 3; i++) {
      const s = JSON.parse(await sluice(i, 'stats', '-o', 'json')) as GetStatsResponse;
      restoredBefore += BigInt(s.globalStats?.repliesRestored ?? '0');
      out(`node ${i}: ${s.services[0]?.counters?.newConnections ?? 0} new connections placed, ${s.globalStats?.replies ?? 0} replies restored, ` +
        `${s.globalStats?.repliesRestored ?? 0} of them for flows another node placed`);
    }

    out('\nthe same flow, asked of each node (the same table everywhere, so the same backend):');
    const picks = new Set<string>();
    for (let i = 1; i <= 3; i++) {
      const r = JSON.parse(await sluice(i, 'flow', 'lookup', '--client', `${topo.client.address}:40000`, '--vip', `${VIP}:80`, '-o', 'json')) as LookupFlowResponse;
      const b = r.backendAddress ? `${r.backendAddress}:${r.backendPort} (slot ${r.maglevSlot} of ${r.tableSize})` : 'none';
      picks.add(b);
      out(`  node ${i}: ${topo.client.address}:40000 -> ${VIP}:80 goes to ${b}`);
    }

    out(`\nfailover: opening ${LONG_LIVED} long-lived connections ...`);
    const conns: number[] = [];
    for (let k = 0; k < LONG_LIVED; k++) conns.push((await client.open(`http://${VIP}/`)).conn);
    const c0 = await topo.counters();
    for (const c of conns) await client.request(c);
    const c1 = await topo.counters();
    out(`their requests cross the load balancers as ${c1.map((c, i) => `lb${c.index} ${c.front.rxPackets - c0[i]!.front.rxPackets}`).join(', ')} packets`);
    out('taking lb2 out of the ECMP group (as its routing session going down would) and killing its daemon (SIGKILL) ...');
    await topo.withdraw(2);
    await daemons[1]!.stop('SIGKILL');
    let lost = 0;
    for (const c of conns) {
      try {
        await client.request(c);
        await client.request(c);
      } catch {
        lost++;
      }
    }
    const fresh = await client.http(`http://${VIP}/`, 300, 16);
    out(`${LONG_LIVED - lost} of ${LONG_LIVED} long-lived connections answered again on their own sockets through lb1 and lb3; ` +
      `300 new connections: ${fresh.ok} answered, ${fresh.failed} failed`);
    let restoredAfter = 0n;
    for (const i of [1, 3]) {
      const s = JSON.parse(await sluice(i, 'stats', '-o', 'json')) as GetStatsResponse;
      restoredAfter += BigInt(s.globalStats?.repliesRestored ?? '0');
    }
    out(`replies restored for flows another node placed, on lb1 and lb3: ${restoredAfter} (the stateless reply path at work)`);

    const ok = http.failed === 0 && picks.size === 1 && !picks.has('none') && lost === 0 && fresh.failed === 0 && restoredBefore > 0n;
    out(ok ? '\ndemo OK' : '\ndemo FAILED');
    if (!ok) process.exitCode = 1;
  } finally {
    out('tearing down: agents, the daemons (detaching), etcd, pins, namespaces ...');
    await session.teardown();
    const left = [...(await scaleoutNamespaces(tag)), ...(await pinsLeft(`sluice-${tag}`))];
    out(left.length ? `left behind: ${left.join(', ')}` : 'clean: no namespace, link, pin, attachment, etcd member or daemon left');
    session.finish();
  }
}
