/**
 * The KvStore on an etcd cluster (v3 API, through the etcd3 client): the
 * store several nodes share. It keeps the semantics of MemoryKvStore (the
 * contract suite runs on it, test/e2e/etcd-store.test.ts), with what etcd
 * makes different:
 *
 * - Revisions are etcd's: cluster-wide, so a new store does not start at 0
 *   and other clients' writes move it. A transaction that changes nothing
 *   (deletes of absent keys only) makes no revision. A watch from a
 *   revision ahead of the store waits for it (etcd does not refuse it).
 * - Lease ids are etcd's int64 ids as 16 lowercase hex digits, the way
 *   etcdctl prints them (`etcdctl lease timetolive <id>` takes them as they
 *   are). etcd raises a TTL below its minimum (ceil(1.5 × election timeout),
 *   2 s with the default 1 s) and LeaseInfo says what was granted. etcd
 *   rounds the remaining TTL down: a live lease can show 0 s.
 * - A transaction is one etcd Txn. etcd refuses one that writes a key twice
 *   (two puts, or a put inside a deleted range), so the operations are first
 *   reduced to their effect, in order: a later put or delete of a key drops
 *   an earlier one, and a range delete followed by a put inside it skips
 *   that key. The keys end as MemoryKvStore leaves them; a key deleted and
 *   put again in one transaction keeps its creation revision and shows one
 *   PUT to watchers. etcd also bounds a transaction (--max-txn-ops, 128 by
 *   default, and --max-request-bytes, 1.5 MiB): beyond, RESOURCE_EXHAUSTED.
 *
 * Calls and failures. Every call has a budget (callTimeoutMs). etcd3's own
 * retries and 5 s circuit breakers are replaced: a member whose transport
 * failed is skipped for a second (HostGate), and the store retries here,
 * where it is known what may be repeated. Reads, lease grants, keepalives
 * and compactions are retried on any transient failure, each attempt with a
 * shorter deadline so a member without a leader or cut off is left for
 * another. A transaction or a lease revocation is retried only when the
 * request surely did not reach etcd (no connection, a member without a
 * leader refusing it up front): one that timed out may have been applied,
 * and a retry could report a conflict with its own write, so it fails with
 * UNAVAILABLE and the caller reads again (a compare on mod revisions tells
 * whether it took). Every call asks for a member with a leader (gRPC
 * metadata `hasleader`, as etcd's Go client does for watches): a member cut
 * off from the quorum refuses at once instead of holding the call.
 *
 * Watches. etcd3 resumes a broken watch stream by itself, from the revision
 * after the last response's header, which a (re)connect sets to the current
 * revision before the replay has arrived: a stream that breaks during a
 * replay would skip changes. So each watch keeps the last revision it
 * delivered and, whenever the stream breaks, sets the watcher's start
 * revision back to it; changes at or before it are dropped, so none is
 * delivered twice. The start revision is the last delivered one itself, not
 * the next: etcd serves a watch that starts at its compact revision, whose
 * deletions the compaction has dropped; starting one revision earlier makes
 * etcd refuse exactly what MemoryKvStore refuses. The reconnect backoff is
 * capped at 1 s (etcd3's default grows to 30 s, and its timers keep the
 * process alive).
 * A watcher that emitted 'error' is gone in etcd and is never canceled
 * (etcd3 1.1.2's cancel() of it hangs or throws); close() waits at most a
 * second for the other cancellations before closing the client.
 */
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { InterceptingCall, type CallOptions, type Interceptor } from '@grpc/grpc-js';
import {
  ClientClosedError,
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCInvalidArgumentError,
  GRPCOutOfRangeError,
  GRPCResourceExhastedError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
  castGrpcError,
  isRecoverableError,
  type ICompare,
  type IEvent,
  type IKeyValue,
  type ILeaseKeepAliveResponse,
  type IOptions,
  type IRequestOp,
  type IWatchResponse,
  type Watcher,
} from 'etcd3';
import { SluiceError, invalid } from '../errors.js';
import {
  CompactedError,
  type Compare,
  type KeyValue,
  type KvChanges,
  type KvEvent,
  type KvStore,
  type KvWatch,
  type LeaseInfo,
  type Operation,
  type RangeOptions,
  type TxnResult,
} from './kv.js';
import { checkLeaseTtl } from './lease.js';
import { checkEndpoint } from './etcd-url.js';

