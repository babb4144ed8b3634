/**
 * The daemon's DNS server asked by dig (Debian's dnsutils), with services
 * written through the CLI: A records are the VIPs, a change shows in the
 * next answer (the write returns once the node applied it), a deleted
 * service is NXDOMAIN with the SOA, a name outside the zone is REFUSED,
 * SRV records carry the named ports, and a 60-VIP answer is truncated over
 * UDP and fetched whole over TCP. The flags' errors name the flag. No
 * interface is attached: DNS needs only the catalog.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { freePort } from '../../src/demo/topology.js';
import { testDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { sluice } from '../helpers/cli.js';

const run = promisify(execFile);
const ZONE = 'svc.sluice.local';

/** dig's whole output for `args` against the daemon's DNS port. */
async function dig(port: number, ...args: string[]): Promise<string> {
  const r = await run('dig', [`@127.0.0.1`, '-p', String(port), '+time=5', '+tries=2', ...args]);
  return r.stdout;
}

/** The header's status and flags, and the records of a section (`name type data`, TTL left out). */
function parse(out: string): { status: string; flags: string[]; answer: string[]; authority: string[]; additional: string[] } {
  const section = (title: string): string[] => {
    const m = new RegExp(`;; ${title} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(out);
    return m ? m[1]!.split('\n').filter(Boolean).map((l) => l.split(/\s+/).filter((_, i) => i !== 1).join(' ')) : [];
  };
  return {
    status: /status: (\w+)/.exec(out)?.[1] ?? '?',
    flags: (/;; flags: ([a-z ]*);/.exec(out)?.[1] ?? '').split(' ').filter(Boolean),
    answer: section('ANSWER'),
    authority: section('AUTHORITY'),
    additional: section('ADDITIONAL'),
  };
}

function yaml(d: DaemonProcess, file: string, name: string, vips: string[], ports = '[{name: http, port: 80, protocol: tcp}, {name: dns, port: 53, protocol: udp}]'): string {
  const f = path.join(d.dir, file);
  writeFileSync(f, `name: ${name}\naddresses: [${vips.join(', ')}]\nports: ${ports}\nbackends: [{address: 10.1.0.1}]\n`);
  return f;
}

async function cli(t: ExecutionContext, d: DaemonProcess, ...args: string[]): Promise<void> {
  const r = await sluice(['--server', d.address, ...args]);
  t.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
}

test('dig gets the VIPs, follows changes at once, NXDOMAIN after a delete, REFUSED outside, SRV, TC then TCP', async (t) => {
  const port = await freePort();
  const d = await testDaemon(t, 'dns', ['--dns-bind-address', `127.0.0.1:${port}`, '--dns-ttl', '7']);
  await d.start();
  t.regex(await dig(port, '+short', ZONE, 'SOA'), new RegExp(`hostmaster\\.${ZONE.replace(/\./g, '\\.')}\\.`), 'the apex answers before any service');

  await cli(t, d, 'service', 'apply', '-f', yaml(d, 'web.yaml', 'default/web', ['10.96.0.10', '10.96.0.11']));
  let r = parse(await dig(port, `web.default.${ZONE}`));
  t.is(r.status, 'NOERROR');
  t.true(r.flags.includes('aa'), r.flags.join(' '));
  t.deepEqual(r.answer, [`web.default.${ZONE}. IN A 10.96.0.10`, `web.default.${ZONE}. IN A 10.96.0.11`]);
  t.regex(await dig(port, '+noall', '+answer', `web.default.${ZONE}`), /\s7\s+IN\s+A\s/, '--dns-ttl');
  t.deepEqual(parse(await dig(port, 'Web.DEFAULT.svc.sluice.local')).answer, ['Web.DEFAULT.svc.sluice.local. IN A 10.96.0.10', 'Web.DEFAULT.svc.sluice.local. IN A 10.96.0.11'], 'in the question\'s case');

  r = parse(await dig(port, `_http._tcp.web.default.${ZONE}`, 'SRV'));
  t.deepEqual(r.answer, [`_http._tcp.web.default.${ZONE}. IN SRV 0 1 80 web.default.${ZONE}.`]);
  t.deepEqual(r.additional.filter((l) => !l.startsWith('.')), [`web.default.${ZONE}. IN A 10.96.0.10`, `web.default.${ZONE}. IN A 10.96.0.11`]);
  t.deepEqual(parse(await dig(port, `_dns._udp.web.default.${ZONE}`, 'SRV')).answer, [`_dns._udp.web.default.${ZONE}. IN SRV 0 1 53 web.default.${ZONE}.`]);

  // Changed through the CLI: the very next query has it, no wait.
  await cli(t, d, 'service', 'apply', '-f', yaml(d, 'web2.yaml', 'default/web', ['10.96.0.12'], '[{name: https, port: 443, protocol: tcp}]'));
  t.deepEqual(parse(await dig(port, `web.default.${ZONE}`)).answer, [`web.default.${ZONE}. IN A 10.96.0.12`]);
  t.is(parse(await dig(port, `_http._tcp.web.default.${ZONE}`, 'SRV')).status, 'NXDOMAIN', 'the http port is gone');
  t.deepEqual(parse(await dig(port, `_https._tcp.web.default.${ZONE}`, 'SRV')).answer, [`_https._tcp.web.default.${ZONE}. IN SRV 0 1 443 web.default.${ZONE}.`]);

  r = parse(await dig(port, `web.default.${ZONE}`, 'AAAA'));
  t.is(r.status, 'NOERROR', 'AAAA: the name exists, without data');
  t.deepEqual(r.answer, []);
  t.is(r.authority.length, 1);
  t.regex(r.authority[0]!, new RegExp(`^${ZONE.replace(/\./g, '\\.')}\\. IN SOA `));

  await cli(t, d, 'service', 'delete', 'default/web');
  r = parse(await dig(port, `web.default.${ZONE}`));
  t.is(r.status, 'NXDOMAIN');
  t.deepEqual(r.answer, []);
  t.is(r.authority.length, 1);
  t.regex(r.authority[0]!, new RegExp(`^${ZONE.replace(/\./g, '\\.')}\\. IN SOA ${ZONE.replace(/\./g, '\\.')}\\. hostmaster\\.${ZONE.replace(/\./g, '\\.')}\\. \\d+ 3600 600 86400 7$`));
  t.regex(await dig(port, '+noall', '+authority', `web.default.${ZONE}`), /\s7\s+IN\s+SOA\s/, 'the negative TTL');

  r = parse(await dig(port, 'example.com'));
  t.is(r.status, 'REFUSED');
  t.false(r.flags.includes('aa'));

  // 60 VIPs: 60 A records do not fit 512 bytes (nor 1,232).
  const vips = Array.from({ length: 60 }, (_, i) => `10.97.0.${i + 1}`);
  await cli(t, d, 'service', 'apply', '-f', yaml(d, 'big.yaml', 'default/big', vips, '[{name: http, port: 80, protocol: tcp}]'));
  r = parse(await dig(port, '+noedns', '+ignore', `big.default.${ZONE}`));
  t.true(r.flags.includes('tc'), `flags: ${r.flags.join(' ')}`);
  t.deepEqual(r.answer, [], 'truncated: the question only');
  const retried = await dig(port, '+noedns', `big.default.${ZONE}`);
  t.regex(retried, /Truncated, retrying in TCP mode/);
  t.regex(retried, /SERVER: 127\.0\.0\.1#\d+\(127\.0\.0\.1\) \(TCP\)/);
  t.deepEqual(parse(retried).answer.map((l) => l.split(' ').at(-1)).sort(), [...vips].sort(), 'all 60 over TCP');
  r = parse(await dig(port, '+ignore', `_http._tcp.big.default.${ZONE}`, 'SRV'));
  t.true(r.flags.includes('tc'), 'an SRV answer with 60 addresses: truncated over UDP too');
  r = parse(await dig(port, '+tcp', `_http._tcp.big.default.${ZONE}`, 'SRV'));
  t.is(r.answer.length, 1);
  t.is(r.additional.filter((l) => / IN A /.test(l)).length, 60, '+tcp: the SRV with all 60 addresses');

  // A taken port refuses the start, naming the flag.
  const dir = path.join(d.dir, 'second');
  const pins = `${d.pinDir}-second`;
  t.teardown(() => rmSync(pins, { recursive: true, force: true }));
  const second = await sluice(['daemon', '--log-level', 'warn', '--exit-with-parent', '--state-dir', path.join(dir, 'state'), '--pin-dir', pins,
    '--listen', `unix://${path.join(d.dir, 'second.sock')}`, '--conntrack-size', '65536', '--dns-bind-address', `127.0.0.1:${port}`], { timeoutMs: 60_000 });
  t.is(second.code, 1, second.stderr);
  t.is(second.stderr, `sluice: FAILED_PRECONDITION: --dns-bind-address: cannot listen for DNS (UDP) on 127.0.0.1:${port}: EADDRINUSE (another DNS server there?)\n`);
  t.is((await dig(port, '+short', '+tcp', `big.default.${ZONE}`)).split('\n').filter(Boolean).length, 60, 'the first daemon still answers');
});

test('the DNS flags\' errors name the flag', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-dns-flags-'));
  const pins = `/sys/fs/bpf/sluice-dns-flags-${process.pid}`;
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(pins, { recursive: true, force: true });
  });
  for (const [args, line] of [
    [['--dns-bind-address', '127.0.0.1'], '--dns-bind-address: must be host:port or [v6]:port (e.g. 127.0.0.1:5353 or [::1]:5353), or "" to turn it off, got "127.0.0.1"'],
    [['--dns-bind-address', '127.0.0.1:5353', '--dns-zone', 'Svc.Sluice.Local'], '--dns-zone: must be lowercase DNS labels (letters, digits and "-", 1-63 characters, not starting or ending with "-") joined by dots, got "Svc.Sluice.Local": label "Svc" (lowercase: svc.sluice.local)'],
    [['--dns-bind-address', '127.0.0.1:5353', '--dns-zone', 'cluster.local.'], '--dns-zone: must be written without the final dot, e.g. cluster.local'],
    [['--dns-zone', 'cluster.local'], '--dns-zone: applies to the DNS server, which is off: give --dns-bind-address HOST:PORT too'],
    [['--dns-bind-address', '127.0.0.1:5353', '--dns-ttl', '5s'], '--dns-ttl: must be an integer in 0..3600, got 5s'],
  ] as Array<[string[], string]>) {
    // A daemon that started by mistake would use this test's own directories.
    const r = await sluice(['daemon', '--state-dir', path.join(dir, 'state'), '--pin-dir', pins, '--listen', `unix://${path.join(dir, 'd.sock')}`, '--exit-with-parent', ...args], { timeoutMs: 30_000 });
    t.is(r.stderr, `sluice: ${line}\n`, args.join(' '));
    t.is(r.code, 2, args.join(' '));
  }
  t.false(existsSync(pins), 'no daemon started');
});
