/**
 * Where benchmark results go: every run to the ignored bench/results/runs/,
 * latest.* (the one result git keeps) only when asked, with the commit,
 * machine and kernel it was measured on.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import test from 'ava';

import { saveLatest, stamp, writeRun } from '../../bench/lib/results.js';
import type { RunResult } from '../../bench/lib/types.js';

/** A run with one stage drawing two charts whose ids clash once made file-name safe. */
function run(): RunResult {
  return {
    started: '2026-11-28T01:02:53.677Z',
    quick: false,
    machine: { cpuModel: 'Test CPU', cores: 2, kernel: '6.18.0-test', memoryGiB: 23.5, node: 'v20.0.0', tools: {} },
    commit: 'abc123def456',
    stages: [{
      id: 'maglev', title: 'Maglev', method: ['m'], tables: [], targets: [], seconds: 1, raw: null,
      charts: [
        { id: 'a b', title: 'A', unit: 's', bars: [{ label: 'x', value: 1 }] },
        { id: 'a-b', title: 'B', unit: 's', bars: [{ label: 'y', value: 2 }] },
      ],
    }],
    failures: [],
  };
}

/** Every file under dir, as paths relative to it, sorted. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-bench-results-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a run name is its start time to the second, safe as a file name', (t) => {
  t.is(stamp('2026-11-28T01:02:53.677Z'), '2026-11-28T01-02-53Z');
});

test('a run is written under runs/ with its charts, and latest.* is left alone', (t) => {
  const out = tempDir(t);
  const files = writeRun(run(), out);
  t.deepEqual(tree(out), [
    'runs/2026-11-28T01-02-53Z.json',
    'runs/2026-11-28T01-02-53Z.md',
    'runs/charts/2026-11-28T01-02-53Z/a-b.svg',
    'runs/charts/2026-11-28T01-02-53Z/maglev-a-b.svg',
  ]);
  t.is(files.md, path.join(out, 'runs', '2026-11-28T01-02-53Z.md'));
  const md = readFileSync(files.md, 'utf8');
  t.true(md.includes('](charts/2026-11-28T01-02-53Z/a-b.svg)'), md);
  for (const link of md.matchAll(/\]\((charts\/[^)]+)\)/g)) t.true(existsSync(path.join(out, 'runs', link[1]!)), `${link[1]} is not there`);
});

test('saveLatest writes latest.* with the commit, machine and kernel, and its charts beside it', (t) => {
  const out = tempDir(t);
  writeRun(run(), out);
  const latest = saveLatest(run(), out);
  t.deepEqual(tree(out).filter((f) => !f.startsWith('runs/')), [
    'charts/latest/a-b.svg',
    'charts/latest/maglev-a-b.svg',
    'latest.json',
    'latest.md',
  ]);
  const md = readFileSync(latest.md, 'utf8');
  t.true(md.includes('| commit | `abc123def456` |'), md);
  t.true(md.includes('| machine | Test CPU, 2 cores, 23.5 GiB; Linux 6.18.0-test |'), md);
  t.true(md.includes('](charts/latest/a-b.svg)'), md);
  const json = JSON.parse(readFileSync(latest.json, 'utf8')) as RunResult;
  t.is(json.commit, 'abc123def456');
  t.is(json.machine.kernel, '6.18.0-test');
});

test('a saved latest drops the charts of the result it replaces', (t) => {
  const out = tempDir(t);
  const before = run();
  before.stages[0]!.charts.push({ id: 'gone', title: 'Gone', unit: 's', bars: [] });
  saveLatest(before, out);
  t.true(existsSync(path.join(out, 'charts', 'latest', 'gone.svg')));
  saveLatest(run(), out);
  t.deepEqual(tree(path.join(out, 'charts', 'latest')), ['a-b.svg', 'maglev-a-b.svg']);
});