/** How to reach the cluster. */
export interface EtcdKvOptions {
  /** "HOST:PORT" of one or more members (etcd-url.ts's parseEtcdUrl gives them from etcd://...). */
  endpoints: readonly string[];
  /** TLS: each a PEM text or the path of a PEM file. `cert` and `key` go together. */
  tls?: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string };
  /** How long connect() waits for a member to answer, in ms (default 5000). */
  dialTimeoutMs?: number;
  /** How long one call may take, retries included, in ms (default 3000). */
  callTimeoutMs?: number;
  /** Where a watch says that it lost etcd and that it is back (pino's shape). */
  logger?: WatchLogger;
}

/** The part of a pino logger the store uses. */
export interface WatchLogger {
  warn(obj: object, msg: string): void;
}

const DEFAULT_DIAL_TIMEOUT_MS = 5000;
const DEFAULT_CALL_TIMEOUT_MS = 3000;
/** A member whose transport failed is not tried again for this long. */
const HOST_SKIP_MS = 1000;
/** The watch reconnect backoff starts here and doubles up to WATCH_BACKOFF_MAX_MS. */
const WATCH_BACKOFF_MIN_MS = 100;
const WATCH_BACKOFF_MAX_MS = 1000;
/** close() waits this long for watch cancellations (etcd must answer them). */
const CLOSE_WAIT_MS = 1000;
/** Pauses between attempts of a call. */
const RETRY_PAUSE_MIN_MS = 25;
const RETRY_PAUSE_MAX_MS = 200;

/**
 * gRPC channel settings. A stopped member is dialled again within a second
 * (gRPC's default backoff grows to 2 min); keepalive pings find a member
 * that stopped answering without closing the connection (etcd accepts pings
 * every 5 s or more); etcd sends responses larger than gRPC's default 4 MiB
 * limit (a range of many keys, a replay).
 */
const GRPC_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.max_receive_message_length': -1,
};

/**
 * Errors that show the request never reached etcd (so even a write may be
 * sent again): no connection, a name that does not resolve, a call dropped
 * before it started, or a member that refused it up front (no leader, too
 * many requests pending).
 */
const UNSENT = /No connection established|ECONNREFUSED|Name resolution failed|before call started|etcdserver: no leader|etcdserver: too many requests/;

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type HostPolicy = ReturnType<NonNullable<FaultHandling['host']>>;
type GlobalPolicy = NonNullable<FaultHandling['global']>;
type WatchBackoff = NonNullable<FaultHandling['watchBackoff']>;

const NEVER_ABORTED = new AbortController().signal;

/** What a skipped member throws, so that etcd3 moves on to the next; it says why the member is skipped. */
class HostSkipped extends Error {
  constructor(host: string, failure: Error) {
    super(`${host} is skipped for ${HOST_SKIP_MS} ms after ${failure.constructor.name}: ${failure.message}`, { cause: failure });
    this.name = 'HostSkipped';
  }
}

/**
 * etcd3's per-member policy (it calls only execute()): a member whose
 * transport failed (unavailable, a deadline) is skipped for HOST_SKIP_MS.
 * etcd3's default circuit breaker refuses calls to it for 5 s after three
 * failures, which holds calls back for seconds after the cluster is back.
 */
class HostGate {
  #skipUntil = 0;
  #failure: Error | undefined;
  constructor(readonly host: string) {}

  async execute<T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> {
    if (this.#failure && Date.now() < this.#skipUntil) throw new HostSkipped(this.host, this.#failure);
    try {
      return await fn({ signal: NEVER_ABORTED });
    } catch (err) {
      if (err instanceof GRPCUnavailableError || err instanceof GRPCDeadlineExceededError) {
        this.#failure = err;
        this.#skipUntil = Date.now() + HOST_SKIP_MS;
      }
      throw err;
    }
  }
}

/** etcd3's global policy: none, each call once (the store decides what to retry). */
const noRetry = { execute: async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> => fn({ signal: NEVER_ABORTED }) };

const watchBackoff = (ms: number): WatchBackoff => ({ duration: ms, next: () => watchBackoff(Math.min(ms * 2, WATCH_BACKOFF_MAX_MS)) });

/** Ask etcd to refuse the call at once if the member has no leader (etcd's `hasleader` metadata). */
const requireLeader: Interceptor = (options, nextCall) =>
  new InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set('hasleader', 'true');
      next(metadata, listener);
    },
  });

