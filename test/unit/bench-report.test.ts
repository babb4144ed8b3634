import test from 'ava';

import { escapeXml, formatNumber, formatRatio, renderMarkdown, renderSvg, renderTextTable } from '../../bench/lib/report.js';
import { probeStalls, summariseStalls } from '../../bench/lib/machine.js';
import type { Chart, RunResult } from '../../bench/lib/types.js';

// ---------------------------------------------------------------- helpers

/**
 * A tiny well-formedness check: every tag closed in order, attributes
 * quoted, no stray '<' or unescaped '&' in text or attribute values.
 * Returns the problems found (none for a well-formed document).
 */
function xmlProblems(xml: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const token = /<[^<>]*>|[^<]+|</g;
  let root = 0;
  for (const m of body.matchAll(token)) {
    const t = m[0];
    if (t === '<') {
      problems.push(`stray '<' at ${m.index}`);
      continue;
    }
    if (!t.startsWith('<')) {
      if (stack.length === 0 && t.trim() !== '') problems.push(`text outside the root element: ${JSON.stringify(t.slice(0, 20))}`);
      if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(t)) problems.push(`unescaped '&' in ${JSON.stringify(t.slice(0, 40))}`);
      continue;
    }
    const close = /^<\/([\w:-]+)\s*>$/.exec(t);
    if (close) {
      const open = stack.pop();
      if (open !== close[1]) problems.push(`</${close[1]}> closes <${open ?? 'nothing'}>`);
      continue;
    }
    const open = /^<([\w:-]+)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>$/.exec(t);
    if (!open) {
      problems.push(`malformed tag ${t.slice(0, 60)}`);
      continue;
    }
    for (const a of open[2]!.matchAll(/="([^"]*)"/g)) {
      if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(a[1]!)) problems.push(`unescaped '&' in attribute ${a[1]}`);
    }
    if (stack.length === 0) root++;
    if (open[3] !== '/') stack.push(open[1]!);
  }
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(' > ')}`);
  if (root !== 1) problems.push(`${root} root elements, want 1`);
  return problems;
}

interface SvgBar {
  value: number;
  width: number;
  reference: boolean;
}

function bars(svg: string): SvgBar[] {
  return [...svg.matchAll(/<rect class="bar( reference)?" data-value="([^"]+)" x="[^"]+" y="[^"]+" width="([^"]+)"/g)].map((m) => ({
    reference: m[1] !== undefined,
    value: Number(m[2]),
    width: Number(m[3]),
  }));
}

function run(): RunResult {
  return {
    started: '2026-11-28T01:02:53.677Z',
    quick: true,
    machine: {
      cpuModel: 'Test CPU 9000 <engineering sample>',
      cores: 2,
      kernel: '6.18.0-test',
      memoryGiB: 23.5,
      node: 'v20.20.2',
      clocksource: 'tsc',
      tools: { 'iptables-legacy': 'v1.8.9 (legacy)', nft: 'v1.0.6' },
      stalls: { seconds: 2, cpus: [{ cpu: 0, stalls: 3, lostMs: 9.25, maxMs: 4.5 }, { cpu: 1, stalls: 0, lostMs: 0, maxMs: 0 }] },
    },
    commit: 'abc123def456-dirty',
    stages: [
      {
        id: 'per-packet',
        title: 'Per-packet cost at XDP',
        method: ['Measured through BPF_PROG_TEST_RUN, every iteration doing its full work.'],
        tables: [{
          title: 'Per-packet cost (ns/packet)',
          columns: ['scenario', 'ns', '÷ min DNAT'],
          rows: [['minimal DNAT', 48.5, '1 ×'], ['established | hit', 1234.4, formatRatio(25.45)], ['no figure', null, '']],
          notes: ['min over 3 rounds.'],
        }],
        charts: [{
          id: 'per-packet-cost', title: 'Cost', unit: 'ns/packet',
          bars: [{ label: 'minimal DNAT', value: 48.5, reference: true }, { label: 'established', value: 1234.4 }],
        }],
        targets: [
          { what: 'established flow', target: '≤ 1.2 × minimal DNAT', measured: '25.5 ×', met: false, why: '1,234 ns against 48.5 ns.' },
          { what: '10,000 svc against 2', target: 'within ±5%', measured: '+1.2%', met: true },
        ],
        seconds: 7.8,
        raw: { anything: [1, 2, 3] },
      },
    ],
    failures: [{ id: 'traffic', error: 'trafgen: not installed' }],
  };
}

// ---------------------------------------------------------------- numbers

test('numbers: thousands separators from 100 up, three significant digits below', (t) => {
  t.is(formatNumber(1234.4), '1,234');
  t.is(formatNumber(65537), '65,537');
  t.is(formatNumber(48.54), '48.5');
  t.is(formatNumber(2.994), '2.99');
  t.is(formatNumber(0.01234), '0.0123');
  t.is(formatNumber(0), '0');
  t.is(formatNumber(Number.NaN), 'n/a');
  t.is(formatRatio(13.76), '13.8 ×');
  t.is(formatRatio(0.2857), '0.286 ×');
});

// ---------------------------------------------------------------- Markdown

test('Markdown: machine, commit, mode, targets summary with a NOT met row, failures', (t) => {
  const md = renderMarkdown(run(), (id) => `charts/x/${id}.svg`);
  t.regex(md, /^# sluice benchmarks, 2026-11-28 01:02:53 UTC \(quick\)/);
  t.true(md.includes('Test CPU 9000 &lt;engineering sample>, 2 cores, 23.5 GiB; Linux 6.18.0-test (clock source tsc)'), md);
  t.true(md.includes('iptables-legacy v1.8.9 (legacy), nft v1.0.6'));
  t.true(md.includes('| stalls | a thread spinning alone on each CPU for 2 s at the start was stopped by the machine itself: ' +
    'CPU 0: 3 of 1 ms or more, 9.25 ms in all, longest 4.50 ms; CPU 1: 0 of 1 ms or more, 0 ms in all, longest 0 ms.'), md);
  t.true(md.includes('`abc123def456-dirty`'));
  t.true(md.includes('## Targets'));
  t.true(md.includes('1 of 2 targets met; **1 NOT met**.'));
  t.true(md.includes('| per-packet | established flow | ≤ 1.2 × minimal DNAT | 25.5 × | **NOT met** | 1,234 ns against 48.5 ns. |'), md);
  t.true(md.includes('| per-packet | 10,000 svc against 2 | within ±5% | +1.2% | met |  |'), md);
  t.true(md.includes('## Failed stages'));
  t.true(md.includes('- **traffic**: trafgen: not installed'));
  t.true(md.includes('traffic (**failed**)'));
});

test('Markdown: each stage has its method, tables (formatted, pipes escaped, numbers right-aligned) and charts', (t) => {
  const md = renderMarkdown(run(), (id) => `charts/x/${id}.svg`);
  t.true(md.includes('## Per-packet cost at XDP'));
  t.true(md.includes('Measured through BPF_PROG_TEST_RUN, every iteration doing its full work.'));
  t.true(md.includes('#### Per-packet cost (ns/packet)'));
  t.true(md.includes('| scenario | ns | ÷ min DNAT |\n|---|---:|---:|'), md);
  t.true(md.includes('| minimal DNAT | 48.5 | 1 × |'));
  t.true(md.includes('| established \\| hit | 1,234 | 25.5 × |'));
  t.true(md.includes('| no figure |  |  |'));
  t.true(md.includes('min over 3 rounds.'));
  t.true(md.includes('![Cost](charts/x/per-packet-cost.svg)'));
  t.false(md.includes('anything'), 'raw data stays out of the report');
});

test('plain text tables align numbers right', (t) => {
  const text = renderTextTable({ title: 'T', columns: ['a', 'value'], rows: [['x', 5], ['longer', 1234]] });
  t.is(text, 'T\na       value\n------  -----\nx           5\nlonger  1,234');
});

// ---------------------------------------------------------------- SVG

const chart: Chart = {
  id: 'c',
  title: 'Cost of <things> & "stuff"',
  unit: 'ns/packet',
  bars: [
    { label: 'floor', value: 20, reference: true },
    { label: 'minimal DNAT & more', value: 50 },
    { label: 'established <hit>', value: 125 },
    { label: 'new flow', value: 731.3 },
  ],
};

test('SVG: well-formed, with its title and labels escaped', (t) => {
  const svg = renderSvg(chart);
  t.deepEqual(xmlProblems(svg), []);
  t.true(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"'));
  t.true(svg.includes('Cost of &lt;things&gt; &amp; &quot;stuff&quot;'));
  t.true(svg.includes('established &lt;hit&gt;'));
  t.true(svg.includes('minimal DNAT &amp; more'));
  t.true(svg.includes('ns/packet'));
  t.true(svg.includes('731'));
});

test('the checker itself finds broken XML', (t) => {
  t.notDeepEqual(xmlProblems('<svg><g></svg>'), []);
  t.notDeepEqual(xmlProblems('<svg><text>a & b</text></svg>'), []);
  t.notDeepEqual(xmlProblems('<svg><text>a < b</text></svg>'), []);
  t.notDeepEqual(xmlProblems('<svg x=1></svg>'), []);
  t.deepEqual(xmlProblems(`<svg><text>${escapeXml('a < b & "c"')}</text></svg>`), []);
});

test('SVG: one bar per value, widths proportional to the values, the reference styled apart', (t) => {
  const got = bars(renderSvg(chart));
  t.is(got.length, chart.bars.length);
  t.deepEqual(got.map((b) => b.value), chart.bars.map((b) => b.value));
  const scale = got[0]!.width / got[0]!.value;
  for (const b of got) t.true(Math.abs(b.width / b.value - scale) / scale < 0.001, `bar ${b.value}: width ${b.width}, want ${b.value * scale}`);
  t.deepEqual(got.map((b) => b.reference), [true, false, false, false]);
  // The longest bar fills most of the plot, not a sliver of it.
  t.true(got[3]!.width > 300);
});

test('SVG: grouped bars are drawn under their group, one colour per series', (t) => {
  const svg = renderSvg({
    id: 'g', title: 'Grouped', unit: 'ms',
    bars: [
      { label: 'sluice', value: 3, group: '10 backends' },
      { label: 'baseline', value: 9, group: '10 backends', reference: true },
      { label: 'sluice', value: 4, group: '100 backends' },
      { label: 'baseline', value: 11, group: '100 backends', reference: true },
    ],
  });
  t.deepEqual(xmlProblems(svg), []);
  t.is(bars(svg).length, 4);
  t.true(svg.indexOf('>10 backends<') < svg.indexOf('>100 backends<'));
  const fills = [...svg.matchAll(/<rect class="bar" [^>]*fill="(#[0-9a-f]+)"/g)].map((m) => m[1]);
  t.is(fills.length, 2);
  t.is(fills[0], fills[1]);
});

test('SVG: a log axis spaces powers of ten evenly', (t) => {
  const got = bars(renderSvg({
    id: 'l', title: 'Log', unit: '%', log: true,
    bars: [{ label: 'a', value: 0.1 }, { label: 'b', value: 1 }, { label: 'c', value: 10 }],
  }));
  t.is(got.length, 3);
  const step1 = got[1]!.width - got[0]!.width;
  const step2 = got[2]!.width - got[1]!.width;
  t.true(step1 > 0 && Math.abs(step1 - step2) < 0.05, `${step1} vs ${step2}`);
});

test('SVG: an empty chart is still well-formed', (t) => {
  const svg = renderSvg({ id: 'e', title: 'Empty', unit: 's', bars: [] });
  t.deepEqual(xmlProblems(svg), []);
  t.true(svg.includes('no data'));
});

test('stalls: only gaps of 1 ms or more count; their total and the longest', (t) => {
  t.deepEqual(summariseStalls(1, [0.2, 0.99, 1, 2.5, 0.5, 4.25]), { cpu: 1, stalls: 3, lostMs: 7.75, maxMs: 4.25 });
  t.deepEqual(summariseStalls(0, []), { cpu: 0, stalls: 0, lostMs: 0, maxMs: 0 });
});

test('stalls: the probe runs a spinner on every CPU this process may use', async (t) => {
  const p = await probeStalls(0.2);
  if (p === null) return t.fail('taskset is missing');
  t.is(p.seconds, 0.2);
  t.deepEqual(p.cpus.map((c) => c.cpu), [...new Set(p.cpus.map((c) => c.cpu))].sort((a, b) => a - b));
  t.true(p.cpus.length >= 1);
  for (const c of p.cpus) {
    t.true(c.stalls >= 0 && c.lostMs >= 0 && c.maxMs >= 0 && c.lostMs <= 200, JSON.stringify(c));
    t.is(c.stalls === 0, c.maxMs === 0, JSON.stringify(c));
  }
});
