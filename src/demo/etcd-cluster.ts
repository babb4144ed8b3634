/**
 * A local etcd cluster for tests and the demo: N members (3 by default) of
 * Debian's etcd 3.4 (/usr/bin/etcd) on 127.0.0.1, each with its own data
 * directory, that can be stopped and started one by one or all together.
 *
 *   const cluster = await startEtcdCluster({ tag: 'store' });
 *   t.teardown(() => cluster.destroy());
 *   const client = new Etcd3({ hosts: cluster.endpoints });
 *
 * How the members are kept from leaking:
 * - Each runs in its own session (spawn's `detached`, which is setsid(2)), so
 *   a signal a harness sends to our process group (Ctrl-C, a timeout's kill)
 *   does not reach it; our process decides when it stops.
 * - Each is exec'd through `setpriv --pdeathsig=KILL` (util-linux): the kernel
 *   SIGKILLs the member when the process that spawned it dies, however it
 *   dies (SIGKILL included). etcd has no --exit-with-parent and a polling
 *   watchdog would lag and could outlive its target's pid; pdeathsig costs
 *   nothing and cannot be missed. It fires when the spawning *thread* ends:
 *   start clusters from the main thread (ava's workers are processes here).
 * - A normal exit without destroy() kills the members and removes the
 *   directories synchronously ('exit' hook). The child handles are unref'd, so
 *   a forgotten cluster never keeps a process alive.
 * - What a SIGKILLed owner leaves (directories, port claims) is named after
 *   its pid: `<tmpdir>/sluice-etcd-<pid>-*` and `<tmpdir>/sluice-etcd-ports-<base>`
 *   (a symlink whose target is the pid). cleanStaleEtcdClusters() removes
 *   those of dead pids and kills any etcd whose --data-dir is in such a
 *   directory; creating a cluster calls it first.
 *
 * Ports: each cluster claims a block of 20 ports between 15000 and the start
 * of the kernel's ephemeral range (ip_local_port_range, 32768 here) with an
 * atomic symlink, then checks each port by binding it. Below the ephemeral
 * range, no bind(0) and no outgoing connection of a parallel test is given
 * one of them, so a member stopped for a while finds its ports free when it
 * starts again (its peer URL is part of the cluster's membership and cannot
 * change). If a member still fails to bind at the first start, the cluster is
 * built again on another block.
 *
 * Readiness goes through etcd's HTTP/JSON gateway (/v3/...) with fetch, not
 * etcd3: etcd3's circuit breakers would hold a host closed for 5 s after a
 * few refused connections and make start-up look slower than it is.
 * waitReady() writes the key `sluice-etcd-cluster/ready` (one revision).
 *
 * What a store built on etcd3 1.1.2 (npm) over this etcd 3.4.23 needs to
 * know; test/e2e/etcd-cluster.test.ts checks the points marked (t).
 *
 * Client and errors
 * - `new Etcd3({ hosts: cluster.endpoints })` ("127.0.0.1:PORT"). Each call
 *   goes through a global retry policy (3 retries, no delay, each on the next
 *   host of a shuffled round) and a per-host circuit breaker (opens after 3
 *   consecutive failures, lets one call through 5 s later). Only transport
 *   and server-side failures count (GRPCUnavailableError, deadline,
 *   internal...); etcd's own answers (a failed compare) never do.
 * - Revisions, versions, lease ids and counts are decimal strings (int64)
 *   (t): compare them as BigInt. Methods take them as strings too.
 * - Every member down (t): the first call rejects with GRPCUnavailableError
 *   "14 UNAVAILABLE: No connection established. Last error: Error: connect
 *   ECONNREFUSED 127.0.0.1:PORT ...", later ones with cockatiel's
 *   BrokenCircuitError "Execution prevented because the circuit breaker is
 *   open" (check `err.constructor.name`: etcd3 does not re-export cockatiel).
 *   After a restart the members are ready in about 2 s, but an open breaker
 *   lets one call through only 5 s after it last opened: writes came back
 *   ~3.5 s after the restart in trials.
 * - The leader killed, two members left (t): a call in flight waits for
 *   etcd's request timeout (5 s + 2 × election timeout = 7 s), gets
 *   UNAVAILABLE "etcdserver: request timed out, possibly due to previous
 *   leader failure", which etcd3 retries on another member: the put takes
 *   ~7 s, though a new leader is there after ~1.1 s. A per-call deadline
 *   (`defaultCallOptions: (c) => (c.isStream ? {} : { deadline: Date.now()
 *   + 1500 })`) brings that to 1.5-3 s, but etcd3's retries can then run
 *   out on the dead member: retry recoverable errors in the store as well.
 *   A call that timed out may still have been applied: a compare that fails
 *   after a retry can be our own earlier write, so re-read before calling
 *   it a conflict.
 *
 * Reads and transactions
 * - A prefix with its revision (t): `client.getAll().prefix(p).exec()` →
 *   `{ header: { revision }, kvs: [{ key, value, create_revision,
 *   mod_revision, version, lease }] }` (key and value are Buffers); the
 *   shorthands (.strings(), .keys()) drop the revision.
 * - Multi-key compare-and-set on mod revisions (t): `client.if(k1, 'Mod',
 *   '==', rev1).and(k2, 'Mod', '==', rev2).and(k3, 'Create', '==', 0)
 *   .then(client.put(k1).value(v), client.delete().key(k2), ...)
 *   .else(client.get(k1), ...).commit()` → `{ succeeded, header: {
 *   revision }, responses }`. An absent key has mod and create revision 0
 *   ('Create', '==', 0: "does not exist yet"). One stale compare fails the
 *   whole transaction with `succeeded: false`, not an error, nothing
 *   written; the else branch's `responses[i].response_range.kvs` give the
 *   current values in the same round trip. All writes of a transaction get
 *   the same revision.
 *
 * Watches
 * - From a revision (t): `client.watch().prefix(p).startRevision(rev)
 *   .withPreviousKV().create()` replays history from `rev` (inclusive), then
 *   follows; create() resolves once etcd accepted it. Events: 'put' (kv,
 *   prev) and 'delete' (kv, prev); a delete's kv has the key, the deletion's
 *   revision as mod_revision and an empty value. `prev` is set only with
 *   withPreviousKV(), and then for every event but a key's first put.
 *   'data' gives whole responses (`{ header, events: [{ type: 'Put' |
 *   'Delete', kv, prev_kv }] }`); the writes of one transaction arrive in
 *   one response.
 * - etcd3 reconnects a broken watch by itself ('disconnected' with the
 *   stream's error: a plain Error "14 UNAVAILABLE: ...", EtcdWatchStreamEnded
 *   or BrokenCircuitError; then 'connected') and resumes where it was: no
 *   event lost or doubled across an outage (t). It resumes from the
 *   revision after the last response's header, and a (re)connect sets that
 *   to the current revision before the replay arrives: a stream that breaks
 *   during a long replay could skip events. A store that wants to be sure
 *   keeps its own last mod_revision and, on 'disconnected', cancels and
 *   re-creates the watcher from it.
 * - Its reconnect backoff (`faultHandling.watchBackoff`, default cockatiel's
 *   ExponentialBackoff: 128 ms growing to 30 s, advanced twice per failure)
 *   grows through an outage: the watch came back 2 to 9 s after a restart
 *   in trials. Its timers are not unref'd and pile up, so after an outage a
 *   process lives up to 30 s past cancel() and close(). Give it a capped
 *   backoff, an object `{ duration, next: () => nextBackoff }` (t: 100 ms
 *   doubling to 1 s brings the watch back right after the writes).
 * - `WatchBuilder.ignore('put')` is `only('put')` in 1.1.2 (t).
 * - Always listen for 'error' on a Watcher: an unhandled one is thrown.
 * - Compaction (t): `client.kv.compact({ revision, physical: true })`. A
 *   get at an older revision rejects with GRPCOutOfRangeError "11
 *   OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted";
 *   the compact revision itself stays readable and watchable. A watch from
 *   an older revision is created, then emits 'error' with an EtcdError
 *   "Watcher canceled: " and is gone: etcd 3.4 sends the compact revision,
 *   etcd3 drops it. Relist the prefix and watch from the list's revision
 *   + 1. Never cancel() a watcher after its 'error': etcd still knows its
 *   id, so cancel() either never resolves (no other watcher on the stream)
 *   or crashes the process with an uncaught ClientRuntimeError "Failed to
 *   find watcher for IWatchResponse" (other watchers on the stream).
 *
 * Leases
 * - `client.lease(ttl)` grants at once and by default keeps itself alive: a
 *   keepalive every ttl/3 over one stream until revoke() or release(). etcd
 *   raises a TTL below ceil(1.5 × election timeout), 2 s here (t:
 *   `client.leaseClient.leaseTimeToLive({ ID })` → `grantedTTL`). `await
 *   lease.grant()` gives the id (string); `lease.put(k).value(v)` attaches
 *   a key.
 * - After release() (keepalives stop) the key is deleted, with a 'delete'
 *   event, about the granted TTL after the last keepalive (t: 1.8-2.3 s for
 *   2 s). Then keepaliveOnce() rejects with EtcdLeaseInvalidError and the
 *   lease emits 'lost' (t); 'lost' also comes when no keepalive succeeded
 *   for 2 × TTL (an outage).
 * - A process does not exit while an auto-keepalive lease or a watcher is
 *   open: revoke() or release() leases and cancel() watchers, then close()
 *   the client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, rm, symlink, unlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';

/** Options of startEtcdCluster and EtcdCluster.create; defaults in resolveOptions. */
export interface EtcdClusterOptions {
  /** Number of members (1 to 10; 3 by default). */
  members?: number;
  /** A short word in member names and the cluster token, for logs ("test"). */
  tag?: string;
  /** The etcd binary (/usr/bin/etcd). */
  etcdPath?: string;
  /** etcd's --log-level (warn): the logs go to a file per member. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** etcd's --heartbeat-interval in ms (100, etcd's default). */
  heartbeatMs?: number;
  /** etcd's --election-timeout in ms (1000, etcd's default). */
  electionMs?: number;
  /**
   * etcd's --max-txn-ops (128, etcd's default): a catalog batch is one
   * transaction of about two operations per service, so the benchmark's
   * batches of 1,000 services need more.
   */
  maxTxnOps?: number;
  /** etcd's --max-request-bytes (1.5 MiB, etcd's default). */
  maxRequestBytes?: number;
  /** How long startEtcdCluster waits for readiness (20 s). */
  readyTimeoutMs?: number;
  /** Where the cluster's directory goes (os.tmpdir()). */
  baseDir?: string;
}

