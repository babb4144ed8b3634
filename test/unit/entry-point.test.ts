/**
 * The package entry point (package.json "exports" -> dist/src/index.js,
 * src/index.ts here) exposes maglevPopulate, checkable against the worked
 * example of the Maglev paper (NSDI 2016, section 3.4, Table 1). The
 * `sluice` executable (package.json "bin") runs as its #! line says.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import * as sluice from '../../src/index.js';
import { cliPath, nodeFlagsOf } from '../../src/demo/daemon-process.js';

const run = promisify(execFile);

test('maglevPopulate from the entry point reproduces the paper\'s Table 1', (t) => {
  const perms = [
    { offset: 3, skip: 4 }, // B0: 3 0 4 1 5 2 6
    { offset: 0, skip: 2 }, // B1: 0 2 4 6 1 3 5
    { offset: 3, skip: 1 }, // B2: 3 4 5 6 0 1 2
  ];
  t.deepEqual(sluice.maglevPopulate(perms, 7), [1, 0, 1, 0, 2, 2, 0], 'before B1 is removed');
  // Without B1 the same permutations give B0 B0 B0 B0 B2 B2 B2 (Pseudocode 1).
  t.deepEqual(sluice.maglevPopulate([perms[0]!, perms[2]!], 7), [0, 0, 0, 0, 1, 1, 1], 'after');
});

test('the entry point exposes the dataplanes, the load balancer and the error class', (t) => {
  for (const name of ['NativeDataplane', 'FakeDataplane', 'LoadBalancer', 'SluiceError', 'buildMaglevTable', 'flowHash', 'validateService']) {
    t.is(typeof (sluice as Record<string, unknown>)[name], 'function', name);
  }
});

test('the sluice launcher runs through its #! line, which carries the daemon\'s heap flags', async (t) => {
  // Run the compiled CLI as an executable: the kernel hands it to `env -S`, which must find node.
  const { stdout } = await run(cliPath(), ['--help']);
  t.regex(stdout, /^Usage: sluice \[options\] \[command\]/);
  t.deepEqual(nodeFlagsOf(cliPath()), ['--max-semi-space-size=8']);
});

test('a wrong command line exits 2 with one line naming the flag, daemon option values included', async (t) => {
  const fails = async (args: string[]): Promise<{ code: number; stderr: string }> => {
    const e = await t.throwsAsync(run(cliPath(), args)) as Error & { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  };
  for (const [args, want] of [
    [['daemon', '--mode', 'fast'], /^sluice: --mode: must be xdp, xdp-generic or tc, got fast\n$/],
    [['daemon', '--listen', 'sluice.sock'], /^sluice: --listen: must be unix:\/\/\/absolute\/path, host:port or \[v6\]:port/],
    [['daemon', '--listen', 'unix://run/s.sock'], /^sluice: --listen: a unix socket path must be absolute/],
    [['daemon', '--listen', 'unix:///run/s.sock', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'], /^sluice: --tls-cert: TLS applies to a TCP listener/],
    [['daemon', '--tls-cert', 'c.pem'], /^sluice: --tls-cert and --tls-key go together\n$/],
    [['daemon', '--no-such-flag'], /^sluice: unknown option '--no-such-flag'\n$/],
    [['daemon', '--servr', 'x'], /^sluice: unknown option '--servr' \(Did you mean --server\?\)\n$/],
    [['service', 'frobnicate'], /^sluice: unknown command 'frobnicate'\n$/],
  ] as Array<[string[], RegExp]>) {
    const { code, stderr } = await fails(args);
    t.is(code, 2, args.join(' '));
    t.regex(stderr, want, args.join(' '));
    t.is(stderr.trimEnd().split('\n').length, 1, `${args.join(' ')}: one line`);
  }
});

test('nodeFlagsOf reads the flags of an `env -S node` line and nothing else', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-flags-'));
  try {
    const of = (first: string): string[] => {
      const f = path.join(dir, 'script.js');
      writeFileSync(f, `${first}\nconsole.log(1);\n`);
      return nodeFlagsOf(f);
    };
    t.deepEqual(of('#!/usr/bin/env -S node --a=1 --b'), ['--a=1', '--b']);
    t.deepEqual(of('#!/usr/bin/env node'), []);
    t.deepEqual(of('// no #! line'), []);
    t.deepEqual(of('#!/usr/bin/env -S node --a=1 script-arg'), [], 'not a plain list of flags');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
