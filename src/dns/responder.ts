/**
 * DNS answers for the zone's names, query bytes in and response bytes out,
 * with no socket: server.ts carries them over UDP and TCP. dns-packet
 * decodes every query and encodes every response; this module only
 * chooses the records.
 *
 * - A at a service's name: its IPv4 VIPs; AAAA: its IPv6 VIPs; ANY: both.
 *   An address's family is read from its text (IPv6 holds a ":"). SRV at
 *   `_PORT._PROTO.<service name>`: priority 0, weight 1, the port, the
 *   service's name as the target, and the target's VIPs of both families
 *   (A, then AAAA) in the additional section.
 * - SOA and NS at the apex; the NS target is the apex itself, which has an
 *   A or AAAA record only when the server listens on one address
 *   (`apexAddresses`).
 * - NXDOMAIN for a name the zone does not hold, NOERROR with no answer
 *   (NODATA) for a name that exists without the type asked (AAAA of a
 *   service with IPv4 VIPs only, A of one with IPv6 VIPs only; a
 *   namespace's name); both carry the SOA in the authority section, whose
 *   TTL and minimum are the TTL, so negative answers are cached as long as
 *   positive ones.
 * - REFUSED outside the zone, for classes other than IN (and ANY), for
 *   zone transfers, and for a name with a "." inside a label (no name of
 *   the zone has one); NOTIMP for opcodes other than QUERY; FORMERR for what
 *   does not decode or does not ask one question; BADVERS for EDNS versions
 *   above 0. These errors echo the query's question section as its bytes
 *   came (dns-packet cannot write back an unknown class, and would split a
 *   label holding a "."). Responses are authoritative (AA) inside the zone; recursion
 *   is never offered (RA clear); RD is copied from the query.
 * - Over UDP a response fits the client's EDNS payload size (512 bytes
 *   without OPT, at most UDP_PAYLOAD_MAX): one that does not is sent with
 *   TC set and the question only, and the client asks again over TCP. An
 *   SRV answer's addresses count as part of the answer for this: a client
 *   gets all of them or retries, never a silently shortened list.
 *
 * Encoded responses are cached by the query's bytes after its ID (the
 * same question, case, flags and EDNS record get the same answer), so a
 * hit is looked up before anything is decoded and costs a copy with the
 * query's ID patched in. Only answers for names of the zone are kept; the
 * zone's change events drop the entries of the names they touch, so
 * answers follow changes at once.
 */
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, OptAnswer, Packet, Question } from 'dns-packet';
import type { DnsZone, ZoneNode } from './zone.js';
import { labelsInZone } from './names.js';

/** The largest UDP response (the 2020 DNS flag day's figure: no IP fragmentation on common paths). */
export const UDP_PAYLOAD_MAX = 1232;
/** A UDP response's limit for a client that sends no OPT record (RFC 1035). */
export const UDP_PAYLOAD_PLAIN = 512;
/** Cached responses kept at most; past it the cache starts again empty (random names cannot grow it without bound). */
export const CACHE_MAX_ENTRIES = 100_000;

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** BADVERS (16) is an extended rcode: its upper bits go in the OPT record. */
const BADVERS_EXTENDED = 1;
const QR = 0x80; // in byte 2 of the header
const RD = 0x01; // in byte 2 of the header
/** Names the cache and the zone can hold: printable ASCII without spaces. */
const PRINTABLE = /^[\x21-\x7e]+$/;

/** The address record type of an address's text: AAAA for IPv6 (it holds a ":"), A for IPv4. */
function addressRecordType(address: string): 'A' | 'AAAA' {
  return address.includes(':') ? 'AAAA' : 'A';
}

/** Options of a responder. */
export interface ResponderOptions {
  zone: DnsZone;
  /** TTL of every record, and of negative answers (SOA minimum), seconds. */
  ttl: number;
  /** Address records of the apex (the NS target): the address the server listens on (either family), when it is one. */
  apexAddresses?: readonly string[];
  /** SOA serial (default: the start time in Unix seconds; the zone offers no transfers). */
  serial?: number;
  /** Cached responses kept at most (default CACHE_MAX_ENTRIES). */
  maxCacheEntries?: number;
}

