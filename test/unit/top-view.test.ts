/**
 * `sluice top`'s frames as pure functions: rates from two samples, sorting,
 * selection and scrolling, keys, and frames that fit the terminal (width
 * and height) whatever the names and numbers.
 */
import test from 'ava';
import {
  fit,
  layout,
  onKey,
  parseKeys,
  renderFrame,
  serviceRows,
  si,
  sortRows,
  type FrameInput,
  type TopSample,
  type TopService,
  type ViewState,
} from '../../src/cli/top-view.js';

const svc = (name: string, packets: number, bytes: number, conns: number, backends: TopService['backends'] = []): TopService => ({
  name,
  counters: { packets, bytes, newConnections: conns },
  backends,
});

/** Two samples two seconds apart: web does 50 pkt/s and 5 kB/s, api 10 pkt/s and 40 kB/s, idle 0. */
function samples(): { previous: TopSample; sample: TopSample } {
  const previous: TopSample = {
    atMs: 10_000,
    drops: 4,
    rejects: 0,
    services: [
      svc('default/web', 1000, 100_000, 10, [
        { address: '10.1.0.1', weight: 1, state: 'active', health: 'healthy', counters: { packets: 600, bytes: 60_000, newConnections: 6 } },
        { address: '10.1.0.2', weight: 2, state: 'active', health: 'unhealthy', effectiveState: 'draining', counters: { packets: 400, bytes: 40_000, newConnections: 4 } },
      ]),
      svc('default/api', 0, 0, 0),
      svc('default/idle', 5, 500, 1),
    ],
  };
  const sample: TopSample = {
    atMs: 12_000,
    drops: 10,
    rejects: 2,
    services: [
      svc('default/web', 1100, 110_000, 14, [
        { address: '10.1.0.1', weight: 1, state: 'active', health: 'healthy', lastProbe: 'ok 0.4ms', counters: { packets: 700, bytes: 70_000, newConnections: 10 } },
        { address: '10.1.0.2', weight: 2, state: 'active', health: 'unhealthy', lastProbe: 'ECONNREFUSED', effectiveState: 'draining', counters: { packets: 400, bytes: 40_000, newConnections: 4 } },
        { address: '10.1.0.10', weight: 1, state: 'maintenance' },
      ]),
      svc('default/api', 20, 80_000, 2),
      svc('default/idle', 5, 500, 1),
      svc('default/new', 7, 70, 1),
    ],
  };
  return { previous, sample };
}

const frame = (over: Partial<FrameInput>): string[] => {
  const { previous, sample } = samples();
  return renderFrame({ server: 'unix:///run/sluice/sluice.sock', sample, previous, state: { mode: 'services', sort: 'packets' }, width: 120, height: 30, intervalMs: 1000, ...over }).lines;
};

test('rates are deltas over the time between samples, per service and per backend', (t) => {
  const { previous, sample } = samples();
  const rows = serviceRows(previous, sample);
  const web = rows.find((r) => r.name === 'default/web')!;
  t.deepEqual(web.rates, { packets: 50, bytes: 5000, newConnections: 2 });
  t.deepEqual(web.backends[0]!.rates, { packets: 50, bytes: 5000, newConnections: 2 });
  t.deepEqual(web.backends[1]!.rates, { packets: 0, bytes: 0, newConnections: 0 });
  t.is(web.backends[2]!.rates, undefined, 'a backend outside the dataplane has no rate');
  t.is(web.up, 1, 'up: active, weight > 0 and not unhealthy (10.1.0.2 is drained by health, 10.1.0.10 in maintenance)');
  t.is(rows.find((r) => r.name === 'default/new')!.rates, undefined, 'a service new in this sample has no rate yet');
  t.deepEqual(serviceRows(undefined, sample).map((r) => r.rates), [undefined, undefined, undefined, undefined]);
});

test('a counter that went down (the daemon restarted) counts from zero', (t) => {
  const { previous, sample } = samples();
  const restarted = { ...sample, services: [svc('default/web', 30, 3000, 1)] };
  t.deepEqual(serviceRows(previous, restarted)[0]!.rates, { packets: 15, bytes: 1500, newConnections: 0.5 });
});

test('sorting: packets/s, bytes/s (busiest first, ties by name, no rate last), name', (t) => {
  const { previous, sample } = samples();
  const rows = serviceRows(previous, sample);
  t.deepEqual(sortRows(rows, 'packets').map((r) => r.name), ['default/web', 'default/api', 'default/idle', 'default/new']);
  t.deepEqual(sortRows(rows, 'bytes').map((r) => r.name), ['default/api', 'default/web', 'default/idle', 'default/new']);
  t.deepEqual(sortRows(rows, 'name').map((r) => r.name), ['default/api', 'default/idle', 'default/new', 'default/web']);
});

