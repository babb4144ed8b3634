/**
 * A small agent that runs inside a network namespace (started with
 * `ip netns exec NS node ns-agent.js`) and takes JSON commands, one per line,
 * on stdin; each answer is one JSON line on stdout with the same id.
 *
 * It plays both roles of the demo and the end-to-end tests: a backend (real
 * HTTP and UDP servers that count what they see) and a client (real HTTP
 * requests, each on a new connection unless a persistent one is asked for,
 * and real UDP datagrams, each from a new source port).
 *
 * Its servers listen on both families (one dual-stack socket each, bound to
 * "::"); an IPv4 peer, which such a socket sees as "::ffff:10.77.1.2", is
 * counted under its IPv4 text, so IPv4 callers see the same strings as from
 * an IPv4 socket. As a client it speaks the family of the address it is
 * given: `http://[fd96::10]:80/`, or `fd96::10` for UDP and probes.
 */
import http from 'node:http';
import dgram from 'node:dgram';
import net from 'node:net';
import readline from 'node:readline';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';

/** A command to the agent. */
export type AgentCommand =
  | { op: 'serve'; name: string; httpPort: number; udpPort: number }
  | { op: 'stats' }
  | { op: 'http'; url: string; count: number; concurrency?: number; timeoutMs?: number }
  | { op: 'udp'; host: string; port: number; count: number; concurrency?: number; timeoutMs?: number; srcPortBase?: number }
  | { op: 'probe'; host: string; port: number; protocol: 'tcp' | 'udp'; timeoutMs: number }
  | { op: 'open'; url: string }
  | { op: 'request'; conn: number }
  | { op: 'close'; conn: number }
  | { op: 'unserve' }
  | { op: 'reserve' }
  | { op: 'healthz'; status: number }
  | { op: 'grpc-serve'; port: number }
  | { op: 'grpc-status'; status: 'SERVING' | 'NOT_SERVING' };

/** What a server saw. */
export interface ServerStats {
  httpRequests: number;
  httpBytes: number;
  httpConnections: number;
  udpDatagrams: number;
  udpBytes: number;
  /** HTTP connections by the client address the server saw (IPv4 as dotted text, never v4-mapped). */
  httpPeers: Record<string, number>;
  /**
   * HTTP connections by the server's own address they were made to (IPv4 as
   * dotted text): which of its addresses, and so which family, a load
   * balancer sent them to.
   */
  httpLocals: Record<string, number>;
  /** UDP datagrams by the client address the server saw (IPv4 as dotted text, never v4-mapped). */
  udpPeers: Record<string, number>;
}

/**
 * What one probe of a service port met: a TCP connection or a UDP answer,
 * a refusal (a RST to the SYN, ICMP port unreachable to the datagram, both
 * ECONNREFUSED), another error code, or nothing within the time given.
 */
export interface ProbeResult {
  outcome: 'connected' | 'answered' | 'timeout' | string;
  /** Milliseconds from the connect (or send) to the outcome. */
  ms: number;
}

/** Outcome of a batch of client requests. */
export interface BatchResult {
  ok: number;
  failed: number;
  /** answers per backend name */
  byBackend: Record<string, number>;
  /** UDP: answers by the address and port they came from, as recvmsg reported it ("10.96.0.10:53", "[fd96::10]:53"). */
  replyFrom: Record<string, number>;
  errors: string[];
}

const stats: ServerStats = { httpRequests: 0, httpBytes: 0, httpConnections: 0, udpDatagrams: 0, udpBytes: 0, httpPeers: {}, httpLocals: {}, udpPeers: {} };
const count = (m: Record<string, number>, k: string | undefined): void => {
  const key = k ?? 'unknown';
  m[key] = (m[key] ?? 0) + 1;
};
/** Where a dual-stack server listens: every address of both families. */
const ANY = '::';
const V4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** An address as its family writes it: "::ffff:10.77.1.2" (an IPv4 end of a dual-stack socket) is "10.77.1.2". */
function peerAddress(address: string | undefined): string | undefined {
  return address === undefined ? undefined : (V4_MAPPED.exec(address)?.[1] ?? address);
}

