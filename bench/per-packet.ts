/**
 * Per-packet cost of sluice's XDP program through BPF_PROG_TEST_RUN, alone
 * (the stage is bench/stages/per-packet.ts, which says what is measured and
 * how; `npm run bench` runs it with the others). Not run by CI; needs root
 * and `bash scripts/build.sh`, plus `make -C bpf bench` for the cost ladder and
 * the new-flow floors:
 *
 *   npx tsx bench/per-packet.ts [--quick] [--services 10000] [--rounds 15]
 *       [--repeat 200000] [--calls 5000] [--cycle 1000]
 *
 * On a noisy machine, pin it to one CPU (`taskset -c 1 npx tsx ...`): the
 * rounds then agree far better.
 *
 * Prints tables and writes bench/results/per-packet-latest.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { packageRoot } from '../src/package-root.js';
import { renderTextTable } from './lib/report.js';
import { BenchError, measurePerPacket, perPacketOptions, type PerPacketOptions } from './stages/per-packet.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      services: { type: 'string' },
      rounds: { type: 'string' },
      repeat: { type: 'string' },
      calls: { type: 'string' },
      cycle: { type: 'string' },
    },
  });
  let options: PerPacketOptions;
  try {
    const given: NonNullable<Parameters<typeof perPacketOptions>[0]> = { quick: values.quick };
    for (const k of ['services', 'rounds', 'repeat', 'calls', 'cycle'] as const) {
      const v = values[k];
      if (v !== undefined) given[k] = Number(v);
    }
    options = perPacketOptions(given);
  } catch (err) {
    console.error(`per-packet: ${(err as Error).message}`);
    process.exit(2);
  }

  const result = await measurePerPacket(options, {
    progress: () => {},
    log: (line) => console.log(line),
    onCleanup: () => () => {},
  });
  for (const t of result.tables) console.log(`\n${renderTextTable(t)}`);
  console.log('\nTargets (XDP):');
  console.log(renderTextTable({
    title: '',
    columns: ['target', 'measured', ''],
    rows: result.targets.map((t) => [`${t.what}: ${t.target}`, t.measured, t.met ? 'meets' : 'falls short']),
  }).replace(/^\n/, ''));

  const dir = path.join(packageRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'per-packet-latest.json');
  writeFileSync(file, `${JSON.stringify(result.raw, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof BenchError ? `per-packet: ${err.message}` : err);
  process.exitCode = 1;
});
