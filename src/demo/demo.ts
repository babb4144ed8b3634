/**
 * `sluice demo`: the main job on a built-in topology. Builds namespaces (a
 * client, the load balancer, three backends running real HTTP and UDP
 * servers), starts `sluice daemon` attached to the load balancer's
 * interfaces, and drives it with the `sluice` CLI, printed as a person would
 * type it: define a TCP and a UDP service, send real traffic through the
 * VIP, print what sluice counted next to what each backend saw. The TCP
 * service is dual-stack (an IPv4 and an IPv6 VIP, each backend by both of
 * its addresses): the same requests over IPv6 show each family balanced
 * over its own backends' addresses, and conntrack6 holds the IPv6 flows.
 * Then drain a backend and show a long-lived connection to it surviving
 * while new connections avoid it. Then what a node serves beside the
 * dataplane: the service's name through the daemon's DNS server (dig A and
 * AAAA), an active health
 * check taking a backend whose server stops out of new connections and back,
 * /metrics and `sluice top --once`. Everything is torn down at the end, on
 * failure and on Ctrl-C too.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DemoSession, pinsLeft, removeStaleDemoDirs } from './demo-session.js';
import type { AttachMode } from '../dataplane/dataplane.js';
import type { GetStatsResponse } from '../api/messages.js';
import { startLab, type Lab } from './lab.js';
import { DaemonProcess } from './daemon-process.js';
import { httpUrl } from './agent-client.js';
import type { ServerStats } from './ns-agent.js';
import { DEMO_HTTP_PORT as HTTP_PORT, DEMO_UDP_PORT as UDP_PORT, DEMO_VIP as VIP, DEMO_VIP6 as VIP6 } from './services.js';
import { deleteNamespaces, freePort, lbInterfaceFlags, listNamespaces, type Host, type Topology } from './topology.js';

/** How often the demo's health check probes, and how many results in a row count: a change shows within about a second. */
const CHECK = { intervalMs: 500, fall: 2, rise: 2 };
/** How long the demo waits for a health change before it gives up (the check itself needs about a second). */
const HEALTH_DEADLINE_MS = 20_000;
/** The /metrics lines the demo shows, as `grep -E` takes them. */
const METRICS_GREP = '^sluice_(service_(packets|new_connections)_total|backend_health)';


/** Options of runDemo. */
export interface DemoOptions {
  /** How to attach: xdp (native, default), xdp-generic or tc. */
  mode?: AttachMode;
  /** HTTP requests and UDP datagrams to send (1,000 each by default). */
  requests?: number;
  /** Where to print. */
  out?: (line: string) => void;
}

