/**
 * What `sluice top` shows, as pure functions: two samples of the node's
 * counters make rates; the rates, the view's state (which list, which row,
 * which sort) and the terminal's size make a frame of plain text lines. Key
 * presses change the state. Nothing here touches the terminal or the API
 * (top.ts does), so a frame can be checked line by line in unit tests.
 */
import { compareAddresses } from '../model/address.js';
import { countByFamily, familyCountsText } from './service-view.js';

/** Counters of a service or backend, summed over CPUs and frontends. */
export interface TopCounters {
  packets: number;
  bytes: number;
  newConnections: number;
}

/** One backend as a sample has it. */
export interface TopBackend {
  address: string;
  weight: number;
  /** The admin state, lower case (active, draining, maintenance). */
  state: string;
  /** The state the node applies (health included), when the API says it. */
  effectiveState?: string;
  /** "not checked", unknown, healthy or unhealthy, when the API says it. */
  health?: string;
  /** The last probe ("ok 0.4ms", "ECONNREFUSED"), once there was one. */
  lastProbe?: string;
  /** Absent when the backend is not in the dataplane (maintenance). */
  counters?: TopCounters;
}

/** One service as a sample has it. */
export interface TopService {
  name: string;
  /** Its VIPs, when the sample has its definition: a dual-stack service's backends are counted by family. */
  vips?: string[];
  counters: TopCounters;
  backends: TopBackend[];
}

/** One read of the node. */
export interface TopSample {
  /** When it was read, ms (any clock, the same for every sample). */
  atMs: number;
  services: TopService[];
  /** Every drop counter of the dataplane, summed. */
  drops: number;
  /** Every reject counter, summed. */
  rejects: number;
}

/** Per-second rates between two samples. */
export interface Rates {
  packets: number;
  bytes: number;
  newConnections: number;
}

/** A backend with its rates (absent without an earlier sample of it). */
export interface BackendRow extends TopBackend {
  rates?: Rates;
}

/** A service with its rates and backends. */
export interface ServiceRow {
  name: string;
  counters: TopCounters;
  rates?: Rates;
  /** Backends that take new flows: active, weight > 0, not unhealthy. */
  up: number;
  /** For a dual-stack service, `up` of each family ("IPv4 2/2, IPv6 0/0"): each VIP takes only its own family's backends. */
  upByFamily?: string;
  backends: BackendRow[];
}

/** What a frame is sorted by. */
export type SortKey = 'packets' | 'bytes' | 'name';
/** The sorts in the order `s` cycles through them. */
export const SORT_KEYS: readonly SortKey[] = ['packets', 'bytes', 'name'];
const SORT_LABEL: Record<SortKey, string> = { packets: 'packets/s', bytes: 'bytes/s', name: 'name' };

/** Which list is shown, and which row of it is selected (by name, so it stays on its row when the order changes). */
export interface ViewState {
  mode: 'services' | 'backends';
  sort: SortKey;
  /** The selected service (the one drilled into in backends mode). */
  service?: string;
  /** The selected backend's address, in backends mode. */
  backend?: string;
}

/** Rates over the time between two counter readings; undefined without a positive interval. A counter that went down (the daemon restarted) counts from zero. */
function rate(prev: TopCounters | undefined, cur: TopCounters, seconds: number): Rates | undefined {
  if (prev === undefined || !(seconds > 0)) return undefined;
  const d = (a: number, b: number): number => (b >= a ? b - a : b) / seconds;
  return { packets: d(prev.packets, cur.packets), bytes: d(prev.bytes, cur.bytes), newConnections: d(prev.newConnections, cur.newConnections) };
}

/** Whether a backend takes new flows. */
export function isUp(b: TopBackend): boolean {
  return (b.effectiveState ?? b.state) === 'active' && b.weight > 0 && b.health !== 'unhealthy';
}

