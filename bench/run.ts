/**
 * The benchmark runner: `npm run bench [-- --quick] [--only per-packet,maglev] [--out dir] [--save-latest]`.
 *
 * Runs the stages of bench/stages/index.ts in order, each with its progress
 * bar; a stage that throws is recorded in the run's failures and the others
 * still run. Writes <out>/runs/<timestamp>.json (everything, raw samples
 * included) and <out>/runs/<timestamp>.md with its charts in
 * <out>/runs/charts/<timestamp>/, all ignored by git. With --save-latest,
 * a full run in which no stage failed also replaces the result git keeps,
 * <out>/latest.json, latest.md and charts/latest/ (bench/lib/results.ts
 * says why). Ctrl-C (or SIGTERM) runs every cleanup the stages registered
 * and exits non-zero. Exits 1 when a stage failed; a missed target is
 * reported, not an error.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { packageRoot } from '../src/package-root.js';
import { machineInfo, pinToOneCpu, probeStalls } from './lib/machine.js';
import { Progress } from './lib/progress.js';
import { saveLatest, writeRun } from './lib/results.js';
import type { RunResult, Stage, StageContext } from './lib/types.js';
import { STAGES } from './stages/index.js';

const USAGE = `usage: tsx bench/run.ts [--quick] [--only <stage,...>] [--out <dir>] [--save-latest] [stage options]
  --out <dir>      results directory (default bench/results): each run goes to <dir>/runs/<timestamp>.{md,json}
  --save-latest    also make this run <dir>/latest.{md,json} and charts/latest/, the result git keeps
                   (a full run only: not with --quick or --only; not saved when a stage fails)
stage options (each stage reads the ones it knows):
  traffic, service-count: --flows 1,1000,100000,1000000  --frame-size 64  --rate <pps, 0 = flat out>
                          --duration <s>  --rounds <n>  --peers forwarder,sluice-xdp,sluice-tc,iptables,nftables
                          --service-counts 1,1000,10000  --service-count-flows 1000  --program-cap <s>
                          --generator live-frames|trafgen (full runs also cross-check with trafgen when installed)
  control-plane:          --services 100,1000,10000  --changes <n>  --peer-changes <n>  --cap <s>
                          --methods sluice,iptables-legacy,iptables-nft,nft  --sluice-runs <n> (at 10,000; full: 3)
  scale-out:              --scaleout-services <n> (full: 10000, quick: 1000)  --scaleout-changes <n> (full: 200, quick: 30)
                          --scaleout-runs <n> (full: 3, quick: 1)
  kube-proxy:             --kube-services <n> (full: 10000, quick: 1000)  --kube-changes <n> (full: 200, quick: 30)
                          --kube-runs <n> (full: 3, quick: 1)  --kube-burst <n> (1000, at most the services)
  failover:               --failover-connections 30
  fuzz:                   --fuzz-packets <n> (full: 1000000, quick: 100000)  --fuzz-seed <n>
  dns:                    --dns-services <n> (full: 10000, quick: 1000)  --dns-seconds <s> (full: 15, quick: 5)
                          --dns-rounds <n> (full: 3, quick: 1)
  health:                 --health-targets <n> (full: 100000, quick: 10000)`;

/** Options passed through to the stages as ctx.args. */
const STAGE_FLAGS = [
  'flows', 'frame-size', 'rate', 'duration', 'rounds', 'peers', 'service-counts', 'service-count-flows', 'program-cap', 'generator',
  'services', 'changes', 'peer-changes', 'cap', 'methods', 'sluice-runs',
  'scaleout-services', 'scaleout-changes', 'scaleout-runs', 'kube-services', 'kube-changes', 'kube-runs', 'kube-burst',
  'failover-connections', 'fuzz-packets', 'fuzz-seed', 'health-targets',
  'dns-services', 'dns-seconds', 'dns-rounds',
] as const;

interface Options {
  quick: boolean;
  args: Record<string, string>;
  stages: Stage[];
  out: string;
  /** Replace the kept result (latest.*) with this run. */
  saveLatest: boolean;
}