type ResolvedOptions = Required<EtcdClusterOptions>;

function resolveOptions(opts: EtcdClusterOptions): ResolvedOptions {
  const o: ResolvedOptions = {
    members: opts.members ?? 3,
    tag: opts.tag ?? 'etcd',
    etcdPath: opts.etcdPath ?? '/usr/bin/etcd',
    logLevel: opts.logLevel ?? 'warn',
    heartbeatMs: opts.heartbeatMs ?? 100,
    electionMs: opts.electionMs ?? 1000,
    maxTxnOps: opts.maxTxnOps ?? 128,
    maxRequestBytes: opts.maxRequestBytes ?? 1572864,
    readyTimeoutMs: opts.readyTimeoutMs ?? 20_000,
    baseDir: opts.baseDir ?? tmpdir(),
  };
  if (!Number.isInteger(o.members) || o.members < 1 || o.members > PORT_BLOCK / 2) {
    throw new Error(`members: want 1 to ${PORT_BLOCK / 2}, got ${o.members}`);
  }
  if (!/^[a-z0-9-]{1,16}$/.test(o.tag)) throw new Error(`tag: want 1 to 16 of [a-z0-9-], got "${o.tag}"`);
  if (!existsSync(o.etcdPath)) throw new Error(`${o.etcdPath} not found: install Debian's etcd-server (scripts/setup.sh does)`);
  return o;
}