/** The rows of `cur`, with rates against `prev` (per service, per backend by address). */
export function serviceRows(prev: TopSample | undefined, cur: TopSample): ServiceRow[] {
  const seconds = prev ? (cur.atMs - prev.atMs) / 1000 : 0;
  const before = new Map(prev?.services.map((s) => [s.name, s]));
  return cur.services.map((s) => {
    const p = before.get(s.name);
    const pb = new Map(p?.backends.map((b) => [b.address, b]));
    const backends = s.backends.map((b): BackendRow => {
      const r = b.counters ? rate(pb.get(b.address)?.counters, b.counters, seconds) : undefined;
      return r ? { ...b, rates: r } : { ...b };
    });
    const r = rate(p?.counters, s.counters, seconds);
    const families = countByFamily(s.vips ?? [], s.backends, isUp);
    return { name: s.name, counters: s.counters, ...(r ? { rates: r } : {}), up: s.backends.filter(isUp).length, ...(families.length > 1 ? { upByFamily: familyCountsText(families) } : {}), backends };
  });
}

/** Drops and rejects per second between two samples (undefined without an earlier one). */
export function dropRates(prev: TopSample | undefined, cur: TopSample): { drops: number; rejects: number } | undefined {
  const seconds = prev ? (cur.atMs - prev.atMs) / 1000 : 0;
  if (!prev || !(seconds > 0)) return undefined;
  const d = (a: number, b: number): number => (b >= a ? b - a : b) / seconds;
  return { drops: d(prev.drops, cur.drops), rejects: d(prev.rejects, cur.rejects) };
}

const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Rows in the order of `key`: the busiest first (ties, and rows without rates, by name). */
export function sortRows(rows: readonly ServiceRow[], key: SortKey): ServiceRow[] {
  const out = [...rows];
  if (key === 'name') return out.sort(byName);
  return out.sort((a, b) => (b.rates?.[key] ?? -1) - (a.rates?.[key] ?? -1) || byName(a, b));
}

/** The keys top knows. */
export type Key = 'up' | 'down' | 'pageup' | 'pagedown' | 'home' | 'end' | 'enter' | 'back' | 'sort' | 'quit';

const SEQUENCES: ReadonlyArray<[string, Key]> = [
  ['\x1b[A', 'up'], ['\x1bOA', 'up'], ['\x1b[B', 'down'], ['\x1bOB', 'down'],
  ['\x1b[5~', 'pageup'], ['\x1b[6~', 'pagedown'],
  ['\x1b[H', 'home'], ['\x1bOH', 'home'], ['\x1b[1~', 'home'], ['\x1b[F', 'end'], ['\x1bOF', 'end'], ['\x1b[4~', 'end'],
  ['\r\n', 'enter'], ['\r', 'enter'], ['\n', 'enter'],
  ['k', 'up'], ['j', 'down'], ['g', 'home'], ['G', 'end'], ['l', 'enter'], ['h', 'back'],
  ['\x7f', 'back'], ['\b', 'back'], ['s', 'sort'], ['q', 'quit'], ['Q', 'quit'], ['\x03', 'quit'], ['\x04', 'quit'],
];

/**
 * The keys in what a raw-mode terminal sent (several may come in one
 * chunk). A lone ESC is the Escape key (back); an unknown escape sequence
 * is skipped whole.
 */
