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

test('the IPv6 twins of the per-flow structs: their sizes, so that the IPv4 ones stay as they were', (t) => {
  const c = native().layouts();
  t.is(c['ct_key']?.size, 16, 'the IPv4 key is untouched');
  t.is(c['ct_value']?.size, 24);
  t.is(c['ct6_key']?.size, 40);
  t.is(c['ct6_value']?.size, 36);
  t.is(c['node_config']?.size, 16, 'node_config keeps its pinned size; the IPv6 hairpin address has its own map');
  t.is(c['node_config6']?.size, 16);
  t.is(c['lookup_result']?.size, 56);
  t.true(LOOKUP_RESULT_OFFSET + 0 >= 14 + 40 + 60, 'an IPv6 lookup frame\'s headers end before the answer');
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
  t.is(k['SLUICE_AF_INET6'], 10, 'the family byte of IPv6 keys and backends');
  t.is(k['SLUICE_IPV6_MAX_EXT'], 4, 'extension headers the IPv6 walk follows');
  t.is(k['SLUICE_IPV6_EXT_MAX_BYTES'], 256, 'their bytes in all');
  for (const [name, rc] of Object.entries(LOOKUP_RC)) t.is(k[name], rc, `${name}, an outcome sluice_lookup answers`);
});
