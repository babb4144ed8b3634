/**
 * Stage "maps": the kernel memory of the dataplane's maps at the defaults,
 * per map and in all, as the kernel accounts it (memlock in each map's
 * fdinfo), next to the former defaults measured in the same run (the
 * baseline), and against the target of 64 MiB for a small node. Then what
 * `sluice stats` pays to count the maps' occupancy with a full conntrack
 * table of the default size.
 * `npx tsx bench/stages/maps.ts` runs it alone.
 */
import { pathToFileURL } from 'node:url';
import { CAPACITY_FLAG, CAPACITY_RANGE } from '../../src/daemon/capacity.js';
import { LAYOUTS } from '../../src/dataplane/codec.js';
import { NativeDataplane, capacityOfMap, type DataplaneCapacity } from '../../src/dataplane/native-dataplane.js';
import { native } from '../../src/dataplane/native.js';
import { median, round } from '../lib/figures.js';
import { formatRatio } from '../lib/report.js';
import { runStandalone } from '../lib/standalone.js';
import type { Bar, Cell, Stage, StageContext, StageResult } from '../lib/types.js';

const MiB = 1 << 20;
const TARGET_MIB = 64;
const TITLE = 'Kernel memory of the maps';

const DEFAULTS = Object.fromEntries(Object.entries(CAPACITY_RANGE).map(([k, v]) => [k, v.default])) as unknown as DataplaneCapacity;
/**
 * The defaults before the maps were sized for a small node: the baseline.
 * That dataplane had no IPv6 table; it gets today's, so that the two differ
 * only in what the sizing changed.
 */
const FORMER: DataplaneCapacity = { conntrack: 2_097_152, conntrack6: CAPACITY_RANGE.conntrack6.default, affinity: 262_144, frontends: 65_535, backends: 131_071, maglevSlots: 16_777_216, sockets: 65_536 };

async function usageAt(capacity: DataplaneCapacity): Promise<Map<string, { entries: number; bytes: number }>> {
  const dp = await NativeDataplane.open({ fibRedirect: false, capacity });
  try {
    // maglev_slots in slots, as --maglev-slots counts them (two an element).
    return new Map(dp.mapUsage().map((u) => [u.map, { entries: u.map === 'maglev_slots' ? u.entries * 2 : u.entries, bytes: u.bytes }]));
  } finally {
    dp.close();
  }
}

/** ms to count every map's occupancy (GetStats's maps) with a full conntrack table; median of `runs`. */
async function occupancyMs(runs: number): Promise<{ ms: number; entries: number }> {
  const dp = await NativeDataplane.open({ fibRedirect: false, capacity: DEFAULTS });
  try {
    const n = DEFAULTS.conntrack;
    const keys = Buffer.alloc(n * 16);
    for (let i = 0; i < n; i++) {
      keys.writeUInt32BE(0x0a000000 + (i >>> 8), i * 16);
      keys.writeUInt32BE(0x0a60000a, i * 16 + 4);
      keys.writeUInt16BE(1024 + (i & 0xff), i * 16 + 8);
      keys[i * 16 + 12] = 6;
    }
    dp.raw.mapUpdateBatch('conntrack', keys, Buffer.alloc(n * LAYOUTS.ct_value.size));
    const ms: number[] = [];
    let entries = 0;
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      const occ = await dp.mapOccupancy();
      ms.push(performance.now() - t0);
      entries = occ.find((o) => o.map === 'conntrack')!.entries;
    }
    return { ms: median(ms), entries };
  } finally {
    dp.close();
  }
}

async function measureMaps(ctx: StageContext): Promise<StageResult> {
  const t0 = performance.now();
  ctx.progress(0, 3, 'defaults');
  const now = await usageAt(DEFAULTS);
  ctx.progress(1, 3, 'former defaults');
  const before = await usageAt(FORMER);
  ctx.progress(2, 3, 'occupancy');
  const occ = await occupancyMs(ctx.quick ? 3 : 7);
  ctx.progress(3, 3);

  const mib = (b: number): number => round(b / MiB, 2);
  const rows: Cell[][] = [];
  let total = 0;
  let totalBefore = 0;
  for (const [map, u] of now) {
    const b = before.get(map)!;
    total += u.bytes;
    totalBefore += b.bytes;
    const cap = capacityOfMap(map, map === 'maglev_slots' ? u.entries / 2 : u.entries);
    rows.push([map, cap ? CAPACITY_FLAG[cap[0]] : '(fixed)', u.entries, mib(u.bytes), b.entries, mib(b.bytes)]);
  }
  rows.push(['total', '', '', mib(total), '', mib(totalBefore)]);
  const cpus = native().constants()['numCpus']!;
  const bars: Bar[] = [
    { label: 'former defaults', value: mib(totalBefore), reference: true },
    { label: 'defaults', value: mib(total) },
  ];
  return {
    id: 'maps',
    title: TITLE,
    method: [
      `**What is measured.** The BPF object loaded by the addon (not attached) with the daemon's default capacities (${Object.entries(DEFAULTS).map(([k, v]) => `${CAPACITY_FLAG[k as keyof DataplaneCapacity]} ${v}`).join(', ')}), and, as the baseline in the same run, with the former defaults (${Object.entries(FORMER).map(([k, v]) => `${CAPACITY_FLAG[k as keyof DataplaneCapacity]} ${v}`).join(', ')}). Each map's memory is the kernel's own figure, memlock in its fdinfo (since Linux 6.4 the map's estimate of what it allocated), on ${cpus} possible CPUs: the per-CPU maps (svc_stats, backend_stats) grow with the CPUs, 32 bytes an id on each. Maps without preallocation (services, vips, reply_nat) count their buckets only, empty.`,
      `**Occupancy.** What GetStats pays for its maps part (every map's entries, as \`sluice stats\` shows them), with the conntrack table filled to its default ${DEFAULTS.conntrack} entries: median of ${ctx.quick ? 3 : 7} calls.`,
    ],
    tables: [{
      title: `Kernel memory per map at the defaults and at the former defaults (${cpus} CPUs)`,
      columns: ['map', 'sized by', 'entries', 'MiB', 'entries (former)', 'MiB (former)'],
      rows,
      notes: [
        `${formatRatio(totalBefore / total)} less kernel memory at the defaults.`,
        `Counting every map's occupancy with a full conntrack (${occ.entries} entries counted): ${round(occ.ms, 1)} ms.`,
      ],
    }],
    charts: [{ id: 'maps-memory', title: `Kernel memory of all maps (${cpus} CPUs)`, unit: 'MiB', bars }],
    targets: [{
      what: `every map's kernel memory at the defaults, ${cpus} CPUs`,
      target: `≤ ${TARGET_MIB} MiB`,
      measured: `${round(total / MiB, 1)} MiB (former defaults: ${round(totalBefore / MiB, 1)} MiB)`,
      met: total <= TARGET_MIB * MiB,
    }],
    seconds: (performance.now() - t0) / 1000,
    raw: { defaults: Object.fromEntries(now), former: Object.fromEntries(before), totalBytes: total, formerTotalBytes: totalBefore, occupancyMs: occ.ms, cpus },
  };
}

export const mapsStage: Stage = {
  id: 'maps',
  title: TITLE,
  quickBudgetSeconds: 10,
  run: (ctx) => measureMaps(ctx),
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runStandalone([mapsStage], []);
}
