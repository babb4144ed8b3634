/**
 * A writer of the Prometheus text exposition format (version 0.0.4) for
 * families with many series: the per-service and per-backend counters of
 * 10,000 services × 10 backends are hundreds of thousands of lines, which
 * prom-client's labelled metrics take seconds to set and render. Lines are
 * copied into large buffers from label sets encoded once per
 * (service, backend) and kept between scrapes (LabelCache).
 */

/** A label value escaped as the format asks: backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`)) : v;
}

/** HELP text escaped as the format asks: backslash and line feed. */
export function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

/** `{a="x",b="y"}` from label pairs, escaped; "" for none. */
export function labelSet(labels: ReadonlyArray<readonly [string, string]>): string {
  if (labels.length === 0) return '';
  return `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/** A sample value as the format writes it (NaN, +Inf, -Inf by name). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

const CHUNK = 1 << 20;

/** Appends lines to a list of buffers; text() or buffers() at the end. */
export class ExpositionWriter {
  readonly #out: Buffer[] = [];
  #buf = Buffer.allocUnsafe(CHUNK);
  #n = 0;

  #room(k: number): void {
    if (this.#n + k <= this.#buf.length) return;
    this.#out.push(this.#buf.subarray(0, this.#n));
    this.#buf = Buffer.allocUnsafe(Math.max(CHUNK, k));
    this.#n = 0;
  }

  /** Raw text, as is (latin1 is enough for what callers pass: names and escaped labels are ASCII, UTF-8 label values come through label()). */
  raw(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.#room(b.length);
    this.#n += b.copy(this.#buf, this.#n);
  }

  /** The HELP and TYPE lines of a family. */
  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
    this.raw(`# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`);
  }

  /** One sample: `name` (encoded once by the caller), a label set from label(), the value. */
  sample(name: Buffer, labels: Buffer, value: number): void {
    const v = formatValue(value);
    this.#room(name.length + labels.length + v.length + 2);
    const b = this.#buf;
    let n = this.#n;
    n += name.copy(b, n);
    n += labels.copy(b, n);
    b[n++] = 32;
    n += b.write(v, n, 'latin1');
    b[n++] = 10;
    this.#n = n;
  }

  /** What was written, as buffers in order (no copy). */
  buffers(): Buffer[] {
    return [...this.#out, this.#buf.subarray(0, this.#n)];
  }

  /** Bytes written. */
  get length(): number {
    return this.#out.reduce((a, b) => a + b.length, 0) + this.#n;
  }
}

/** A family name encoded for ExpositionWriter.sample. */
export const nameBytes = (name: string): Buffer => Buffer.from(name, 'latin1');

/** One service's encoded label sets: {service="..."} and {service="...",backend="..."} per backend. */
export class ServiceLabels {
  readonly labels: Buffer;
  #prev = new Map<string, Buffer>();
  #cur = new Map<string, Buffer>();

  constructor(readonly service: string) {
    this.labels = Buffer.from(labelSet([['service', service]]), 'utf8');
  }

  /** The label set of one of its backends. */
  backend(address: string): Buffer {
    let b = this.#cur.get(address);
    if (b) return b;
    b = this.#prev.get(address) ?? Buffer.from(labelSet([['service', this.service], ['backend', address]]), 'utf8');
    this.#cur.set(address, b);
    return b;
  }

  /** Forget the backends not asked for since the last sweep. */
  sweep(): void {
    this.#prev = this.#cur;
    this.#cur = new Map();
  }
}

/**
 * Encoded label sets of services and their backends, kept from one scrape
 * to the next. sweep() after a scrape forgets what it did not use, so a
 * service or backend that went takes its label sets with it.
 */
export class LabelCache {
  #prev = new Map<string, ServiceLabels>();
  #cur = new Map<string, ServiceLabels>();

  /** The label sets of a service. */
  service(name: string): ServiceLabels {
    let s = this.#cur.get(name);
    if (s) return s;
    s = this.#prev.get(name) ?? new ServiceLabels(name);
    this.#cur.set(name, s);
    return s;
  }

  /** Forget the services and backends the scrape since the last sweep did not use. */
  sweep(): void {
    for (const s of this.#cur.values()) s.sweep();
    this.#prev = this.#cur;
    this.#cur = new Map();
  }

  /** Services kept. */
  get size(): number {
    return this.#prev.size;
  }
}
