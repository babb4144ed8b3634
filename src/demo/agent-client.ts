/**
 * The parent side of ns-agent: spawn an agent inside a namespace and call it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { packageRoot } from '../package-root.js';
import type { AgentCommand, BatchResult, ProbeResult, ServerStats } from './ns-agent.js';

/**
 * The URL of `path` on an HTTP server at `address` (either family):
 * `http://10.96.0.10:80/`, `http://[fd96::10]:80/`.
 */
export function httpUrl(address: string, port: number, path = '/'): string {
  return `http://${address.includes(':') ? `[${address}]` : address}:${port}${path}`;
}

/** Where the compiled agent lives (dist/src/demo/ns-agent.js). */
function agentPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const local = path.join(here, 'ns-agent.js');
  if (existsSync(local)) return local;
  // Running from src/ under tsx: use the compiled copy.
  return path.join(packageRoot(), 'dist', 'src', 'demo', 'ns-agent.js');
}

/** A running agent. */
export class Agent {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private nextId = 1;
  private exited = false;
  /** Resolves when the agent said it is ready. */
  readonly ready: Promise<void>;

  /**
   * Start an agent in namespace `ns`; with `cgroup` (a cgroup v2
   * directory), the agent runs in that cgroup from its first instruction
   * (its shell moves itself there before it becomes the agent).
   */
  constructor(readonly ns: string, opts: { cgroup?: string } = {}) {
    const argv = ['ip', 'netns', 'exec', ns, process.execPath, agentPath()];
    this.child = opts.cgroup === undefined
      ? spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] })
      : spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', opts.cgroup, ...argv], { stdio: ['pipe', 'pipe', 'inherit'] });
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    this.pending.set(0, { resolve: () => readyResolve(), reject: readyReject });
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let msg: { id: number; result?: unknown; error?: string };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(`agent in ${ns}: ${msg.error}`));
      else p.resolve(msg.result);
    });
    this.child.on('exit', (code) => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`agent in ${ns} exited (${code})`));
      this.pending.clear();
    });
  }

  /** Send one command and wait for its answer. */
  call<T>(cmd: AgentCommand): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`agent in ${this.ns} has exited`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: (v) => resolve(v as T), reject });
      this.child.stdin!.write(JSON.stringify({ id, ...cmd }) + '\n');
    });
  }

  /** Start HTTP and UDP servers that answer with `name`. */
  serve(name: string, httpPort: number, udpPort: number): Promise<{ httpPort: number; udpPort: number }> {
    return this.call({ op: 'serve', name, httpPort, udpPort });
  }

  /** What this agent's servers saw. */
  stats(): Promise<ServerStats> {
    return this.call({ op: 'stats' });
  }

  /** `count` HTTP GETs, each on a new connection (an IPv6 host in brackets: httpUrl makes the URL). */
  http(url: string, count: number, concurrency = 8): Promise<BatchResult> {
    return this.call({ op: 'http', url, count, concurrency });
  }

  /**
   * `count` UDP datagrams, each from a new socket of `host`'s family, each
   * awaiting its answer; with `srcPortBase`, datagram i comes from port
   * srcPortBase + i.
   */
  udp(host: string, port: number, count: number, concurrency = 8, srcPortBase?: number): Promise<BatchResult> {
    return this.call(srcPortBase === undefined
      ? { op: 'udp', host, port, count, concurrency }
      : { op: 'udp', host, port, count, concurrency, srcPortBase });
  }

  /** One TCP connect or one UDP datagram (on a connected socket) to host:port, and what came of it. */
  probe(host: string, port: number, protocol: 'tcp' | 'udp', timeoutMs: number): Promise<ProbeResult> {
    return this.call({ op: 'probe', host, port, protocol, timeoutMs });
  }

  /** Open a persistent HTTP connection; returns its id and the backend that answered. */
  open(url: string): Promise<{ conn: number; backend: string }> {
    return this.call({ op: 'open', url });
  }

  /** One more request on a persistent connection (fails if the connection broke). */
  request(conn: number): Promise<{ backend: string }> {
    return this.call({ op: 'request', conn });
  }

  /** Stop the HTTP server listening (connects are refused; open connections stay). */
  unserve(): Promise<void> {
    return this.call({ op: 'unserve' });
  }

  /** Listen again on the HTTP server's port. */
  reserve(): Promise<void> {
    return this.call({ op: 'reserve' });
  }

  /** What GET /healthz answers from now on. */
  healthz(status: number): Promise<void> {
    return this.call({ op: 'healthz', status });
  }

  /** Start a gRPC server with grpc.health.v1 (the server as a whole SERVING); returns its port. */
  grpcServe(port: number): Promise<{ port: number }> {
    return this.call({ op: 'grpc-serve', port });
  }

  /** Set the gRPC server's health ("" service). */
  grpcStatus(status: 'SERVING' | 'NOT_SERVING'): Promise<void> {
    return this.call({ op: 'grpc-status', status });
  }

  /** Stop the agent (closing stdin ends it). Idempotent. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((res) => this.child.once('exit', () => res()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await done;
    clearTimeout(timer);
  }
}
