/**
 * The flow lifecycle (bpf/include/ct.h) through the real programs with
 * BPF_PROG_TEST_RUN: states from TCP flags, expiry by idle timeout, both
 * entries of a flow kept together, reply entries that stay true, the
 * reply-tuple clash and the flood guard. Time is the test's: an entry is
 * aged by writing its expiry into the map, as the clock would have made it.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import {
  CT_FORWARD,
  CT_REPLY,
  encodeConntrackKey,
  encodeConntrackValue,
  type ConntrackKey,
  type ConntrackValue,
} from '../../src/dataplane/codec.js';
import type { ConntrackEntry } from '../../src/dataplane/dataplane.js';
import { FLOW_TIMEOUT_DEFAULTS, NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { LoadBalancer } from '../../src/lb/load-balancer.js';
import type { ServiceSpec } from '../../src/model/service.js';
import { conntrackEntries } from '../helpers/conntrack.js';
import { TC_ACT_OK, TC_ACT_SHOT, XDP_DROP, XDP_PASS, buildPacket, checksumsOk, parsePacket, type PacketSpec } from '../helpers/packet.js';
import { sendCounted } from '../helpers/test-run.js';

const CLIENT = '192.168.60.7';
const web: ServiceSpec = {
  name: 'web', address: '10.96.1.10', port: 80, protocol: 'tcp',
  backends: [{ address: '10.1.1.11', port: 8080 }, { address: '10.1.1.12', port: 8080 }, { address: '10.1.1.13', port: 8080 }],
};
const dns: ServiceSpec = {
  name: 'dns', address: '10.96.1.53', port: 53, protocol: 'udp',
  backends: [{ address: '10.1.1.21', port: 5353 }, { address: '10.1.1.22', port: 5353 }],
};
// Two services whose one backend is the same endpoint: a client port that
// talks to both gives their flows one reply tuple.
const left: ServiceSpec = { name: 'left', address: '10.96.1.20', port: 80, protocol: 'tcp', backends: [{ address: '10.1.1.31', port: 8080 }] };
const right: ServiceSpec = { ...left, name: 'right', address: '10.96.1.21' };

let dp: NativeDataplane;
let lb: LoadBalancer;

test.before(async () => {
  dp = await NativeDataplane.open({ fibRedirect: false, capacity: { conntrack: 65536 } });
  lb = new LoadBalancer(dp);
  for (const s of [web, dns, left, right]) await lb.apply(s);
});

test.after.always(() => {
  dp?.close();
});

/** CLOCK_MONOTONIC in whole seconds: the entries' clock. The dataplane reads
 * it coarse and cached a tick per CPU, so near a second's turn it may still
 * be in the second before: an entry made dead here is dead two seconds ago. */
const nowS = (): number => Number(process.hrtime.bigint() / 1_000_000_000n);

function send(prog: 'xdp' | 'tc', spec: PacketSpec): ReturnType<typeof sendCounted> {
  return sendCounted(dp, prog, buildPacket(spec));
}

const tcp = (sport: number, flags: NonNullable<PacketSpec['tcpFlags']>, to: ServiceSpec = web): PacketSpec =>
  ({ saddr: CLIENT, daddr: to.address, proto: 'tcp', sport, dport: to.port, tcpFlags: flags });

/** The flow's two entries: the forward one under the client's tuple, the reply one under the backend's. */
function flowOf(sport: number, to: ServiceSpec = web, client = CLIENT): { fwd?: ConntrackEntry; rep?: ConntrackEntry } {
  const all = conntrackEntries(dp);
  const fwd = all.find((e) => e.value.dir === CT_FORWARD && e.key.saddr === client && e.key.sport === sport && e.key.daddr === to.address);
  const rep = fwd && all.find((e) => e.value.dir === CT_REPLY && e.key.saddr === fwd.value.natAddress && e.key.sport === fwd.value.natPort &&
    e.key.daddr === client && e.key.dport === sport);
  return { ...(fwd ? { fwd } : {}), ...(rep ? { rep } : {}) };
}

function put(key: ConntrackKey, value: ConntrackValue): void {
  dp.raw.mapUpdate('conntrack', encodeConntrackKey(key), encodeConntrackValue(value));
}