/** What is fixed about one member. */
export interface EtcdMemberInfo {
  /** Its --name (m0, m1, ...). */
  readonly name: string;
  /** "127.0.0.1:PORT" of its client URL. */
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** Its stdout and stderr (etcd's zap logs). */
  readonly logFile: string;
}

interface Member extends EtcdMemberInfo {
  child: ChildProcess | undefined;
  exited: Promise<void> | undefined;
  /** Stopped on purpose (stopMember), so its exit is not a failure. */
  stopped: boolean;
}

/** A member's first bind failure shows this in its log. */
const BIND_FAILURE = /address already in use/;
/** Ports claimed by clusters start here, well above etcd's 2379/2380. */
const PORT_FLOOR = 15000;
/** Ports per claim: client + peer for up to 10 members. */
const PORT_BLOCK = 20;
const STALE_DIR = /^sluice-etcd-(\d+)-/;
const PORT_LOCK = /^sluice-etcd-ports-(\d+)$/;
const READY_KEY = 'sluice-etcd-cluster/ready';
const SETPRIV = '/usr/bin/setpriv';

const pidAlive = (pid: number): boolean => existsSync(`/proc/${pid}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** Clusters of this process not destroyed yet, for the 'exit' hook. */
const live = new Set<EtcdCluster>();
let exitHooked = false;

/** A local etcd cluster; see the module's comment. */
export class EtcdCluster {
  /** "127.0.0.1:PORT" of each member's client URL (etcd3's `hosts`). */
  readonly endpoints: readonly string[];
  /** The same as one URL: etcd://127.0.0.1:P0,127.0.0.1:P1,... */
  readonly url: string;
  private destroyed: Promise<void> | undefined;

  private constructor(
    /** The cluster's directory (data dirs and logs), named after our pid. */
    readonly dir: string,
    private readonly portLock: string,
    private readonly memberList: Member[],
    private readonly opts: ResolvedOptions,
    private readonly token: string,
  ) {
    this.endpoints = memberList.map((m) => m.endpoint);
    this.url = `etcd://${this.endpoints.join(',')}`;
  }

