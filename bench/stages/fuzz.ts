/**
 * Stage "fuzz": the packet fuzzer of test/bpf/fuzz.test.ts at length: a
 * million packets (--quick: 100,000; --fuzz-packets N) of random scenarios
 * from a seed (--fuzz-seed), through BPF_PROG_TEST_RUN at XDP and tc, each
 * checked by test/helpers/fuzz-check.ts. It does not stop at a failure:
 * it counts, per property, the packets it checked and those that broke it,
 * and shows the first failing frames (replay one with the test's FUZZ_SEED
 * to have fast-check shrink it). The baseline, measured in the same run, is
 * the test run alone on the same frames: what checking costs on top.
 * `npx tsx bench/stages/fuzz.ts` runs it alone.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

import fc from 'fast-check';

import { FuzzRig, newTally, progFor, type FuzzTally } from '../../test/helpers/fuzz-run.js';
import { PROPERTIES } from '../../test/helpers/fuzz-check.js';
import { buildFrame } from '../../test/helpers/fuzz-frames.js';
import { resolveFrame, scenarioArb, serviceSpecs } from '../../test/helpers/fuzz-scenario.js';
import { formatNumber, formatRatio } from '../lib/report.js';
import { runStandalone } from '../lib/standalone.js';
import type { Stage, StageContext, StageResult, Table } from '../lib/types.js';

const TITLE = 'Packet fuzzer: random services and frames through XDP and tc';
const DEFAULT_SEED = 20260815;
/** Long scenarios: the set-up between them (services applied, maps cleared) is paid less often. */
const MAX_STEPS = 300;
/** Scenarios drawn per fast-check sample call. */
const BATCH = 20;

