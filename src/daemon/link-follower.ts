/**
 * Follow the links of a network namespace whose names match glob patterns
 * (`veth*`, `cali*`, `lxc*`: pods' host-side interfaces, which come and go
 * with their pods) and keep the tc program attached to each: ingress, and
 * egress too unless told otherwise.
 *
 * Links are watched through a child `ip -o monitor link` (entered into the
 * namespace with nsenter), and listed again (`ip -j link show`) at start,
 * every `relistMs` and whenever the monitor had to be started again, so that
 * an event missed while nothing listened, or a hook someone emptied, is
 * caught up with. A matching link is attached when it appears; one that
 * goes is forgotten (the kernel removes its hooks with it); one renamed to
 * a name that no longer matches has this dataplane's programs taken off. A
 * link that never matched is never touched. A hook that holds someone
 * else's program is left alone (unless `force`) and reported once.
 *
 * Why a child process and not a netlink library: `ip monitor` is iproute2's
 * own, present wherever sluice attaches tc, and a relist covers what a
 * monitor could miss; the npm netlink bindings are native addons of one
 * maintainer, not updated for years, which would add a second native build
 * for one event stream.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { AttachTarget, Dataplane } from '../dataplane/dataplane.js';
import { SluiceError } from '../errors.js';

const run = promisify(execFile);

/** A link the follower keeps the programs on. */
export interface FollowedLink {
  ifname: string;
  ifindex: number;
}

/** Options of LinkFollower.start. */
export interface LinkFollowerOptions {
  /** Glob patterns of interface names (`*` any run of characters, `?` one). */
  patterns: readonly string[];
  /** The network namespace (a path such as /var/run/netns/node); default the process's own. */
  netns?: string;
  /** Where the programs are attached. */
  dataplane: Pick<Dataplane, 'attach' | 'isAttached' | 'detach'>;
  /** Attach at clsact egress too (default true). */
  egress?: boolean;
  /** Replace someone else's program in a matching link's hook. */
  force?: boolean;
  logger: Logger;
  /** How often every link is listed again, ms (default 10,000). */
  relistMs?: number;
}