function parse(): ReturnType<typeof parseArgs<{ options: typeof FLAGS }>>['values'] {
  try {
    return parseArgs({ options: FLAGS }).values;
  } catch (err) {
    return usage((err as Error).message);
  }
}

const FLAGS = {
  quick: { type: 'boolean', default: false },
  only: { type: 'string' },
  out: { type: 'string' },
  'save-latest': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  ...Object.fromEntries(STAGE_FLAGS.map((f) => [f, { type: 'string' }])) as Record<(typeof STAGE_FLAGS)[number], { type: 'string' }>,
} as const;

function options(): Options {
  const values = parse();
  if (values.help) {
    console.log(`${USAGE}\nstages: ${STAGES.map((s) => s.id).join(', ')}`);
    process.exit(0);
  }
  let stages = STAGES;
  if (values.only !== undefined) {
    const ids = values.only.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const unknown = ids.filter((id) => !STAGES.some((s) => s.id === id));
    if (unknown.length > 0 || ids.length === 0) {
      usage(`--only: unknown stage ${unknown.join(', ') || '(none given)'}; stages: ${STAGES.map((s) => s.id).join(', ')}`);
    }
    stages = STAGES.filter((s) => ids.includes(s.id));
  }
  // Checked now rather than after a run of many minutes whose result could not be kept.
  if (values['save-latest'] && (values.quick || values.only !== undefined)) {
    usage('--save-latest keeps a full run: not with --quick or --only');
  }
  const args: Record<string, string> = {};
  for (const f of STAGE_FLAGS) {
    const v = (values as Record<string, unknown>)[f];
    if (typeof v === 'string') args[f] = v;
  }
  return {
    quick: values.quick,
    args,
    stages,
    out: path.resolve(values.out ?? path.join(packageRoot(), 'bench', 'results')),
    saveLatest: values['save-latest'],
  };
}

function usage(message: string): never {
  console.error(`bench: ${message}\n${USAGE}`);
  process.exit(2);
}

/** The commit measured, "-dirty" when the tree had changes to tracked files. */
function commit(): string {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty', '--abbrev=12'], {
      cwd: packageRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return 'unknown';
  }
}

/** Cleanups the stages registered, run in reverse order of registration. */
class Cleanups {
  readonly #fns = new Set<() => Promise<void> | void>();

  add(fn: () => Promise<void> | void): () => void {
    this.#fns.add(fn);
    return () => void this.#fns.delete(fn);
  }

