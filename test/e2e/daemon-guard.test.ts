/**
 * One owner per dataplane, and starts that never leave a mess, with real
 * daemons on a real topology carrying real traffic: a second daemon on the
 * same pin directory, state directory or interfaces is refused (naming the
 * first) while the first goes on forwarding; --force takes an interface
 * over and the first daemon notices; a restart in another --mode leaves no
 * program of the old mode behind; an empty store over a live dataplane is
 * refused, adopted or reset as asked; failed starts remove what they made;
 * capacities are flags whose limits name them; a removed API socket comes
 * back.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { native } from '../../src/dataplane/native.js';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { startLab, type Lab } from '../../src/demo/lab.js';
import { DEMO_HTTP_PORT, DEMO_VIP } from '../../src/demo/services.js';
import { lbInterfaceFlags } from '../../src/demo/topology.js';
import { testDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { sluice } from '../helpers/cli.js';

const URL = `http://${DEMO_VIP}:80/`;

async function lab(t: ExecutionContext, tag: string): Promise<Lab> {
  const l = await startLab(`${tag}${process.pid.toString(36)}`.slice(0, 8));
  t.teardown(() => l.destroy());
  return l;
}

function ifaceArgs(l: Lab): string[] {
  return lbInterfaceFlags(l.topo);
}

function webFile(d: DaemonProcess, l: Lab, extra = ''): string {
  const file = path.join(d.dir, 'web.yaml');
  const backends = l.topo.backends.map((b, i) => `{address: ${b.address}${i === 0 ? ', weight: 2' : ''}}`).join(', ');
  writeFileSync(file, `name: default/web\naddresses: [${DEMO_VIP}]\nports: [{name: http, port: 80, protocol: tcp, targetPort: ${DEMO_HTTP_PORT}}]\nbackends: [${backends}]\n${extra}`);
  return file;
}

/** A daemon run that must fail: its exit status and its one line. */
async function failingDaemon(args: string[]): Promise<{ code: number | null; line: string }> {
  const r = await sluice(['daemon', '--log-level', 'warn', '--exit-with-parent', '--metrics-bind-address', '', ...args], { timeoutMs: 30_000 });
  return { code: r.code, line: r.stderr.trim() };
}

/** A directory pair of a daemon that is not DaemonProcess-managed, removed with the test. */
function dirs(t: ExecutionContext, d: DaemonProcess, name: string): { state: string; pins: string; sock: string } {
  const pins = `${d.pinDir}-${name}`;
  t.teardown(() => rmSync(pins, { recursive: true, force: true }));
  return { state: path.join(d.dir, `${name}-state`), pins, sock: `unix://${path.join(d.dir, `${name}.sock`)}` };
}