test('si: at most six characters, exact below 1000', (t) => {
  const cases: Array<[number, string]> = [[0, '0'], [0.25, '0.3'], [3, '3'], [9.5, '9.5'], [42.4, '42'], [999, '999'], [999.6, '1.00k'], [1234, '1.23k'],
    [45_600, '45.6k'], [999_400, '999k'], [1_500_000, '1.50M'], [2.5e9, '2.50G'], [7e12, '7.00T'], [Infinity, '-']];
  for (const [n, s] of cases) t.is(si(n), s, String(n));
  for (let e = 0; e < 19; e += 0.37) t.true(si(10 ** e).length <= 6, si(10 ** e));
});

test('fit cuts with an ellipsis', (t) => {
  t.is(fit('default/web', 20), 'default/web');
  t.is(fit('default/web', 8), 'default…');
  t.is(fit('abc', 1), '…');
  t.is(fit('abc', 0), '');
});

test('layout: the flexible column shrinks, then whole columns go, the highest drop rank first', (t) => {
  const cols = () => [
    { header: 'NAME', cells: ['a-very-long-service-name-indeed', 'b'], align: 'left' as const, flexible: true },
    { header: 'N', cells: ['1', '22'], align: 'right' as const },
    { header: 'EXTRA1', cells: ['x', 'y'], align: 'right' as const, drop: 2 },
    { header: 'EXTRA2', cells: ['x', 'y'], align: 'right' as const, drop: 1 },
  ];
  const wide = layout(cols(), 200);
  t.deepEqual(wide, [
    'NAME                              N  EXTRA1  EXTRA2',
    'a-very-long-service-name-indeed   1       x       x',
    'b                                22       y       y',
  ]);
  const narrow = layout(cols(), 40);
  t.true(narrow.every((l) => l.length <= 40), narrow.join('\n'));
  t.regex(narrow[1]!, /^a-very-long-serv.*…/, 'the name is cut, with an ellipsis');
  t.regex(narrow[0]!, /EXTRA1  EXTRA2$/, 'both extras still fit once the name shrinks');
  const tight = layout(cols(), 26);
  t.deepEqual(tight.map((l) => l.length <= 26), [true, true, true]);
  t.regex(tight[0]!, /^NAME +N  EXTRA2$/, 'the column of the highest rank goes when the name is at its least; the name takes the room');
  t.regex(layout(cols(), 19)[0]!, /^NAME {14}N$/, 'then the next');
});

test('backends at 80 and 50 columns: HEALTH and LAST PROBE stay (cut with "…"); whole columns go, none is cut', (t) => {
  const { previous, sample } = samples();
  const web = sample.services[0]!;
  web.backends[1]!.lastProbe = 'connect ECONNREFUSED 10.1.0.2:8080';
  const at = (width: number): string[] =>
    renderFrame({ server: 's', sample, previous, state: { mode: 'backends', sort: 'name', service: 'default/web' }, width, height: 12, intervalMs: 1000 }).lines.slice(3, 7);
  const w80 = at(80);
  t.regex(w80[0]!, /^BACKEND +STATE +WEIGHT +HEALTH +PKT\/S +LAST PROBE$/, w80.join('\n'));
  t.regex(w80[2]!, /^10\.1\.0\.2 +active>draining +2 +unhealthy +0 +connect ECONNREFUSED 10\.1…$/, 'the probe error, cut with an ellipsis');
  t.true(w80.every((l) => l.length <= 80));
  const w50 = at(50);
  t.regex(w50[0]!, /^BACKEND +HEALTH +LAST PROBE$/, w50.join('\n'));
  t.regex(w50[2]!, /^10\.1\.0\.2 +unhealthy +connect ECONNREFUSED 10\.1\.0…$/);
  t.regex(w50[3]!, /^10\.1\.0\.10 +- +-$/);
  t.true(w50.every((l) => l.length <= 50));
  // Every column that is shown is whole: a header word per column, the rows as many cells.
  for (const lines of [w80, w50]) {
    const headers = lines[0]!.split(/ {2,}/).length;
    t.deepEqual(lines.slice(1).map((l) => l.split(/ {2,}/).length), [headers, headers, headers], lines.join('\n'));
  }
});

