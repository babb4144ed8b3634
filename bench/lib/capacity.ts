/**
 * The map sizes of the daemons the benchmark starts with thousands of
 * services: the defaults fit a small node (src/daemon/capacity.ts), and
 * 10,000 services × 10 backends need more frontends, backends and Maglev
 * slots. These are the sizes earlier results were measured with, so that
 * runs stay comparable.
 */
export const LARGE_CAPACITY_ARGS: readonly string[] = [
  '--max-frontends', '65535',
  '--max-backends', '131071',
  '--maglev-slots', '16777216',
];

/** The same sizes, for a dataplane the benchmark opens itself. */
export const LARGE_CAPACITY = { frontends: 65_535, backends: 131_071, maglevSlots: 16_777_216 } as const;
