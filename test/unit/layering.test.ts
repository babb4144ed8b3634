/**
 * The control plane's layering (README "Layering"): dependency-cruiser with
 * the rules in .dependency-cruiser.cjs finds no violation in src/, and finds
 * the one planted in test/fixtures/layering/, so the check can fail.
 */
import path from 'node:path';
import test from 'ava';
import { cruise, type ICruiseOptions, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';

const root = path.resolve(import.meta.dirname, '../..');
const fixture = path.join(root, 'test/fixtures/layering');

async function cruiseSrc(baseDir: string): Promise<{ result: ICruiseResult; comments: Map<string, string> }> {
  const options: ICruiseOptions = await extractDepcruiseOptions(path.join(root, '.dependency-cruiser.cjs'));
  const tsConfig = extractTSConfig(path.join(root, 'tsconfig.json'));
  const { output } = await cruise(
    ['src'],
    { ...options, baseDir, tsConfig: { fileName: path.join(root, 'tsconfig.json') }, outputType: 'json' },
    {},
    { tsConfig },
  );
  const result: ICruiseResult = typeof output === 'string' ? JSON.parse(output) : output;
  const comments = new Map<string, string>();
  for (const rule of options.ruleSet?.forbidden ?? []) {
    if (rule.name !== undefined) comments.set(rule.name, rule.comment ?? '');
  }
  return { result, comments };
}

/** `rule: from → to`, what the tests compare. */
function brief(v: IViolation): string {
  const cycle = v.cycle?.length ? ` (cycle ${[v.from, ...v.cycle.map((c) => c.name)].join(' → ')})` : '';
  return `${v.rule.name}: ${v.from} → ${v.to}${cycle}`;
}

/** Each violation with its rule's comment, which says what to do instead. */
function explain(violations: IViolation[], comments: Map<string, string>): string {
  return violations.map((v) => `${brief(v)}\n    ${comments.get(v.rule.name) ?? ''}`).join('\n');
}

test('src/ keeps its layering', async (t) => {
  const { result, comments } = await cruiseSrc(root);
  t.true(result.summary.totalCruised > 50, `cruised only ${result.summary.totalCruised} modules: is src/ there?`);
  const { violations } = result.summary;
  t.deepEqual(violations.map(brief), [], `layering violations:\n${explain(violations, comments)}`);
});

test('the rules catch a model that imports a map codec', async (t) => {
  const { result, comments } = await cruiseSrc(fixture);
  const { violations } = result.summary;
  t.deepEqual(
    violations.map(brief),
    ['model-is-pure: src/model/service.ts → src/dataplane/codec.ts'],
    explain(violations, comments),
  );
});