/** How a failed attempt may be retried: `unsent` always, `ambiguous` only if the call is idempotent. */
type FailureKind = 'unsent' | 'ambiguous' | 'final';

function failureKind(err: unknown): FailureKind {
  if (err instanceof HostSkipped) return 'unsent';
  if (!(err instanceof Error)) return 'final';
  if (err.constructor.name === 'BrokenCircuitError') return 'unsent';
  if (err instanceof GRPCUnavailableError && UNSENT.test(err.message)) return 'unsent';
  if (err instanceof GRPCResourceExhastedError) return 'final';
  return isRecoverableError(err) ? 'ambiguous' : 'final';
}

/** The KvStore on etcd; see the module's comment. */
export class EtcdKvStore implements KvStore {
  /** The members, as given. */
  readonly endpoints: readonly string[];
  readonly #client: Etcd3;
  readonly #callTimeoutMs: number;
  /** The deadline of one attempt of a call that may be retried. */
  readonly #attemptMs: number;
  readonly #watches = new Set<KvWatch>();
  /** etcd3 cancellations of watchers under way. */
  readonly #cancels = new Set<Promise<void>>();
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #log: WatchLogger | undefined;

  private constructor(client: Etcd3, endpoints: readonly string[], callTimeoutMs: number, log: WatchLogger | undefined) {
    this.#log = log;
    this.#client = client;
    this.endpoints = endpoints;
    this.#callTimeoutMs = callTimeoutMs;
    this.#attemptMs = Math.max(250, Math.floor(callTimeoutMs / 3));
  }

