/**
 * `sluice demo` (the README's first command), `sluice demo scale-out` and
 * `sluice demo kube-proxy` as a user runs them: through the CLI, to "demo
 * OK" and a clean machine; and interrupted with Ctrl-C while their daemons
 * (and etcd, the API server) run, which must leave nothing behind either;
 * what a kube-proxy demo killed outright leaves, the next one removes.
 * `sluice demo` also shows what a node serves beside the dataplane (DNS, a
 * health check taking a backend out and back, /metrics, `sluice top`) and
 * that its web service is dual-stack (the same requests over IPv6, each
 * family to its own backends' addresses, conntrack6, DNS AAAA): its
 * output must say what really happened, and no process may stay in its
 * namespaces (the health check's probe worker runs in one).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cgroup2Root } from '../../src/demo/cgroup.js';
import { cliPath, nodeFlagsOf } from '../../src/demo/daemon-process.js';
import { listNamespaces } from '../../src/demo/topology.js';

/** What a demo run with this pid could leave: namespaces, pins, etcd members and daemons. */
async function leftovers(pid: number): Promise<string[]> {
  const tag = `x${pid.toString(36)}`.slice(0, 8);
  const ns = await listNamespaces(`sl-${tag}-`);
  const pins = readdirSync('/sys/fs/bpf').filter((p) => p.startsWith(`sluice-${tag}`));
  const procs: string[] = [];
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    const cmd = cmdline(p);
    if (cmd.includes(`sluice-etcd-${pid}-`) || cmd.includes(`sluice-${tag}n`)) procs.push(`${p}: ${cmd.slice(0, 120)}`);
  }
  return [...ns, ...pins, ...procs];
}

/** A process's command line ('' if it has ended meanwhile). */
function cmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** What `sluice demo` run with this pid could leave: namespaces, its pins, its daemon. */
async function singleLeftovers(pid: number): Promise<string[]> {
  const ns = await listNamespaces(`sl-d${pid.toString(36)}-`);
  const pins = readdirSync('/sys/fs/bpf').filter((p) => p === `sluice-demo-${pid}`);
  const procs = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && cmdline(d).includes(`sluice-demo-${pid}-`))
    .map((d) => `${d}: ${cmdline(d).slice(0, 120)}`);
  return [...ns, ...pins, ...procs];
}

/**
 * What `sluice demo kube-proxy` run with this pid could leave: namespaces,
 * pins, its cgroup, its directory, the agent and the processes in its
 * namespaces (waited for up to `ms`: after a SIGKILL they end on their own).
 */
async function kubeLeftovers(pid: number, ms = 0): Promise<string[]> {
  const tag = `kd${pid.toString(36)}`;
  const procs = (): string[] => readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && (cmdline(d).includes(`sluice-kdemo-${pid}-`) || cmdline(d).includes(`sl-${tag}-`)))
    .map((d) => `${d}: ${cmdline(d).slice(0, 120)}`);
  for (const deadline = Date.now() + ms; procs().length > 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 200));
  const ns = await listNamespaces(`sl-${tag}-`);
  const pins = readdirSync('/sys/fs/bpf').filter((p) => p === `sluice-kdemo-${pid}`);
  const dirs = readdirSync(tmpdir()).filter((d) => d.startsWith(`sluice-kdemo-${pid}-`));
  const cgroup = path.join(cgroup2Root(), `sluice-kdemo-${pid}`);
  return [...ns, ...pins, ...dirs, ...(existsSync(cgroup) ? [cgroup] : []), ...procs()];
}

/**
 * Processes whose network namespace is one of `inodes`, waited for up to `ms`: a process in a namespace the demo
 * deleted keeps it alive, out of `ip netns`'s sight.
 */
async function processesIn(inodes: ReadonlySet<number>, ms = 0): Promise<string[]> {
  const procs = (): string[] => readdirSync('/proc').filter((d) => /^\d+$/.test(d) && inodes.has(netnsOf(d))).map((d) => `${d}: ${cmdline(d).slice(0, 120)}`);
  for (const deadline = Date.now() + ms; procs().length > 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 200));
  return procs();
}

