// The status page: snapshots of the node arrive on /events (server-sent
// events, one a second); rates are the differences between two, over the
// time between them. Plain ES module, no build step; uPlot is the global
// its iife bundle defines. Every cell carries data-col (and its row
// data-service, data-backend, data-drop or data-reject), and data-value
// holds the exact number behind the text, so tests and scripts read
// numbers, not formatting.

/* global uPlot */

const HISTORY_S = 300;
// The plot's own height; the legend below it adds its lines.
const PLOT_HEIGHT = 260;
const MAX_SERIES = 8;
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22'];

/** A number in at most 6 characters: as is below 1000, then k, M, G, T with 3 significant digits. As si() in src/cli/top-view.ts (this file has no build step): change both. */
function si(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  if (n < 999.5) return n === 0 ? '0' : n < 10 && !Number.isInteger(n) ? n.toFixed(1) : String(Math.round(n));
  const units = ['k', 'M', 'G', 'T', 'P', 'E'];
  let v = n;
  let u = -1;
  while (v >= 999.5 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v < 9.995 ? v.toFixed(2) : v < 99.95 ? v.toFixed(1) : v.toFixed(0)}${units[u]}`;
}

/** Per-second rate of a counter between two readings (a counter that went down, after a restart, counts from zero). */
function rate(before, now, seconds) {
  if (before === undefined || !(seconds > 0)) return null;
  return (now >= before ? now - before : now) / seconds;
}

function el(tag, attrs = {}) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

/** Set a cell's text and exact value, touching the DOM only on a change. */
function set(td, text, value = text) {
  if (td.textContent !== text) td.textContent = text;
  const v = value === null || value === undefined ? '' : String(value);
  if (td.dataset.value !== v) td.dataset.value = v;
}

/** A backend whose service has no health check, in the words of `sluice service get` and `sluice top`. */
const NOT_CHECKED = 'not checked';

const SERVICE_COLS = ['name', 'health', 'state', 'weight', 'packets-rate', 'bytes-rate', 'conns-rate', 'connections', 'packets', 'bytes', 'conns'];

/** A row with one td per column, each marked with data-col. */
function row(attrs) {
  const tr = el('tr', attrs);
  const cells = {};
  for (const c of SERVICE_COLS) tr.append((cells[c] = el('td', { 'data-col': c })));
  return { tr, cells };
}

function lower(s) {
  return String(s ?? '').toLowerCase();
}

function probeText(h) {
  const p = h?.lastProbe;
  if (!p) return 'no probe yet';
  const at = new Date(p.atMs).toLocaleTimeString();
  return p.ok ? `last probe ok in ${p.latencyMs.toFixed(1)} ms at ${at}` : `last probe failed at ${at}: ${p.error ?? 'failed'}`;
}

/** Fill a row's counter cells: rates against the previous reading, totals as exact numbers. */
function counters(cells, now, before, seconds, active) {
  const r = (k) => rate(before?.[k], now[k], seconds);
  set(cells['packets-rate'], si(r('packets')), r('packets'));
  set(cells['bytes-rate'], si(r('bytes')), r('bytes'));
  set(cells['conns-rate'], si(r('newConnections')), r('newConnections'));
  set(cells.connections, active === undefined ? '-' : String(active), active);
  set(cells.packets, String(now.packets), now.packets);
  set(cells.bytes, String(now.bytes), now.bytes);
  set(cells.conns, String(now.newConnections), now.newConnections);
}

const table = document.getElementById('services');
const groups = new Map(); // service name -> { tbody, head, backends: Map<address, row> }

function renderServices(snap, prev, seconds) {
  const before = new Map((prev?.services ?? []).map((s) => [s.name, s]));
  const seen = new Set();
  snap.services.forEach((s, i) => {
    seen.add(s.name);
    let g = groups.get(s.name);
    if (!g) {
      const tbody = el('tbody', { 'data-service': s.name });
      const head = row({ 'data-row': 'service' });
      tbody.append(head.tr);
      g = { tbody, head, backends: new Map() };
      groups.set(s.name, g);
    }
    if (table.tBodies[i] !== g.tbody) table.insertBefore(g.tbody, table.tBodies[i] ?? null);
    const p = before.get(s.name);
    const n = s.backends.length;
    const up = s.backends.filter((b) => b.effectiveState === 'active' && b.weight > 0).length;
    const checked = s.backends.filter((b) => b.health.state !== 'unchecked');
    const healthy = checked.filter((b) => b.health.state !== 'unhealthy').length;
    const c = g.head.cells;
    set(c.name, s.name);
    c.name.title = `${s.addresses.join(', ')} ${s.ports.map((x) => `${x.port}/${x.protocol}`).join(', ')}; no backends: ${s.noBackends}`;
    set(c.health, checked.length === 0 ? NOT_CHECKED : `${healthy}/${checked.length} up`, healthy);
    set(c.state, `${up}/${n} active`, up);
    set(c.weight, '');
    counters(c, s.counters, p?.counters, seconds, s.activeConnections);

    const pb = new Map((p?.backends ?? []).map((b) => [b.address, b]));
    const live = new Set();
    s.backends.forEach((b, j) => {
      live.add(b.address);
      let r = g.backends.get(b.address);
      if (!r) {
        r = row({ 'data-backend': b.address });
        g.backends.set(b.address, r);
      }
      if (g.tbody.rows[j + 1] !== r.tr) g.tbody.insertBefore(r.tr, g.tbody.rows[j + 1] ?? null);
      const bc = r.cells;
      set(bc.name, b.address);
      const health = lower(b.health.state);
      set(bc.health, health === 'unchecked' ? NOT_CHECKED : health, health);
      bc.health.dataset.health = health;
      bc.health.title = probeText(b.health);
      const state = b.effectiveState === b.adminState ? b.effectiveState : `${b.adminState} → ${b.effectiveState}`;
      set(bc.state, state, b.effectiveState);
      bc.state.dataset.state = b.effectiveState;
      set(bc.weight, String(b.weight), b.weight);
      counters(bc, b.counters, pb.get(b.address)?.counters, seconds, b.activeConnections);
    });
    for (const [address, r] of g.backends) {
      if (!live.has(address)) {
        r.tr.remove();
        g.backends.delete(address);
      }
    }
  });
  for (const [name, g] of groups) {
    if (!seen.has(name)) {
      g.tbody.remove();
      groups.delete(name);
    }
  }
  document.getElementById('no-services').hidden = snap.services.length > 0;
}

const drops = document.querySelector('#drops tbody');
const dropRows = new Map();

function renderDrops(snap, prev, seconds) {
  const entries = [
    ...Object.entries(snap.drops).map(([reason, n]) => ['drop', reason, n, prev?.drops[reason]]),
    ...Object.entries(snap.rejects).map(([reason, n]) => ['reject', reason, n, prev?.rejects[reason]]),
  ];
  entries.forEach(([kind, reason, n, before], i) => {
    const key = `${kind}:${reason}`;
    let r = dropRows.get(key);
    if (!r) {
      const tr = el('tr', { [`data-${kind}`]: reason });
      const cells = { kind: el('td', { 'data-col': 'kind' }), reason: el('td', { 'data-col': 'reason' }), rate: el('td', { 'data-col': 'rate' }), total: el('td', { 'data-col': 'total' }) };
      tr.append(cells.kind, cells.reason, cells.rate, cells.total);
      r = { tr, cells };
      dropRows.set(key, r);
    }
    if (drops.rows[i] !== r.tr) drops.insertBefore(r.tr, drops.rows[i] ?? null);
    set(r.cells.kind, kind);
    set(r.cells.reason, reason.replaceAll('_', ' '), reason);
    const x = rate(before, n, seconds);
    set(r.cells.rate, si(x), x);
    set(r.cells.total, String(n), n);
  });
}

// ---- charts: the total and the services with the most packets, over the last HISTORY_S seconds.
const times = [];
const history = new Map(); // series name -> { packets: [], bytes: [] }, aligned with times
let charted = [];
let charts;

function pickSeries(snap) {
  return snap.services
    .slice()
    .sort((a, b) => b.counters.packets - a.counters.packets || (a.name < b.name ? -1 : 1))
    .slice(0, MAX_SERIES)
    .map((s) => s.name)
    .sort();
}

function chartData(kind) {
  return [times, ...['all', ...charted].map((name) => history.get(name)?.[kind] ?? times.map(() => null))];
}

function makeChart(kind, target) {
  const opts = {
    width: target.clientWidth || 560,
    height: PLOT_HEIGHT,
    // Room on the right for half of the last time label, which is centred on its tick.
    padding: [12, 44, 0, 0],
    // The window is always the last HISTORY_S seconds, from the first
    // point on (uPlot would otherwise spread one point over years), and
    // rates start at 0.
    scales: {
      x: { time: true, range: (u, min, max) => [max - HISTORY_S, max] },
      y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    series: [
      {},
      ...['all', ...charted].map((name, i) => ({
        label: name,
        stroke: COLORS[i % COLORS.length],
        width: name === 'all' ? 2 : 1,
        spanGaps: false,
        value: (u, v) => si(v),
      })),
    ],
    // Time of day only: the window is five minutes.
    axes: [
      // Minutes only when the ticks are whole minutes, so the labels fit between them.
      { space: 60, values: (u, vals, axis, space, incr) => vals.map((v) => new Date(v * 1000).toLocaleTimeString([], incr >= 60 ? { hour: '2-digit', minute: '2-digit' } : { hour: '2-digit', minute: '2-digit', second: '2-digit' })) },
      { values: (u, vals) => vals.map(si), size: 60 },
    ],
  };
  return new uPlot(opts, chartData(kind), target);
}

function renderCharts(snap, prev, seconds) {
  if (!prev || !(seconds > 0)) return;
  const t = snap.atMs / 1000;
  const before = new Map(prev.services.map((s) => [s.name, s]));
  const value = (name, kind) => {
    if (name === 'all') {
      let sum = 0;
      for (const s of snap.services) sum += rate(before.get(s.name)?.counters[kind], s.counters[kind], seconds) ?? 0;
      return sum;
    }
    const s = snap.services.find((x) => x.name === name);
    return s ? rate(before.get(name)?.counters[kind], s.counters[kind], seconds) : null;
  };
  const names = pickSeries(snap);
  times.push(t);
  for (const name of [...history.keys()]) if (name !== 'all' && !names.includes(name)) history.delete(name);
  for (const name of ['all', ...names]) {
    let h = history.get(name);
    if (!h) {
      h = { packets: times.slice(0, -1).map(() => null), bytes: times.slice(0, -1).map(() => null) };
      history.set(name, h);
    }
    h.packets.push(value(name, 'packets'));
    h.bytes.push(value(name, 'bytes'));
  }
  while (times.length > 0 && times[0] < t - HISTORY_S) {
    times.shift();
    for (const h of history.values()) {
      h.packets.shift();
      h.bytes.shift();
    }
  }
  if (!charts || names.join('\n') !== charted.join('\n')) {
    charted = names;
    for (const c of Object.values(charts ?? {})) c.destroy();
    charts = { packets: makeChart('packets', document.getElementById('chart-packets')), bytes: makeChart('bytes', document.getElementById('chart-bytes')) };
    chartWidth = document.getElementById('chart-packets').clientWidth;
  } else {
    charts.packets.setData(chartData('packets'));
    charts.bytes.setData(chartData('bytes'));
  }
}

// The charts follow their cells' width (a window resized, a scroll bar that comes or goes).
let chartWidth = 0;
new ResizeObserver(() => {
  const w = document.getElementById('chart-packets').clientWidth;
  if (!charts || w === chartWidth) return;
  chartWidth = w;
  for (const c of Object.values(charts)) c.setSize({ width: w, height: PLOT_HEIGHT });
}).observe(document.getElementById('charts'));

// ---- the stream
let prev;
const stateEl = document.getElementById('state');
const updated = document.getElementById('updated');

function render(snap) {
  const seconds = prev ? (snap.atMs - prev.atMs) / 1000 : 0;
  renderServices(snap, prev, seconds);
  renderDrops(snap, prev, seconds);
  renderCharts(snap, prev, seconds);
  updated.textContent = `updated ${new Date(snap.atMs).toLocaleTimeString()}`;
  updated.dataset.atMs = String(snap.atMs);
  prev = snap;
}

const events = new EventSource('/events');
events.addEventListener('open', () => {
  stateEl.textContent = 'live';
  stateEl.dataset.state = 'live';
});
events.addEventListener('error', () => {
  stateEl.textContent = 'connection lost: reconnecting…';
  stateEl.dataset.state = 'lost';
});
events.addEventListener('snapshot', (e) => render(JSON.parse(e.data)));