async function served(t: ExecutionContext, l: Lab, n: number, what: string): Promise<void> {
  const r = await l.client.http(URL, n, 4);
  t.is(r.failed, 0, `${what}: ${r.errors.join('; ')}`);
  t.is(r.ok, n, what);
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

test('one owner per pin directory, state directory and interface; --force takes over; a new --mode leaves nothing of the old', async (t) => {
  const l = await lab(t, 'go');
  const a = await testDaemon(t, 'guard-a', [...ifaceArgs(l), '--mode', 'xdp']);
  await a.start();
  const applied = await sluice(['--server', a.address, 'service', 'apply', '-f', webFile(a, l)]);
  t.is(applied.code, 0, applied.stderr);
  await served(t, l, 60, 'through the first daemon');
  const pid = a.pid()!;

  const b = dirs(t, a, 'b');
  let r = await failingDaemon(['--pin-dir', a.pinDir, '--state-dir', b.state, '--listen', b.sock]);
  t.is(r.code, 1);
  t.regex(r.line, new RegExp(`^sluice: FAILED_PRECONDITION: the pin directory ${a.pinDir} is in use by process ${pid} \\(sluice daemon .*\\): one daemon per pin directory; stop that daemon, or give this one another --pin-dir$`));
  t.false(existsSync(b.state), 'the refused daemon removed the state directory it made');

  r = await failingDaemon(['--pin-dir', b.pins, '--state-dir', path.join(a.dir, 'state'), '--listen', b.sock]);
  t.is(r.code, 1);
  t.regex(r.line, new RegExp(`^sluice: FAILED_PRECONDITION: the state directory ${path.join(a.dir, 'state')} is in use by process ${pid} \\(sluice daemon .*\\): one daemon per state directory; stop that daemon, or give this one another --state-dir$`));
  t.false(existsSync(b.pins), 'no pin directory was made');

  const xdpId = native().xdpQuery(native().ifIndex(l.topo.lb.ifnames[0]!, l.topo.lb.nsPath), l.topo.lb.nsPath).drvProgId;
  r = await failingDaemon([...ifaceArgs(l), '--pin-dir', b.pins, '--state-dir', b.state, '--listen', b.sock, '--conntrack-size', '65536']);
  t.is(r.code, 1);
  t.is(r.line, `sluice: FAILED_PRECONDITION: ${l.topo.lb.ifnames[0]} (in ${l.topo.lb.nsPath}): XDP (native) already runs program 'sluice_xdp' (id ${xdpId}) of another sluice dataplane (other pinned maps: is another daemon running with another --pin-dir?), which is not this dataplane's; pass --force to replace it`);
  t.false(existsSync(b.pins), 'the refused daemon removed the pins it made');
  t.false(existsSync(b.state), 'and its state directory');
  const packets = async (): Promise<number> =>
    Number((JSON.parse((await sluice(['--server', a.address, '-o', 'json', 'stats'])).stdout) as { services: Array<{ counters: { packets: string } }> }).services[0]!.counters.packets);
  const before = await packets();
  await served(t, l, 60, 'the first daemon still forwards');
  const after = await packets();
  t.true(after - before >= 60 * 3, `and still counts the traffic: ${after - before} packets for 60 HTTP exchanges`);

  // --force: another daemon takes the interfaces; the first says it lost them.
  const e = await testDaemon(t, 'guard-e', [...ifaceArgs(l), '--mode', 'xdp', '--force']);
  await e.start();
  t.true(await until(() => a.log().includes('no longer attached'), 12_000), `the first daemon reports the loss: ${a.log()}`);
  await e.stop('SIGTERM');
  // Its program stays (the dataplane outlives its daemon): the first daemon needs --force to come back.
  await a.stop('SIGTERM');
  await t.throwsAsync(a.start(), { message: /XDP \(native\) already runs program 'sluice_xdp' .* pass --force to replace it/ });
  await a.start(['--force']);
  await served(t, l, 60, 'back through the first daemon');

  // A restart that fails after loading (its TCP port is taken) leaves the forwarding programs in place.
  await a.stop('SIGTERM');
  const busy = net.createServer().listen(0, '127.0.0.1');
  await new Promise((res) => busy.once('listening', res));
  const busyPort = (busy.address() as net.AddressInfo).port;
  const attachedBefore = l.topo.lb.ifnames.map((i) => native().xdpQuery(native().ifIndex(i, l.topo.lb.nsPath), l.topo.lb.nsPath).drvProgId);
  r = await failingDaemon([...ifaceArgs(l), '--pin-dir', a.pinDir, '--state-dir', path.join(a.dir, 'state'), '--listen', `127.0.0.1:${busyPort}`, '--conntrack-size', '65536']);
  busy.close();
  t.is(r.code, 1);
  t.is(r.line, `sluice: FAILED_PRECONDITION: --listen: cannot listen on 127.0.0.1:${busyPort}: the address is in use (another daemon, or another program)`);
  t.deepEqual(l.topo.lb.ifnames.map((i) => native().xdpQuery(native().ifIndex(i, l.topo.lb.nsPath), l.topo.lb.nsPath).drvProgId), attachedBefore, 'the programs that forwarded still do');
  await served(t, l, 60, 'after a failed start');

  // Another sluice's program in another hook of the last interface: refused before any interface is touched.
  const stranger = await NativeDataplane.open({ capacity: { conntrack: 4096, maglevSlots: 262144 } });
  t.teardown(() => stranger.close());
  const lastIf = l.topo.lb.ifnames.at(-1)!;
  // Attached with the addon itself: sluice's own attach would refuse the first daemon's XDP program there.
  const lastIndex = native().ifIndex(lastIf, l.topo.lb.nsPath);
  stranger.raw.attachTc(lastIndex, 'ingress', l.topo.lb.nsPath);
  const strangerTc = native().tcQuery(lastIndex, 'ingress', l.topo.lb.nsPath);
  await t.throwsAsync(a.start(), { message: new RegExp(`${lastIf} \\(in ${l.topo.lb.nsPath}\\): tc ingress \\(handle 1, priority 1\\) already runs program 'sluice_tc' \\(id ${strangerTc}\\) of another sluice dataplane`) });
  t.deepEqual(l.topo.lb.ifnames.map((i) => native().xdpQuery(native().ifIndex(i, l.topo.lb.nsPath), l.topo.lb.nsPath).drvProgId), attachedBefore, 'no interface was touched');
  stranger.raw.detachTc(lastIndex, 'ingress', l.topo.lb.nsPath);
  await a.start();
  await served(t, l, 60, 'back again');

  // A restart in tc mode: XDP is detached from every interface, tc attached.
  await a.stop('SIGTERM');
  await a.start(['--mode', 'tc']);
  for (const ifname of l.topo.lb.ifnames) {
    const ifindex = native().ifIndex(ifname, l.topo.lb.nsPath);
    const q = native().xdpQuery(ifindex, l.topo.lb.nsPath);
    t.is(q.drvProgId + q.skbProgId, 0, `${ifname}: no XDP program left`);
    t.not(native().tcQuery(ifindex, 'ingress', l.topo.lb.nsPath), 0, `${ifname}: tc attached`);
  }
  await served(t, l, 60, 'through tc');
  t.is(await a.stop('SIGTERM'), 0);
});

test('an empty store over a live dataplane: refused, then adopted (connections kept), then reset', async (t) => {
  const l = await lab(t, 'gs');
  const a = await testDaemon(t, 'guard-s', [...ifaceArgs(l), '--mode', 'xdp']);
  await a.start();
  t.is((await sluice(['--server', a.address, 'service', 'apply', '-f', webFile(a, l)])).code, 0);
  const conn = await l.client.open(URL);
  await a.stop('SIGTERM');

  // The store is lost (a zero-length file, as a bad disk or a mistaken `>` leaves it).
  const db = path.join(a.dir, 'state', 'sluice.db');
  for (const f of [`${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
  writeFileSync(db, '');
  const err = await t.throwsAsync(a.start());
  t.regex(err!.message, new RegExp(`sluice: FAILED_PRECONDITION: the store \\(${path.join(a.dir, 'state', 'sluice.db')}\\) is empty, but the pinned dataplane in ${a.pinDir} holds 1 service entry \\(VIP:port:protocol\\) that would be deleted: give --adopt-dataplane .*, or --reset-dataplane .*`));
  t.is((await l.client.request(conn.conn)).backend, conn.backend, 'the refused start touched nothing: the connection lives');
  const check = await NativeDataplane.open({ pinDir: a.pinDir, capacity: { conntrack: 65536 } });
  t.is(check.listServices().length, 1, 'the pinned service is still there');
  check.close();

  await a.start(['--adopt-dataplane']);
  const list = JSON.parse((await sluice(['--server', a.address, '-o', 'json', 'service', 'list'])).stdout) as Array<{ name: string; backends: Array<{ address: string; weight: number }>; ports: Array<{ targetPort: number }> }>;
  t.deepEqual(list.map((s) => s.name), [`adopted/${DEMO_VIP}-80-tcp`]);
  t.deepEqual(list[0]!.backends.map((b) => [b.address, b.weight]), l.topo.backends.map((b, i) => [b.address, i === 0 ? 2 : 1]), 'backends and weights come back');
  t.is(list[0]!.ports[0]!.targetPort, DEMO_HTTP_PORT);
  t.is((await l.client.request(conn.conn)).backend, conn.backend, 'adoption kept the connection on its backend');
  await served(t, l, 60, 'new connections through the adopted service');
  await a.stop('SIGTERM');

  writeFileSync(db, '');
  for (const f of [`${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
  await a.start(['--reset-dataplane']);
  t.is((await sluice(['--server', a.address, 'service', 'list'])).stdout, 'NAME  VIPS  PORTS  BACKENDS  AFFINITY  NO BACKENDS  REVISION  OWNER\n');
  t.regex(a.log(), /"msg":"reset: the pinned dataplane is replaced by empty maps"/);
  t.is((await sluice(['--server', a.address, 'service', 'apply', '-f', webFile(a, l)])).code, 0);
  await served(t, l, 60, 'a new service after the reset');
  t.is(await a.stop('SIGTERM'), 0);
});

test('failed starts remove what they made; capacities are flags; a changed size is refused; a damaged store is named', async (t) => {
  const a = await testDaemon(t, 'guard-f', []);
  const x = dirs(t, a, 'x');
  // An interface that does not exist is a wrong command line, found before anything is made.
  let r = await failingDaemon(['--interface', 'nosuch0', '--pin-dir', x.pins, '--state-dir', x.state, '--listen', x.sock, '--conntrack-size', '65536']);
  t.is(r.code, 2);
  t.is(r.line, 'sluice: --interface: nosuch0: no such network interface');
  t.false(existsSync(x.pins));
  t.false(existsSync(x.state));
  // A start that fails after loading the dataplane (its unix socket path is a directory) removes what it made.
  const taken = path.join(a.dir, 'taken.sock');
  mkdirSync(taken);
  r = await failingDaemon(['--pin-dir', x.pins, '--state-dir', x.state, '--listen', `unix://${taken}`, '--conntrack-size', '65536']);
  t.is(r.code, 1);
  t.is(r.line, `sluice: FAILED_PRECONDITION: --listen: ${taken} exists and is not a socket`);
  t.false(existsSync(x.pins), 'the pins it had made are removed');
  t.false(existsSync(x.state), 'and its state directory');
  t.false(existsSync(x.pins), 'no pins left (the 64 Ki-entry conntrack included)');
  t.false(existsSync(x.state), 'no state directory left');

  const outside = path.join(a.dir, 'not-bpffs', 'pins');
  r = await failingDaemon(['--pin-dir', outside, '--state-dir', x.state, '--listen', x.sock]);
  t.is(r.code, 2);
  t.is(r.line, `sluice: --pin-dir: ${outside} is not on a BPF filesystem (${a.dir} is not bpffs): give a directory under /sys/fs/bpf, or mount bpffs (mount -t bpf bpf /sys/fs/bpf)`);
  t.false(existsSync(path.join(a.dir, 'not-bpffs')), 'nothing was created');

  // Small capacities, logged with the memory they take.
  await a.start(['--max-frontends', '4', '--maglev-slots', '262144', '--log-level', 'info']);
  const maps = /"capacity":(\{[^}]*\}),"maps":.*"totalMiB":([\d.]+),"msg":"dataplane maps \(kernel memory\)"/.exec(a.log());
  t.truthy(maps, `the start logs the maps and their memory: ${a.log()}`);
  t.deepEqual(JSON.parse(maps![1]!), { conntrack: 65536, conntrack6: 65536, affinity: 65536, frontends: 4, backends: 65535, maglevSlots: 262144, sockets: 16384 });
  t.true(Number(maps![2]) > 5, `a 64 Ki-entry conntrack alone takes megabytes: ${maps![2]} MiB`);
  const file = path.join(a.dir, 'five.yaml');
  writeFileSync(file, `name: five\naddresses: [10.96.9.1]\nports: [${[80, 81, 82, 83, 84].map((p) => `{port: ${p}, protocol: tcp}`).join(', ')}]\nbackends: [{address: 10.1.9.1}]\n`);
  const five = await sluice(['--server', a.address, 'service', 'apply', '-f', file]);
  t.is(five.code, 1);
  t.is(five.stderr, 'sluice: RESOURCE_EXHAUSTED: no free service ids: this change needs 5, 4 are free (4 in all); raise the daemon\'s --max-frontends\n');
  const big = (n: number): string => `- {name: big-${n}, addresses: [10.96.8.${n}], ports: [{port: 80, protocol: tcp}], backends: [{address: 10.1.8.1}], tableSize: 131071}\n`;
  writeFileSync(file, big(1) + big(2));
  t.is((await sluice(['--server', a.address, 'service', 'apply', '-f', file])).code, 0, 'two tables of 131,071 slots fit in 262,144');
  writeFileSync(file, big(3));
  const third = await sluice(['--server', a.address, 'service', 'apply', '-f', file]);
  t.is(third.stderr, 'sluice: RESOURCE_EXHAUSTED: no room for the Maglev tables (slots; a changed table is written beside the old one, so a change needs room for both): this change needs 131071, 2 are free (262144 in all); raise the daemon\'s --maglev-slots\n');
  t.is(await a.stop('SIGTERM'), 0);

  // A store that does not fit the maps asked for is refused before any pin is touched.
  await t.throwsAsync(a.start(['--reset-dataplane', '--max-frontends', '1']), { message: /sluice: RESOURCE_EXHAUSTED: the store holds 2 frontends \(VIP x port x protocol\), more than --max-frontends 1: give --max-frontends 2 or more/ });
  t.true(existsSync(path.join(a.pinDir, 'services')), 'the pins are as they were');

  // The pins keep their sizes: a restart that asks for another is refused, naming both.
  await t.throwsAsync(a.start(['--max-frontends', '8']), { message: /sluice: FAILED_PRECONDITION: --max-frontends 8 differs from the pinned dataplane in .* \(4\): give --max-frontends 4, or --reset-dataplane to rebuild the maps at the new size/ });
  await a.start();
  t.is(JSON.parse((await sluice(['--server', a.address, '-o', 'json', 'service', 'list'])).stdout).length, 2, 'without the flag, the pinned sizes are taken');
  t.is(await a.stop('SIGTERM'), 0);

  // A damaged store is named, with what to do.
  const db = path.join(a.dir, 'state', 'sluice.db');
  for (const f of [`${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
  writeFileSync(db, 'SQLite format 3\0'.padEnd(4096, 'x'));
  await t.throwsAsync(a.start(), { message: new RegExp(`sluice: FAILED_PRECONDITION: (cannot open the store at ${db}: file is not a database|the store at ${db} is damaged .*); restore it from a backup, or move it away and start again`) });
});

test('a --keepalive registration outlives a daemon restart, and a lease lost meanwhile is taken again', async (t) => {
  const a = await testDaemon(t, 'guard-ka', []);
  await a.start();
  const file = path.join(a.dir, 'svc.yaml');
  writeFileSync(file, 'name: ka\naddresses: [10.96.7.1]\nports: [{port: 80, protocol: tcp}]\n');
  t.is((await sluice(['--server', a.address, 'service', 'apply', '-f', file])).code, 0);
  const { spawn } = await import('node:child_process');
  const { cliPath, nodeFlagsOf } = await import('../../src/demo/daemon-process.js');
  // Two agents: one whose lease (60 s) outlives the daemon's absence, one whose lease (2 s) does not.
  const agent = (address: string, ttl: number) => {
    const child = spawn(process.execPath, [...nodeFlagsOf(cliPath()), cliPath(), '--server', a.address, 'backend', 'register', 'ka', address, '--ttl', String(ttl), '--keepalive']);
    t.teardown(() => child.kill('SIGKILL'));
    const io = { out: '', err: '', exited: new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code))) };
    child.stdout.setEncoding('utf8').on('data', (x: string) => (io.out += x));
    child.stderr.setEncoding('utf8').on('data', (x: string) => (io.err += x));
    return { child, io };
  };
  const long = agent('10.1.7.1', 60);
  const short = agent('10.1.7.2', 2);
  t.true(await until(() => long.io.out.includes('registered') && short.io.out.includes('registered'), 15_000), long.io.out + short.io.out);
  const leaseOf = (io: { out: string }): string => /lease (\w+)/.exec(io.out)![1]!;
  const backends = async (): Promise<Array<[string, string]>> =>
    (JSON.parse((await sluice(['--server', a.address, '-o', 'json', 'service', 'get', 'ka'])).stdout).backends as Array<{ address: string; leaseId: string }>).map((b) => [b.address, b.leaseId]);

  await a.stop('SIGKILL');
  await new Promise((res) => setTimeout(res, 4000));
  await a.start();
  t.true(await until(() => /registered again: lease \w+/.test(short.io.err), 15_000), short.io.err);
  t.true(await until(() => /the daemon is back; the lease is alive/.test(long.io.err), 15_000), long.io.err);
  const newShort = /registered again: lease (\w+)/.exec(short.io.err)![1]!;
  t.not(newShort, leaseOf(short.io));
  t.deepEqual((await backends()).sort(), [['10.1.7.1', leaseOf(long.io)], ['10.1.7.2', newShort]], 'both are there, the long one on its first lease');
  t.is(long.child.exitCode, null);
  t.is(short.child.exitCode, null);
  long.child.kill('SIGINT');
  short.child.kill('SIGINT');
  t.is(await long.io.exited, 0, long.io.err);
  t.is(await short.io.exited, 0, short.io.err);
  t.deepEqual(await backends(), [], 'Ctrl-C deregistered them');
  t.is(await a.stop('SIGTERM'), 0);
});

test('the API socket comes back when it is removed; a plaintext TCP listener warns', async (t) => {
  const a = await testDaemon(t, 'guard-k', []);
  await a.start();
  rmSync(a.socket);
  t.true(await until(() => existsSync(a.socket), 6000), 'the socket is bound again');
  const r = await sluice(['--server', a.address, 'service', 'list']);
  t.is(r.code, 0, r.stderr);
  t.regex(a.log(), /the API socket was removed; binding it again/);
  // A second daemon with only --listen in common is refused before it makes anything.
  const other = dirs(t, a, 'second');
  const second = await sluice(['daemon', '--log-level', 'info', '--exit-with-parent', '--metrics-bind-address', '', '--listen', a.address, '--state-dir', other.state, '--pin-dir', other.pins], { timeoutMs: 30_000 });
  t.is(second.code, 1, second.stderr);
  t.true(second.stderr.includes(`another server is listening on ${a.socket}`), second.stderr);
  t.notRegex(second.stdout, /created the dataplane|adopted the pinned dataplane/, 'no maps were made');
  t.false(existsSync(other.pins), 'no pin directory left');
  t.false(existsSync(other.state), 'no state directory left');
  t.is(await a.stop('SIGTERM'), 0);

  // --listen on TCP without TLS: the daemon says what that exposes.
  const tcp = await testDaemon(t, 'guard-t', []);
  await tcp.start(['--log-level', 'warn']);
  t.notRegex(tcp.log(), /without TLS/, 'a unix socket gets no warning');
  await tcp.stop('SIGTERM');
  const { spawn } = await import('node:child_process');
  const { cliPath, nodeFlagsOf } = await import('../../src/demo/daemon-process.js');
  const child = spawn(process.execPath, [...nodeFlagsOf(cliPath()), cliPath(), 'daemon', '--metrics-bind-address', '', '--listen', '127.0.0.1:0', '--state-dir', path.join(tcp.dir, 'state'), '--pin-dir', tcp.pinDir, '--log-level', 'warn', '--exit-with-parent']);
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  t.true(await until(() => out.includes('without TLS'), 15_000), out);
  t.regex(out, /"msg":"the API listens on TCP without TLS: anyone who reaches it controls the load balancer; give --tls-cert and --tls-key/);
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  t.deepEqual(readdirSync(tcp.pinDir).sort(), ['affinity', 'backend_stats', 'backends', 'conntrack', 'conntrack6', 'frag4', 'frag6', 'global_stats', 'lb6_scratch', 'lb_clock', 'maglev_slots', 'node_config', 'node_config6', 'reject_bucket', 'reply_nat', 'services', 'sock_rnat', 'sock_rnat6', 'svc_frontends', 'svc_stats', 'tc_lb6_prog', 'vip_filter', 'vips', 'xdp_lb6_prog', 'xdp_ports'], 'the TCP daemon ran on its pins');
});
