/**
 * The node's DNS server: the zone of its services (zone.ts) answered by a
 * responder (responder.ts) over UDP and TCP on one address and port. TCP
 * carries each message after its 2-byte length (RFC 1035 §4.2.2, RFC 7766),
 * several per connection, answered in order; an idle connection is closed.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import { DnsResponder, type ResponderStats } from './responder.js';
import { DnsZone, type ZoneView } from './zone.js';

/** An idle TCP connection is closed after this long (RFC 7766 §6.2.3 suggests seconds). */
export const TCP_IDLE_MS = 10_000;
/** TCP connections served at once; more are refused until some close. */
export const TCP_MAX_CONNECTIONS = 1024;
/** Socket buffers for UDP, so bursts of queries are not dropped by the kernel while a batch is answered. */
const UDP_BUFFER_BYTES = 4 << 20;

/** Options of the DNS server. */
export interface DnsServerOptions {
  view: ZoneView;
  /** The zone (names.ts zoneProblem checks it). */
  zone: string;
  /** Where to listen: UDP and TCP on the same port (port 0: any free port, the same for both). */
  host: string;
  port: number;
  /** Seconds. */
  ttl: number;
  logger?: Logger;
  /** The option the address came from, for errors ("dnsBindAddress"). */
  field?: string;
}

/** A running DNS server. */
export interface DnsServer {
  /** "127.0.0.1:5353" (IPv6 in brackets). */
  readonly address: string;
  readonly port: number;
  readonly zone: DnsZone;
  stats(): ResponderStats;
  close(): Promise<void>;
}

/** Start answering for the view's services; FAILED_PRECONDITION naming `field` when the address cannot be bound. */
export async function startDnsServer(o: DnsServerOptions): Promise<DnsServer> {
  const field = o.field ?? 'dnsBindAddress';
  const v6 = net.isIPv6(o.host);
  const zone = new DnsZone({ view: o.view, zone: o.zone });
  zone.start();
  // The apex's address record (the NS target's address, A or AAAA) when the
  // server listens on one address rather than on all of a family's.
  const apexAddresses = net.isIP(o.host) !== 0 && !unspecified(o.host) ? [o.host] : [];
  const responder = new DnsResponder({ zone, ttl: o.ttl, apexAddresses });
  const fail = (err: NodeJS.ErrnoException, proto: string): SluiceError =>
    new SluiceError('FAILED_PRECONDITION', `cannot listen for DNS (${proto}) on ${v6 ? `[${o.host}]` : o.host}:${o.port}: ${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ' (another DNS server there?)' : ''}`, { field, cause: err });

  const udp = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', recvBufferSize: UDP_BUFFER_BYTES, sendBufferSize: UDP_BUFFER_BYTES });
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: o.host, port: o.port, exclusive: true }, () => {
        udp.off('error', reject);
        resolve(udp.address().port);
      });
    });
  } catch (err) {
    zone.close();
    responder.close();
    udp.close();
    throw fail(err as NodeJS.ErrnoException, 'UDP');
  }
  udp.on('message', (msg, rinfo) => {
    const out = responder.respond(msg, 'udp');
    if (out) udp.send(out, rinfo.port, rinfo.address);
  });
  udp.on('error', (err) => o.logger?.warn({ err }, 'DNS over UDP'));

  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((socket) => serveTcp(socket, responder, sockets));
  tcp.maxConnections = TCP_MAX_CONNECTIONS;
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host: o.host, port, exclusive: true }, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    zone.close();
    responder.close();
    udp.close();
    throw fail(err as NodeJS.ErrnoException, 'TCP');
  }
  tcp.on('error', (err) => o.logger?.warn({ err }, 'DNS over TCP'));

  const address = v6 ? `[${o.host}]:${port}` : `${o.host}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    address,
    port,
    zone,
    stats: () => responder.stats(),
    close: () =>
      (closing ??= (async () => {
        zone.close();
        responder.close();
        for (const s of sockets) s.destroy();
        await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
      })()),
  };
}

/** True for 0.0.0.0 and :: (in any spelling): every address of a family, no one address to name. */
function unspecified(host: string): boolean {
  return host === '0.0.0.0' || (net.isIPv6(host) && /^[0:]+$/.test(host));
}

/** Answer the length-framed queries of one TCP connection, in order. */
function serveTcp(socket: net.Socket, responder: DnsResponder, sockets: Set<net.Socket>): void {
  sockets.add(socket);
  socket.setNoDelay(true);
  socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());
  // A client that sends queries and does not read the answers is not read
  // from either, until it has taken what was written.
  socket.on('drain', () => socket.resume());
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 2) {
      const len = pending.readUInt16BE(0);
      if (pending.length < 2 + len) break;
      const msg = pending.subarray(2, 2 + len);
      pending = pending.subarray(2 + len);
      const out = responder.respond(msg, 'tcp');
      if (!out) {
        // Not a query: nothing sensible follows on this connection.
        socket.destroy();
        return;
      }
      const frame = Buffer.allocUnsafe(2 + out.length);
      frame.writeUInt16BE(out.length, 0);
      out.copy(frame, 2);
      if (!socket.write(frame)) socket.pause();
    }
  });
}