export function parseKeys(chunk: string): Key[] {
  const keys: Key[] = [];
  let i = 0;
  while (i < chunk.length) {
    const hit = SEQUENCES.find(([seq]) => chunk.startsWith(seq, i));
    if (hit) {
      keys.push(hit[1]);
      i += hit[0].length;
    } else if (chunk[i] === '\x1b') {
      const m = /^\x1b(?:\[[0-9;?]*[ -/]*[@-~]|O.)/.exec(chunk.slice(i));
      if (m) i += m[0].length;
      else {
        keys.push('back');
        i += 1;
      }
    } else i += 1;
  }
  return keys;
}

/** Where `name` is in `names`, or 0 if it is not there. */
function indexOf(names: readonly string[], name: string | undefined): number {
  const i = name === undefined ? -1 : names.indexOf(name);
  return i < 0 ? 0 : i;
}

/** Move a selection in a list of names by a key; undefined for an empty list. */
function move(names: readonly string[], current: string | undefined, key: Key, page: number): string | undefined {
  if (names.length === 0) return undefined;
  const i = indexOf(names, current);
  const to = key === 'up' ? i - 1 : key === 'down' ? i + 1 : key === 'pageup' ? i - page : key === 'pagedown' ? i + page : key === 'home' ? 0 : key === 'end' ? names.length - 1 : i;
  return names[Math.max(0, Math.min(names.length - 1, to))];
}

/**
 * The state after a key, given the rows as shown (sorted) and how many rows
 * a page holds; 'quit' to end.
 */
export function onKey(state: ViewState, key: Key, rows: readonly ServiceRow[], page: number): ViewState | 'quit' {
  if (key === 'quit') return 'quit';
  if (key === 'sort') return { ...state, sort: SORT_KEYS[(SORT_KEYS.indexOf(state.sort) + 1) % SORT_KEYS.length]! };
  if (state.mode === 'services') {
    const names = rows.map((r) => r.name);
    if (key === 'enter') {
      const service = names.length === 0 ? undefined : names[indexOf(names, state.service)];
      if (service === undefined) return state;
      const { backend: _, ...rest } = state;
      return { ...rest, mode: 'backends', service };
    }
    if (key === 'back') return state;
    const service = move(names, state.service, key, page);
    return service === undefined ? state : { ...state, service };
  }
  if (key === 'back') {
    const { backend: _, ...rest } = state;
    return { ...rest, mode: 'services' };
  }
  if (key === 'enter') return state;
  const row = rows.find((r) => r.name === state.service);
  const backend = move(sortBackends(row?.backends ?? [], state.sort).map((b) => b.address), state.backend, key, page);
  return backend === undefined ? state : { ...state, backend };
}

/** Backends in the order of `key` (name sorts by address: IPv4 before IPv6, numerically). */
export function sortBackends(rows: readonly BackendRow[], key: SortKey): BackendRow[] {
  const addr = (a: BackendRow, b: BackendRow): number => compareAddresses(a.address, b.address);
  const out = [...rows];
  if (key === 'name') return out.sort(addr);
  return out.sort((a, b) => (b.rates?.[key] ?? -1) - (a.rates?.[key] ?? -1) || addr(a, b));
}

/**
 * A number in at most 6 characters: as is below 1000 (one decimal below
 * 10, so slow rates still show), then with k, M, G, T and 3 significant
 * digits ("1.23M", "45.6k", "999k"). web/status/status.js has the same
 * function (the page is served without a build step): change both.
 */
export function si(n: number): string {
  if (!Number.isFinite(n)) return '-';
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

/** `s` cut to `width` characters, with "…" in the last place when something was cut. */
export function fit(s: string, width: number): string {
  if (width <= 0) return '';
  return s.length <= width ? s : width === 1 ? '…' : `${s.slice(0, width - 1)}…`;
}

/** A column of a table: its header, cells, and how it gives way when the terminal is narrow. */
export interface Column {
  header: string;
  cells: string[];
  align: 'left' | 'right';
  /** The column that shrinks (with "…") before any is dropped, down to `min`; at most one per table. */
  flexible?: boolean;
  /** The least width of the flexible column (default MIN_FLEX). */
  min?: number;
  /**
   * When even the shrunk table is too wide, whole columns go, the highest
   * `drop` first (the rightmost of equals); a column without one stays.
   */
  drop?: number;
}

/** The smallest width a flexible column shrinks to, unless it says otherwise. */
const MIN_FLEX = 12;
const GAP = '  ';

/**
 * Lay out columns in `width`: shrink the flexible one down to MIN_FLEX,
 * then drop whole columns by their `drop` rank, so that no line is cut in
 * the middle of a column (only the columns that never go can be cut, when
 * even they do not fit). Returns the header line and one line per row.
 */
export function layout(columns: Column[], width: number): string[] {
  const natural = (c: Column): number => Math.max(c.header.length, ...c.cells.map((x) => x.length));
  const least = (c: Column): number => (c.flexible ? Math.min(natural(c), c.min ?? MIN_FLEX) : natural(c));
  const widthOf = (cs: Column[], w: (c: Column) => number): number => cs.reduce((a, c) => a + w(c), 0) + GAP.length * (cs.length - 1);
  let cols = [...columns];
  while (widthOf(cols, least) > width) {
    let i = -1;
    cols.forEach((c, j) => {
      if (c.drop !== undefined && (i < 0 || c.drop >= cols[i]!.drop!)) i = j;
    });
    if (i < 0) break;
    cols = cols.filter((_, j) => j !== i);
  }
  // The flexible column takes what the others leave, up to its natural width.
  const fixed = widthOf(cols.filter((c) => !c.flexible), natural) + (cols.some((c) => c.flexible) ? GAP.length : 0);
  const widths = cols.map((c) => (c.flexible ? Math.max(least(c), Math.min(natural(c), width - fixed)) : natural(c)));
  const rowCount = cols[0]?.cells.length ?? 0;
  const line = (cell: (c: Column) => string): string =>
    cols.map((c, i) => {
      const text = fit(cell(c), widths[i]!);
      return c.align === 'right' ? text.padStart(widths[i]!) : i === cols.length - 1 ? text : text.padEnd(widths[i]!);
    }).join(GAP).trimEnd();
  return [line((c) => c.header), ...Array.from({ length: rowCount }, (_, r) => line((c) => c.cells[r] ?? ''))].map((l) => fit(l, width));
}

/** What a frame is made of. */
export interface FrameInput {
  /** The daemon's address, for the title. */
  server: string;
  /** The latest sample and the one before it (rates need both). */
  sample: TopSample | undefined;
  previous: TopSample | undefined;
  state: ViewState;
  /** The terminal's size; Infinity for no limit (--once in a pipe). */
  width: number;
  height: number;
  intervalMs: number;
  /** The last poll's error, shown until a poll succeeds. */
  error?: string;
  /** The time to show in the title ("12:34:56"). */
  clock?: string;
  /** Whether to end with the line of keys (not with --once). */
  keys?: boolean;
}

/** A frame: its lines (each at most `width` long, at most `height` of them) and which one is selected, if any. */
export interface Frame {
  lines: string[];
  selected?: number;
}

const rateCell = (r: Rates | undefined, k: keyof Rates): string => (r ? si(r[k]) : '-');

/** The health to show: lower case without the enum's prefix, "-" when the API gives none. */
export function healthCell(h: string | undefined): string {
  return h === undefined || h === '' ? '-' : h.toLowerCase().replace(/^health_(state_)?/, '');
}

/** The state to show: the admin state, and the applied one after it when health changed it ("active>draining"). */
function stateCell(b: TopBackend): string {
  return b.effectiveState !== undefined && b.effectiveState !== b.state ? `${b.state}>${b.effectiveState}` : b.state;
}

/** The frame for `input`. */
export function renderFrame(input: FrameInput): Frame {
  const { state, width, height } = input;
  const rows = input.sample ? sortRows(serviceRows(input.previous, input.sample), state.sort) : [];
  const interval = input.intervalMs % 1000 === 0 ? `${input.intervalMs / 1000}s` : `${input.intervalMs}ms`;
  const title = ['sluice top', input.server, ...(input.clock ? [input.clock] : []), `every ${interval}`, `sort: ${SORT_LABEL[state.sort]}`].join('  ');
  const head: string[] = [title];
  // Services new in this sample have no rate yet: the totals are of those that have one.
  const total = (k: keyof Rates): string => (rows.some((r) => r.rates) ? si(rows.reduce((a, r) => a + (r.rates?.[k] ?? 0), 0)) : '-');
  const dr = input.sample ? dropRates(input.previous, input.sample) : undefined;
  let table: string[] = [];
  let selected: number | undefined;
  let footer = '';

  if (!input.sample) {
    head.push(input.error ? '' : 'waiting for the first sample...');
  } else if (state.mode === 'services') {
    head.push(`services ${rows.length}  packets/s ${total('packets')}  bytes/s ${total('bytes')}  conns/s ${total('newConnections')}  drops/s ${dr ? si(dr.drops) : '-'}  rejects/s ${dr ? si(dr.rejects) : '-'}`);
    table = layout([
      // When narrow: the totals go first, then the rates; the name and BACKENDS last.
      { header: 'SERVICE', cells: rows.map((r) => r.name), align: 'left', flexible: true },
      { header: 'PKT/S', cells: rows.map((r) => rateCell(r.rates, 'packets')), align: 'right', drop: 3 },
      { header: 'BYTES/S', cells: rows.map((r) => rateCell(r.rates, 'bytes')), align: 'right', drop: 4 },
      { header: 'CONN/S', cells: rows.map((r) => rateCell(r.rates, 'newConnections')), align: 'right', drop: 5 },
      { header: 'BACKENDS', cells: rows.map((r) => `${r.up}/${r.backends.length}`), align: 'right', drop: 2 },
      { header: 'PACKETS', cells: rows.map((r) => si(r.counters.packets)), align: 'right', drop: 6 },
      { header: 'BYTES', cells: rows.map((r) => si(r.counters.bytes)), align: 'right', drop: 7 },
      { header: 'CONNS', cells: rows.map((r) => si(r.counters.newConnections)), align: 'right', drop: 8 },
    ], width);
    if (rows.length > 0) selected = indexOf(rows.map((r) => r.name), state.service);
    footer = 'Up/Down/j/k select  Enter backends  s sort  q quit';
  } else {
    const row = rows.find((r) => r.name === state.service);
    if (!row) {
      head.push(`service ${state.service ?? ''}: gone`);
    } else {
      head.push(`${row.name}  packets/s ${rateCell(row.rates, 'packets')}  bytes/s ${rateCell(row.rates, 'bytes')}  conns/s ${rateCell(row.rates, 'newConnections')}  backends up ${row.up}/${row.backends.length}${row.upByFamily ? ` (${row.upByFamily})` : ''}`);
      const bs = sortBackends(row.backends, state.sort);
      const cnt = (b: BackendRow, k: keyof TopCounters): string => (b.counters ? si(b.counters[k]) : '-');
      table = layout([
        // When narrow: the totals go first, then the rates, weight and state;
        // HEALTH and LAST PROBE (why a backend is unhealthy, cut with "…")
        // stay longest.
        { header: 'BACKEND', cells: bs.map((b) => b.address), align: 'left' },
        { header: 'STATE', cells: bs.map(stateCell), align: 'left', drop: 3 },
        { header: 'WEIGHT', cells: bs.map((b) => String(b.weight)), align: 'right', drop: 5 },
        { header: 'HEALTH', cells: bs.map((b) => healthCell(b.health)), align: 'left', drop: 1 },
        { header: 'PKT/S', cells: bs.map((b) => rateCell(b.rates, 'packets')), align: 'right', drop: 4 },
        { header: 'BYTES/S', cells: bs.map((b) => rateCell(b.rates, 'bytes')), align: 'right', drop: 6 },
        { header: 'CONN/S', cells: bs.map((b) => rateCell(b.rates, 'newConnections')), align: 'right', drop: 7 },
        { header: 'PACKETS', cells: bs.map((b) => cnt(b, 'packets')), align: 'right', drop: 8 },
        { header: 'BYTES', cells: bs.map((b) => cnt(b, 'bytes')), align: 'right', drop: 9 },
        { header: 'CONNS', cells: bs.map((b) => cnt(b, 'newConnections')), align: 'right', drop: 10 },
        { header: 'LAST PROBE', cells: bs.map((b) => b.lastProbe ?? '-'), align: 'left', flexible: true, min: 24, drop: 2 },
      ], width);
      if (bs.length > 0) selected = indexOf(bs.map((b) => b.address), state.backend);
    }
    footer = 'Esc/Backspace back  Up/Down/j/k select  s sort  q quit';
  }
  if (input.error) head.push(`error: ${input.error} (retrying)`);
  head.push('');

  // The table's header stays; its rows scroll so the selected one is shown.
  const tail = input.keys ? [footer] : [];
  const room = Math.max(0, height - head.length - tail.length - (table.length > 0 ? 1 : 0));
  const body = table.slice(1);
  const first = selected === undefined || selected < room ? 0 : selected - room + 1;
  const shown = Number.isFinite(room) ? body.slice(first, first + room) : body;
  const lines = [...head, ...table.slice(0, 1), ...shown];
  // The keys go on the last line of the terminal.
  if (input.keys && Number.isFinite(height)) while (lines.length < height - tail.length) lines.push('');
  const frame: Frame = { lines: [...lines, ...tail].slice(0, Number.isFinite(height) ? Math.max(0, height) : undefined).map((l) => fit(l, width)) };
  if (selected !== undefined && selected >= first && selected - first < shown.length) {
    const at = head.length + 1 + selected - first;
    if (at < frame.lines.length) frame.selected = at;
  }
  return frame;
}