function numberArg(ctx: StageContext, name: string, fallback: number): number {
  const v = ctx.args?.[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${v}`);
  return n;
}

/** Test runs alone, without checking or reading counters, over frames of the same scenarios. */
function baseline(rig: FuzzRig, seed: number, packets: number): number {
  const frames: Array<{ prog: 'xdp' | 'tc'; frame: Buffer }> = [];
  for (const s of fc.sample(scenarioArb(MAX_STEPS), { numRuns: BATCH, seed })) {
    const specs = serviceSpecs(s.services);
    for (const step of s.steps) {
      if (step.kind !== 'packet') continue;
      const frame = buildFrame(resolveFrame(step, specs, '192.168.80.1'));
      frames.push({ prog: progFor(step.prog, frame), frame });
    }
  }
  const start = performance.now();
  for (let i = 0; i < packets; i++) {
    const f = frames[i % frames.length]!;
    rig.dp.raw.testRun(f.prog, f.frame);
  }
  return packets / ((performance.now() - start) / 1000);
}

async function runStage(ctx: StageContext): Promise<StageResult> {
  const target = numberArg(ctx, 'fuzz-packets', ctx.quick ? 100_000 : 1_000_000);
  const seed = numberArg(ctx, 'fuzz-seed', DEFAULT_SEED);
  const t0 = performance.now();
  const rig = await FuzzRig.open();
  const unregister = ctx.onCleanup(() => rig.close());
  const tally: FuzzTally = newTally();
  let fuzzSeconds = 0;
  let basePps = 0;
  try {
    let batch = 0;
    const start = performance.now();
    while (tally.packets < target) {
      const scenarios = fc.sample(scenarioArb(MAX_STEPS), { numRuns: BATCH, seed: seed + batch++ });
      for (const s of scenarios) {
        await rig.run(s, tally, { keepGoing: true });
        if (tally.packets >= target) break;
      }
      ctx.progress(Math.min(tally.packets, target), target, `${formatNumber(tally.packets)} packets, ${tally.failures.length ? `${PROPERTIES.reduce((n, p) => n + tally.properties[p].failed, 0)} failures` : 'no failure'}`);
    }
    fuzzSeconds = (performance.now() - start) / 1000;
    basePps = baseline(rig, seed, Math.min(100_000, target));
  } finally {
    rig.close();
    unregister();
  }
  const pps = tally.packets / fuzzSeconds;
  const props: Table = {
    title: 'Properties: packets checked and packets that broke them',
    columns: ['property', 'checked', 'failed', 'failed %'],
    rows: PROPERTIES.map((p) => {
      const { checked, failed } = tally.properties[p];
      return [p, checked, failed, checked ? Number(((100 * failed) / checked).toFixed(2)) : null];
    }),
    notes: [
      'A packet counts for a property when the property had something to check on it: "untouched" for packets that are not ours, "nat" and "checksums" for rewrites and answers, "malformed" for invalid lengths, "counters" for every packet.',
      `Lifecycle events: ${JSON.stringify(tally.lifecycle)}.`,
      `Known issues, counted rather than failed: ${JSON.stringify(tally.known)}.`,
    ],
  };
  const outcomes: Table = {
    title: 'What the packets were',
    columns: ['outcome', 'packets'],
    rows: Object.entries(tally.outcomes).sort((a, b) => b[1] - a[1]).map(([k, n]) => [k, n]),
    notes: [`xdp ${tally.byProg.xdp}, tc ${tally.byProg.tc}; ${tally.tcTooShort} frames meant for tc went to XDP (the kernel refuses skb test runs of IPv4 frames under 34 bytes).`],
  };
  const time: Table = {
    title: 'Time',
    columns: ['packets', 'scenarios', 'seconds', 'packets/s', 'test run alone, packets/s', 'cost of checking'],
    rows: [[tally.packets, tally.scenarios, Number(fuzzSeconds.toFixed(1)), Math.round(pps), Math.round(basePps), formatRatio(basePps / pps)]],
  };
  const seen = new Set<string>();
  const failures: Table = {
    title: 'First failures (distinct messages)',
    columns: ['property', 'prog', 'message', 'frame'],
    rows: tally.failures.flatMap((f) => f.result.violations.map((v) => ({ f, v })))
      .filter(({ v }) => {
        const k = v.property + v.message.replace(/\d+/g, 'N').slice(0, 70);
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      })
      .slice(0, 10)
      .map(({ f, v }) => [v.property, f.prog, v.message, f.frame.toString('hex')]),
  };
  ctx.log(`fuzz: ${tally.packets} packets in ${fuzzSeconds.toFixed(1)} s, failures ${PROPERTIES.map((p) => `${p} ${tally.properties[p].failed}`).join(', ')}`);
  return {
    id: 'fuzz',
    title: TITLE,
    method: [
      `Scenarios of up to ${MAX_STEPS} steps drawn by fast-check from seed ${seed} (${BATCH} a batch, the seed going up by one a batch): up to six services on four VIPs with up to four backends each (drain state, affinity, drop or reject), then packets at XDP or tc (random flows and flows of the services, replies, hairpin clients; cut, bad lengths, options, fragments, ICMP errors, bad checksums, padding) datagrams cut into fragments sent in order, later fragment first, first or later ones alone, backwards, interleaved with another client's of the same IP id, ICMP errors quoting the packets that would answer live, dead and hairpin entries; with drains, deletes, affinity timeouts, forgotten, expired, aged and evicted conntrack entries, one client port towards two VIPs sharing a backend, and hairpin changes between them.`,
      'Each packet: the conntrack table read, one BPF_PROG_TEST_RUN, the global, service and backend counters and the table read again, the output and the table checked (test/helpers/fuzz-check.ts). A failure is counted and the run goes on.',
      'The baseline is the same frames through BPF_PROG_TEST_RUN alone, in the same run.',
    ],
    tables: [time, props, outcomes, ...(failures.rows.length ? [failures] : [])],
    charts: [],
    targets: [],
    seconds: (performance.now() - t0) / 1000,
    raw: { seed, target, tally: { ...tally, failures: tally.failures.map((f) => ({ step: f.step, prog: f.prog, frame: f.frame.toString('hex'), output: f.output.toString('hex'), violations: f.result.violations })) }, fuzzSeconds, basePps },
  };
}

export const fuzzStage: Stage = {
  id: 'fuzz',
  title: TITLE,
  quickBudgetSeconds: 90,
  run: runStage,
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runStandalone([fuzzStage], ['fuzz-packets', 'fuzz-seed']);
}
