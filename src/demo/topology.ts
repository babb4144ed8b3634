/**
 * A test topology of network namespaces: one client, one load balancer, N
 * backends, each backend on its own veth link to the load balancer, which
 * routes between them. Used by the demo and the end-to-end tests.
 *
 *   client (192.168.77.2, fd77:c::2) ──── lb ──── be1 (10.77.1.2, fd77:1::2)
 *                                          ├───── be2 (10.77.2.2, fd77:2::2)
 *                                          └───── be3 (10.77.3.2, fd77:3::2)
 *
 * Every link is dual-stack. IPv4: 192.168.77.0/24 to the client and
 * 10.77.<i>.0/24 to backend i, the load balancer .1 and the host .2.
 * IPv6 (unique local): fd77:c::/64 to the client ("c" for client, out of
 * the backends' 1..8) and fd77:<i>::/64 to backend i, the load balancer ::1
 * and the host ::2. The texts are RFC 5952's canonical ones, as sluice
 * prints them.
 *
 * The VIPs are reached through the load balancer (the client's default
 * route, one per family); backends answer through it too (their default
 * routes), which is what lets the load balancer restore the VIP on the way
 * back without tunnels or changes to the backends.
 *
 * Every name carries a tag unique to its owner, so parallel tests never
 * collide, and teardown removes everything it made on every path.
 */
import { createServer } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../package-root.js';

const run = promisify(execFile);

/** One namespace of the topology. */
export interface Host {
  /** Namespace name (ip netns). */
  ns: string;
  /** Path usable with setns(2): /var/run/netns/<ns>. */
  nsPath: string;
  /** Its address on its link to the load balancer. */
  address: string;
  /** Interface name inside its namespace. */
  ifname: string;
  /** The load balancer's interface on the same link. */
  lbIfname: string;
  /** The load balancer's address on that link. */
  lbAddress: string;
  /** Its IPv6 address on that link (fd77:<i>::2, fd77:c::2 for the client). */
  address6: string;
  /** The load balancer's IPv6 address on that link (fd77:<i>::1, fd77:c::1). */
  lbAddress6: string;
}

/** A built topology. */
export interface Topology {
  tag: string;
  client: Host;
  lb: { ns: string; nsPath: string; ifnames: string[] };
  backends: Host[];
  /** Remove every namespace (and with them links and attachments). Idempotent. */
  destroy(): Promise<void>;
}

/** `sluice daemon`'s flags that attach it to the load balancer's interfaces, in their namespace. */
export function lbInterfaceFlags(topo: Pick<Topology, 'lb'>): string[] {
  return topo.lb.ifnames.flatMap((i) => ['--interface', `${i}@${topo.lb.nsPath}`]);
}

/** Options of createTopology. */
export interface TopologyOptions {
  /** Short unique tag (letters, digits, at most 8), part of every name. */
  tag: string;
  /** Number of backends (1..8). */
  backends?: number;
}

