/**
 * Conntrack entries as the kernel hands them over: packed struct ct_key
 * and struct ct_value records (ct6_key and ct6_value for the IPv6 table),
 * read field by field where they lie.
 * Decoding an entry into a ConntrackEntry builds strings and bigints;
 * reading the few fields a filter compares builds nothing, so a walk over
 * a large table filters rows first and decodes only the ones it keeps.
 */
import {
  CONNTRACK_TABLES,
  CT_FLAG_REPLY,
  CT_FORWARD,
  CT_REPLY,
  conntrackTableOf,
  decodeConntrackKey,
  decodeConntrackValue,
  encodeConntrackKey,
  encodeConntrackValue,
  type ConntrackKey,
  type ConntrackTable,
  type ConntrackValue,
  type IpFamily,
} from './codec.js';
import type { ConntrackEntry } from './dataplane.js';

/** `count` conntrack entries of one table: keys and values packed in two buffers. */
export class ConntrackRows {
  /** Packed keys, count × 16 bytes (IPv4) or × 40 (IPv6). */
  readonly keys: Buffer;
  /** Packed values, count × 24 bytes (IPv4) or × 36 (IPv6). */
  readonly values: Buffer;
  /** How many entries. */
  readonly count: number;
  /** The table the rows come from: their layout and family. */
  readonly table: ConntrackTable;
  private readonly K: ConntrackTable['key'];
  private readonly V: ConntrackTable['value'];

  /** RangeError unless the buffers hold exactly `count` keys and values of the family's table. */
  constructor(keys: Buffer, values: Buffer, count: number, family: IpFamily = 4) {
    const table = CONNTRACK_TABLES[family];
    if (keys.length !== count * table.key.size || values.length !== count * table.value.size) {
      throw new RangeError(`conntrack rows: ${keys.length} key and ${values.length} value bytes for ${count} IPv${family} entries`);
    }
    this.keys = keys;
    this.values = values;
    this.count = count;
    this.table = table;
    this.K = table.key;
    this.V = table.value;
  }

  /** The rows of decoded entries, encoded; every entry of `family` (by default the first entry's, else IPv4). */
  static of(entries: readonly ConntrackEntry[], family?: IpFamily): ConntrackRows {
    const table = family !== undefined ? CONNTRACK_TABLES[family] : entries.length > 0 ? conntrackTableOf(entries[0]!.key) : CONNTRACK_TABLES[4];
    const K = table.key;
    const V = table.value;
    const keys = Buffer.alloc(entries.length * K.size);
    const values = Buffer.alloc(entries.length * V.size);
    entries.forEach((e, i) => {
      const k = encodeConntrackKey(e.key);
      const v = encodeConntrackValue(e.value);
      if (k.length !== K.size || v.length !== V.size) throw new RangeError(`conntrack rows: entry ${i} is not an IPv${table.family} flow`);
      k.copy(keys, i * K.size);
      v.copy(values, i * V.size);
    });
    return new ConntrackRows(keys, values, entries.length, table.family);
  }

  /** The rows' family. */
  get family(): IpFamily {
    return this.table.family;
  }

  /** Row i's key (a view, not a copy). */
  keyBytes(i: number): Buffer {
    const K = this.K;
    return this.keys.subarray(i * K.size, (i + 1) * K.size);
  }

  /** Row i's value (a view, not a copy). */
  valueBytes(i: number): Buffer {
    const V = this.V;
    return this.values.subarray(i * V.size, (i + 1) * V.size);
  }

  /** Row i's key, decoded. */
  key(i: number): ConntrackKey {
    return decodeConntrackKey(this.keyBytes(i));
  }

  /** Row i's value, decoded. */
  value(i: number): ConntrackValue {
    return decodeConntrackValue(this.valueBytes(i));
  }

  /** Row i, decoded. */
  entry(i: number): ConntrackEntry {
    return { key: this.key(i), value: this.value(i) };
  }

  /** CT_FORWARD or CT_REPLY. */
  dir(i: number): number {
    return (this.values[i * this.V.size + this.V.offsets.flags]! & CT_FLAG_REPLY) !== 0 ? CT_REPLY : CT_FORWARD;
  }

  /** The first second (CLOCK_MONOTONIC) row i is dead. */
  expires(i: number): number {
    return this.values.readUInt32LE(i * this.V.size + this.V.offsets.expires);
  }

  /** Row i's state, as its number (CT_STATES). */
  state(i: number): number {
    return this.values[i * this.V.size + this.V.offsets.state]!;
  }

  /** Row i's backend id. */
  backendId(i: number): number {
    return this.values.readUInt32LE(i * this.V.size + this.V.offsets.backend_id);
  }

  /** Row i's service id. */
  serviceId(i: number): number {
    return this.values.readUInt32LE(i * this.V.size + this.V.offsets.svc_id);
  }

  /** The key's source address as parseIPv4 gives it (IPv4 rows). */
  source(i: number): number {
    return this.keys.readUInt32BE(i * this.K.size + this.K.offsets.saddr);
  }

  /** The key's destination address as parseIPv4 gives it (IPv4 rows). */
  destination(i: number): number {
    return this.keys.readUInt32BE(i * this.K.size + this.K.offsets.daddr);
  }

  /** The value's NAT address (forward: the backend; reply: the VIP) as parseIPv4 gives it (IPv4 rows). */
  natAddress(i: number): number {
    return this.values.readUInt32BE(i * this.V.size + this.V.offsets.nat_addr);
  }

  /** Whether row i's source address is `addr` (4 or 16 bytes in network order, the rows' family's). */
  sourceIs(i: number, addr: Buffer): boolean {
    const o = i * this.K.size + this.K.offsets.saddr;
    return this.keys.compare(addr, 0, addr.length, o, o + this.table.addrBytes) === 0;
  }

  /** Whether row i's destination address is `addr`. */
  destinationIs(i: number, addr: Buffer): boolean {
    const o = i * this.K.size + this.K.offsets.daddr;
    return this.keys.compare(addr, 0, addr.length, o, o + this.table.addrBytes) === 0;
  }

  /** Whether row i's NAT address is `addr`. */
  natAddressIs(i: number, addr: Buffer): boolean {
    const o = i * this.V.size + this.V.offsets.nat_addr;
    return this.values.compare(addr, 0, addr.length, o, o + this.table.addrBytes) === 0;
  }
}