/** An expiry `timeout` seconds after now, allowing the second to turn during the test. */
function expiresNear(t: ExecutionContext, e: ConntrackEntry | undefined, timeout: number, what: string): void {
  t.truthy(e, `${what}: entry missing`);
  const left = e!.value.expires - nowS();
  t.true(left >= timeout - 1 && left <= timeout, `${what}: expires in ${left} s, want ${timeout}`);
}

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: a TCP flow is NEW at its SYN, ESTABLISHED at its first ACK, CLOSING at a FIN, both entries alike`, (t) => {
    const sport = prog === 'xdp' ? 41001 : 41002;
    let r = send(prog, tcp(sport, { syn: true }));
    t.is(r.verdict, prog === 'xdp' ? XDP_PASS : TC_ACT_OK);
    let f = flowOf(sport);
    t.is(f.fwd?.value.state, 'new');
    t.is(f.rep?.value.state, 'new');
    expiresNear(t, f.fwd, FLOW_TIMEOUT_DEFAULTS.tcpSyn, 'SYN, forward');
    expiresNear(t, f.rep, FLOW_TIMEOUT_DEFAULTS.tcpSyn, 'SYN, reply');
    const created = f.fwd!.value.created;
    t.true(Math.abs(created - nowS()) <= 1, 'created now');

    // The backend's SYN-ACK keeps the flow NEW.
    const be = f.fwd!.value.natAddress;
    r = send(prog, { saddr: be, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: sport, tcpFlags: { syn: true, ack: true } });
    t.is(parsePacket(r.out).saddr, web.address, 'the SYN-ACK is restored to the VIP');
    t.is(flowOf(sport).rep?.value.state, 'new');

    r = send(prog, tcp(sport, { ack: true }));
    f = flowOf(sport);
    t.is(f.fwd?.value.state, 'established');
    t.is(f.rep?.value.state, 'established', 'the reply entry moves with its flow');
    expiresNear(t, f.fwd, FLOW_TIMEOUT_DEFAULTS.tcpEstablished, 'ACK, forward');
    expiresNear(t, f.rep, FLOW_TIMEOUT_DEFAULTS.tcpEstablished, 'ACK, reply');
    t.is(f.fwd?.value.created, created, 'the creation time stays');

    r = send(prog, tcp(sport, { fin: true, ack: true }));
    t.is(parsePacket(r.out).daddr, be, 'a FIN follows the flow');
    f = flowOf(sport);
    t.is(f.fwd?.value.state, 'closing');
    t.is(f.rep?.value.state, 'closing');
    expiresNear(t, f.rep, FLOW_TIMEOUT_DEFAULTS.tcpClosing, 'FIN, reply');
    // A packet of the closing flow keeps it CLOSING; a fresh SYN on its tuple is a new connection.
    send(prog, tcp(sport, { ack: true }));
    t.is(flowOf(sport).fwd?.value.state, 'closing', 'an ACK after the FIN does not reopen the flow');
    r = send(prog, tcp(sport, { syn: true }));
    t.is(r.global.ct_rescheduled, undefined, 'a new connection on a closing tuple is not a rescheduled flow');
    t.is(flowOf(sport).fwd?.value.state, 'new', 'a SYN on a closing tuple starts a new flow');
  });

  test.serial(`${prog}: a RST creates no entry and is still balanced; a RST of a flow closes both entries`, (t) => {
    const sport = prog === 'xdp' ? 41011 : 41012;
    let r = send(prog, tcp(sport, { rst: true, ack: true }));
    t.true(web.backends.some((b) => b.address === parsePacket(r.out).daddr), 'the RST goes to a backend');
    t.is(r.global.ct_untracked, 1, 'counted as untracked');
    t.is(flowOf(sport).fwd, undefined, 'no entry for a RST');

    send(prog, tcp(sport, { syn: true }));
    const be = flowOf(sport).fwd!.value.natAddress;
    r = send(prog, { saddr: be, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: sport, tcpFlags: { rst: true } });
    t.is(parsePacket(r.out).saddr, web.address, 'the backend\'s RST is restored');
    const f = flowOf(sport);
    t.is(f.fwd?.value.state, 'closing');
    t.is(f.rep?.value.state, 'closing');
  });

  test.serial(`${prog}: a dead entry is an absent one: the flow is placed afresh and counted`, (t) => {
    const sport = prog === 'xdp' ? 41021 : 41022;
    send(prog, tcp(sport, { syn: true }));
    send(prog, tcp(sport, { ack: true }));
    const f = flowOf(sport);
    const pick = f.fwd!.value.natAddress;
    // Point the entry at another backend and let it die: a packet that
    // followed it would go there; a dead one is not followed.
    const other = web.backends.find((b) => b.address !== pick)!;
    const ids = lb.ids('web');
    put(f.fwd!.key, { ...f.fwd!.value, natAddress: other.address, backendId: ids.backends.get(`${other.address}:8080`)!, expires: nowS() - 2 });
    const r = send(prog, tcp(sport, { ack: true }));
    t.is(r.global.ct_expired, 1, 'the dead entry is counted');
    t.is(parsePacket(r.out).daddr, pick, 'placed by Maglev again, not by the dead entry');
    t.true(checksumsOk(r.out).ip && checksumsOk(r.out).l4);
    const again = flowOf(sport);
    t.is(again.fwd?.value.natAddress, pick, 'a fresh entry');
    t.is(again.fwd?.value.state, 'established', 'a flow first seen mid-connection is established');
    expiresNear(t, again.fwd, FLOW_TIMEOUT_DEFAULTS.tcpEstablished, 'fresh entry');
  });

  test.serial(`${prog}: UDP leaves a draining backend once its flow has been idle past the timeout`, async (t) => {
    const sport = prog === 'xdp' ? 41031 : 41032;
    const q: PacketSpec = { saddr: CLIENT, daddr: dns.address, proto: 'udp', sport, dport: 53, payload: Buffer.from('q') };
    let r = send(prog, q);
    const first = parsePacket(r.out).daddr;
    t.is(flowOf(sport, dns).fwd?.value.state, 'established', 'UDP flows are established');
    await lb.setBackendState('dns', first, 5353, 'draining');
    try {
      r = send(prog, q);
      t.is(parsePacket(r.out).daddr, first, 'a live flow stays on its draining backend');
      const f = flowOf(sport, dns);
      put(f.fwd!.key, { ...f.fwd!.value, expires: nowS() - 2 });
      r = send(prog, q);
      t.not(parsePacket(r.out).daddr, first, 'idle past its timeout, the flow leaves the draining backend');
      t.is(r.global.ct_expired, 1);
    } finally {
      await lb.setBackendState('dns', first, 5353, 'active');
    }
  });

  test.serial(`${prog}: a forward packet whose reply entry is gone writes it again at its refresh`, (t) => {
    const sport = prog === 'xdp' ? 41041 : 41042;
    send(prog, tcp(sport, { syn: true }));
    send(prog, tcp(sport, { ack: true }));
    const f = flowOf(sport);
    dp.deleteConntrack([encodeConntrackKey(f.rep!.key)]);
    // Due for its refresh (a step, an eighth of the timeout, behind): the
    // next packet refreshes the flow, and with it the reply entry.
    put(f.fwd!.key, { ...f.fwd!.value, expires: nowS() + 2 });
    const r = send(prog, tcp(sport, { ack: true }));
    t.is(r.global.ct_reply_recreated, 1);
    const back = flowOf(sport).rep;
    t.is(back?.value.natAddress, web.address, 'the reply entry restores to the VIP again');
    t.is(back?.value.backendId, f.fwd!.value.backendId);
    const reply = send(prog, { saddr: f.fwd!.value.natAddress, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: sport, tcpFlags: { ack: true } });
    t.is(parsePacket(reply.out).saddr, web.address);
    t.is(reply.global.reply_restored, undefined, 'restored by the entry, not statelessly');
  });

  test.serial(`${prog}: a reply entry whose backend is no longer its own is removed, never followed`, (t) => {
    const sport = prog === 'xdp' ? 41051 : 41052;
    send(prog, tcp(sport, { syn: true }));
    const f = flowOf(sport);
    // The entry names another backend id than the one at its source address now.
    const ids = lb.ids('web');
    const wrong = [...ids.backends.values()].find((id) => id !== f.rep!.value.backendId)!;
    put(f.rep!.key, { ...f.rep!.value, backendId: wrong });
    const r = send(prog, { saddr: f.fwd!.value.natAddress, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: sport, tcpFlags: { ack: true } });
    t.is(r.global.ct_reply_stale, 1);
    t.is(r.global.reply_restored, 1, 'judged without the entry: the endpoint serves one service port, restored statelessly');
    t.is(parsePacket(r.out).saddr, web.address);
    t.is(flowOf(sport).rep?.value.backendId, f.rep!.value.backendId, 'the stale entry is replaced by a true one');
  });

  test.serial(`${prog}: one client port to two VIPs sharing a backend endpoint: the second flow is refused while the first is established`, (t) => {
    const sport = prog === 'xdp' ? 41061 : 41062;
    const drop = prog === 'xdp' ? XDP_DROP : TC_ACT_SHOT;
    let r = send(prog, tcp(sport, { syn: true }, left));
    t.is(parsePacket(r.out).daddr, '10.1.1.31');
    send(prog, tcp(sport, { ack: true }, left));
    r = send(prog, tcp(sport, { syn: true }, right));
    t.is(r.verdict, drop, 'refused');
    t.deepEqual(r.global, { rx_packets: 1, ct_reply_clash: 1 });
    t.is(flowOf(sport, right).fwd, undefined, 'no entry left behind');
    t.is(flowOf(sport, left).rep?.value.natAddress, left.address, 'the first flow\'s reply entry is untouched');
    const d = dp.lookupFlow({ saddr: CLIENT, sport, daddr: right.address, dport: 80, protocol: 'tcp', syn: true });
    t.is(d.outcome, 'TUPLE_CLASH', 'LookupFlow says so');
    // Once the first flow is dead, the second may have the tuple.
    const f = flowOf(sport, left);
    for (const e of [f.fwd!, f.rep!]) put(e.key, { ...e.value, expires: nowS() - 2 });
    r = send(prog, tcp(sport, { syn: true }, right));
    t.is(parsePacket(r.out).daddr, '10.1.1.31');
    t.is(flowOf(sport, right).rep?.value.natAddress, right.address);
  });

  test.serial(`${prog}: a closing or unanswered flow gives its reply tuple way to the client's next connection`, (t) => {
    const sport = prog === 'xdp' ? 41063 : 41064;
    // A connection to one VIP ends; the client reuses its port for the other at once (Linux does: its 4-tuples differ).
    send(prog, tcp(sport, { syn: true }, left));
    send(prog, tcp(sport, { ack: true }, left));
    send(prog, tcp(sport, { fin: true, ack: true }, left));
    t.is(flowOf(sport, left).rep?.value.state, 'closing');
    let r = send(prog, tcp(sport, { syn: true }, right));
    t.is(parsePacket(r.out).daddr, '10.1.1.31', 'the new connection goes through');
    t.is(r.global.ct_reply_clash, undefined);
    t.is(flowOf(sport, right).rep?.value.natAddress, right.address, 'and takes the reply tuple');
    // A SYN that was never answered holds nothing either.
    const other = sport + 100;
    send(prog, tcp(other, { syn: true }, right));
    r = send(prog, tcp(other, { syn: true }, left));
    t.is(r.global.ct_reply_clash, undefined);
    t.is(flowOf(other, left).rep?.value.natAddress, left.address);
  });
}

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: expiries are written once a step (an eighth of the timeout), not once a packet`, (t) => {
    const sport = prog === 'xdp' ? 41071 : 41072;
    send(prog, tcp(sport, { syn: true }));
    send(prog, tcp(sport, { ack: true }));
    const step = FLOW_TIMEOUT_DEFAULTS.tcpEstablished / 8;
    let f = flowOf(sport);
    // Less than a step behind: a packet leaves both entries as they are.
    const fresh = nowS() + FLOW_TIMEOUT_DEFAULTS.tcpEstablished - step + 60;
    for (const e of [f.fwd!, f.rep!]) put(e.key, { ...e.value, expires: fresh });
    send(prog, tcp(sport, { ack: true }));
    f = flowOf(sport);
    t.is(f.fwd?.value.expires, fresh, 'not written: within a step');
    t.is(f.rep?.value.expires, fresh);
    // A step behind: both written, to the packet's second plus the timeout.
    const due = nowS() + FLOW_TIMEOUT_DEFAULTS.tcpEstablished - step - 1;
    for (const e of [f.fwd!, f.rep!]) put(e.key, { ...e.value, expires: due });
    send(prog, tcp(sport, { ack: true }));
    f = flowOf(sport);
    expiresNear(t, f.fwd, FLOW_TIMEOUT_DEFAULTS.tcpEstablished, 'due, forward');
    expiresNear(t, f.rep, FLOW_TIMEOUT_DEFAULTS.tcpEstablished, 'due, reply');
  });
}

test.serial('the flood guard: past the rate in a second, new flows are balanced but not tracked', async (t) => {
  const guarded = await NativeDataplane.open({ fibRedirect: false, capacity: { conntrack: 4096 }, floodRate: 3 });
  t.teardown(() => guarded.close());
  const glb = new LoadBalancer(guarded);
  await glb.apply(web);
  const before = guarded.globalStats();
  for (let i = 0; i < 10; i++) {
    const r = guarded.raw.testRun('xdp', buildPacket(tcp(42000 + i, { syn: true })));
    t.true(web.backends.some((b) => b.address === parsePacket(r.data).daddr), `flow ${i} balanced`);
  }
  const untracked = Number(guarded.globalStats().ct_untracked - before.ct_untracked);
  const tracked = conntrackEntries(guarded).filter((e) => e.value.dir === CT_FORWARD).length;
  t.is(tracked + untracked, 10, 'every flow either tracked or counted');
  // Three a second: the ten runs take far less than a second, but may straddle one turn.
  t.true(tracked === 3 || tracked === 6, `${tracked} tracked`);
});

test.serial('the flood guard leaves a flow tracked where its replies could not be restored without an entry', async (t) => {
  // The endpoint serves two service ports: reply_nat cannot say which VIP
  // its replies come from, so an untracked flow would break.
  const guarded = await NativeDataplane.open({ fibRedirect: false, capacity: { conntrack: 4096 }, floodRate: 3 });
  t.teardown(() => guarded.close());
  const glb = new LoadBalancer(guarded);
  await glb.apply(left);
  await glb.apply(right);
  const before = guarded.globalStats();
  for (let i = 0; i < 10; i++) guarded.raw.testRun('xdp', buildPacket(tcp(42100 + i, { syn: true }, left)));
  t.is(guarded.globalStats().ct_untracked - before.ct_untracked, 0n, 'none untracked');
  t.is(conntrackEntries(guarded).filter((e) => e.value.dir === CT_FORWARD).length, 10, 'every flow tracked, past the rate too');
});

for (const prog of ['xdp', 'tc'] as const) {
  test.serial(`${prog}: a reply restored without an entry keeps the client on the answering backend over a dead forward entry`, (t) => {
    const sport = prog === 'xdp' ? 41081 : 41082;
    // An earlier flow on this tuple, long dead, named another backend.
    send(prog, tcp(sport, { syn: true }));
    const f = flowOf(sport);
    const answering = web.backends.find((b) => b.address !== f.fwd!.value.natAddress)!;
    put(f.fwd!.key, { ...f.fwd!.value, expires: nowS() - 100 });
    dp.deleteConntrack([encodeConntrackKey(f.rep!.key)]);
    // Another node placed the flow on `answering`; its reply comes through here.
    let r = send(prog, { saddr: answering.address, daddr: CLIENT, proto: 'tcp', sport: 8080, dport: sport, tcpFlags: { ack: true } });
    t.is(r.global.reply_restored, 1);
    t.is(parsePacket(r.out).saddr, web.address);
    t.is(flowOf(sport).fwd?.value.natAddress, answering.address, 'the dead forward entry is replaced by the restored flow\'s');
    r = send(prog, tcp(sport, { ack: true }));
    t.is(parsePacket(r.out).daddr, answering.address, 'the client\'s next packet follows the backend that answered');
  });
}