/** The inode of a process's network namespace (0 if it has ended meanwhile). */
function netnsOf(pid: string): number {
  try {
    return Number(/^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Run `sluice demo scale-out` (or `args`); with `interruptOn`, send `signal` (SIGINT) once that line is printed. */
function runDemo(interruptOn?: RegExp, args = ['scale-out'], signal: NodeJS.Signals = 'SIGINT'): Promise<{ code: number | null; out: string; pid: number; netns: Set<number> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlagsOf(cliPath()), cliPath(), 'demo', ...args, '--requests', '300'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let sent = false;
    // The namespaces the demo names (its daemon's --interface IF@/var/run/netns/X), by inode, while they exist.
    const netns = new Set<number>();
    const seen = new Set<string>();
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const onData = (b: Buffer): void => {
      out += b.toString();
      for (const [, p] of out.matchAll(/@(\/var\/run\/netns\/[\w-]+)/g)) {
        if (seen.has(p!)) continue;
        seen.add(p!);
        try {
          netns.add(statSync(p!).ino);
        } catch {
          /* gone already */
        }
      }
      if (interruptOn && !sent && interruptOn.test(out)) {
        sent = true;
        child.kill(signal);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? (sig === 'SIGKILL' ? 137 : null), out, pid: child.pid!, netns });
    });
  });
}

test.serial('demo scale-out: demo OK, every connection kept over the failover, nothing left', async (t) => {
  const r = await runDemo();
  t.is(r.code, 0, r.out);
  t.regex(r.out, /30 of 30 long-lived connections answered again/);
  t.regex(r.out, /\ndemo OK\n/);
  t.regex(r.out, /clean: no namespace, link, pin, attachment, etcd member or daemon left/);
  t.deepEqual(await leftovers(r.pid), []);
});

test.serial('demo scale-out interrupted while its daemons run: exit 130, nothing left', async (t) => {
  const r = await runDemo(/three daemons serve/);
  t.is(r.code, 130, r.out);
  t.regex(r.out, /SIGINT: tearing down/);
  t.deepEqual(await leftovers(r.pid), []);
});

