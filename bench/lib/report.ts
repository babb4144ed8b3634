/**
 * The report of a run: Markdown (machine, targets summary, then each stage's
 * method, tables, charts and targets) and SVG bar charts, written by hand so
 * that they need nothing but a browser or a Markdown viewer. Also the plain
 * text tables the stand-alone bench scripts print.
 */
import type { Bar, Cell, Chart, MachineInfo, RunResult, StageResult, Table, Target } from './types.js';

// ---------------------------------------------------------------- numbers

const en = (x: number, digits = 0): string =>
  x.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/**
 * A figure as a report shows it: integers and anything from 100 up whole,
 * with thousands separators (1,234); below that three significant digits
 * (48.5, 1.23, 0.0123).
 */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'n/a' : x > 0 ? '∞' : '−∞';
  if (Number.isInteger(x) || Math.abs(x) >= 100) return en(Math.round(x));
  if (x === 0) return '0';
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(x))));
  return en(x, Math.min(digits, 6));
}

/** A ratio with three significant digits and the sign ×: "2.59 ×", "13.8 ×", "0.286 ×". */
export function formatRatio(x: number): string {
  return `${formatNumber(x)} ×`;
}

/** A signed percentage with one decimal: "+4.3%", "−1.7%". */
export function formatPercent(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return 'n/a';
  return `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(digits)}%`;
}

/** A table cell as text: numbers formatted, null empty, strings as they are. */
export function formatCell(c: Cell): string {
  if (c === null) return '';
  return typeof c === 'number' ? formatNumber(c) : c;
}

/** Right-aligned: a number, or a figure with a unit, a ratio, a percentage. */
function looksNumeric(c: Cell): boolean {
  if (typeof c === 'number') return true;
  if (c === null || c === '') return false;
  return /^[-+−±]?[\d,.]+(\s?(×|%|ns|µs|ms|s|Mpps|Gbps))?$/.test(c.trim());
}

function numericColumns(t: Table): boolean[] {
  return t.columns.map((_, i) => {
    const cells = t.rows.map((r) => r[i] ?? null).filter((c) => c !== null && c !== '');
    return cells.length > 0 && cells.every(looksNumeric);
  });
}

// ---------------------------------------------------------------- plain text

/** A table as aligned plain text (numbers right-aligned), for a terminal. */
export function renderTextTable(t: Table): string {
  const rows = t.rows.map((r) => t.columns.map((_, i) => formatCell(r[i] ?? null)));
  const numeric = numericColumns(t);
  const width = (s: string): number => [...s].length;
  const widths = t.columns.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i]!))));
  const pad = (s: string, i: number): string => {
    const fill = ' '.repeat(widths[i]! - width(s));
    return numeric[i] ? fill + s : s + fill;
  };
  const line = (r: string[]): string => r.map(pad).join('  ').trimEnd();
  const out = [t.title, line(t.columns), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  for (const n of t.notes ?? []) out.push(n);
  return out.join('\n');
}

// ---------------------------------------------------------------- Markdown

/** A table cell's text: pipes and backslashes escaped, '<' not taken for HTML, on one line. */
function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/\r?\n/g, ' ');
}

function mdTable(columns: string[], rows: string[][], numeric?: boolean[]): string {
  const head = `| ${columns.map(mdCell).join(' | ')} |`;
  const rule = `|${columns.map((_, i) => (numeric?.[i] ? '---:' : '---')).join('|')}|`;
  return [head, rule, ...rows.map((r) => `| ${columns.map((_, i) => mdCell(r[i] ?? '')).join(' | ')} |`)].join('\n');
}

/** A stage's table as Markdown, with its title as a heading and its notes under it. */
export function renderMarkdownTable(t: Table, heading = '####'): string {
  const rows = t.rows.map((r) => t.columns.map((_, i) => formatCell(r[i] ?? null)));
  const out = [`${heading} ${t.title}`, '', mdTable(t.columns, rows, numericColumns(t))];
  if (t.notes?.length) out.push('', ...t.notes.flatMap((n) => [n, '']).slice(0, -1));
  return out.join('\n');
}

const verdict = (t: Target): string => (t.met ? 'met' : '**NOT met**');