test('services frame: title, totals, rows by packets/s, the selection on the first row, keys at the bottom', (t) => {
  const lines = frame({ keys: true, clock: '12:34:56' });
  t.is(lines.length, 30, 'the frame fills the terminal');
  t.is(lines[0], 'sluice top  unix:///run/sluice/sluice.sock  12:34:56  every 1s  sort: packets/s');
  t.is(lines[1], 'services 4  packets/s 60  bytes/s 45.0k  conns/s 3  drops/s 3  rejects/s 1', 'totals of the services with a rate; drops/s from deltas');
  t.regex(lines[3]!, /^SERVICE +PKT\/S +BYTES\/S +CONN\/S +BACKENDS +PACKETS +BYTES +CONNS$/);
  t.regex(lines[4]!, /^default\/web +50 +5.00k +2 +1\/3 +1.10k +110k +14$/);
  t.regex(lines[5]!, /^default\/api +10 +40.0k +1 +0\/0 +20 +80.0k +2$/);
  t.regex(lines[7]!, /^default\/new +- +- +- /);
  t.is(lines[29], 'Up/Down/j/k select  Enter backends  s sort  q quit');
  const { previous, sample } = samples();
  t.is(renderFrame({ server: 's', sample, previous, state: { mode: 'services', sort: 'packets' }, width: 120, height: 30, intervalMs: 1000 }).selected, 4);
});

test('every line fits the terminal, however narrow or short', (t) => {
  for (const [width, height] of [[120, 30], [80, 24], [40, 10], [20, 5], [10, 3], [1, 1]] as const) {
    for (const state of [{ mode: 'services', sort: 'packets' }, { mode: 'backends', sort: 'name', service: 'default/web' }] as ViewState[]) {
      const lines = frame({ width, height, state, keys: true });
      t.true(lines.length <= height, `${width}x${height} ${state.mode}: ${lines.length} lines`);
      t.true(lines.every((l) => l.length <= width), `${width}x${height} ${state.mode}:\n${lines.join('\n')}`);
    }
  }
});

test('without limits (--once in a pipe) nothing is cut and there is no key line', (t) => {
  const { previous, sample } = samples();
  sample.services.push(svc(`default/${'x'.repeat(200)}`, 1, 1, 1));
  const lines = renderFrame({ server: 's', sample, previous, state: { mode: 'services', sort: 'name' }, width: Infinity, height: Infinity, intervalMs: 500 }).lines;
  t.true(lines.some((l) => l.includes('x'.repeat(200))));
  t.false(lines.some((l) => l.includes('q quit')));
  t.regex(lines[0]!, /every 500ms  sort: name$/);
});

test('the rows scroll to keep the selected one shown', (t) => {
  const services = Array.from({ length: 50 }, (_, i) => svc(`svc-${String(i).padStart(2, '0')}`, 0, 0, 0));
  const sample: TopSample = { atMs: 0, drops: 0, rejects: 0, services };
  const at = (service: string): { lines: string[]; selected?: number } =>
    renderFrame({ server: 's', sample, previous: undefined, state: { mode: 'services', sort: 'name', service }, width: 80, height: 12, intervalMs: 1000, keys: true });
  const top = at('svc-00');
  t.is(top.lines[top.selected!]!.split(' ')[0], 'svc-00');
  const deep = at('svc-30');
  t.is(deep.lines.length, 12);
  t.is(deep.lines[deep.selected!]!.split(' ')[0], 'svc-30', deep.lines.join('\n'));
  t.regex(deep.lines[3]!, /^SERVICE/, 'the table header stays');
  t.is(deep.selected, 10, 'the selected row is the last one above the keys');
});

test('backends frame: address, state (admin>applied), weight, health, rates', (t) => {
  const lines = frame({ state: { mode: 'backends', sort: 'name', service: 'default/web' }, keys: true });
  t.is(lines[1], 'default/web  packets/s 50  bytes/s 5.00k  conns/s 2  backends up 1/3');
  t.regex(lines[3]!, /^BACKEND +STATE +WEIGHT +HEALTH +PKT\/S +BYTES\/S +CONN\/S +PACKETS +BYTES +CONNS +LAST PROBE$/);
  t.regex(lines[4]!, /^10\.1\.0\.1 +active +1 +healthy +50 +5.00k +2 +700 +70.0k +10 +ok 0.4ms$/);
  t.regex(lines[5]!, /^10\.1\.0\.2 +active>draining +2 +unhealthy +0 +0 +0 +400 +40.0k +4 +ECONNREFUSED$/);
  t.regex(lines[6]!, /^10\.1\.0\.10 +maintenance +1 +- +- +- +- +- +- +- +-$/, 'no health field: "-"');
  const narrow = frame({ state: { mode: 'backends', sort: 'name', service: 'default/web' }, width: 80 });
  t.regex(narrow[3]!, /^BACKEND +STATE +WEIGHT +HEALTH +PKT\/S +BYTES\/S +LAST PROBE$/, 'when narrow, the totals go before the last probe');
  t.is(lines[29], 'Esc/Backspace back  Up/Down/j/k select  s sort  q quit');
  const gone = frame({ state: { mode: 'backends', sort: 'name', service: 'default/gone' } });
  t.is(gone[1], 'service default/gone: gone');
});

