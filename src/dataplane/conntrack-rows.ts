/**
 * Conntrack entries as the kernel hands them over: packed struct ct_key
 * and struct ct_value records, read field by field where they lie.
 * Decoding an entry into a ConntrackEntry builds strings and bigints;
 * reading the few fields a filter compares builds nothing, so a walk over
 * a large table filters rows first and decodes only the ones it keeps.
 */
import {
  CT_FLAG_REPLY,
  CT_FORWARD,
  CT_REPLY,
  LAYOUTS,
  decodeConntrackKey,
  decodeConntrackValue,
  encodeConntrackKey,
  encodeConntrackValue,
  type ConntrackKey,
  type ConntrackValue,
} from './codec.js';
import type { ConntrackEntry } from './dataplane.js';

const K = LAYOUTS.ct_key;
const V = LAYOUTS.ct_value;

/** `count` conntrack entries: keys and values packed in two buffers. */
export class ConntrackRows {
  /** Packed struct ct_key, count × 16 bytes. */
  readonly keys: Buffer;
  /** Packed struct ct_value, count × 24 bytes. */
  readonly values: Buffer;
  /** How many entries. */
  readonly count: number;

  /** RangeError unless the buffers hold exactly `count` keys and values. */
  constructor(keys: Buffer, values: Buffer, count: number) {
    if (keys.length !== count * K.size || values.length !== count * V.size) {
      throw new RangeError(`conntrack rows: ${keys.length} key and ${values.length} value bytes for ${count} entries`);
    }
    this.keys = keys;
    this.values = values;
    this.count = count;
  }

  /** The rows of decoded entries, encoded. */
  static of(entries: readonly ConntrackEntry[]): ConntrackRows {
    const keys = Buffer.alloc(entries.length * K.size);
    const values = Buffer.alloc(entries.length * V.size);
    entries.forEach((e, i) => {
      encodeConntrackKey(e.key).copy(keys, i * K.size);
      encodeConntrackValue(e.value).copy(values, i * V.size);
    });
    return new ConntrackRows(keys, values, entries.length);
  }

  /** Row i's struct ct_key (a view, not a copy). */
  keyBytes(i: number): Buffer {
    return this.keys.subarray(i * K.size, (i + 1) * K.size);
  }

  /** Row i's key, decoded. */
  key(i: number): ConntrackKey {
    return decodeConntrackKey(this.keyBytes(i));
  }

  /** Row i's value, decoded. */
  value(i: number): ConntrackValue {
    return decodeConntrackValue(this.values.subarray(i * V.size, (i + 1) * V.size));
  }

  /** Row i, decoded. */
  entry(i: number): ConntrackEntry {
    return { key: this.key(i), value: this.value(i) };
  }

  /** CT_FORWARD or CT_REPLY. */
  dir(i: number): number {
    return (this.values[i * V.size + V.offsets.flags]! & CT_FLAG_REPLY) !== 0 ? CT_REPLY : CT_FORWARD;
  }

  /** The first second (CLOCK_MONOTONIC) row i is dead. */
  expires(i: number): number {
    return this.values.readUInt32LE(i * V.size + V.offsets.expires);
  }

  /** Row i's state, as its number (CT_STATES). */
  state(i: number): number {
    return this.values[i * V.size + V.offsets.state]!;
  }

  /** Row i's service id. */
  serviceId(i: number): number {
    return this.values.readUInt32LE(i * V.size + V.offsets.svc_id);
  }

  /** The key's source address as parseIPv4 gives it. */
  source(i: number): number {
    return this.keys.readUInt32BE(i * K.size + K.offsets.saddr);
  }

  /** The key's destination address as parseIPv4 gives it. */
  destination(i: number): number {
    return this.keys.readUInt32BE(i * K.size + K.offsets.daddr);
  }

  /** The value's NAT address (forward: the backend; reply: the VIP) as parseIPv4 gives it. */
  natAddress(i: number): number {
    return this.values.readUInt32BE(i * V.size + V.offsets.nat_addr);
  }
}