  async runAll(log: (line: string) => void): Promise<void> {
    const fns = [...this.#fns].reverse();
    this.#fns.clear();
    for (const fn of fns) {
      try {
        await fn();
      } catch (err) {
        log(`cleanup failed: ${(err as Error).message ?? String(err)}`);
      }
    }
  }
}

async function main(): Promise<void> {
  const opts = options();
  const progress = new Progress();
  const cleanups = new Cleanups();
  /** The affinity to restore if the run is interrupted inside a pinned stage. */
  let unpin: (() => void) | null = null;

  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) {
      // A second Ctrl-C while cleaning up: give up on the cleanup.
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    interrupted = true;
    progress.stop();
    console.error(`\nbench: ${signal}: cleaning up (again to quit at once)`);
    void (async () => {
      await cleanups.runAll((line) => console.error(`bench: ${line}`));
      unpin?.();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const started = new Date().toISOString();
  const run: RunResult = {
    started,
    quick: opts.quick,
    machine: machineInfo(),
    commit: commit(),
    stages: [],
    failures: [],
  };
  const stalls = await probeStalls(opts.quick ? 1 : 2);
  if (stalls) run.machine.stalls = stalls;
  progress.log(`sluice bench${opts.quick ? ' --quick' : ''}: ${opts.stages.map((s) => s.id).join(', ')}; ` +
    `${run.machine.cpuModel}, ${run.machine.cores} cores, Linux ${run.machine.kernel}; commit ${run.commit}`);

  const overBudget: string[] = [];
  for (const stage of opts.stages) {
    const bar = progress.stage(stage.id);
    const ctx: StageContext = {
      quick: opts.quick,
      args: opts.args,
      progress: bar.progress,
      log: bar.log,
      onCleanup: (fn) => cleanups.add(fn),
    };
    const t0 = performance.now();
    let ok = false;
    if (stage.pinned) {
      const pin = pinToOneCpu();
      if (pin) {
        unpin = pin.restore;
        bar.log(`pinned to CPU ${pin.cpu} for this stage`);
      } else {
        bar.log('could not pin the process to one CPU (taskset): the figures will be noisier');
      }
    }
    try {
      const result = await stage.run(ctx);
      run.stages.push(result);
      ok = true;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      run.failures.push({ id: stage.id, error: message });
      bar.log(`FAILED: ${message}`);
      if (err instanceof Error && err.stack && err.constructor.name !== 'BenchError') bar.log(err.stack);
    } finally {
      // Whatever the stage left registered is run now, however it ended.
      await cleanups.runAll(bar.log);
      unpin?.();
      unpin = null;
    }
    // A signal can make a stage fail (a system call returns EINTR) before its
    // handler has run: let it be delivered, and if it was, start nothing else
    // (the handler is cleaning up and will exit).
    await new Promise((resolve) => setImmediate(resolve));
    if (interrupted) await new Promise<never>(() => {});
    const seconds = (performance.now() - t0) / 1000;
    bar.finish(ok, seconds);
    if (opts.quick && stage.quickBudgetSeconds !== undefined && seconds > stage.quickBudgetSeconds) {
      overBudget.push(`${stage.id} took ${seconds.toFixed(1)} s, over its quick budget of ${stage.quickBudgetSeconds} s`);
    }
  }
  progress.stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);

  const files = writeRun(run, opts.out);
  const targets = run.stages.flatMap((s) => s.targets.map((t) => ({ ...t, stage: s.id })));
  console.log('\nTargets:');
  if (targets.length === 0) console.log('  (none checked)');
  const width = Math.max(0, ...targets.map((t) => `${t.what}: ${t.target}`.length));
  for (const t of targets) {
    console.log(`  ${t.met ? 'met    ' : 'NOT met'}  ${`${t.what}: ${t.target}`.padEnd(width)}  ${t.measured}`);
  }
  const met = targets.filter((t) => t.met).length;
  console.log(`${met} of ${targets.length} targets met.`);
  for (const f of run.failures) console.log(`FAILED stage ${f.id}: ${f.error}`);
  for (const o of overBudget) console.log(`warning: ${o}`);
  console.log(`\nreport: ${rel(files.md)}, data: ${rel(files.json)}`);
  publish(run, opts);
  if (run.failures.length > 0) process.exitCode = 1;
}

/** A path as the console shows it: relative to the working directory when under it. */
function rel(p: string): string {
  const r = path.relative(process.cwd(), p);
  return r === '' ? '.' : r.startsWith('..') ? p : r;
}

/**
 * With --save-latest, replace the kept result with this run, unless a stage
 * failed: the kept result is the one the README quotes, so it holds every
 * stage. Says either way what became of latest.*, since only it is tracked.
 */
function publish(run: RunResult, opts: Options): void {
  if (!opts.saveLatest) {
    console.log(`${rel(path.join(opts.out, 'latest.md'))} is unchanged (--save-latest replaces it with a full run)`);
    return;
  }
  if (run.failures.length > 0) {
    console.log(`not saved as latest: stage ${run.failures.map((f) => f.id).join(', ')} failed`);
    return;
  }
  const latest = saveLatest(run, opts.out);
  console.log(`saved as ${rel(latest.md)}, ${rel(latest.json)} and ${rel(latest.charts)}/: commit them to publish this run`);
  if (run.commit.endsWith('-dirty')) {
    console.log(`warning: commit ${run.commit}: the tree measured had uncommitted changes, and the report says so`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