  /**
   * Connect to the cluster and wait until a member answers (UNAVAILABLE
   * after dialTimeoutMs). INVALID_ARGUMENT naming the option for a bad
   * endpoint, timeout or TLS file.
   */
  static async connect(opts: EtcdKvOptions): Promise<EtcdKvStore> {
    if (!Array.isArray(opts.endpoints) || opts.endpoints.length === 0) throw invalid('endpoints', 'want at least one HOST:PORT');
    opts.endpoints.forEach((e, i) => checkEndpoint(e, `endpoints[${i}]`));
    const dialTimeoutMs = checkTimeout(opts.dialTimeoutMs, DEFAULT_DIAL_TIMEOUT_MS, 'dialTimeoutMs');
    const callTimeoutMs = checkTimeout(opts.callTimeoutMs, DEFAULT_CALL_TIMEOUT_MS, 'callTimeoutMs');
    const credentials = opts.tls && (await loadTls(opts.tls));
    const client = new Etcd3({
      hosts: [...opts.endpoints],
      ...(credentials ? { credentials } : {}),
      grpcOptions: GRPC_OPTIONS,
      defaultCallOptions: (c): CallOptions => (c.isStream ? { interceptors: [requireLeader] } : { interceptors: [requireLeader], deadline: Date.now() + callTimeoutMs }),
      faultHandling: {
        host: (host) => new HostGate(host) as unknown as HostPolicy,
        global: noRetry as unknown as GlobalPolicy,
        // etcd3 starts from next() of the backoff it is given.
        watchBackoff: watchBackoff(WATCH_BACKOFF_MIN_MS / 2),
      },
    });
    const store = new EtcdKvStore(client, [...opts.endpoints], callTimeoutMs, opts.logger);
    try {
      await store.#call('a first read', 'idempotent', (o) => client.kv.range({ key: ZERO_KEY, limit: 1 }, o), dialTimeoutMs);
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  async revision(): Promise<number> {
    const res = await this.#call('a read of the revision', 'idempotent', (o) => this.#client.kv.range({ key: ZERO_KEY, limit: 1 }, o));
    return revisionOf(res.header.revision);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.#call(`a read of ${key}`, 'idempotent', (o) => this.#client.kv.range({ key: Buffer.from(key) }, o));
    const kv = res.kvs[0];
    return kv && toKv(kv);
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<{ kvs: KeyValue[]; revision: number; more: boolean }> {
    this.#open();
    const { limit, startAfter } = opts;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw invalid('limit', `must be a non-negative integer, got ${String(limit)}`);
    }
    const p = Buffer.from(prefix);
    const after = startAfter === undefined ? undefined : Buffer.from(startAfter);
    // A cursor before the prefix is the prefix; else the first key after it is the cursor and a 0 byte.
    const from = after && Buffer.compare(after, p) >= 0 ? Buffer.concat([after, ZERO_KEY]) : keyOf(p);
    // etcd's limit 0 is "no limit": limit 0 asks for one key, to say whether there are any.
    const res = await this.#call(`a range read of ${prefix}`, 'idempotent', (o) =>
      this.#client.kv.range({ key: from, range_end: prefixEnd(p), limit: limit === 0 ? 1 : limit ?? 0 }, o),
    );
    const revision = revisionOf(res.header.revision);
    if (limit === 0) return { kvs: [], revision, more: res.kvs.length > 0 };
    return { kvs: res.kvs.map(toKv), revision, more: res.more };
  }

  async txn(compares: readonly Compare[], operations: readonly Operation[]): Promise<TxnResult> {
    this.#open();
    const compare = compares.map(toCompare);
    const success = toRequestOps(operations);
    const what = `a transaction (${compare.length} compares, ${success.length} writes)`;
    const res = await this.#call(what, 'once', (o) => this.#client.kv.txn({ compare, success, failure: [] }, o));
    return { succeeded: res.succeeded, revision: revisionOf(res.header.revision) };
  }

  watch(prefix: string, afterRevision: number, onChanges: (c: KvChanges) => void, onError: (err: Error) => void): KvWatch {
    this.#open();
    if (!Number.isSafeInteger(afterRevision) || afterRevision < 0) {
      throw invalid('afterRevision', `must be a non-negative integer, got ${String(afterRevision)}`);
    }
    const p = Buffer.from(prefix);
    let last = afterRevision;
    let active = true;
    let failed = false;
    const watcher: Watcher = this.#client.watch().inRange({ start: keyOf(p), end: prefixEnd(p) }).withPreviousKV().watcher();
    // From the last delivered revision itself (see the module's comment); etcd has no revision 0.
    const resume = (): void => {
      watcher.request.start_revision = String(Math.max(1, last));
    };
    resume();
    const w: KvWatch = {
      cancel: () => {
        if (!active) return;
        active = false;
        this.#watches.delete(w);
        if (failed) return;
        const done = watcher.cancel().catch(() => undefined);
        this.#cancels.add(done);
        void done.finally(() => this.#cancels.delete(done));
      },
    };
    watcher.on('data', (res: IWatchResponse) => {
      for (const c of byRevision(res.events)) {
        if (!active) return;
        if (c.revision <= last) continue;
        last = c.revision;
        onChanges(c);
      }
    });
    // Said once an outage, and once when it ends: an operator's record of it.
    let lost = false;
    watcher.on('disconnected', () => {
      resume();
      if (lost || !active) return;
      lost = true;
      this.#log?.warn({ prefix, endpoints: this.endpoints.join(','), lastRevision: last }, 'lost the etcd watch: forwarding goes on with the last state; reconnecting');
    });
    watcher.on('connected', () => {
      if (!lost) return;
      lost = false;
      this.#log?.warn({ prefix, fromRevision: last }, 'the etcd watch is back: catching up from the last revision seen');
    });
    watcher.on('error', (err: Error) => {
      failed = true;
      if (!active) return;
      active = false;
      this.#watches.delete(w);
      onError(watchError(err, prefix, last));
    });
    this.#watches.add(w);
    return w;
  }

  async grantLease(ttlSeconds: number): Promise<LeaseInfo> {
    this.#open();
    checkLeaseTtl(ttlSeconds);
    // Retried like a read: a grant whose answer was lost leaves a lease no one holds, which expires.
    const res = await this.#call('a lease grant', 'idempotent', (o) => this.#client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 }, o));
    if (res.error) throw new SluiceError('INTERNAL', `etcd did not grant a lease: ${res.error}`);
    const ttl = Number(res.TTL);
    return { id: leaseHex(res.ID), ttlSeconds: ttl, remainingSeconds: ttl };
  }

  async keepAlive(id: string): Promise<LeaseInfo> {
    this.#open();
    const dec = leaseDecimal(id);
    if (dec === undefined) throw leaseNotFound(id);
    const res = await this.#call(`a keepalive of lease ${id}`, 'idempotent', (o) => this.#keepAliveOnce(dec, o));
    const ttl = Number(res.TTL);
    if (!(ttl > 0)) throw leaseNotFound(id);
    return { id: leaseHex(res.ID), ttlSeconds: ttl, remainingSeconds: ttl };
  }

  async lease(id: string): Promise<LeaseInfo | undefined> {
    this.#open();
    const dec = leaseDecimal(id);
    if (dec === undefined) return undefined;
    const res = await this.#call(`a read of lease ${id}`, 'idempotent', (o) => this.#client.leaseClient.leaseTimeToLive({ ID: dec }, o));
    const remaining = Number(res.TTL);
    if (remaining < 0) return undefined;
    return { id: leaseHex(dec), ttlSeconds: Number(res.grantedTTL), remainingSeconds: remaining };
  }

  async leaseKeys(id: string): Promise<string[]> {
    this.#open();
    const dec = leaseDecimal(id);
    if (dec === undefined) return [];
    const res = await this.#call(`a read of lease ${id}`, 'idempotent', (o) => this.#client.leaseClient.leaseTimeToLive({ ID: dec, keys: true }, o));
    if (Number(res.TTL) < 0) return [];
    return res.keys.map((k) => k.toString()).sort();
  }

  async revokeLease(id: string): Promise<boolean> {
    this.#open();
    const dec = leaseDecimal(id);
    if (dec === undefined) return false;
    try {
      // Not repeated after a timeout: a second revoke of a revoked lease would answer false.
      await this.#call(`a revocation of lease ${id}`, 'once', (o) => this.#client.leaseClient.leaseRevoke({ ID: dec }, o));
      return true;
    } catch (err) {
      if (err instanceof SluiceError && err.code === 'NOT_FOUND') return false;
      throw err;
    }
  }

  async compact(revision: number): Promise<void> {
    this.#open();
    if (!Number.isSafeInteger(revision) || revision < 0) throw invalid('revision', `must be a non-negative integer, got ${String(revision)}`);
    if (revision === 0) return;
    try {
      await this.#call(`a compaction to revision ${revision}`, 'idempotent', (o) => this.#client.kv.compact({ revision, physical: true }, o));
    } catch (err) {
      const cause = err instanceof SluiceError ? err.cause : undefined;
      // Compacted already (by another node, or by an attempt whose answer was lost): nothing to do.
      if (cause instanceof GRPCOutOfRangeError && /has been compacted/.test(cause.message)) return;
      if (cause instanceof GRPCOutOfRangeError && /future revision/.test(cause.message)) {
        throw invalid('revision', `${revision} is ahead of the store's revision`);
      }
      throw err;
    }
  }

  /** Stop every watch and close the connections. Idempotent; every call afterwards fails FAILED_PRECONDITION. */
  close(): Promise<void> {
    return (this.#closing ??= this.#closeOnce());
  }

  async #closeOnce(): Promise<void> {
    this.#closed = true;
    for (const w of [...this.#watches]) w.cancel();
    // etcd answers a cancellation at once; a member that stopped answering does not, and the
    // client is closed regardless (gRPC keepalive then ends the stream).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.#cancels), new Promise((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    this.#client.close();
  }

  // ---------------------------------------------------------------- internals

  #open(): void {
    if (this.#closed) throw closedError();
  }

  /**
   * Run `fn` within the call's budget, retrying what may be retried (see
   * FailureKind): `idempotent` calls on any transient failure, `once` calls
   * only when the request did not reach etcd. Every failure becomes a
   * SluiceError.
   */
  async #call<T>(what: string, retry: 'idempotent' | 'once', fn: (o: CallOptions) => Promise<T>, budgetMs = this.#callTimeoutMs): Promise<T> {
    this.#open();
    const end = Date.now() + budgetMs;
    let pause = RETRY_PAUSE_MIN_MS;
    for (;;) {
      const deadline = retry === 'idempotent' ? Math.min(end, Date.now() + this.#attemptMs) : end;
      try {
        return await fn({ deadline });
      } catch (err) {
        if (this.#closed) throw closedError(err);
        const kind = failureKind(err);
        const again = kind === 'unsent' || (kind === 'ambiguous' && retry === 'idempotent');
        if (!again || Date.now() + pause >= end) throw this.#error(what, err, kind, retry === 'once', budgetMs);
        await new Promise((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, RETRY_PAUSE_MAX_MS);
        if (this.#closed) throw closedError(err);
      }
    }
  }

  #error(what: string, err: unknown, kind: FailureKind, write: boolean, budgetMs: number): SluiceError {
    if (kind === 'final') return finalError(what, err);
    const at = `etcd at ${this.endpoints.join(',')}`;
    // A write is given up at its first ambiguous failure; otherwise every attempt failed until the budget ran out.
    const summary = kind === 'ambiguous' && write
      ? `${at} failed during ${what} (${describe(err)}): it may or may not have been applied; read the keys again before retrying`
      : `${at} did not answer ${what} within ${budgetMs} ms (${describe(err)})${write ? '; it was not applied' : ''}`;
    return new SluiceError(
      'UNAVAILABLE',
      `${summary}. Check that the etcd members run and have a leader, and that this host reaches them (addresses, firewall, TLS).`,
      { cause: err },
    );
  }

  /** One keepalive over its own stream (etcd's keepaliveOnce), with the call's deadline. */
  async #keepAliveOnce(id: string, options: CallOptions): Promise<ILeaseKeepAliveResponse> {
    const stream = await this.#client.leaseClient.leaseKeepAlive(options);
    return new Promise((resolve, reject) => {
      let settled = false;
      stream.on('data', (res) => {
        if (settled) return;
        settled = true;
        resolve(res);
        stream.end();
      });
      stream.on('error', (err) => {
        if (settled) return;
        settled = true;
        reject(castGrpcError(err));
      });
      stream.write({ ID: id });
    });
  }
}

// ------------------------------------------------------------------ helpers

/** etcd has no empty key; the smallest key is one 0 byte. */
const ZERO_KEY = Buffer.from([0]);

function keyOf(prefix: Buffer): Buffer {
  return prefix.length > 0 ? prefix : ZERO_KEY;
}

/** The end of the range of keys starting with `prefix`; a 0 byte means "to the last key" to etcd. */
function prefixEnd(prefix: Buffer): Buffer {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i]! += 1;
      return end;
    }
  }
  return ZERO_KEY;
}

/** etcd's int64 revisions are decimal strings; a revision stays far below 2^53. */
function revisionOf(s: string): number {
  return Number(s);
}

function toKv(kv: IKeyValue): KeyValue {
  const out: KeyValue = {
    key: kv.key.toString(),
    value: kv.value.toString(),
    createRevision: revisionOf(kv.create_revision),
    modRevision: revisionOf(kv.mod_revision),
  };
  if (kv.lease && kv.lease !== '0') out.lease = leaseHex(kv.lease);
  return out;
}

/** A watch response's events as one KvChanges per revision, in order. */
function byRevision(events: readonly IEvent[]): KvChanges[] {
  const out: KvChanges[] = [];
  for (const e of events) {
    const revision = revisionOf(e.kv.mod_revision);
    let c = out[out.length - 1];
    if (c?.revision !== revision) out.push((c = { events: [], revision }));
    const kv: KeyValue = e.type === 'Delete' ? { key: e.kv.key.toString(), value: '', createRevision: 0, modRevision: revision } : toKv(e.kv);
    const ev: KvEvent = { type: e.type === 'Delete' ? 'DELETE' : 'PUT', kv };
    if (e.prev_kv) ev.prev = toKv(e.prev_kv);
    c.events.push(ev);
  }
  return out;
}

/** The error a watch ends with: etcd 3.4 cancels a watch with no reason when its revision was compacted. */
function watchError(err: Error, prefix: string, last: number): Error {
  if (err.message === 'Watcher canceled: ' || /compacted/.test(err.message)) {
    return new CompactedError(`etcd has compacted the changes under ${prefix} after revision ${last}: read again`);
  }
  return finalError(`the watch of ${prefix}`, err);
}

function toCompare(c: Compare): ICompare {
  const key = Buffer.from(c.key);
  if ('modRevision' in c) {
    if (!Number.isSafeInteger(c.modRevision) || c.modRevision < 0) {
      throw invalid('modRevision', `must be a non-negative integer, got ${String(c.modRevision)}`);
    }
    // An absent key has mod revision 0 in etcd's compares.
    return { key, target: 'Mod', result: 'Equal', mod_revision: String(c.modRevision) };
  }
  return { key, target: 'Value', result: 'Equal', value: Buffer.from(c.value) };
}

/**
 * The operations as etcd requests, reduced to their effect in order so that
 * no key is written twice (see the module's comment).
 */
function toRequestOps(operations: readonly Operation[]): IRequestOp[] {
  type Entry =
    | { kind: 'put'; key: Buffer; op: { put: string; value: string; lease?: string }; live: boolean }
    | { kind: 'delete'; key: Buffer; live: boolean }
    | { kind: 'range'; start: Buffer; end: Buffer; prefix: Buffer; keep: Buffer[]; live: true };
  const entries: Entry[] = [];
  const under = (key: Buffer, prefix: Buffer): boolean => key.subarray(0, prefix.length).equals(prefix);
  // The live put or delete of each key, and the prefix deletes so far: a
  // batch of 1,000 services is thousands of operations, looked up here
  // rather than compared with every earlier one.
  const byKey = new Map<string, Entry & { kind: 'put' | 'delete' }>();
  const ranges: Array<Entry & { kind: 'range' }> = [];
  const supersede = (k: string): void => {
    const prev = byKey.get(k);
    if (prev) prev.live = false;
  };
  for (const op of operations) {
    if ('put' in op) {
      const key = Buffer.from(op.put);
      for (const r of ranges) if (under(key, r.prefix)) r.keep.push(key);
      supersede(op.put);
      const e = { kind: 'put' as const, key, op, live: true };
      byKey.set(op.put, e);
      entries.push(e);
    } else if ('delete' in op) {
      const key = Buffer.from(op.delete);
      supersede(op.delete);
      const e = { kind: 'delete' as const, key, live: true };
      byKey.set(op.delete, e);
      entries.push(e);
    } else {
      const prefix = Buffer.from(op.deletePrefix);
      for (const e of byKey.values()) if (e.kind === 'put' && e.live && under(e.key, prefix)) e.live = false;
      const r = { kind: 'range' as const, start: keyOf(prefix), end: prefixEnd(prefix), prefix, keep: [] as Buffer[], live: true as const };
      ranges.push(r);
      entries.push(r);
    }
  }
  const out: IRequestOp[] = [];
  for (const e of entries) {
    if (!e.live) continue;
    if (e.kind === 'put') {
      const lease = e.op.lease === undefined ? undefined : leaseDecimal(e.op.lease);
      if (e.op.lease !== undefined && lease === undefined) throw leaseNotFound(e.op.lease);
      out.push({ request_put: { key: e.key, value: Buffer.from(e.op.value), ...(lease ? { lease } : {}) } });
    } else if (e.kind === 'delete') {
      out.push({ request_delete_range: { key: e.key } });
    } else {
      for (const [start, end] of rangeWithout(e.start, e.end, e.keep)) out.push({ request_delete_range: { key: start, range_end: end } });
    }
  }
  return out;
}

/** [start, end) without the keys in `keep`, as ranges (end = a 0 byte: to the last key). */
function rangeWithout(start: Buffer, end: Buffer, keep: Buffer[]): Array<[Buffer, Buffer]> {
  const open = end.equals(ZERO_KEY);
  const out: Array<[Buffer, Buffer]> = [];
  let from = start;
  for (const k of [...keep].sort(Buffer.compare)) {
    if (Buffer.compare(k, from) < 0) continue;
    if (Buffer.compare(from, k) < 0) out.push([from, k]);
    from = Buffer.concat([k, ZERO_KEY]);
  }
  if (open || Buffer.compare(from, end) < 0) out.push([from, end]);
  return out;
}

/** An etcd lease id (decimal int64) as 16 hex digits. */
function leaseHex(decimal: string): string {
  return BigInt(decimal).toString(16).padStart(16, '0');
}

/** A hex lease id as etcd's decimal, or undefined if it cannot be one (etcd's ids are positive int64). */
function leaseDecimal(hex: string): string | undefined {
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) return undefined;
  const n = BigInt(`0x${hex}`);
  return n > 0n && n < 2n ** 63n ? n.toString() : undefined;
}

function leaseNotFound(id: string): SluiceError {
  return new SluiceError('NOT_FOUND', `lease ${id} does not exist (expired or revoked)`);
}

function closedError(cause?: unknown): SluiceError {
  return new SluiceError('FAILED_PRECONDITION', 'the store is closed', { cause });
}

/** An error etcd answered with (not a failure to reach it) as a SluiceError. */
function finalError(what: string, err: unknown): SluiceError {
  const m = describe(err);
  const e = (code: ConstructorParameters<typeof SluiceError>[0], message: string, field?: string): SluiceError =>
    new SluiceError(code, message, { cause: err, ...(field ? { field } : {}) });
  if (err instanceof SluiceError) return err;
  if (err instanceof ClientClosedError) return closedError(err);
  if (err instanceof EtcdLeaseInvalidError) return e('NOT_FOUND', `${what}: the lease does not exist (expired or revoked)`);
  if (err instanceof GRPCInvalidArgumentError) {
    if (/too many operations in txn request/.test(m)) {
      return e('RESOURCE_EXHAUSTED', `${what} has more operations than etcd allows in one transaction (--max-txn-ops, 128 by default): raise it on every etcd member, or apply fewer services at a time (a service of one VIP and one port takes 2 at least, so 64 a batch at the default)`);
    }
    if (/request is too large/.test(m)) return e('RESOURCE_EXHAUSTED', `${what} is larger than etcd accepts (--max-request-bytes, 1.5 MiB by default)`);
    if (/key is not provided/.test(m)) return e('INVALID_ARGUMENT', 'must not be empty (etcd has no empty key)', 'key');
    return e('INVALID_ARGUMENT', `etcd refused ${what}: ${m}`);
  }
  if (err instanceof GRPCResourceExhastedError) {
    if (/database space exceeded/.test(m)) {
      return e('RESOURCE_EXHAUSTED', `etcd refused ${what}: its database is full (NOSPACE alarm); compact and defragment it, or raise --quota-backend-bytes`);
    }
    return e('RESOURCE_EXHAUSTED', `etcd refused ${what}: ${m}`);
  }
  if (err instanceof EtcdPermissionDeniedError || err instanceof GRPCUnauthenticatedError || err instanceof EtcdAuthenticationFailedError) {
    return e('FAILED_PRECONDITION', `etcd refused ${what}: ${m}; check the client certificate and its user's roles`);
  }
  return e('INTERNAL', `${what} failed: ${m}`);
}

/** An error for a message: the failure a skipped member is skipped for, without grpc-js's empty resolution note. */
function describe(err: unknown): string {
  if (err instanceof HostSkipped && err.cause instanceof Error) return describe(err.cause);
  return err instanceof Error ? `${err.constructor.name}: ${err.message.replace(/\.?\s*Resolution note:\s*$/, '')}` : String(err);
}

function checkTimeout(value: number | undefined, fallback: number, field: string): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw invalid(field, `must be a positive integer (ms), got ${String(value)}`);
  return v;
}

/** The TLS material: PEM text as given, or read from a path. */
async function loadTls(tls: NonNullable<EtcdKvOptions['tls']>): Promise<NonNullable<IOptions['credentials']>> {
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw invalid(tls.cert === undefined ? 'tls.cert' : 'tls.key', 'a client certificate and its key go together');
  }
  const pem = async (v: Buffer | string | undefined, field: string): Promise<Buffer | undefined> => {
    if (v === undefined || Buffer.isBuffer(v)) return v;
    if (v.includes('-----BEGIN ')) return Buffer.from(v);
    try {
      return await readFile(v);
    } catch (err) {
      throw new SluiceError('INVALID_ARGUMENT', `cannot read ${v}: ${(err as Error).message}`, { field, cause: err });
    }
  };
  const [ca, cert, key] = await Promise.all([pem(tls.ca, 'tls.ca'), pem(tls.cert, 'tls.cert'), pem(tls.key, 'tls.key')]);
  return {
    // Without a CA, the server's certificate is checked against Node's bundled roots.
    rootCertificate: ca ?? Buffer.from(rootCertificates.join('\n')),
    ...(key ? { privateKey: key } : {}),
    ...(cert ? { certChain: cert } : {}),
  };
}