/** Remove what an earlier demo that was killed outright (SIGKILL) left behind. */
async function cleanStale(): Promise<void> {
  for (const ns of await listNamespaces('sl-d')) {
    const pid = parseInt(ns.slice(4).split('-')[0] ?? '', 36);
    if (Number.isFinite(pid) && !existsSync(`/proc/${pid}`)) await deleteNamespaces([ns]);
  }
  await removeStaleDemoDirs(/^sluice-demo-(\d+)$/, /^sluice-demo-(\d+)-/);
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
  let lab: Lab | undefined;
  let topo: Topology | undefined;
  let daemon: DaemonProcess | undefined;
  const session = new DemoSession(out, async () => {
    // SIGTERM with --detach-on-exit: the daemon detaches its programs.
    await daemon?.stop('SIGTERM').catch(() => undefined);
    await daemon?.destroy();
    await lab?.destroy();
  });
  /** Run the CLI as a person would, and show it. */
  const sluice = (...args: string[]): Promise<string> => session.sluice(daemon!.address, args);

  try {
    out('sluice demo: building the topology (client, load balancer, 3 backends) ...');
    lab = await startLab(tag);
    topo = lab.topo;
    const { client, servers } = lab;

    const lbNs = topo.lb.nsPath;
    // Free ports on 127.0.0.1, so that the demo runs beside a daemon that holds the default metrics port.
    const metricsAddress = `127.0.0.1:${await freePort()}`;
    const dnsPort = await freePort();
    daemon = await DaemonProcess.create('demo', [
      ...lbInterfaceFlags(topo),
      '--mode', mode,
      '--detach-on-exit',
      '--metrics-bind-address', metricsAddress,
      '--dns-bind-address', `127.0.0.1:${dnsPort}`,
    ]);
    out(`starting: sluice daemon --mode ${mode} ${topo.lb.ifnames.map((i) => `--interface ${i}@${lbNs}`).join(' ')} \\\n` +
      `            --metrics-bind-address ${metricsAddress} --dns-bind-address 127.0.0.1:${dnsPort} --listen ${daemon.address}`);
    await daemon.start();
    out(`the daemon serves on ${daemon.address}; maps pinned in ${daemon.pinDir}`);
    out(`its status page: http://${metricsAddress}/ (open it to watch the demo live; it goes away with the demo)\n`);

    const file = path.join(daemon.dir, 'services.yaml');
    await writeFile(file, [
      '# the demo services: a TCP and a UDP service over the same three backends;',
      '# web is dual-stack: each VIP is balanced over the backends\' addresses of its family',
      '- name: default/web',
      `  addresses: [${VIP}, "${VIP6}"]`,
      `  ports: [{name: http, port: 80, protocol: tcp, targetPort: ${HTTP_PORT}}]`,
      `  backends: [${dualStackBackends(topo.backends)}]`,
      '- name: default/dns',
      `  addresses: [${VIP}]`,
      `  ports: [{name: dns, port: 53, protocol: udp, targetPort: ${UDP_PORT}}]`,
      `  backends: [${topo.backends.map((b) => `{address: ${b.address}}`).join(', ')}]`,
      '',
    ].join('\n'));
    await sluice('service', 'apply', '-f', file);
    await sluice('service', 'list');

    out(`\nsending ${requests} HTTP requests (a new connection each) and ${requests} UDP datagrams (a new source port each) to ${VIP} ...`);
    const seen0 = await Promise.all(servers.map((s) => s.stats()));
    const httpRes = await client.http(`http://${VIP}:80/`, requests, 16);
    const udpRes = await client.udp(VIP, 53, requests, 16, 20000);
    out(`HTTP: ${httpRes.ok} answered, ${httpRes.failed} failed;  UDP: ${udpRes.ok} answered, ${udpRes.failed} failed`);
    if (httpRes.failed || udpRes.failed) out(`errors: ${[...httpRes.errors, ...udpRes.errors].join('; ')}`);

    out('');
    await sluice('stats');
    const stats = JSON.parse(await sluice('stats', '-o', 'json')) as GetStatsResponse;
    const seen = await Promise.all(servers.map((s) => s.stats()));
    const web = stats.services.find((s) => s.name === 'default/web')!;
    const dns = stats.services.find((s) => s.name === 'default/dns')!;
    const c = (x: { counters: { packets: string; bytes: string; newConnections: string; replyPackets: string } | null } | undefined) =>
      x?.counters ?? { packets: '0', bytes: '0', newConnections: '0', replyPackets: '0' };
    out('\nsluice\'s counters next to what each backend saw:');
    out('                         |        sluice: web (tcp/80)        |  sluice: dns (udp/53)  |     what the backend saw');
    out('backend                  |  packets    bytes  conns  replies  |  packets  bytes flows  | HTTP reqs  conns  UDP dgrams');
    out('-------------------------+------------------------------------+------------------------+---------------------------');
    topo.backends.forEach((b, i) => {
      const w = c(web.backends.find((x) => x.address === b.address));
      const d = c(dns.backends.find((x) => x.address === b.address));
      const s = seen[i]!;
      out(
        `${pad(`backend-${i + 1} ${b.address}`, 24, true)} | ${pad(w.packets, 8)} ${pad(w.bytes, 8)} ${pad(w.newConnections, 6)} ${pad(w.replyPackets, 8)}  |` +
        ` ${pad(d.packets, 8)} ${pad(d.bytes, 6)} ${pad(d.newConnections, 5)}  | ${pad(s.httpRequests, 9)} ${pad(s.httpConnections, 6)} ${pad(s.udpDatagrams, 11)}`,
      );
    });
    const ws = c(web);
    const ds = c(dns);
    out(
      `${pad('total', 24, true)} | ${pad(ws.packets, 8)} ${pad(ws.bytes, 8)} ${pad(ws.newConnections, 6)} ${pad(ws.replyPackets, 8)}  |` +
      ` ${pad(ds.packets, 8)} ${pad(ds.bytes, 6)} ${pad(ds.newConnections, 5)}  | ${pad(seen.reduce((a, s) => a + s.httpRequests, 0), 9)}` +
      ` ${pad(seen.reduce((a, s) => a + s.httpConnections, 0), 6)} ${pad(seen.reduce((a, s) => a + s.udpDatagrams, 0), 11)}`,
    );

    // Dual stack: the same requests to the IPv6 VIP; each family reaches only its own backends' addresses.
    out(`\nthe same ${requests} HTTP requests over IPv6, to [${VIP6}]:80 ...`);
    const http6 = await client.http(httpUrl(VIP6, 80), requests, 16);
    out(`HTTP over IPv6: ${http6.ok} answered, ${http6.failed} failed`);
    if (http6.failed) out(`errors: ${http6.errors.join('; ')}`);
    const seen6 = await Promise.all(servers.map((s) => s.stats()));
    out('\ndefault/web by family: the addresses its connections reached, as each backend\'s agent saw them');
    const own4 = showFamily(out, topo.backends, 'IPv4', `${VIP}:80`, httpRes.ok, seen0, seen);
    const own6 = showFamily(out, topo.backends, 'IPv6', `[${VIP6}]:80`, http6.ok, seen, seen6);
    out('\nconntrack6 holds the IPv6 flows; a long-lived IPv6 connection is established:');
    const conn6 = await client.open(httpUrl(VIP6, 80));
    const listed6 = await sluice('conntrack', 'list', '--family', '6', '--state', 'established');
    const tracked6 = listed6.includes(`[${VIP6}]:80`) && listed6.includes(topo.client.address6);

    // Drain: a long-lived connection keeps its backend, new ones avoid it.
    out('\ndraining: opening a long-lived HTTP connection ...');
    const conn = await client.open(`http://${VIP}:80/`);
    const victim = topo.backends[Number(conn.backend.split('-')[1]) - 1]!;
    out(`the long-lived connection is served by ${conn.backend} (${victim.address}); draining it`);
    await sluice('backend', 'drain', 'default/web', victim.address);
    await sluice('flow', 'lookup', '--client', '192.168.77.2:40000', '--vip', `${VIP}:80`);
    const again = await client.request(conn.conn).catch((err: Error) => {
      out(`  the long-lived connection failed: ${err.message}`);
      return undefined;
    });
    const after = await client.http(`http://${VIP}:80/`, 300, 16);
    const survived = again?.backend === conn.backend;
    out(`the long-lived connection, after the drain: answered by ${again?.backend} on the same socket -> ${survived ? 'survived' : 'BROKE'}`);
    out(`300 new connections after the drain: ${Object.entries(after.byBackend).map(([k, v]) => `${k} ${v}`).join(', ')}` +
      `${after.failed ? `, ${after.failed} failed` : ''} -> ${after.byBackend[conn.backend] ? 'SOME REACHED THE DRAINED BACKEND' : `none to ${conn.backend}`}`);
    await sluice('service', 'get', 'default/web');

    const dnsOk = await showDns(session, dnsPort);
    const health = await showHealthCheck({ session, sluice, daemon, lab, victim: victim.address, file: path.join(daemon.dir, 'web-health.yaml') });
    const metricsOk = await showMetrics(session, metricsAddress, 2 * topo.backends.length);
    await sluice('top', '--once');
    out(`\nthe status page, http://${metricsAddress}/, shows the same live in a browser while the demo runs; it goes away with the demo`);

    await client.call({ op: 'close', conn: conn6.conn });
    const ok = httpRes.failed === 0 && udpRes.failed === 0 && survived && !after.byBackend[conn.backend] && after.failed === 0 &&
      http6.failed === 0 && own4 && own6 && tracked6 && dnsOk && health && metricsOk;
    out(ok ? '\ndemo OK' : '\ndemo FAILED');
    if (!ok) process.exitCode = 1;
  } finally {
    out('tearing down: agents, the daemon (detaching), pins, namespaces ...');
    await session.teardown();
    const left = [...(await listNamespaces(`sl-${tag}-`)), ...(await pinsLeft(`sluice-demo-${process.pid}`))];
    out(left.length ? `left behind: ${left.join(', ')}` : 'clean: no namespace, link, pin or attachment left');
    session.finish();
  }
}

