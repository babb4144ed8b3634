/**
 * How long one Store.put of 10,000 services takes: creating them in an
 * empty store, then replacing them all (expectedRevision checked, and the
 * 10,000 events of the creation compacted away by the default maxEvents).
 * Median of 7 runs after 2 warm-ups, each on a fresh file in a temp dir.
 *
 * The baseline, measured in the same run, is what any SQLite write of that
 * data costs: one better-sqlite3 transaction inserting the 10,000
 * definitions (JSON) into a bare table, with the same pragmas. MemoryStore
 * is shown for scale. Not run by CI: `npx tsx bench/store-put.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import type { ServiceDefinition } from '../src/model/definition.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { SqliteStore } from '../src/store/sqlite-store.js';
import type { Store } from '../src/store/store.js';

const N = 10_000;
const RUNS = 7;
const WARMUP = 2;

function definition(i: number, backendOctet: number): ServiceDefinition {
  return {
    name: `ns-${i % 50}/svc-${i}`,
    addresses: [`10.96.${i >> 8}.${i & 255}`],
    ports: [{ name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 }],
    backends: [1, 2, 3].map((b) => ({ address: `10.${b}.${backendOctet}.${i & 255}`, weight: 1, state: 'active' as const })),
  };
}

const created = Array.from({ length: N }, (_, i) => ({ definition: definition(i, 0) }));
const replaced = Array.from({ length: N }, (_, i) => ({ definition: definition(i, 1), expectedRevision: i + 1 }));

/** Median ms of `measure`, which gets a fresh temp dir each run and returns the ms it timed. */
function median(measure: (dir: string) => number): number {
  const times: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
    try {
      const ms = measure(dir);
      if (i >= WARMUP) times.push(ms);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  times.sort((a, b) => a - b);
  return times[RUNS >> 1]!;
}

function timed(fn: () => void): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

function bareSqlite(dir: string): number {
  const db = new Database(join(dir, 'bare.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE services (name TEXT PRIMARY KEY, definition TEXT NOT NULL) STRICT');
  const insert = db.prepare('INSERT INTO services (name, definition) VALUES (?, ?)');
  const tx = db.transaction(() => {
    for (const { definition: d } of created) insert.run(d.name, JSON.stringify(d));
  });
  const ms = timed(() => tx.immediate());
  db.close();
  return ms;
}

function storeCreate(open: (dir: string) => Store): (dir: string) => number {
  return (dir) => {
    const s = open(dir);
    const ms = timed(() => s.put(created));
    s.close();
    return ms;
  };
}

function storeReplace(open: (dir: string) => Store): (dir: string) => number {
  return (dir) => {
    const s = open(dir);
    s.put(created);
    const ms = timed(() => s.put(replaced));
    if (s.revision() !== 2 * N || s.compactedRevision() !== N) throw new Error('the replace run did not do what it should');
    s.close();
    return ms;
  };
}

const sqlite = (dir: string): Store => SqliteStore.open(join(dir, 'store.db'));
const memory = (): Store => new MemoryStore();

const baseline = median(bareSqlite);
const rows: string[][] = [
  ['put of 10,000 services', 'ms (median)', '/ baseline'],
  ['baseline: bare INSERTs, one transaction', baseline.toFixed(1), '1.00'],
];
for (const [label, fn] of [
  ['SqliteStore, create', storeCreate(sqlite)],
  ['SqliteStore, replace (+ compaction)', storeReplace(sqlite)],
  ['MemoryStore, create', storeCreate(memory)],
  ['MemoryStore, replace (+ compaction)', storeReplace(memory)],
] as const) {
  const ms = median(fn);
  rows.push([label, ms.toFixed(1), (ms / baseline).toFixed(2)]);
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