test('a dual-stack service\'s backends up are counted by family too: its IPv6 VIP has none here', (t) => {
  const half: TopService = {
    ...svc('default/half', 10, 1000, 1, [
      { address: '10.1.0.1', weight: 1, state: 'active' },
      { address: '10.1.0.2', weight: 1, state: 'draining' },
    ]),
    vips: ['10.96.0.40', 'fd96::40'],
  };
  const sample: TopSample = { atMs: 0, drops: 0, rejects: 0, services: [half, { ...svc('default/web', 0, 0, 0, [{ address: '10.1.0.1', weight: 1, state: 'active' }]), vips: ['10.96.0.10'] }] };
  const render = (service: string): string =>
    renderFrame({ server: 's', sample, previous: undefined, state: { mode: 'backends', sort: 'name', service }, width: 120, height: 20, intervalMs: 1000 }).lines[1]!;
  t.regex(render('default/half'), /  backends up 1\/2 \(IPv4 1\/2, IPv6 0\/0\)$/);
  t.regex(render('default/web'), /  backends up 1\/1$/, 'a single-stack service: the total only');
  t.is(serviceRows(undefined, sample)[0]!.upByFamily, 'IPv4 1/2, IPv6 0/0');
});

test('errors show under the title until a poll succeeds; no sample yet says so', (t) => {
  t.is(frame({ error: 'UNAVAILABLE: no connection' })[2], 'error: UNAVAILABLE: no connection (retrying)');
  const first = renderFrame({ server: 's', sample: undefined, previous: undefined, state: { mode: 'services', sort: 'packets' }, width: 80, height: 24, intervalMs: 1000 });
  t.is(first.lines[1], 'waiting for the first sample...');
});

test('keys: escape sequences, several in a chunk, a lone ESC is back', (t) => {
  t.deepEqual(parseKeys('\x1b[A\x1b[Bjk'), ['up', 'down', 'down', 'up']);
  t.deepEqual(parseKeys('\r'), ['enter']);
  t.deepEqual(parseKeys('\x1b'), ['back']);
  t.deepEqual(parseKeys('\x7f'), ['back']);
  t.deepEqual(parseKeys('\x1b[1;5C'), [], 'an unknown sequence is skipped whole');
  t.deepEqual(parseKeys('sq'), ['sort', 'quit']);
  t.deepEqual(parseKeys('\x03'), ['quit']);
  t.deepEqual(parseKeys('\x1b[5~\x1b[6~\x1b[H\x1b[F'), ['pageup', 'pagedown', 'home', 'end']);
});

test('keys: select, drill in, back, sort, quit', (t) => {
  const { previous, sample } = samples();
  const rows = sortRows(serviceRows(previous, sample), 'packets');
  let s: ViewState = { mode: 'services', sort: 'packets' };
  const press = (key: Parameters<typeof onKey>[1]): void => {
    const next = onKey(s, key, rows, 2);
    if (next === 'quit') throw new Error('quit');
    s = next;
  };
  press('down');
  t.is(s.service, 'default/api');
  press('down');
  press('down');
  press('down');
  t.is(s.service, 'default/new', 'the selection stops at the last row');
  press('home');
  t.is(s.service, 'default/web');
  press('pagedown');
  t.is(s.service, 'default/idle');
  press('up');
  press('up');
  press('up');
  t.is(s.service, 'default/web', 'and at the first');
  press('enter');
  t.deepEqual(s, { mode: 'backends', sort: 'packets', service: 'default/web' });
  press('down');
  t.is(s.backend, '10.1.0.2', 'backends are selectable too (by packets/s: 10.1.0.1 first)');
  press('back');
  t.deepEqual(s, { mode: 'services', sort: 'packets', service: 'default/web' }, 'back keeps the service selected');
  press('sort');
  t.is(s.sort, 'bytes');
  press('sort');
  t.is(s.sort, 'name');
  press('sort');
  t.is(s.sort, 'packets');
  t.is(onKey(s, 'quit', rows, 2), 'quit');
  t.deepEqual(onKey({ mode: 'services', sort: 'name' }, 'enter', [], 2), { mode: 'services', sort: 'name' }, 'Enter on an empty list does nothing');
});