/** `dig` the web service's name at the daemon's DNS server, A and AAAA; true if the answers are the VIPs. */
async function showDns(session: DemoSession, port: number): Promise<boolean> {
  session.out('\nthe daemon answers DNS for its services (NAME.NAMESPACE.svc.sluice.local), A and AAAA:');
  const a = await session.command('dig', ['@127.0.0.1', '-p', String(port), 'web.default.svc.sluice.local', '+short']);
  const aaaa = await session.command('dig', ['@127.0.0.1', '-p', String(port), 'web.default.svc.sluice.local', 'AAAA', '+short']);
  return a.trim() === VIP && aaaa.trim() === VIP6;
}

/** The backends of a dual-stack service file: each host by its IPv4 and its IPv6 address (quoted: YAML reads "::" as text only then). */
function dualStackBackends(hosts: readonly Host[]): string {
  return hosts.flatMap((b) => [`{address: ${b.address}}`, `{address: "${b.address6}"}`]).join(', ');
}

/**
 * One line of the per-family table: how many requests to `vip` were
 * answered, and the addresses the backends' agents saw those connections
 * reach (between two snapshots); true if they reached only this family's
 * addresses, one connection each.
 */
function showFamily(
  out: (line: string) => void, hosts: readonly Host[], family: 'IPv4' | 'IPv6', vip: string, answered: number,
  before: readonly ServerStats[], after: readonly ServerStats[],
): boolean {
  const own = new Set(hosts.map((h) => (family === 'IPv4' ? h.address : h.address6)));
  const reached: string[] = [];
  let ownCount = 0;
  let total = 0;
  hosts.forEach((_, i) => {
    for (const [address, n] of Object.entries(after[i]!.httpLocals)) {
      const d = n - (before[i]!.httpLocals[address] ?? 0);
      if (d === 0) continue;
      reached.push(`backend-${i + 1} ${address} ${d}`);
      total += d;
      if (own.has(address)) ownCount += d;
    }
  });
  const onlyOwn = ownCount === total && total === answered;
  out(`  ${pad(family, 4, true)}  ${pad(vip, 15, true)} ${pad(answered, 5)} answered: ${reached.join(', ')} -> ${onlyOwn ? `only ${family} backends` : 'SOME REACHED ANOTHER ADDRESS'}`);
  return onlyOwn;
}