/** The indented output of the command shown as `$ <command>` (its first run). */
function outputOf(out: string, command: string): string {
  const at = out.indexOf(`\n$ ${command}\n`);
  if (at < 0) return '';
  const lines: string[] = [];
  for (const l of out.slice(at + command.length + 4).split('\n')) {
    if (!l.startsWith('  ')) break;
    lines.push(l);
  }
  return lines.join('\n');
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test.serial('demo: demo OK through one daemon, DNS, a health check, /metrics and top, nothing left', async (t) => {
  const r = await runDemo(undefined, []);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /\ndemo OK\n/);
  t.regex(r.out, /owner: +api/);
  t.true(r.netns.size > 0, 'the demo names its namespaces');

  t.regex(outputOf(r.out, 'sluice service list'), /^ {2}default\/web +10\.96\.0\.10,fd96::10 +80\/tcp->8080 +6\/6 /m, 'web is dual-stack, each backend by both addresses');

  // Dual stack: the same 300 requests over each family, each reaching only its own backends' addresses, as the agents saw them.
  for (const [family, vip, own] of [['IPv4', '10.96.0.10:80', (i: string) => `10.77.${i}.2`], ['IPv6', '[fd96::10]:80', (i: string) => `fd77:${i}::2`]] as const) {
    const line = new RegExp(`^ {2}${family} +${esc(vip)} +(\\d+) answered: (.*) -> (.*)$`, 'm').exec(r.out);
    t.truthy(line, `a line for ${family}`);
    t.is(line?.[1], '300', `${family}: every request answered`);
    t.is(line?.[3], `only ${family} backends`);
    const reached = (line?.[2] ?? '').split(', ').map((x) => /^backend-(\d) (\S+) (\d+)$/.exec(x));
    t.true(reached.every((m) => m !== null && m[2] === own(m[1]!)), `${family} reached only its backends' own addresses: ${line?.[2]}`);
    t.is(reached.reduce((a, m) => a + Number(m?.[3] ?? 0), 0), 300, `${family}: the agents saw 300 connections`);
    t.is(reached.length, 3, `${family}: spread over the three backends`);
  }
  t.regex(outputOf(r.out, 'sluice conntrack list --family 6 --state established'),
    /^ {2}\[fd77:c::2\]:\d+ +\[fd96::10\]:80 +tcp +\[fd77:[123]::2\]:8080 +default\/web +established /m, 'conntrack6 holds the long-lived IPv6 connection');

  // DNS: the service's name is the VIPs, A the IPv4 one and AAAA the IPv6 one.
  const dig = /^\$ dig @127\.0\.0\.1 -p (\d+) web\.default\.svc\.sluice\.local \+short\n((?: {2}.*\n)*)/m.exec(r.out);
  t.truthy(dig, 'dig is run');
  t.is(dig?.[2], '  10.96.0.10\n', 'dig answers the VIP');
  t.is(outputOf(r.out, `dig @127.0.0.1 -p ${dig?.[1]} web.default.svc.sluice.local AAAA +short`), '  fd96::10', 'dig AAAA answers the IPv6 VIP');
  t.regex(r.out, new RegExp(`--dns-bind-address 127\\.0\\.0\\.1:${dig?.[1]} `), 'dig asks the daemon\'s DNS address');

  // Health: a backend whose server stops turns unhealthy, new connections avoid it, it comes back.
  const stopped = /^stopping (backend-\d)'s HTTP server \(([\d.]+)\)/m.exec(r.out);
  t.truthy(stopped, 'a backend\'s server is stopped');
  const [, name, addr] = stopped ?? ['', 'none', 'none'];
  const afterStop = r.out.slice(stopped?.index ?? 0);
  t.regex(afterStop, new RegExp(`^the API says ${esc(addr!)} is unhealthy`, 'm'));
  t.regex(outputOf(afterStop, 'sluice service get default/web'), new RegExp(`^  ${esc(addr!)} +1 +active +unhealthy +draining +failed: ECONNREFUSED`, 'm'),
    'service get shows the backend unhealthy, draining, and why');
  t.regex(outputOf(afterStop, 'sluice service get default/web'), new RegExp(`^  fd77:${name.slice(-1)}::2 +1 +active +unhealthy +draining +failed: ECONNREFUSED`, 'm'),
    'and at its IPv6 address too');
  const rows = [...afterStop.matchAll(/^ {2}(backend-\d) [\d.]+ +(healthy|unhealthy) +(\d+)$/gm)].map(([, b, h, n]) => ({ b, h, n: Number(n) }));
  t.deepEqual(rows.map((x) => [x.b, x.h]), ['backend-1', 'backend-2', 'backend-3'].map((b) => [b, b === name ? 'unhealthy' : 'healthy']), 'a row per backend');
  t.is(rows.find((x) => x.b === name)?.n, 0, 'no new connection reached the unhealthy backend');
  t.is(rows.reduce((a, x) => a + x.n, 0), 300, 'the others answered all 300');
  t.regex(afterStop, new RegExp(`^-> none to ${name}$`, 'm'));
  t.regex(afterStop, new RegExp(`^the API says ${esc(addr!)} is healthy again`, 'm'));

  // /metrics: the service's counters and each backend's health (healthy again).
  const metrics = /^\$ curl -s (http:\/\/127\.0\.0\.1:\d+)\/metrics \| grep .*\n((?: {2}.*\n)*)/m.exec(r.out);
  t.truthy(metrics, '/metrics is shown');
  t.regex(metrics?.[2] ?? '', /^ {2}sluice_service_packets_total\{service="default\/web"\} [1-9]\d*$/m);
  t.regex(metrics?.[2] ?? '', /^ {2}sluice_service_new_connections_total\{service="default\/web"\} [1-9]\d*$/m);
  t.is((metrics?.[2] ?? '').match(/^ {2}sluice_backend_health\{service="default\/web",backend="[\d.]+"\} 1$/gm)?.length, 3, 'three backends, healthy');
  t.is((metrics?.[2] ?? '').match(/^ {2}sluice_backend_health\{service="default\/web",backend="fd77:[123]::2"\} 1$/gm)?.length, 3, 'at their IPv6 addresses too');
  t.regex(metrics?.[2] ?? '', new RegExp(`backend="${esc(addr!)}"\\} 1$`, 'm'), 'the stopped backend is healthy again');
  t.regex(r.out, new RegExp(`^the status page, ${esc(metrics?.[1] ?? 'none')}/, shows`, 'm'), 'the status page is on the metrics address');

  // top: one frame with the service, its three backends up at both addresses.
  t.regex(outputOf(r.out, 'sluice top --once'), /^ {2}default\/web +\S+ +\S+ +\S+ +6\/6 /m, 'top prints default/web');

  t.regex(r.out, /clean: no namespace, link, pin or attachment left/);
  t.deepEqual(await singleLeftovers(r.pid), []);
  t.deepEqual(await processesIn(r.netns, 10_000), [], 'no process stays in the demo\'s namespaces');
});