/** What the responder has answered (for logs, metrics and the benchmark). */
export interface ResponderStats {
  queries: number;
  /** Answered from the cache of encoded responses. */
  cacheHits: number;
  /** Sent over UDP with TC set. */
  truncated: number;
  /** Dropped: shorter than a header, or a response. */
  dropped: number;
  /** Responses by rcode name. */
  rcodes: Record<string, number>;
}

interface Cached {
  /** The lowercase name asked, whose changes drop the entry. */
  name: string;
  /** The largest UDP response the query allows. */
  udpLimit: number;
  full: Buffer;
  /** TC set, the question only: built the first time a UDP client's limit is too small. */
  truncated?: Buffer;
  /** The packet `full` encodes, for building `truncated`. */
  packet: Packet;
}

/** Answers queries for one zone. */
export class DnsResponder {
  readonly #zone: DnsZone;
  readonly #ttl: number;
  readonly #apex: readonly string[];
  readonly #serial: number;
  readonly #maxEntries: number;
  /** The query's bytes after its ID (latin1) → response. */
  readonly #cache = new Map<string, Cached>();
  /** Lowercase name → the keys of its entries. */
  readonly #keysOf = new Map<string, Set<string>>();
  readonly #unsubscribe: () => void;
  readonly #stats: ResponderStats = { queries: 0, cacheHits: 0, truncated: 0, dropped: 0, rcodes: {} };