/** A glob of interface names as a regular expression. */
export function globToRegExp(pattern: string): RegExp {
  const body = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`);
}

/** One line of `ip -o monitor link`: "3: veth1@if2: <...> ..." or "Deleted 3: veth1@NONE: ...". */
export function parseMonitorLine(line: string): { deleted: boolean; ifindex: number; ifname: string } | null {
  const m = /^(Deleted )?(\d+): ([^:@\s]+)(?:@[^:\s]*)?:/.exec(line);
  return m ? { deleted: m[1] !== undefined, ifindex: Number(m[2]), ifname: m[3]! } : null;
}

/**
 * The monitor's shell: `ip monitor` runs until this process's end of
 * standard input, which comes when the daemon stops it or dies (even by
 * SIGKILL), so that no monitor outlives it and keeps its namespace alive.
 * The reader takes standard input through fd 3: a background list of a
 * shell without job control reads /dev/null otherwise.
 */
const MONITOR_SCRIPT = 'exec 3<&0; ip -o monitor link </dev/null & m=$!; { read -r _ <&3; kill $m 2>/dev/null; } & wait $m';

/** Keeps the tc program on the matching links of one namespace. */
export class LinkFollower {
  private readonly followed = new Map<number, FollowedLink>();
  private readonly refused = new Set<string>();
  private readonly matchers: RegExp[];
  private readonly log: Logger;
  private monitor: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Every change goes through this chain, one at a time. */
  private queue: Promise<void> = Promise.resolve();

  private constructor(private readonly o: LinkFollowerOptions) {
    this.matchers = o.patterns.map(globToRegExp);
    this.log = o.logger.child({ component: 'link-follower', netns: o.netns, patterns: o.patterns });
  }

  /** Start following: the monitor, then every link there is now. Rejects if the links cannot be listed. */
  static async start(o: LinkFollowerOptions): Promise<LinkFollower> {
    const f = new LinkFollower(o);
    f.startMonitor();
    try {
      await f.resync();
    } catch (err) {
      await f.stop();
      throw err;
    }
    f.timer = setInterval(() => void f.resync().catch((err: unknown) => f.log.warn({ err }, 'listing links failed')), o.relistMs ?? 10_000);
    f.timer.unref();
    return f;
  }

  /** Whether `ifname` is one of the followed names. */
  matches(ifname: string): boolean {
    return this.matchers.some((r) => r.test(ifname));
  }

  /** The links followed now. */
  links(): FollowedLink[] {
    return [...this.followed.values()].map((l) => ({ ...l }));
  }

  /** List the links and bring the hooks in line with them (also what the timer does). */
  resync(): Promise<void> {
    return this.enqueue(async () => {
      const links = await this.listLinks();
      const present = new Set(links.map((l) => l.ifindex));
      for (const [ifindex, l] of this.followed) {
        if (!present.has(ifindex)) this.forget(l);
      }
      for (const l of links) {
        const had = this.followed.get(l.ifindex);
        if (had && had.ifname !== l.ifname && !this.matches(l.ifname)) this.renamedAway(had, l.ifname);
        else if (this.matches(l.ifname)) this.ensure(l, had !== undefined);
      }
    });
  }

  /** Stop the monitor and the timer; the programs stay on the links. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.restartTimer);
    const m = this.monitor;
    this.monitor = undefined;
    if (m && m.exitCode === null && m.signalCode === null) {
      const exited = new Promise<void>((r) => m.once('exit', () => r()));
      m.stdin?.end();
      const kill = setTimeout(() => m.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(kill);
    }
    await this.queue;
  }

  /** Take this dataplane's programs off every followed link (--detach-on-exit). */
  detachAll(): void {
    for (const l of this.followed.values()) {
      try {
        this.o.dataplane.detach(this.target(l.ifname));
      } catch (err) {
        this.log.warn({ err, ifname: l.ifname }, 'detach failed');
      }
    }
    this.followed.clear();
  }

  private target(ifname: string): AttachTarget {
    return { ifname, mode: 'tc', egress: this.o.egress ?? true, ...(this.o.netns === undefined ? {} : { netns: this.o.netns }) };
  }

  private enqueue(step: () => void | Promise<void>): Promise<void> {
    const next = this.queue.then(step);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Attach to a matching link unless its hooks already run the program. */
  private ensure(l: FollowedLink, known: boolean): void {
    const t = this.target(l.ifname);
    try {
      if (known && this.o.dataplane.isAttached(t)) return;
      this.o.dataplane.attach(t, { force: this.o.force ?? false });
    } catch (err) {
      const code = (err as { code?: string }).code;
      // Gone (or renamed) between the event or the list and the attach: the next event or list says what became of it.
      if (code === 'ENODEV' || code === 'ENXIO' || code === 'ENOENT') {
        this.log.debug({ ifname: l.ifname, err }, 'link gone before it was attached');
        return;
      }
      const key = `${l.ifindex}/${l.ifname}`;
      if (!this.refused.has(key)) {
        this.refused.add(key);
        const refusedHook = err instanceof SluiceError && err.code === 'FAILED_PRECONDITION';
        this.log.error({ ifname: l.ifname, ifindex: l.ifindex, err }, refusedHook ? 'not attached: the hook runs another program (--force to replace it)' : 'attach failed');
      }
      this.followed.delete(l.ifindex);
      return;
    }
    this.followed.set(l.ifindex, { ...l });
    this.log.info({ ifname: l.ifname, ifindex: l.ifindex, again: known }, known ? 'link\'s hook was empty: attached again' : 'following link: attached');
  }

  private forget(l: FollowedLink): void {
    this.followed.delete(l.ifindex);
    this.refused.delete(`${l.ifindex}/${l.ifname}`);
    this.log.info({ ifname: l.ifname, ifindex: l.ifindex }, 'link gone: forgotten');
  }

  /** A followed link renamed to a name that does not match: this dataplane's programs come off it. */
  private renamedAway(l: FollowedLink, now: string): void {
    this.followed.delete(l.ifindex);
    try {
      this.o.dataplane.detach(this.target(now));
    } catch (err) {
      this.log.debug({ err, ifname: now }, 'detach after a rename failed');
    }
    this.log.info({ was: l.ifname, ifname: now, ifindex: l.ifindex }, 'link renamed to a name not followed: detached');
  }

  private onEvent(line: string): void {
    const e = parseMonitorLine(line);
    if (!e) return;
    void this.enqueue(() => {
      const had = this.followed.get(e.ifindex);
      if (e.deleted) {
        if (had) this.forget(had);
      } else if (had && had.ifname !== e.ifname && !this.matches(e.ifname)) {
        this.renamedAway(had, e.ifname);
      } else if (this.matches(e.ifname) && had?.ifname !== e.ifname) {
        this.ensure({ ifindex: e.ifindex, ifname: e.ifname }, false);
      }
    });
  }

  private command(args: string[]): [string, string[]] {
    return this.o.netns === undefined ? [args[0]!, args.slice(1)] : ['nsenter', [`--net=${this.o.netns}`, ...args]];
  }

  private startMonitor(): void {
    if (this.stopped) return;
    const [cmd, args] = this.command(['sh', '-c', MONITOR_SCRIPT]);
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.monitor = child;
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-500)));
    child.on('error', (err) => this.log.error({ err }, 'link monitor could not start'));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => this.onEvent(line));
    child.on('exit', (code, signal) => {
      child.stdin?.destroy();
      if (this.stopped || this.monitor !== child) return;
      this.log.warn({ code, signal, stderr: stderr.trim() }, 'link monitor ended: started again, links listed again');
      this.restartTimer = setTimeout(() => {
        this.startMonitor();
        void this.resync().catch((err: unknown) => this.log.warn({ err }, 'listing links failed'));
      }, 1000);
      this.restartTimer.unref();
    });
  }

  private async listLinks(): Promise<FollowedLink[]> {
    const [cmd, args] = this.command(['ip', '-j', 'link', 'show']);
    let stdout: string;
    try {
      ({ stdout } = await run(cmd, args, { maxBuffer: 64 << 20 }));
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new SluiceError('UNAVAILABLE', `listing links${this.o.netns ? ` in ${this.o.netns}` : ''}: ${(e.stderr ?? e.message).trim()}`, { cause: err });
    }
    return (JSON.parse(stdout) as Array<{ ifindex: number; ifname: string }>).map((l) => ({ ifindex: l.ifindex, ifname: l.ifname }));
  }
}
