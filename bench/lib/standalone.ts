/**
 * Running stages alone, outside bench/run.ts: `npx tsx bench/stages/<x>.ts`.
 * Parses the stage's options, gives the stages a plain context (log lines to
 * the console, no progress bars), runs every cleanup on Ctrl-C and at the
 * end, and prints each stage's tables and targets.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Stage, StageContext, StageResult } from './types.js';

/** Print a stage's tables and targets to the console. */
export function printStage(r: StageResult): void {
  for (const t of r.tables) {
    console.log(`\n${t.title}`);
    console.table(t.rows.map((row) => Object.fromEntries(t.columns.map((c, i) => [c, row[i]]))));
    for (const n of t.notes ?? []) console.log(`  ${n}`);
  }
  for (const t of r.targets) console.log(`${t.met ? 'met' : 'NOT met'}: ${t.what}: ${t.measured} (target ${t.target})`);
  console.log(`stage ${r.id} took ${r.seconds.toFixed(1)} s`);
}

/**
 * Run `stages` from the command line. Besides the stage options named in
 * `options` (each a string, handed over as ctx.args), every script takes
 * --quick, --only <stage ids> (where it has more than one stage) and
 * --json <file> (the results, as bench/run.ts would store them).
 */
export async function runStandalone(stages: readonly Stage[], options: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      json: { type: 'string' },
      ...Object.fromEntries(options.map((o) => [o, { type: 'string' as const }])),
    },
  });
  const args: Record<string, string> = {};
  for (const o of options) {
    const v = (values as Record<string, unknown>)[o];
    if (typeof v === 'string') args[o] = v;
  }
  const cleanups = new Set<() => Promise<void> | void>();
  const cleanUp = async (): Promise<void> => {
    for (const fn of [...cleanups].reverse()) await fn();
    cleanups.clear();
  };
  const ctx: StageContext = {
    quick: values.quick === true,
    args,
    progress: () => undefined,
    log: (line) => console.log(line),
    onCleanup: (fn) => {
      cleanups.add(fn);
      return () => cleanups.delete(fn);
    },
  };
  const interrupted = (): void => void cleanUp().finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const only = typeof values.only === 'string' ? values.only.split(',') : undefined;
  const results: StageResult[] = [];
  try {
    for (const stage of stages.filter((s) => !only || only.includes(s.id))) {
      const r = await stage.run(ctx);
      printStage(r);
      results.push(r);
    }
  } finally {
    await cleanUp();
  }
  if (typeof values.json === 'string') writeFileSync(values.json, JSON.stringify(results.length === 1 ? results[0] : results, null, 2));
}