function machineLine(m: MachineInfo): string {
  return `${m.cpuModel}, ${m.cores} ${m.cores === 1 ? 'core' : 'cores'}, ${formatNumber(m.memoryGiB)} GiB; ` +
    `Linux ${m.kernel}${m.clocksource ? ` (clock source ${m.clocksource})` : ''}`;
}

/** The stall probe: what a thread spinning alone on each CPU lost to the machine. */
function stallsLine(p: NonNullable<MachineInfo['stalls']>): string {
  const per = p.cpus.map((c) => `CPU ${c.cpu}: ${c.stalls} of 1 ms or more, ${formatNumber(c.lostMs)} ms in all, ` +
    `longest ${formatNumber(c.maxMs)} ms`).join('; ');
  return `a thread spinning alone on each CPU for ${p.seconds} s at the start was stopped by the machine itself: ${per}. ` +
    'No latency percentile shorter than such stalls can be relied on here.';
}

function seconds(s: number): string {
  return s >= 100 ? `${en(Math.round(s))} s` : `${s.toFixed(1)} s`;
}

/** A stage's section: method, tables and charts, targets. */
function stageSection(s: StageResult, chartPath: (chartId: string) => string): string {
  const out: string[] = [`## ${s.title}`, '', `Stage \`${s.id}\`, ${seconds(s.seconds)}.`, '', '### Method', ''];
  for (const p of s.method) out.push(p, '');
  out.push('### Results', '');
  for (const t of s.tables) out.push(renderMarkdownTable(t), '');
  for (const c of s.charts) out.push(`![${mdAlt(c.title)}](${chartPath(c.id)})`, '');
  if (s.targets.length > 0) {
    const met = s.targets.filter((t) => t.met).length;
    out.push('### Targets', '', `${met} of ${s.targets.length} met.`, '');
    out.push(targetTable(s.targets, false), '');
  }
  return out.join('\n');
}

function mdAlt(s: string): string {
  return s.replace(/[[\]\\]/g, (c) => `\\${c}`);
}

function targetTable(targets: ReadonlyArray<Target & { stage?: string }>, withStage: boolean): string {
  const whys = targets.some((t) => t.why);
  const columns = [...(withStage ? ['stage'] : []), 'what', 'target', 'measured', 'result', ...(whys ? ['why'] : [])];
  const rows = targets.map((t) => [
    ...(withStage ? [t.stage ?? ''] : []), t.what, t.target, t.measured, verdict(t), ...(whys ? [t.why ?? ''] : []),
  ]);
  return mdTable(columns, rows);
}

/**
 * The whole report. `chartPath` gives the link to a chart's SVG, relative to
 * where the Markdown is written.
 */
export function renderMarkdown(run: RunResult, chartPath: (chartId: string) => string): string {
  const m = run.machine;
  const date = run.started.replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
  const tools = Object.entries(m.tools).map(([k, v]) => `${k} ${v}`).join(', ');
  const out: string[] = [
    `# sluice benchmarks, ${date}${run.quick ? ' (quick)' : ''}`,
    '',
    mdTable(['', ''], [
      ['machine', machineLine(m)],
      ...(m.stalls ? [['stalls', stallsLine(m.stalls)]] : []),
      ['Node.js', m.node],
      ...(tools ? [['tools', tools]] : []),
      ['commit', `\`${run.commit}\``],
      ['date', date],
      ['mode', run.quick
        ? 'quick (`npm run bench -- --quick`): small counts and few rounds, for a look in under 3 minutes; the full run is the one to quote'
        : 'full (`npm run bench`)'],
      ['stages', [
        ...run.stages.map((s) => `${s.id} (${seconds(s.seconds)})`),
        ...run.failures.map((f) => `${f.id} (**failed**)`),
      ].join(', ') || 'none'],
    ]),
    '',
  ];

  const all = run.stages.flatMap((s) => s.targets.map((t) => ({ ...t, stage: s.id })));
  const met = all.filter((t) => t.met).length;
  out.push('## Targets', '');
  if (all.length === 0) {
    out.push('No stage checked a target in this run.', '');
  } else {
    const missed = all.length - met;
    out.push(`${met} of ${all.length} targets met${missed > 0 ? `; **${missed} NOT met**` : ''}.` +
      `${run.failures.length > 0 ? ` ${run.failures.length === 1 ? 'One stage' : `${run.failures.length} stages`} failed, so ` +
        `${run.failures.length === 1 ? 'its' : 'their'} targets are not in this table.` : ''}`, '');
    out.push(targetTable(all, true), '');
  }

  if (run.failures.length > 0) {
    out.push('## Failed stages', '');
    for (const f of run.failures) out.push(`- **${f.id}**: ${f.error.split('\n')[0]}`);
    out.push('');
  }

  for (const s of run.stages) out.push(stageSection(s, chartPath));
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}

