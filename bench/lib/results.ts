/**
 * Where a run's report goes. Every run writes its own timestamped files to
 * <out>/runs/, which git ignores, so that running the benchmarks never
 * changes a tracked file. Git keeps one result, <out>/latest.md and
 * latest.json with its charts in <out>/charts/latest/, and it is replaced
 * only on request (`--save-latest`): the published figures change when
 * someone decides they should, in a commit of their own.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { renderMarkdown, renderSvg } from './report.js';
import type { RunResult, StageResult } from './types.js';

/** The files of one report: Markdown, JSON, and the directory of its charts. */
export interface ReportFiles {
  md: string;
  json: string;
  charts: string;
}

/** The ignored directory, under the results directory, that every run writes to. */
export const RUNS_DIR = 'runs';

/** The name of the one kept result (latest.md, latest.json, charts/latest/). */
export const LATEST = 'latest';

/** "2026-11-28T01:02:53.677Z" -> "2026-11-28T01-02-53Z": sorts by time, and is a file name everywhere. */
export function stamp(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

/**
 * Chart ids must be unique within a run and safe as file names: make them so
 * (prefixing the stage id on a clash) rather than let one chart overwrite another.
 */
export function fixChartIds(stages: StageResult[]): void {
  const seen = new Set<string>();
  for (const s of stages) {
    for (const c of s.charts) {
      let id = c.id.replace(/[^A-Za-z0-9._-]/g, '-');
      if (seen.has(id)) id = `${s.id}-${id}`;
      for (let n = 2; seen.has(id); n++) id = `${s.id}-${c.id}-${n}`;
      seen.add(id);
      c.id = id;
    }
  }
}

/**
 * Write <dir>/<name>.json, <dir>/<name>.md and the charts the Markdown links
 * to, in <dir>/charts/<name>/. The charts directory is emptied first, so a
 * chart that a stage no longer draws does not linger beside the new ones.
 */
export function writeReport(run: RunResult, dir: string, name: string): ReportFiles {
  fixChartIds(run.stages);
  const files: ReportFiles = {
    md: path.join(dir, `${name}.md`),
    json: path.join(dir, `${name}.json`),
    charts: path.join(dir, 'charts', name),
  };
  const charts = run.stages.flatMap((s) => s.charts);
  rmSync(files.charts, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  if (charts.length > 0) {
    mkdirSync(files.charts, { recursive: true });
    for (const c of charts) writeFileSync(path.join(files.charts, `${c.id}.svg`), renderSvg(c));
  }
  writeFileSync(files.json, `${JSON.stringify(run, null, 2)}\n`);
  writeFileSync(files.md, renderMarkdown(run, (id) => `charts/${name}/${id}.svg`));
  return files;
}

/** Write a run to <out>/runs/<timestamp>.*, the ignored record every run leaves. */
export function writeRun(run: RunResult, out: string): ReportFiles {
  return writeReport(run, path.join(out, RUNS_DIR), stamp(run.started));
}

/** Replace the kept result, <out>/latest.*, with this run. */
export function saveLatest(run: RunResult, out: string): ReportFiles {
  return writeReport(run, out, LATEST);
}