  /**
   * Prepare a cluster (directories, ports) without starting it. Cleans what
   * SIGKILLed owners left first. startEtcdCluster is the usual way in.
   */
  static async create(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const opts = resolveOptions(options);
    await cleanStaleEtcdClusters(opts.baseDir);
    const { base, lock } = await claimPorts(opts.baseDir, opts.members * 2);
    let dir: string;
    try {
      dir = await mkdtemp(path.join(opts.baseDir, `sluice-etcd-${process.pid}-`));
    } catch (err) {
      await unlink(lock).catch(() => undefined);
      throw err;
    }
    const members: Member[] = Array.from({ length: opts.members }, (_, i) => ({
      name: `m${i}`,
      endpoint: `127.0.0.1:${base + 2 * i}`,
      clientPort: base + 2 * i,
      peerPort: base + 2 * i + 1,
      dataDir: path.join(dir, `m${i}`),
      logFile: path.join(dir, `m${i}.log`),
      child: undefined,
      exited: undefined,
      stopped: false,
    }));
    const token = `sluice-${opts.tag}-${process.pid}-${randomBytes(4).toString('hex')}`;
    const cluster = new EtcdCluster(dir, lock, members, opts, token);
    live.add(cluster);
    if (!exitHooked) {
      exitHooked = true;
      process.on('exit', () => {
        for (const c of live) c.destroySync();
      });
    }
    return cluster;
  }

  /** What is fixed about each member. */
  get members(): readonly EtcdMemberInfo[] {
    return this.memberList;
  }