/** Run a command; its stdout, or an error carrying the command line and its stderr. */
export async function sh(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { maxBuffer: 4 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

/** `ip -n NS ...`: an ip(8) command inside a namespace. */
export const ipIn = (ns: string, ...args: string[]): Promise<string> => sh('ip', ['-n', ns, ...args]);
/** `ip netns exec NS ...`: any command inside a namespace. */
export const nsExec = (ns: string, ...args: string[]): Promise<string> => sh('ip', ['netns', 'exec', ns, ...args]);

/** Namespace names that belong to topologies with this tag prefix. */
export async function listNamespaces(prefix: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir('/var/run/netns');
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith(prefix));
}

/** Delete namespaces by name; missing ones are fine. */
export async function deleteNamespaces(names: string[]): Promise<void> {
  for (const n of names) {
    await sh('ip', ['netns', 'del', n]).catch(() => undefined);
  }
}

/**
 * Prepare one end of a veth for XDP: a peer of an XDP-redirecting device
 * needs GRO (or an XDP program) to accept redirected frames, and a sender's
 * checksum offload would hand XDP only a partial checksum.
 */
export async function tuneEndpoint(ns: string, ifname: string): Promise<void> {
  await nsExec(ns, 'ethtool', '-K', ifname, 'gro', 'on', 'tx', 'off');
}

/** The XDP_PASS program of acceptXdpTx (bpf/xdp_peer.bpf.c, built by `make -C bpf`). */
export function xdpPeerObject(): string {
  const file = path.join(packageRoot(), 'bpf', 'out', 'xdp_peer.bpf.o');
  if (!existsSync(file)) throw new Error(`${file} is missing: run make -C bpf`);
  return file;
}

/**
 * Prepare the far end of a veth whose near end runs sluice at XDP to take
 * what sluice sends back with XDP_TX (answers for services without
 * backends, a next hop out of the link a packet came in on): an XDP program
 * of its own, which passes everything. The veth driver queues an XDP_TX
 * frame on the peer's ring whenever the peer has NAPI (GRO on gives it
 * that), but wakes the peer to take it only if the peer has an XDP program;
 * without one, the frame waits until a packet sent through the veth the
 * ordinary way (ARP, IPv6 link-local chatter) wakes the peer: about 20 ms
 * to never, measured. Not for an end sluice attaches to.
 */
export async function acceptXdpTx(ns: string, ifname: string): Promise<void> {
  await ipIn(ns, 'link', 'set', 'dev', ifname, 'xdpdrv', 'object', xdpPeerObject(), 'section', 'xdp');
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Build the topology. On failure, what was made is removed before the error is thrown. */
export async function createTopology(opts: TopologyOptions): Promise<Topology> {
  if (!/^[a-z0-9]{1,8}$/.test(opts.tag)) throw new Error(`topology tag must be 1-8 lowercase letters or digits: ${opts.tag}`);
  const n = opts.backends ?? 3;
  if (n < 1 || n > 8) throw new Error('backends must be 1..8');
  const tag = opts.tag;
  const nsName = (role: string): string => `sl-${tag}-${role}`;
  const made: string[] = [];
  const destroy = async (): Promise<void> => {
    await deleteNamespaces(made.splice(0));
  };
  try {
    const lbNs = nsName('lb');
    const clientNs = nsName('client');
    for (const ns of [lbNs, clientNs]) {
      await sh('ip', ['netns', 'add', ns]);
      made.push(ns);
      await ipIn(ns, 'link', 'set', 'lo', 'up');
    }
    // Forwarding for both families: without the IPv6 one, bpf_fib_lookup
    // answers FWD_DISABLED for every IPv6 packet.
    await nsExec(lbNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1');

    const link = async (ns: string, address: string, lbIf: string, lbAddress: string, net6: string): Promise<Host> => {
      const address6 = `${net6}::2`;
      const lbAddress6 = `${net6}::1`;
      // Create the pair inside the lb namespace, then move one end out:
      // the host namespace never holds either end.
      await ipIn(lbNs, 'link', 'add', lbIf, 'type', 'veth', 'peer', 'name', 'eth0');
      await ipIn(lbNs, 'link', 'set', 'eth0', 'netns', ns);
      await ipIn(lbNs, 'addr', 'add', `${lbAddress}/24`, 'dev', lbIf);
      await ipIn(lbNs, 'link', 'set', lbIf, 'up');
      await ipIn(ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      await ipIn(ns, 'link', 'set', 'eth0', 'up');
      await ipIn(ns, 'route', 'add', 'default', 'via', lbAddress);
      // nodad: duplicate address detection would keep each address
      // tentative for a second or two, and binds to it would fail
      // (EADDRNOTAVAIL) until then; nothing else on the link can hold it.
      await ipIn(lbNs, '-6', 'addr', 'add', `${lbAddress6}/64`, 'dev', lbIf, 'nodad');
      await ipIn(ns, '-6', 'addr', 'add', `${address6}/64`, 'dev', 'eth0', 'nodad');
      await ipIn(ns, '-6', 'route', 'add', 'default', 'via', lbAddress6);
      await tuneEndpoint(ns, 'eth0');
      await acceptXdpTx(ns, 'eth0');
      await tuneEndpoint(lbNs, lbIf);
      return { ns, nsPath: `/var/run/netns/${ns}`, address, ifname: 'eth0', lbIfname: lbIf, lbAddress, address6, lbAddress6 };
    };

    const client = await link(clientNs, '192.168.77.2', 'lbc', '192.168.77.1', 'fd77:c');
    const backends: Host[] = [];
    for (let i = 1; i <= n; i++) {
      const ns = nsName(`be${i}`);
      await sh('ip', ['netns', 'add', ns]);
      made.push(ns);
      await ipIn(ns, 'link', 'set', 'lo', 'up');
      backends.push(await link(ns, `10.77.${i}.2`, `lbb${i}`, `10.77.${i}.1`, `fd77:${i}`));
    }
    // Resolve neighbours (ARP and IPv6 neighbour discovery) up front, so
    // the first packets take the FIB fast path: a FIB lookup without a
    // neighbour entry hands the packet to the stack.
    for (const h of [client, ...backends]) {
      await nsExec(h.ns, 'ping', '-c1', '-W1', h.lbAddress).catch(() => undefined);
      await nsExec(h.ns, 'ping', '-6', '-c1', '-W1', h.lbAddress6).catch(() => undefined);
    }
    return {
      tag,
      client,
      lb: { ns: lbNs, nsPath: `/var/run/netns/${lbNs}`, ifnames: [client.lbIfname, ...backends.map((b) => b.lbIfname)] },
      backends,
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}
