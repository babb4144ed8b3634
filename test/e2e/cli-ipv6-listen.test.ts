/**
 * A real daemon listening on an IPv6 address, `--listen [::1]:PORT`, and
 * the CLI reaching it with `--server [::1]:PORT` and $SLUICE_SERVER. Both
 * run in a network namespace of this test's own (entered with nsenter
 * --net, which leaves /sys and the BPF filesystem as they are), so the
 * traffic stays on that namespace's loopback.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { cliPath, nodeFlagsOf } from '../../src/demo/daemon-process.js';
import type { CliRun } from '../helpers/cli.js';
import { until } from '../helpers/kube-node.js';

const sh = promisify(execFile);
const tag = `sl6l${process.pid.toString(36)}`;
const ns = `/run/netns/${tag}`;
const port = 19470;

/** `sluice ...args` inside the namespace. */
function sluiceIn(args: string[], env: NodeJS.ProcessEnv = {}, input = ''): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${ns}`, process.execPath, ...nodeFlagsOf(cliPath()), cliPath(), ...args], {
      env: { ...process.env, SLUICE_SERVER: '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

test('a daemon listens on [::1]:PORT and the CLI reaches it with --server [::1]:PORT and $SLUICE_SERVER', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), `sluice-${tag}-`));
  const pins = `/sys/fs/bpf/sluice-${tag}`;
  let daemon: ChildProcess | undefined;
  let log = '';
  t.teardown(async () => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const gone = new Promise((r) => daemon!.once('exit', r));
      daemon.kill('SIGKILL');
      await gone;
    }
    await sh('ip', ['netns', 'del', tag]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    rmSync(pins, { recursive: true, force: true });
  });
  await sh('ip', ['netns', 'add', tag]);
  await sh('ip', ['-n', tag, 'link', 'set', 'lo', 'up']);

  daemon = spawn('nsenter', [`--net=${ns}`, process.execPath, ...nodeFlagsOf(cliPath()), cliPath(), 'daemon',
    '--listen', `[0:0::1]:${port}`, '--state-dir', path.join(dir, 'state'), '--pin-dir', pins, '--conntrack-size', '65536',
    '--metrics-bind-address', '', '--log-level', 'warn', '--exit-with-parent'], { stdio: ['ignore', 'pipe', 'pipe'] });
  daemon.stdout!.on('data', (b: Buffer) => (log += b.toString()));
  daemon.stderr!.on('data', (b: Buffer) => (log += b.toString()));

  const server = `[::1]:${port}`;
  let last: CliRun | undefined;
  await until(() => `the daemon to answer on ${server}: ${last?.stderr ?? ''} (daemon: ${log})`, async () => {
    if (daemon!.exitCode !== null) throw new Error(`the daemon exited ${daemon!.exitCode}: ${log}`);
    last = await sluiceIn(['--server', server, 'service', 'list']);
    return last.code === 0;
  }, 90_000);

  // The socket is the daemon's, on ::1 (the address given as [0:0::1], in its one text).
  const ss = await sh('nsenter', [`--net=${ns}`, 'ss', '-Hltnp', `sport = :${port}`]);
  t.regex(ss.stdout, new RegExp(`\\[::1\\]:${port} .*pid=${daemon.pid},`), ss.stdout);
  t.is(ss.stdout.trim().split('\n').length, 1, 'one listening socket, on ::1 only');

  const file = 'name: default/v6\naddresses: [fd96::10]\nports: [{port: 80, protocol: tcp}]\nbackends: [{address: "fd00:1::1"}]\n';
  const applied = await sluiceIn(['--server', server, 'service', 'apply', '-f', '-'], {}, file);
  t.is(applied.stdout, 'service default/v6 applied (revision 1)\n', applied.stderr);
  const listed = await sluiceIn(['-o', 'json', 'service', 'list'], { SLUICE_SERVER: `[0::1]:${port}` });
  t.is(listed.code, 0, listed.stderr);
  t.deepEqual((JSON.parse(listed.stdout) as Array<{ name: string; addresses: string[] }>).map((s) => [s.name, s.addresses]), [['default/v6', ['fd96::10']]]);

  // Unbracketed, it is refused before anything is sent, with the fix.
  const unbracketed = await sluiceIn(['--server', `::1:${port}`, 'service', 'list']);
  t.is(unbracketed.stderr, `sluice: --server: ::1:${port} is an IPv6 address and a port: an IPv6 address goes in brackets, write [::1]:${port}\n`);
  t.is(unbracketed.code, 2);
});
