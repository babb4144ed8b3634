/**
 * The TypeScript codecs' idea of every shared struct must equal the C
 * compiler's (the addon reports sizeof/offsetof from sluice_shared.h).
 * Loading the addon needs no root.
 */
import test from 'ava';
import { native } from '../../src/dataplane/native.js';
import { GLOBAL_COUNTERS, LAYOUTS, SVC_FLAG_AFFINITY, SVC_FLAG_DROP_NO_BACKEND } from '../../src/dataplane/codec.js';
import { LOOKUP_RC, LOOKUP_RESULT_OFFSET } from '../../src/dataplane/lookup-frame.js';

test('every struct: same size and field offsets in C and in the codecs', (t) => {
  const c = native().layouts();
  t.deepEqual(Object.keys(c).sort(), Object.keys(LAYOUTS).sort(), 'same set of structs');
  for (const [name, ts] of Object.entries(LAYOUTS)) {
    const cl = c[name];
    if (!cl) {
      t.fail(`the addon reports no layout for ${name}`);
      continue;
    }
    t.is(cl.size, ts.size, `sizeof(struct ${name}): C says ${cl.size}, codec says ${ts.size}`);
    t.deepEqual(cl.offsets, ts.offsets as Record<string, number>, `offsets of struct ${name}`);
  }
});

test('the global counters are struct global_stats\'s fields, in its order, and nothing else', (t) => {
  const offsets = LAYOUTS.global_stats.offsets as Record<string, number>;
  const byOffset = Object.keys(offsets).sort((a, b) => offsets[a]! - offsets[b]!);
  t.deepEqual([...GLOBAL_COUNTERS], byOffset);
  t.is(LAYOUTS.global_stats.size as number, GLOBAL_COUNTERS.length * 8, 'every field a __u64, no padding');
});

test('capacities the control plane relies on', (t) => {
  const k = native().constants();
  t.is(k['SLUICE_MAGLEV_MAX'], 131071);
  t.is(k['SLUICE_SVC_AFFINITY'], SVC_FLAG_AFFINITY);
  t.is(k['SLUICE_SVC_DROP_NO_BACKEND'], SVC_FLAG_DROP_NO_BACKEND, 'a service that drops, not rejects, without backends');
  t.is(k['SLUICE_BE_DRAINING'], 1);
  t.true((k['numCpus'] ?? 0) >= 1);
  t.is(k['SLUICE_LOOKUP_OFF'], LOOKUP_RESULT_OFFSET, 'where sluice_lookup writes its answer in the frame');
  for (const [name, rc] of Object.entries(LOOKUP_RC)) t.is(k[name], rc, `${name}, an outcome sluice_lookup answers`);
});