/** What showHealthCheck needs. */
interface HealthStep {
  session: DemoSession;
  sluice: (...args: string[]) => Promise<string>;
  daemon: DaemonProcess;
  lab: Lab;
  /** The backend the drain step drained (the check's server to stop is another). */
  victim: string;
  /** Where to write the service file. */
  file: string;
}

/**
 * Apply default/web with an HTTP health check, stop one backend's HTTP
 * server, wait until the API says it is unhealthy, show that new
 * connections avoid it, start the server again and wait until it is
 * healthy; true if all of that happened.
 */
async function showHealthCheck({ session, sluice, daemon, lab, victim, file }: HealthStep): Promise<boolean> {
  const { out } = session;
  const { topo, client, servers } = lab;
  const i = (topo.backends.findIndex((b) => b.address === victim) + 1) % topo.backends.length;
  const sick = topo.backends[i]!.address;
  const sick6 = topo.backends[i]!.address6;
  const name = `backend-${i + 1}`;
  const yaml = [
    '# default/web again, now with an active health check; its backends name no state, so the drained one is active again',
    '- name: default/web',
    `  addresses: [${VIP}, "${VIP6}"]`,
    `  ports: [{name: http, port: 80, protocol: tcp, targetPort: ${HTTP_PORT}}]`,
    `  backends: [${dualStackBackends(topo.backends)}]`,
    '  healthCheck:',
    `    type: http          # GET / on each backend, at each of its addresses`,
    `    port: http          # the port named http: its targetPort, ${HTTP_PORT}`,
    `    intervalMs: ${CHECK.intervalMs}`,
    `    fall: ${CHECK.fall}             # failures in a row that make a backend unhealthy`,
    `    rise: ${CHECK.rise}             # successes in a row that make it healthy again`,
    '',
  ].join('\n');
  await writeFile(file, yaml);
  out(`\nactive health checks: ${path.basename(file)}`);
  out(yaml.trimEnd().split('\n').map((l) => `  ${l}`).join('\n'));
  await sluice('service', 'apply', '-f', file);

  const api = daemon.client();
  try {
    /** Wait until every backend in `want` has that health, as GetService says; false after the deadline. */
    const healthIs = async (want: Record<string, string>): Promise<boolean> => {
      for (const deadline = Date.now() + HEALTH_DEADLINE_MS; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
        const s = await api.getService('default/web');
        if (Object.entries(want).every(([a, h]) => s.backends.find((b) => b.address === a)?.health === h)) return true;
      }
      out(`  not seen within ${HEALTH_DEADLINE_MS / 1000} s: ${JSON.stringify(want)}`);
      return false;
    };
    const allHealthy = await healthIs(Object.fromEntries(topo.backends.flatMap((b) => [[b.address, 'HEALTHY'], [b.address6, 'HEALTHY']])));
    out(allHealthy ? 'the checks find the three backends healthy, at both addresses' : 'the three backends did not all turn healthy');

    out(`\nstopping ${name}'s HTTP server (${sick}): connects to it are refused ...`);
    await servers[i]!.unserve();
    const down = await healthIs({ [sick]: 'UNHEALTHY', [sick6]: 'UNHEALTHY' });
    out(down ? `the API says ${sick} is unhealthy (${CHECK.fall} failed checks in a row), and ${sick6}; they drain:` : `${sick} and ${sick6} did not turn unhealthy`);
    await sluice('service', 'get', 'default/web');
    const during = await client.http(`http://${VIP}:80/`, 300, 16);
    out(`300 new connections while ${name} is unhealthy${during.failed ? ` (${during.failed} failed: ${during.errors.slice(0, 3).join('; ')})` : ''}:`);
    out('  backend                  health      answered');
    topo.backends.forEach((b, j) => {
      const who = `backend-${j + 1}`;
      out(`  ${pad(`${who} ${b.address}`, 24, true)} ${pad(b.address === sick ? 'unhealthy' : 'healthy', 9, true)} ${pad(during.byBackend[who] ?? 0, 10)}`);
    });
    const avoided = !during.byBackend[name] && during.failed === 0;
    out(avoided ? `-> none to ${name}` : `-> SOME WENT TO ${name}`);

    out(`\nstarting ${name}'s HTTP server again ...`);
    await servers[i]!.reserve();
    const up = await healthIs({ [sick]: 'HEALTHY', [sick6]: 'HEALTHY' });
    out(up ? `the API says ${sick} is healthy again (${CHECK.rise} good checks in a row), and ${sick6}` : `${sick} and ${sick6} did not turn healthy again`);
    return allHealthy && down && avoided && up;
  } finally {
    api.close();
  }
}

/** Show a few lines of the daemon's /metrics as `curl | grep` would; true if the service lines and `backends` health lines are there. */
async function showMetrics(session: DemoSession, address: string, backends: number): Promise<boolean> {
  const url = `http://${address}/metrics`;
  session.out(`\nthe daemon's Prometheus metrics (fetched by the demo itself, as this command shows them):`);
  session.out(`$ curl -s ${url} | grep -E '${METRICS_GREP}'`);
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  const re = new RegExp(METRICS_GREP);
  const lines = (await res.text()).split('\n').filter((l) => re.test(l));
  session.out(lines.map((l) => `  ${l}`).join('\n'));
  return res.ok && lines.some((l) => l.startsWith('sluice_service_packets_total{')) && lines.filter((l) => l.startsWith('sluice_backend_health{')).length === backends;
}
