/**
 * A writer of the Prometheus text exposition format (version 0.0.4) for
 * families with many series: the per-service and per-backend counters of
 * 10,000 services × 10 backends are hundreds of thousands of lines, which
 * prom-client's labelled metrics take seconds to set and render. Lines are
 * written into large buffers from family names and label sets encoded
 * once (series-plan.ts keeps those of services and backends between
 * scrapes) and values written as digits.
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
/** Room for any value formatValue writes (the longest, such as "-1.2345678901234567e-300", are 24 bytes). */
const MAX_VALUE = 32;

/**
 * Write a safe non-negative integer's decimal digits at b[n..]; returns the
 * end. String(v) gives the same digits below 2^53, through a string and an
 * encoding each: hundreds of thousands a scrape.
 */
function writeUint(b: Uint8Array, n: number, v: number): number {
  let len = 1;
  for (let p = 10; p <= v; p *= 10) len++;
  let e = n + len;
  while (v >= 10) {
    const q = Math.floor(v / 10);
    b[--e] = 48 + (v - q * 10);
    v = q;
  }
  b[--e] = 48 + v;
  return n + len;
}

/**
 * Chunks for ExpositionWriters, given back once their text is sent and
 * handed to the next scrape. A large node's scrape is tens of MB: memory
 * taken outside V8's heap at that rate sets off collections of the whole
 * heap ("external memory pressure") that cost more than writing the text.
 * It keeps at most as many chunks as the last scrape given back used, so a
 * node that shrinks lets the rest go.
 */
export class ChunkPool {
  readonly #free: Buffer[] = [];

  /** A chunk of CHUNK bytes, with whatever it held. */
  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafe(CHUNK);
  }

  /** Chunks no longer read (a writer's, once its text is sent). */
  give(chunks: readonly Buffer[]): void {
    this.#free.length = Math.min(this.#free.length, chunks.length);
    for (const c of chunks) if (c.length === CHUNK && this.#free.length < chunks.length) this.#free.push(c);
  }

  /** Chunks kept. */
  get size(): number {
    return this.#free.length;
  }
}

/** Appends lines to a list of buffers; buffers() at the end, release() once they are sent. */
export class ExpositionWriter {
  readonly #pool: ChunkPool | undefined;
  /** The whole chunks written so far, full or not, for release(). */
  readonly #chunks: Buffer[] = [];
  readonly #out: Buffer[] = [];
  #buf: Buffer;
  #n = 0;

  /** Chunks come from `pool` (default: new ones each time) and go back to it at release(). */
  constructor(pool?: ChunkPool) {
    this.#pool = pool;
    this.#buf = this.#chunk(CHUNK);
  }

  #chunk(k: number): Buffer {
    const b = k <= CHUNK && this.#pool ? this.#pool.take() : Buffer.allocUnsafe(Math.max(CHUNK, k));
    this.#chunks.push(b);
    return b;
  }

  #room(k: number): void {
    if (this.#n + k <= this.#buf.length) return;
    this.#out.push(this.#buf.subarray(0, this.#n));
    this.#buf = this.#chunk(k);
    this.#n = 0;
  }

  /** Raw text, as is, in UTF-8. */
  raw(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.#room(b.length);
    this.#n += b.copy(this.#buf, this.#n);
  }

  /** The HELP and TYPE lines of a family. */
  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
    this.raw(`# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`);
  }

  /** One sample: `name` (encoded once by the caller), a label set encoded once (labelBytes), the value. */
  sample(name: Uint8Array, labels: Uint8Array, value: number): void {
    this.#room(name.length + labels.length + MAX_VALUE + 2);
    const b = this.#buf;
    let n = this.#n;
    // TypedArray.set: Buffer.copy's argument checks cost more than the copy of a short label set.
    b.set(name, n);
    n += name.length;
    b.set(labels, n);
    n += labels.length;
    b[n++] = 32;
    n = value >= 0 && value <= Number.MAX_SAFE_INTEGER && Math.floor(value) === value ? writeUint(b, n, value) : n + b.write(formatValue(value), n, 'latin1');
    b[n++] = 10;
    this.#n = n;
  }

  /** What was written, as buffers in order (no copy: valid until release()). */
  buffers(): Buffer[] {
    return [...this.#out, this.#buf.subarray(0, this.#n)];
  }

  /** Give the chunks back to the pool: nothing of buffers() may be read after. */
  release(): void {
    this.#pool?.give(this.#chunks.splice(0));
  }

  /** Bytes written. */
  get length(): number {
    return this.#out.reduce((a, b) => a + b.length, 0) + this.#n;
  }
}

/** A family name encoded for ExpositionWriter.sample. */
export const nameBytes = (name: string): Buffer => Buffer.from(name, 'latin1');

/** A label set encoded for ExpositionWriter.sample. */
export const labelBytes = (labels: ReadonlyArray<readonly [string, string]>): Buffer => Buffer.from(labelSet(labels), 'utf8');
