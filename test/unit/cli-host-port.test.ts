/**
 * host:port and [v6]:port as the command line takes them (--listen,
 * --server, $SLUICE_SERVER, the daemon's bind addresses): what is accepted
 * and the text used, and each mistake's one line, with the fix.
 */
import test from 'ava';
import { checkHostPort, type HostPortRules } from '../../src/cli/host-port.js';
import { UsageError } from '../../src/cli/output.js';

const listen: HostPortRules = { flag: '--listen', forms: 'unix:///absolute/path, host:port or [v6]:port', examplePort: 19470, minPort: 0 };
const server: HostPortRules = { ...listen, flag: '--server', minPort: 1, from: ' (from $SLUICE_SERVER)' };
const bind: HostPortRules = { flag: '--metrics-bind-address', forms: 'host:port or [v6]:port', examplePort: 9469, minPort: 0, also: ', or "" to turn it off' };

test('accepted: a name, an IPv4 address or a bracketed IPv6 address, and a port; IPv6 in its RFC 5952 text', (t) => {
  for (const [v, want] of [
    ['127.0.0.1:19470', '127.0.0.1:19470'],
    ['localhost:19470', 'localhost:19470'],
    ['lb-1.example.com:443', 'lb-1.example.com:443'],
    ['[::1]:19470', '[::1]:19470'],
    ['[0:0::1]:19470', '[::1]:19470'],
    ['[2001:DB8:0::5]:80', '[2001:db8::5]:80'],
    ['[::]:9469', '[::]:9469'],
    ['127.0.0.1:0', '127.0.0.1:0'],
    ['[::1]:65535', '[::1]:65535'],
  ] as Array<[string, string]>) {
    t.is(checkHostPort(v, listen), want, v);
  }
});

test('refused: each mistake names the flag and says what to write', (t) => {
  const general = 'must be unix:///absolute/path, host:port or [v6]:port (e.g. 127.0.0.1:19470 or [::1]:19470), got';
  for (const [rules, v, line] of [
    [listen, '::1:19470', '--listen: ::1:19470 is an IPv6 address and a port: an IPv6 address goes in brackets, write [::1]:19470'],
    [listen, '2001:DB8::5:443', '--listen: 2001:DB8::5:443 is an IPv6 address and a port: an IPv6 address goes in brackets, write [2001:db8::5]:443'],
    [listen, '[::1]', '--listen: [::1] has no port: write [::1]:PORT (e.g. [::1]:19470)'],
    [listen, '[::1]:', `--listen: ${general} "[::1]:"`],
    [listen, 'fd00::1', '--listen: fd00::1 is an IPv6 address without a port: write [fd00::1]:PORT (e.g. [fd00::1]:19470)'],
    [listen, '[192.168.1.5]:80', '--listen: brackets are for an IPv6 address: write 192.168.1.5:80'],
    [listen, '[fe80::1%eth0]:80', `--listen: ${general} "[fe80::1%eth0]:80"`],
    [listen, '[lb]:80', `--listen: ${general} "[lb]:80"`],
    [listen, 'sluice.sock', `--listen: ${general} "sluice.sock"`],
    [listen, 'unix:/run/s.sock', `--listen: ${general} "unix:/run/s.sock"`],
    [listen, '127.0.0.1', `--listen: ${general} "127.0.0.1"`],
    [listen, ':19470', `--listen: ${general} ":19470"`],
    [listen, '127.0.0.1:99999', '--listen: the port must be in 0..65535, got 99999'],
    [listen, '[::1]:70000', '--listen: the port must be in 0..65535, got 70000'],
    [listen, 'x'.repeat(100), `--listen: ${general} a value of 100 characters`],
    [server, '::1:19470', '--server: ::1:19470 is an IPv6 address and a port: an IPv6 address goes in brackets, write [::1]:19470 (from $SLUICE_SERVER)'],
    [server, '127.0.0.1:0', '--server: the port must be in 1..65535, got 0 (from $SLUICE_SERVER)'],
    [bind, '::1:9469', '--metrics-bind-address: ::1:9469 is an IPv6 address and a port: an IPv6 address goes in brackets, write [::1]:9469'],
    [bind, 'localhost', '--metrics-bind-address: must be host:port or [v6]:port (e.g. 127.0.0.1:9469 or [::1]:9469), or "" to turn it off, got "localhost"'],
  ] as Array<[HostPortRules, string, string]>) {
    const err = t.throws(() => checkHostPort(v, rules), { instanceOf: UsageError }, v);
    t.is(err?.message, line, v);
  }
});
