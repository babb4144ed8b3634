/**
 * Maglev table build time (buildMaglevTable against a plain Pseudocode 1,
 * 65,537 slots, 10, 100 and 1000 backends) and table quality (imbalance,
 * flows moved when one backend is removed or added, against the ideal),
 * alone: the stage is bench/stages/maglev.ts, which says how; `npm run
 * bench` runs it with the others. Not run by CI:
 * `npx tsx bench/maglev-build.ts`.
 */
import { renderTextTable } from './lib/report.js';
import { measureMaglev } from './stages/maglev.js';

const result = await measureMaglev({ progress: () => {}, log: (line) => console.log(line) });
console.log(result.tables.map(renderTextTable).join('\n\n'));
for (const t of result.targets) console.log(`\n${t.what}: ${t.target}; measured ${t.measured}: ${t.met ? 'meets' : 'falls short'}`);