test.serial('demo interrupted while its daemon runs: exit 130, nothing left', async (t) => {
  const r = await runDemo(/^\$ sluice service apply/m, []);
  t.is(r.code, 130, r.out);
  t.regex(r.out, /SIGINT: tearing down/);
  t.deepEqual(await singleLeftovers(r.pid), []);
});

test.serial('demo interrupted while a backend is down and the health check probes: exit 130, nothing left', async (t) => {
  const r = await runDemo(/^stopping backend-\d's HTTP server/m, []);
  t.is(r.code, 130, r.out);
  t.regex(r.out, /SIGINT: tearing down/);
  t.deepEqual(await singleLeftovers(r.pid), []);
  t.deepEqual(await processesIn(r.netns, 10_000), [], 'the probe worker and the agents are gone');
});

test.serial('demo kube-proxy: kubectl, traffic, an endpoint replaced, demo OK, nothing left', async (t) => {
  const r = await runDemo(undefined, ['kube-proxy']);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /^\$ kubectl apply -f services\.yaml -f endpointslices\.yaml\n  service\/web created\n/m);
  t.regex(r.out, /^  web +NodePort +10\.96\.\d+\.\d+ +<none> +80:30080\/TCP/m, 'kubectl get svc');
  t.regex(r.out, /^  default\/web:http +10\.96\.\d+\.\d+,fd96::[0-9a-f]+ +80\/tcp->8080 +4\/4 .* kubernetes$/m, 'sluice service list: web is dual-stack');
  t.regex(r.out, /^  default\/web:http\/nodeport +192\.168\.80\.1,fd80::1 +30080\/tcp->8080 +4\/4 .* kubernetes$/m, 'sluice service list');
  t.regex(r.out, /^  the client 192\.168\.80\.2 +the node port 192\.168\.80\.1:30080 +300  web-1 \d+, web-2 \d+$/m);
  t.regex(r.out, /^  the client fd80::2 +the node port \[fd80::1\]:30080 +300  web-1 \d+, web-2 \d+$/m);
  t.regex(r.out, /^  pod app +web's ClusterIP \[fd96::[0-9a-f]+\]:80 +300  web-1 \d+, web-2 \d+$/m);
  t.regex(r.out, /^  a process on the node +web's ClusterIP \[fd96::[0-9a-f]+\]:80 +300  web-1 \d+, web-2 \d+$/m);
  t.regex(r.out, /the pods saw the client's own addresses \(192\.168\.80\.2, fd80::2\)/);
  t.regex(r.out, /: 200\n  \{"lastUpdated":/, '/healthz');
  t.regex(r.out, /^  10\.244\.1\.1[12] +1 +draining/m, 'the endpoint that left drains');
  t.regex(r.out, /^  fd44::1[12] +1 +draining/m, 'over IPv6 too');
  t.regex(r.out, /-> moved off web-\d at once/);
  t.regex(r.out, /on the same socket -> still up/);
  t.regex(r.out, /^300 new connections to web: 300 answered .* -> none to web-\d$/m);
  t.regex(r.out, /\ndemo OK\n/);
  t.regex(r.out, /clean: no namespace, link, pin, attachment, cgroup, process or file left/);
  t.deepEqual(await kubeLeftovers(r.pid), []);
});

test.serial('demo kube-proxy killed outright, then interrupted: the next run sweeps the first, Ctrl-C leaves nothing', async (t) => {
  const killed = await runDemo(/^the agent watches the API server/m, ['kube-proxy'], 'SIGKILL');
  t.is(killed.code, 137, killed.out);
  t.not((await kubeLeftovers(killed.pid)).length, 0, 'a demo killed outright leaves its namespaces, pins, cgroup and directory');
  // Interrupted while kubectl runs: the command is ended, then everything goes.
  const r = await runDemo(/^\$ kubectl apply/m, ['kube-proxy', '--mode', 'tc']);
  t.is(r.code, 130, r.out);
  t.regex(r.out, /--mode tc/);
  t.regex(r.out, /SIGINT: tearing down/);
  t.deepEqual(await kubeLeftovers(r.pid), []);
  t.deepEqual(await kubeLeftovers(killed.pid, 10_000), [], 'the second run removed what the first left');
});

test.serial('demo kube-proxy refuses xdp-generic', async (t) => {
  const r = await runDemo(undefined, ['kube-proxy', '--mode', 'xdp-generic']);
  t.is(r.code, 2, r.out);
  t.regex(r.out, /--mode: the kube-proxy demo attaches with xdp or tc/);
});