/** "10.96.0.10:53", "[fd96::10]:53". */
function endpoint(address: string, port: number): string {
  return net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

/** A UDP socket of the family of `host` (an address, either family). */
function udpSocketFor(host: string): dgram.Socket {
  return dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
}

const servers: Array<{ close(): void }> = [];
/** The HTTP server and its port, to stop listening and listen again (unserve, reserve). */
let httpServer: { srv: http.Server; port: number } | undefined;
/** What GET /healthz answers (not counted in the stats: it is the health checks'). */
let healthzStatus = 200;
let grpcHealth: HealthImplementation | undefined;

function serve(name: string, httpPort: number, udpPort: number): Promise<{ httpPort: number; udpPort: number }> {
  return new Promise((resolve, reject) => {
    const srv = http.createServer((req, res) => {
      if (req.url === '/healthz') {
        res.writeHead(healthzStatus, { 'content-type': 'text/plain' });
        res.end(`${healthzStatus}\n`);
        return;
      }
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => {
        stats.httpRequests++;
        const body = `${name}\n`;
        stats.httpBytes += bytes + body.length;
        res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name, 'content-length': body.length });
        res.end(body);
      });
    });
    srv.keepAliveTimeout = 60_000;
    srv.on('connection', (sock: import('node:net').Socket) => {
      stats.httpConnections++;
      count(stats.httpPeers, peerAddress(sock.remoteAddress));
      count(stats.httpLocals, peerAddress(sock.localAddress));
    });
    srv.on('error', reject);
    const udp = dgram.createSocket({ type: 'udp6', ipv6Only: false });
    udp.on('message', (msg, rinfo) => {
      stats.udpDatagrams++;
      stats.udpBytes += msg.length;
      count(stats.udpPeers, peerAddress(rinfo.address));
      udp.send(Buffer.from(name), rinfo.port, rinfo.address);
    });
    udp.on('error', reject);
    srv.listen({ port: httpPort, host: ANY, ipv6Only: false }, () => {
      udp.bind(udpPort, ANY, () => {
        servers.push(srv, udp);
        httpServer = { srv, port: (srv.address() as AddressInfo).port };
        resolve({ httpPort: (srv.address() as AddressInfo).port, udpPort: udp.address().port });
      });
    });
  });
}