  constructor(opts: ResponderOptions) {
    this.#zone = opts.zone;
    this.#ttl = opts.ttl;
    this.#apex = opts.apexAddresses ?? [];
    this.#serial = (opts.serial ?? Math.floor(Date.now() / 1000)) >>> 0;
    this.#maxEntries = opts.maxCacheEntries ?? CACHE_MAX_ENTRIES;
    this.#unsubscribe = this.#zone.onChange((names) => {
      for (const n of names) {
        for (const k of this.#keysOf.get(n) ?? []) this.#cache.delete(k);
        this.#keysOf.delete(n);
      }
    });
  }

  /** Stop following the zone's changes. */
  close(): void {
    this.#unsubscribe();
    this.#cache.clear();
    this.#keysOf.clear();
  }

  /** What it has answered so far (a copy). */
  stats(): ResponderStats {
    return { ...this.#stats, rcodes: { ...this.#stats.rcodes } };
  }

  /** The response to `query`, or undefined to send nothing (not a query). */
  respond(query: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    this.#stats.queries++;
    if (query.length < 12 || (query[2]! & QR) !== 0) {
      this.#stats.dropped++;
      return undefined;
    }
    const id = query.readUInt16BE(0);
    const key = query.toString('latin1', 2);
    const hit = this.#cache.get(key);
    if (hit) {
      this.#stats.cacheHits++;
      return this.#send(this.#fit(hit, transport === 'tcp' ? 65_535 : hit.udpLimit), id, query, undefined);
    }
    const opcode = (query[2]! >> 3) & 0x0f;
    let p: DecodedPacket;
    try {
      p = dnsPacket.decode(query);
    } catch {
      return this.#send(this.#error(query, RCODE.FORMERR, []), id, query, 'FORMERR');
    }
    const questions = p.questions ?? [];
    const opts = (p.additionals ?? []).filter((a): a is OptAnswer => a.type === 'OPT');
    const section = questionSection(query);
    // An error answered with the question as it came, or as dns-packet can write it back.
    const refuse = (rcode: number, name: string, opt: OptAnswer | undefined): Buffer =>
      this.#send(section ? this.#raw(query, section.end, rcode, opt) : this.#error(query, rcode, this.#echo(questions), opt), id, query, name);
    if (opcode !== 0) return refuse(RCODE.NOTIMP, 'NOTIMP', opts[0] && this.#opt());
    if (questions.length !== 1 || opts.length > 1) return refuse(RCODE.FORMERR, 'FORMERR', opts[0] && this.#opt());
    const opt = opts[0];
    if (opt && opt.ednsVersion !== 0) return refuse(RCODE.NOERROR, 'BADVERS', this.#opt(BADVERS_EXTENDED));
    const q = questions[0]!;
    const lower = q.name.toLowerCase();
    const inZone = section !== undefined && !section.dotted && PRINTABLE.test(q.name) && labelsInZone(lower, this.#zone.zone) !== undefined;
    if (!inZone || (q.class !== 'IN' && q.class !== 'ANY') || q.type === 'AXFR' || q.type === 'IXFR') return refuse(RCODE.REFUSED, 'REFUSED', opt && this.#opt());
    const udpLimit = opt ? Math.max(UDP_PAYLOAD_PLAIN, Math.min(opt.udpPayloadSize, UDP_PAYLOAD_MAX)) : UDP_PAYLOAD_PLAIN;
    const limit = transport === 'tcp' ? 65_535 : udpLimit;
    const packet = this.#answer(q, lower, opt !== undefined);
    const cached: Cached = { name: lower, udpLimit, full: dnsPacket.encode(packet), packet };
    this.#remember(key, cached);
    return this.#send(this.#fit(cached, limit), id, query, undefined);
  }

  /** The response that fits `limit`: the whole one, or TC with the question only. */
  #fit(c: Cached, limit: number): Buffer {
    if (c.full.length <= limit) return c.full;
    this.#stats.truncated++;
    return (c.truncated ??= dnsPacket.encode({
      ...c.packet,
      flags: (c.packet.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
      answers: [],
      authorities: [],
      additionals: (c.packet.additionals ?? []).filter((a) => a.type === 'OPT'),
    }));
  }

  /** Copy `response`, with the query's ID and RD bit, and count it. */
  #send(response: Buffer, id: number, query: Buffer, rcodeName: string | undefined): Buffer {
    const out = Buffer.allocUnsafe(response.length);
    response.copy(out);
    out.writeUInt16BE(id, 0);
    out[2] = (out[2]! & ~RD) | (query[2]! & RD);
    const name = rcodeName ?? RCODE_NAMES[out[3]! & 0x0f]!;
    this.#stats.rcodes[name] = (this.#stats.rcodes[name] ?? 0) + 1;
    return out;
  }

  #remember(key: string, c: Cached): void {
    if (this.#cache.size >= this.#maxEntries) {
      this.#cache.clear();
      this.#keysOf.clear();
    }
    this.#cache.set(key, c);
    let keys = this.#keysOf.get(c.name);
    if (!keys) this.#keysOf.set(c.name, (keys = new Set()));
    keys.add(key);
  }

  /** The questions to echo in a response: those dns-packet can write back as they came. */
  #echo(questions: Question[]): Question[] {
    return questions.filter((q) => PRINTABLE.test(q.name) && (q.class === 'IN' || q.class === 'ANY' || q.class === 'CH' || q.class === 'HS' || q.class === 'CS'));
  }

  #opt(extendedRcode = 0): OptAnswer {
    return { type: 'OPT', name: '.', udpPayloadSize: UDP_PAYLOAD_MAX, extendedRcode, ednsVersion: 0, flags: 0, flag_do: false, options: [] };
  }

  /**
   * A response with no records built on the query's own bytes: its header
   * (ID, opcode, RD; QR and `rcode` set, the rest clear), its question
   * section up to `end` as it came, and `opt` when given.
   */
  #raw(query: Buffer, end: number, rcode: number, opt: OptAnswer | undefined): Buffer {
    const tail = opt ? dnsPacket.encode({ type: 'response', id: 0, additionals: [opt] }).subarray(12) : Buffer.alloc(0);
    const out = Buffer.alloc(end + tail.length);
    query.copy(out, 0, 0, end);
    out[2] = QR | (query[2]! & (0x78 | RD));
    out[3] = rcode & 0x0f;
    out.writeUInt16BE(0, 6);
    out.writeUInt16BE(0, 8);
    out.writeUInt16BE(opt ? 1 : 0, 10);
    tail.copy(out, end);
    return out;
  }

  /** A response with no records: an error, with the query's opcode. */
  #error(query: Buffer, rcode: number, questions: Question[], opt?: OptAnswer): Buffer {
    const flags = (((query[2]! >> 3) & 0x0f) << 11) | rcode;
    return dnsPacket.encode({ type: 'response', id: 0, flags, questions, ...(opt ? { additionals: [this.#opt()] } : {}) });
  }

  /** The response to one question of the zone, class IN or ANY (ID 0; #send puts the query's in). */
  #answer(q: Question, lower: string, edns: boolean): Packet {
    const additionals: Answer[] = edns ? [this.#opt()] : [];
    const reply = (rcode: number, aa: boolean, parts: { answers?: Answer[]; authorities?: Answer[]; additionals?: Answer[] } = {}): Packet => ({
      type: 'response',
      id: 0,
      flags: (aa ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | rcode,
      questions: [q],
      answers: parts.answers ?? [],
      authorities: parts.authorities ?? [],
      additionals: [...(parts.additionals ?? []), ...additionals],
    });
    const node = this.#zone.lookup(lower);
    if (node === undefined) return reply(RCODE.NXDOMAIN, true, { authorities: [this.#soa()] });
    const answers = this.#records(q, node);
    if (answers.answers.length === 0) return reply(RCODE.NOERROR, true, { authorities: [this.#soa()] });
    return reply(RCODE.NOERROR, true, answers);
  }

  /** The records of `node` for the question's type (none: NODATA). */
  #records(q: Question, node: ZoneNode): { answers: Answer[]; additionals?: Answer[] } {
    const any = (q.type as string) === 'ANY';
    const ttl = this.#ttl;
    // The address records of `addresses` of type `type` (both types, A first, for ANY).
    const addr = (name: string, addresses: readonly string[], type: string): Answer[] => {
      const out: Answer[] = [];
      for (const t of ['A', 'AAAA'] as const) {
        if (type !== t && type !== 'ANY') continue;
        for (const data of addresses) if (addressRecordType(data) === t) out.push({ type: t, name, ttl, data });
      }
      return out;
    };
    switch (node.kind) {
      case 'apex': {
        const out: Answer[] = [];
        if (q.type === 'SOA' || any) out.push({ ...this.#soa(), name: q.name });
        if (q.type === 'NS' || any) out.push({ type: 'NS', name: q.name, ttl, data: this.#zone.zone });
        out.push(...addr(q.name, this.#apex, q.type));
        // The NS target's addresses, when the answer names it and the address records are not already there.
        return { answers: out, ...(q.type === 'NS' ? { additionals: addr(this.#zone.zone, this.#apex, 'ANY') } : {}) };
      }
      case 'service':
        return { answers: addr(q.name, node.records.addresses, q.type) };
      case 'srv':
        if (q.type !== 'SRV' && !any) return { answers: [] };
        return {
          answers: [{ type: 'SRV', name: q.name, ttl, data: { priority: 0, weight: 1, port: node.srv.port, target: node.srv.target } }],
          additionals: addr(node.srv.target, node.records.addresses, 'ANY'),
        };
      case 'empty':
        return { answers: [] };
    }
  }

  #soa(): Answer {
    const zone = this.#zone.zone;
    return {
      type: 'SOA',
      name: zone,
      ttl: this.#ttl,
      data: { mname: zone, rname: `hostmaster.${zone}`, serial: this.#serial, refresh: 3600, retry: 600, expire: 86_400, minimum: this.#ttl },
    };
  }
}

/**
 * The end of the query's question section (QDCOUNT names of plain labels,
 * each with its type and class), and whether a label holds a "." (dns-packet
 * would read it as two); undefined when a name is compressed or runs past
 * the bytes.
 */
function questionSection(query: Buffer): { end: number; dotted: boolean } | undefined {
  let at = 12;
  let dotted = false;
  for (let i = query.readUInt16BE(4); i > 0; i--) {
    for (;;) {
      const len = query[at];
      if (len === undefined || (len & 0xc0) !== 0 || at + 1 + len > query.length) return undefined;
      at += 1 + len;
      if (len === 0) break;
      if (query.subarray(at - len, at).includes(0x2e)) dotted = true;
    }
    at += 4;
    if (at > query.length) return undefined;
  }
  return { end: at, dotted };
}

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE', 'RCODE_11', 'RCODE_12', 'RCODE_13', 'RCODE_14', 'RCODE_15'];
