/**
 * The packet fuzzer (issue 15, item 8): random services, random and mutated
 * Ethernet/IPv4 frames, drains, deletes and timeouts, through
 * BPF_PROG_TEST_RUN at XDP and tc; every packet checked against the
 * properties of test/helpers/fuzz-check.ts. A fixed seed, so that CI runs
 * the same packets every time; FUZZ_SEED and FUZZ_RUNS run others
 * (`FUZZ_SEED=123 npx ava test/bpf/fuzz.test.ts`). On a failure fast-check
 * shrinks the scenario and the report gives the seed, the shrunk scenario
 * and the frame that broke a property, in hex.
 */
import test from 'ava';
import fc from 'fast-check';
import { FuzzRig, newTally, type FuzzTally } from '../helpers/fuzz-run.js';
import { scenarioArb } from '../helpers/fuzz-scenario.js';
import { KNOWN_ISSUES, LIFECYCLE_COUNTERS, PROPERTIES } from '../helpers/fuzz-check.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20260815);
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 1100);
/** Below this the run did not fuzz what it says it did. */
const MIN_PACKETS = RUNS >= 1100 ? 20_000 : 0;

let rig: FuzzRig;

test.before(async () => {
  rig = await FuzzRig.open();
});

test.after.always(() => {
  rig?.close();
});

function summary(t: FuzzTally): string {
  const props = PROPERTIES.map((p) => `${p} ${t.properties[p].checked}${t.properties[p].failed ? ` (${t.properties[p].failed} failed)` : ''}`).join(', ');
  return [
    `${t.packets} packets in ${t.scenarios} scenarios (xdp ${t.byProg.xdp}, tc ${t.byProg.tc}; ${t.tcTooShort} meant for tc sent to XDP: the kernel refuses shorter skb test runs)`,
    `by family: IPv4 ${t.byFamily.ipv4}, IPv6 ${t.byFamily.ipv6}, other ethertypes ${t.byFamily.other}`,
    `checked: ${props}`,
    `outcomes: ${JSON.stringify(t.outcomes)}`,
    `IPv6 outcomes: ${JSON.stringify(t.outcomes6)}`,
    `lifecycle: ${JSON.stringify(t.lifecycle)}`,
    `known issues seen: ${JSON.stringify(t.known)}`,
  ].join('\n');
}

test.serial('no dataplane bug is allowed as a known issue', (t) => {
  /* An allowance must not outlive its fix: every issue fuzz-check.ts lists fails here until it is fixed and removed. */
  t.deepEqual([...KNOWN_ISSUES], [], `known issues still listed in test/helpers/fuzz-check.ts: ${KNOWN_ISSUES.join(', ')}`);
});

test.serial(`fuzz: ${RUNS} scenarios of random services and frames at XDP and tc (seed ${SEED})`, async (t) => {
  const tally = newTally();
  const started = Date.now();
  const out = await fc.check(
    fc.asyncProperty(scenarioArb(60), async (s) => {
      await rig.run(s, tally);
    }),
    { seed: SEED, numRuns: RUNS },
  );
  t.log(`seed ${SEED}, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.log(summary(tally));
  if (out.failed) {
    const err = out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance);
    t.fail([
      `a packet broke a property (seed ${out.seed}, path "${out.counterexamplePath}", shrunk ${out.numShrinks} times; replay with FUZZ_SEED=${out.seed}):`,
      err,
      `shrunk scenario: ${fc.stringify(out.counterexample)}`,
    ].join('\n'));
    return;
  }
  t.deepEqual(tally.known, {}, 'packets showed known issues');
  t.true(tally.packets >= MIN_PACKETS, `only ${tally.packets} packets fuzzed, want at least ${MIN_PACKETS}`);
  for (const p of PROPERTIES) t.true(tally.properties[p].checked > 0, `no packet exercised property ${p}`);
  if (RUNS >= 1100) {
    /* IPv6 reaches every outcome the dataplane has for it, later fragments and ICMPv6 errors translated too. */
    for (const o of ['passed', 'passed-malformed', 'dropped-malformed', 'forward', 'reply', 'answer', 'dropped', 'fragment', 'fragment-translated', 'icmp-translated'] as const) t.true((tally.outcomes6[o] ?? 0) > 0, `no IPv6 frame had the outcome ${o}`);
  }
  if (RUNS >= 1100) {
    /* icmp_frag_needed cannot move here: it needs a FIB lookup, and the rig runs without FIB redirects. */
    for (const c of [...LIFECYCLE_COUNTERS, 'ct_reply_clash', 'frag_translated', 'icmp_translated'] as const) t.true((tally.lifecycle[c] ?? 0) > 0, `no packet exercised the lifecycle's ${c}`);
  }
});