function httpOnce(url: string, agent: http.Agent | false, timeoutMs: number): Promise<{ backend: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
        else resolve({ backend: body.trim(), reused: req.reusedSocket });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

function udpOnce(host: string, port: number, timeoutMs: number, srcPort: number | undefined, from: Record<string, number>): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = udpSocketFor(host);
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`UDP timeout after ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('message', (msg, rinfo) => {
      clearTimeout(timer);
      s.close();
      count(from, endpoint(rinfo.address, rinfo.port));
      resolve(msg.toString());
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      s.close();
      reject(err);
    });
    const send = (): void => s.send(Buffer.from('ping from sluice client'), port, host);
    // An explicit source port makes every datagram its own flow; an
    // ephemeral one may repeat a recent port (and so a flow).
    if (srcPort === undefined) send();
    else s.bind(srcPort, send);
  });
}

/**
 * One TCP connect, or one datagram on a connected UDP socket (the kernel
 * reports an ICMP error to a connected socket only), and what came of it.
 */
function probe(host: string, port: number, protocol: 'tcp' | 'udp', timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const start = performance.now();
    let close = (): void => undefined;
    let settled = false;
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    const done = (outcome: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      close();
      resolve({ outcome, ms: Math.round(performance.now() - start) });
    };
    const failed = (err: NodeJS.ErrnoException): void => done(err.code ?? err.message);
    if (protocol === 'tcp') {
      const s = net.connect({ host, port });
      close = () => s.destroy();
      s.on('connect', () => done('connected'));
      s.on('error', failed);
    } else {
      const s = udpSocketFor(host);
      close = () => s.close();
      s.on('message', () => done('answered'));
      s.on('error', failed);
      s.connect(port, host, () => s.send(Buffer.from('probe from sluice client')));
    }
  });
}

async function batch(count: number, concurrency: number, one: (i: number, out: BatchResult) => Promise<string>): Promise<BatchResult> {
  const out: BatchResult = { ok: 0, failed: 0, byBackend: {}, replyFrom: {}, errors: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      try {
        const b = await one(i, out);
        out.ok++;
        out.byBackend[b] = (out.byBackend[b] ?? 0) + 1;
      } catch (err) {
        out.failed++;
        if (out.errors.length < 5) out.errors.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  return out;
}

const conns = new Map<number, { url: string; agent: http.Agent }>();
let nextConn = 1;

async function handle(cmd: AgentCommand): Promise<unknown> {
  switch (cmd.op) {
    case 'serve':
      return serve(cmd.name, cmd.httpPort, cmd.udpPort);
    case 'stats':
      return { ...stats };
    case 'http':
      return batch(cmd.count, cmd.concurrency ?? 8, async () => (await httpOnce(cmd.url, false, cmd.timeoutMs ?? 3000)).backend);
    case 'udp':
      return batch(cmd.count, cmd.concurrency ?? 8, (i, out) =>
        udpOnce(cmd.host, cmd.port, cmd.timeoutMs ?? 2000, cmd.srcPortBase === undefined ? undefined : cmd.srcPortBase + i, out.replyFrom));
    case 'probe':
      return probe(cmd.host, cmd.port, cmd.protocol, cmd.timeoutMs);
    case 'open': {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1, keepAliveMsecs: 1000 });
      const id = nextConn++;
      conns.set(id, { url: cmd.url, agent });
      const r = await httpOnce(cmd.url, agent, 3000);
      return { conn: id, backend: r.backend };
    }
    case 'request': {
      const c = conns.get(cmd.conn);
      if (!c) throw new Error(`no connection ${cmd.conn}`);
      const r = await httpOnce(c.url, c.agent, 3000);
      // A new socket would mean the long-lived connection broke.
      if (!r.reused) throw new Error('the persistent connection was not reused (it broke)');
      return { backend: r.backend };
    }
    case 'close': {
      conns.get(cmd.conn)?.agent.destroy();
      conns.delete(cmd.conn);
      return {};
    }
    case 'unserve': {
      // Stop listening: new connections are refused; open ones stay.
      const h = httpServer;
      if (!h) throw new Error('no HTTP server');
      if (h.srv.listening) await new Promise<void>((resolve) => { h.srv.close(() => resolve()); });
      return {};
    }
    case 'reserve': {
      const h = httpServer;
      if (!h) throw new Error('no HTTP server');
      if (!h.srv.listening) await new Promise<void>((resolve, reject) => { h.srv.once('error', reject); h.srv.listen({ port: h.port, host: ANY, ipv6Only: false }, () => resolve()); });
      return {};
    }
    case 'healthz':
      healthzStatus = cmd.status;
      return {};
    case 'grpc-serve': {
      grpcHealth = new HealthImplementation({ '': 'SERVING' });
      const server = new grpc.Server();
      grpcHealth.addToServer(server);
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(`[${ANY}]:${cmd.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
      servers.push({ close: () => server.forceShutdown() });
      return { port };
    }
    case 'grpc-status':
      if (!grpcHealth) throw new Error('no gRPC server');
      grpcHealth.setStatus('', cmd.status);
      return {};
  }
}

function main(): void {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let msg: { id: number } & AgentCommand;
    try {
      msg = JSON.parse(line) as { id: number } & AgentCommand;
    } catch {
      return;
    }
    handle(msg).then(
      (result) => process.stdout.write(JSON.stringify({ id: msg.id, result }) + '\n'),
      (err: Error) => process.stdout.write(JSON.stringify({ id: msg.id, error: err.message }) + '\n'),
    );
  });
  // The parent going away (stdin closed) ends the agent: nothing is left behind.
  rl.on('close', () => {
    for (const s of servers) s.close();
    for (const c of conns.values()) c.agent.destroy();
    process.exit(0);
  });
  process.stdout.write(JSON.stringify({ id: 0, result: { ready: true, pid: process.pid } }) + '\n');
}

main();
