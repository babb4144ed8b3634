/**
 * `sluice demo` (the README's first command) and `sluice demo scale-out` as
 * a user runs them: through the CLI, to "demo OK" and a clean machine; and
 * interrupted with Ctrl-C while their daemons (and etcd) run, which must
 * leave nothing behind either.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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

/** Run `sluice demo scale-out` (or `args`); with `interruptOn`, send SIGINT once that line is printed. */
function runDemo(interruptOn?: RegExp, args = ['scale-out']): Promise<{ code: number | null; out: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlagsOf(cliPath()), cliPath(), 'demo', ...args, '--requests', '300'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let sent = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (interruptOn && !sent && interruptOn.test(out)) {
        sent = true;
        child.kill('SIGINT');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, pid: child.pid! });
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