// ---------------------------------------------------------------- SVG

/** Text for an SVG text node or attribute. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const FONT = 'Helvetica, Arial, sans-serif';
const WIDTH = 820;
const BAR = 18;
const GAP = 6;
/** Roughly a 12 px sans-serif character, to size the label column. */
const CHAR = 6.6;
const COLOURS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1', '#edc948', '#9c755f'];
const MAX_LABEL = 56;

function clip(s: string, n: number): string {
  return [...s].length <= n ? s : `${[...s].slice(0, n - 1).join('')}…`;
}

/** An axis tick: no trailing zeros (0.01, 0.5, 2,000). */
function formatTick(x: number): string {
  return Number(x.toPrecision(6)).toLocaleString('en', { maximumFractionDigits: 12 });
}

/** 1, 2 or 5 times a power of ten, at least x. */
function niceStep(x: number): number {
  const p = 10 ** Math.floor(Math.log10(x));
  const f = x / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

interface Axis {
  /** x offset in the plot area of a value (0 for the axis start). */
  x(v: number): number;
  /** Where bars start (the zero line on a linear axis). */
  origin: number;
  ticks: number[];
}

function linearAxis(values: number[], width: number): Axis {
  const max = Math.max(0, ...values);
  const min = Math.min(0, ...values);
  const step = max > min ? niceStep((max - min) / 5) : 1;
  const hi = max > 0 ? Math.ceil(max / step) * step : min < 0 ? 0 : 1;
  const lo = min < 0 ? Math.floor(min / step) * step : 0;
  const span = hi - lo || 1;
  const x = (v: number): number => ((Math.min(Math.max(v, lo), hi) - lo) / span) * width;
  const ticks: number[] = [];
  for (let t = lo; t <= hi + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  return { x, origin: x(0), ticks };
}

function logAxis(values: number[], width: number): Axis {
  const pos = values.filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(pos.length ? Math.min(...pos) : 1));
  let hi = 10 ** Math.ceil(Math.log10(pos.length ? Math.max(...pos) : 10));
  if (hi <= lo) hi = lo * 10;
  const span = Math.log10(hi) - Math.log10(lo);
  const x = (v: number): number => (v <= 0 ? 0 : ((Math.min(Math.max(Math.log10(v), Math.log10(lo)), Math.log10(hi)) - Math.log10(lo)) / span) * width);
  const ticks: number[] = [];
  for (let e = Math.round(Math.log10(lo)); e <= Math.round(Math.log10(hi)); e++) ticks.push(10 ** e);
  return { x, origin: 0, ticks };
}

interface Row {
  kind: 'group' | 'bar';
  text: string;
  bar?: Bar;
  colour?: string;
}

/**
 * A horizontal bar chart: one bar per value with its label on the left and
 * its value at its end. With groups, each group's name heads its bars and a
 * series (a bar label) keeps one colour across groups. Reference bars
 * (baselines, ceilings, ideals) are grey and dashed. Bars carry
 * class="bar" and data-value, for tests and for anyone reading the file.
 */
export function renderSvg(chart: Chart): string {
  const bars = chart.bars;
  const grouped = bars.some((b) => b.group !== undefined);
  const series = [...new Set(bars.filter((b) => !b.reference).map((b) => b.label))];
  const colour = (b: Bar): string => (grouped ? COLOURS[series.indexOf(b.label) % COLOURS.length]! : COLOURS[0]!);

  const rows: Row[] = [];
  if (grouped) {
    const groups = [...new Set(bars.map((b) => b.group ?? ''))];
    for (const g of groups) {
      rows.push({ kind: 'group', text: g });
      for (const b of bars.filter((x) => (x.group ?? '') === g)) rows.push({ kind: 'bar', text: b.label, bar: b, colour: colour(b) });
    }
  } else {
    for (const b of bars) rows.push({ kind: 'bar', text: b.label, bar: b, colour: colour(b) });
  }

  const indent = grouped ? 12 : 0;
  const labelW = Math.min(380, Math.max(90, indent + Math.max(0, ...rows.map((r) => [...clip(r.text, MAX_LABEL)].length)) * CHAR + 14));
  const valueText = (v: number): string => formatNumber(v);
  const valueW = Math.max(40, Math.max(0, ...bars.map((b) => valueText(b.value).length)) * CHAR + 14);
  const left = 16 + labelW;
  const plotW = WIDTH - left - valueW - 16;
  const top = 44;
  const finite = bars.map((b) => b.value).filter(Number.isFinite);
  const axis = chart.log ? logAxis(finite, plotW) : linearAxis(finite, plotW);

  const body: string[] = [];
  let y = top;
  for (const r of rows) {
    if (r.kind === 'group') {
      body.push(`<text x="16" y="${y + 14}" font-weight="bold">${escapeXml(clip(r.text, MAX_LABEL))}</text>`);
      y += 20;
      continue;
    }
    const b = r.bar!;
    const v = Number.isFinite(b.value) ? b.value : 0;
    const x0 = left + Math.min(axis.origin, axis.x(v));
    const w = Math.abs(axis.x(v) - axis.origin);
    const label = clip(r.text, MAX_LABEL);
    body.push(`<text x="${left - 8}" y="${y + 13}" text-anchor="end">${escapeXml(label)}` +
      `${label !== r.text ? `<title>${escapeXml(r.text)}</title>` : ''}</text>`);
    const style = b.reference
      ? 'fill="#d9d9d9" stroke="#6b6b6b" stroke-width="1" stroke-dasharray="4 3"'
      : `fill="${r.colour}"`;
    body.push(`<rect class="bar${b.reference ? ' reference' : ''}" data-value="${escapeXml(String(b.value))}" ` +
      `x="${x0.toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${BAR}" ${style}>` +
      `<title>${escapeXml(`${b.group !== undefined ? `${b.group}, ` : ''}${b.label}: ${valueText(b.value)} ${chart.unit}`)}</title></rect>`);
    const end = left + Math.max(axis.x(v), axis.origin);
    body.push(`<text x="${(end + 5).toFixed(2)}" y="${y + 13}" fill="#333">${escapeXml(Number.isFinite(b.value) ? valueText(b.value) : 'n/a')}</text>`);
    y += BAR + GAP;
  }
  const bottom = y - GAP + 8;

  const grid: string[] = [];
  for (const t of axis.ticks) {
    const x = (left + axis.x(t)).toFixed(2);
    grid.push(`<line x1="${x}" y1="${top - 6}" x2="${x}" y2="${bottom}" stroke="${t === 0 && !chart.log ? '#888' : '#e3e3e3'}"/>`);
    grid.push(`<text x="${x}" y="${bottom + 15}" text-anchor="middle" fill="#555" font-size="11">${escapeXml(formatTick(t))}</text>`);
  }
  const unitY = bottom + 34;
  const foot: string[] = [
    `<text x="${(left + plotW / 2).toFixed(2)}" y="${unitY}" text-anchor="middle" fill="#555" font-size="11">` +
      `${escapeXml(chart.unit)}${chart.log ? ' (log scale)' : ''}</text>`,
  ];
  let height = unitY + 12;
  if (bars.some((b) => b.reference)) {
    foot.push(`<rect x="${left}" y="${unitY + 10}" width="22" height="11" fill="#d9d9d9" stroke="#6b6b6b" stroke-dasharray="4 3"/>`);
    foot.push(`<text x="${left + 28}" y="${unitY + 20}" fill="#555" font-size="11">reference (baseline, limit or ideal)</text>`);
    height = unitY + 30;
  }
  if (bars.length === 0) body.push(`<text x="${left}" y="${top + 14}" fill="#555">no data</text>`);

  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ` +
      `font-family="${FONT}" font-size="12" role="img">`,
    `<title>${escapeXml(`${chart.title} (${chart.unit})`)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="24" font-size="15" font-weight="bold">${escapeXml(chart.title)}</text>`,
    ...grid,
    ...body,
    ...foot,
    '</svg>',
    '',
  ].join('\n');
}
