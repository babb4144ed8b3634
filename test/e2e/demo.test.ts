/**
 * `sluice demo` (the README's first command), `sluice demo scale-out` and
 * `sluice demo kube-proxy` as a user runs them: through the CLI, to "demo
 * OK" and a clean machine; and interrupted with Ctrl-C while their daemons
 * (and etcd, the API server) run, which must leave nothing behind either;
 * what a kube-proxy demo killed outright leaves, the next one removes.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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

/** Run `sluice demo scale-out` (or `args`); with `interruptOn`, send `signal` (SIGINT) once that line is printed. */
function runDemo(interruptOn?: RegExp, args = ['scale-out'], signal: NodeJS.Signals = 'SIGINT'): Promise<{ code: number | null; out: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlagsOf(cliPath()), cliPath(), 'demo', ...args, '--requests', '300'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let sent = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const onData = (b: Buffer): void => {
      out += b.toString();
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
      resolve({ code: code ?? (sig === 'SIGKILL' ? 137 : null), out, pid: child.pid! });
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

test.serial('demo: demo OK through one daemon, nothing left', async (t) => {
  const r = await runDemo(undefined, []);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /\ndemo OK\n/);
  t.regex(r.out, /owner: +api/);
  t.regex(r.out, /clean: no namespace, link, pin or attachment left/);
  t.deepEqual(await singleLeftovers(r.pid), []);
});

test.serial('demo interrupted while its daemon runs: exit 130, nothing left', async (t) => {
  const r = await runDemo(/^\$ sluice service apply/m, []);
  t.is(r.code, 130, r.out);
  t.regex(r.out, /SIGINT: tearing down/);
  t.deepEqual(await singleLeftovers(r.pid), []);
});

test.serial('demo kube-proxy: kubectl, traffic, an endpoint replaced, demo OK, nothing left', async (t) => {
  const r = await runDemo(undefined, ['kube-proxy']);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /^\$ kubectl apply -f services\.yaml -f endpointslices\.yaml\n  service\/web created\n/m);
  t.regex(r.out, /^  web +NodePort +10\.96\.\d+\.\d+ +<none> +80:30080\/TCP/m, 'kubectl get svc');
  t.regex(r.out, /^  default\/web:http\/nodeport +192\.168\.80\.1 +30080\/tcp->8080 +2\/2 .* kubernetes$/m, 'sluice service list');
  t.regex(r.out, /^  the client 192\.168\.80\.2 +the node port 192\.168\.80\.1:30080 +300  web-1 \d+, web-2 \d+$/m);
  t.regex(r.out, /: 200\n  \{"lastUpdated":/, '/healthz');
  t.regex(r.out, /^  10\.244\.1\.1[12] +1 +draining/m, 'the endpoint that left drains');
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
