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