  /** Start member i (with the data it has) unless it runs; does not wait for readiness. */
  async startMember(i: number): Promise<void> {
    const m = this.member(i);
    if (this.destroyed) throw new Error('the etcd cluster is destroyed');
    if (this.isRunning(i)) return;
    const { opts } = this;
    const initialCluster = this.memberList.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(',');
    const etcdArgs = [
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=http://${m.endpoint}`,
      `--advertise-client-urls=http://${m.endpoint}`,
      `--listen-peer-urls=http://127.0.0.1:${m.peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${m.peerPort}`,
      // Ignored by a member that has data: it rejoins as what its WAL says.
      `--initial-cluster=${initialCluster}`,
      '--initial-cluster-state=new',
      // Unique, so a member of another cluster on a reused port is refused.
      `--initial-cluster-token=${this.token}`,
      `--heartbeat-interval=${opts.heartbeatMs}`,
      `--election-timeout=${opts.electionMs}`,
      `--max-txn-ops=${opts.maxTxnOps}`,
      `--max-request-bytes=${opts.maxRequestBytes}`,
      '--logger=zap',
      '--log-outputs=stderr',
      `--log-level=${opts.logLevel}`,
    ];
    const [cmd, args] = existsSync(SETPRIV)
      ? [SETPRIV, ['--pdeathsig=KILL', '--', opts.etcdPath, ...etcdArgs]]
      : [opts.etcdPath, etcdArgs];
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^ETCD(CTL)?_/.test(k)) env[k] = v;
    const fd = openSync(m.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env });
    } finally {
      closeSync(fd);
    }
    m.child = child;
    m.stopped = false;
    m.exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    child.unref();
  }

  /** Start every member that is not running; does not wait for readiness. */
  async startAll(): Promise<void> {
    for (let i = 0; i < this.memberList.length; i++) await this.startMember(i);
  }

  /**
   * Send member i a signal and wait for it to end (SIGKILL after 10 s if the
   * signal does not end it). Its data directory stays.
   */
  async stopMember(i: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const m = this.member(i);
    const child = m.child;
    if (!child || !this.isRunning(i)) return;
    m.stopped = true;
    // A pending exit must keep the event loop alive while we wait for it.
    child.ref();
    try {
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await m.exited;
      clearTimeout(timer);
    } finally {
      child.unref();
    }
  }

  /** Stop every member with `signal`, all at once. */
  async stopAll(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await Promise.all(this.memberList.map((_, i) => this.stopMember(i, signal)));
  }

  /** Whether member i's process runs. */
  isRunning(i: number): boolean {
    const c = this.member(i).child;
    return c !== undefined && c.exitCode === null && c.signalCode === null && c.pid !== undefined;
  }

  /** Member i's pid while it runs. */
  pid(i: number): number | undefined {
    return this.isRunning(i) ? this.member(i).child!.pid : undefined;
  }

  /**
   * Wait until every running member agrees on a leader, a put through one of
   * them succeeds and a linearizable get on each returns it. Throws, with the
   * end of each member's log, if a member exits or the time runs out.
   */
  async waitReady(timeoutMs: number = this.opts.readyTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no attempt';
    for (;;) {
      const exited = this.memberList.filter((m, i) => m.child && !m.stopped && !this.isRunning(i));
      if (exited.length) {
        throw new Error(`etcd member ${exited.map((m) => `${m.name} (${m.child!.exitCode ?? m.child!.signalCode})`).join(', ')} exited\n${this.logTails()}`);
      }
      const running = this.memberList.filter((_, i) => this.isRunning(i));
      if (!running.length) throw new Error('waitReady: no etcd member is running');
      try {
        await this.probe(running);
        return;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`etcd cluster not ready within ${timeoutMs} ms: ${last}\n${this.logTails()}`);
      await sleep(100);
    }
  }

  /** The index of the member that is leader now, as its peers see it. */
  async leader(): Promise<number | undefined> {
    const running = this.memberList.filter((_, i) => this.isRunning(i));
    const statuses = await Promise.all(running.map((m) => status(m).catch(() => undefined)));
    const leader = statuses.find((s) => s && s.leader !== '0')?.leader;
    if (leader === undefined) return undefined;
    const i = statuses.findIndex((s) => s?.memberId === leader);
    return i < 0 ? undefined : this.memberList.indexOf(running[i]!);
  }

  /** The last `lines` lines of each member's log, labelled, for failure messages. */
  logTails(lines = 15): string {
    return this.memberList
      .map((m) => {
        let text = '';
        try {
          text = readFileSync(m.logFile, 'utf8');
        } catch {
          text = '(no log)';
        }
        const tail = text.trimEnd().split('\n').slice(-lines).join('\n');
        return `--- ${m.name} (${m.endpoint}) ${m.logFile}\n${tail}`;
      })
      .join('\n');
  }

  /** Kill every member, remove the directory and the port claim. Idempotent. */
  destroy(): Promise<void> {
    return (this.destroyed ??= this.destroyOnce());
  }

  private async destroyOnce(): Promise<void> {
    await this.stopAll('SIGKILL').catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
    await unlink(this.portLock).catch(() => undefined);
    live.delete(this);
  }

  /** destroy() for the 'exit' hook, where nothing asynchronous runs. */
  private destroySync(): void {
    for (const m of this.memberList) {
      if (m.child?.pid && m.child.exitCode === null && m.child.signalCode === null) {
        try {
          process.kill(m.child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
    try {
      unlinkSync(this.portLock);
    } catch {
      /* gone */
    }
  }

  private member(i: number): Member {
    const m = this.memberList[i];
    if (!m) throw new Error(`no etcd member ${i} (the cluster has ${this.memberList.length})`);
    return m;
  }

  private async probe(running: Member[]): Promise<void> {
    const statuses = await Promise.all(running.map((m) => status(m)));
    const leaders = new Set(statuses.map((s) => s.leader));
    if (leaders.has('0') || leaders.size !== 1) {
      throw new Error(`no agreed leader: ${running.map((m, i) => `${m.name}→${statuses[i]!.leader}`).join(' ')}`);
    }
    const token = randomBytes(8).toString('hex');
    await gateway(running[0]!, 'kv/put', { key: b64(READY_KEY), value: b64(token) });
    for (const m of running) {
      const r = (await gateway(m, 'kv/range', { key: b64(READY_KEY) })) as { kvs?: { value?: string }[] };
      const got = Buffer.from(r.kvs?.[0]?.value ?? '', 'base64').toString();
      if (got !== token) throw new Error(`${m.name} read ${READY_KEY}="${got}", want "${token}"`);
    }
  }
}

/** Create a cluster, start it and wait until it is ready (retrying on another port block if a port was taken). */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  for (let attempt = 1; ; attempt++) {
    const cluster = await EtcdCluster.create(options);
    try {
      await cluster.startAll();
      await cluster.waitReady();
      return cluster;
    } catch (err) {
      const bindFailure = BIND_FAILURE.test(cluster.logTails(50));
      await cluster.destroy();
      if (!bindFailure || attempt >= 3) throw err;
    }
  }
}

async function gateway(m: EtcdMemberInfo, route: string, body: object): Promise<unknown> {
  const res = await fetch(`http://${m.endpoint}/v3/${route}`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(2000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${m.name} /v3/${route}: HTTP ${res.status} ${text.trim()}`);
  return JSON.parse(text) as unknown;
}

async function status(m: EtcdMemberInfo): Promise<{ memberId: string; leader: string }> {
  const s = (await gateway(m, 'maintenance/status', {})) as { header?: { member_id?: string }; leader?: string };
  return { memberId: s.header?.member_id ?? '', leader: s.leader ?? '0' };
}

/** The first port of the ephemeral range; ports from there on are the kernel's to hand out. */
function ephemeralFloor(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32768;
  } catch {
    return 32768;
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Claim a block of ports below the ephemeral range: an atomic symlink named after it, pointing at our pid. */
async function claimPorts(baseDir: string, count: number): Promise<{ base: number; lock: string }> {
  const blocks = Math.floor((ephemeralFloor() - PORT_FLOOR) / PORT_BLOCK);
  if (blocks < 1) throw new Error(`no room for etcd ports between ${PORT_FLOOR} and the ephemeral range (${ephemeralFloor()})`);
  const first = randomInt(blocks);
  for (let n = 0; n < blocks; n++) {
    const base = PORT_FLOOR + ((first + n) % blocks) * PORT_BLOCK;
    const lock = path.join(baseDir, `sluice-etcd-ports-${base}`);
    try {
      await symlink(String(process.pid), lock);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw err;
    }
    let free = true;
    for (let p = base; p < base + count && free; p++) free = await portFree(p);
    if (free) return { base, lock };
    await unlink(lock).catch(() => undefined);
  }
  throw new Error(`no free block of ${count} ports between ${PORT_FLOOR} and ${ephemeralFloor()}`);
}

/**
 * Remove what clusters of processes that no longer exist left behind:
 * kill etcd processes whose --data-dir is in a `sluice-etcd-<pid>-*`
 * directory of a dead pid, remove those directories and the port claims of
 * dead pids. Returns what it did.
 */
export async function cleanStaleEtcdClusters(baseDir: string = tmpdir()): Promise<{ killed: number[]; removed: string[] }> {
  const killed: number[] = [];
  const removed: string[] = [];
  const stale = (name: string, re: RegExp): boolean => {
    const m = re.exec(name);
    return m !== null && !pidAlive(Number(m[1]));
  };
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await readFile(`/proc/${entry}/cmdline`, 'utf8').then((s) => s.split('\0'), () => [] as string[]);
    const dataDir = argv.find((a) => a.startsWith('--data-dir='))?.slice('--data-dir='.length);
    if (!dataDir || path.dirname(path.dirname(dataDir)) !== baseDir) continue;
    if (!stale(path.basename(path.dirname(dataDir)), STALE_DIR)) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
      killed.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  for (const name of await readdir(baseDir).catch(() => [] as string[])) {
    const full = path.join(baseDir, name);
    if (stale(name, STALE_DIR)) {
      await rm(full, { recursive: true, force: true });
      removed.push(full);
    } else if (PORT_LOCK.test(name)) {
      const owner = await readlink(full).catch(() => '');
      if (/^\d+$/.test(owner) && !pidAlive(Number(owner))) {
        await unlink(full).catch(() => undefined);
        removed.push(full);
      }
    }
  }
  return { killed, removed };
}
