/**
 * LinkFollower's parsing, without root: interface-name globs, and the
 * lines `ip -o monitor link` prints (iproute2 6.1).
 */
import test from 'ava';
import { globToRegExp, parseMonitorLine } from '../../src/daemon/link-follower.js';

test('globs of interface names: * and ? only, everything else literal', (t) => {
  const veth = globToRegExp('veth*');
  t.true(veth.test('veth1a2b3c4d'));
  t.true(veth.test('veth'));
  t.false(veth.test('xveth1'), 'anchored at the start');
  t.false(globToRegExp('lxc?').test('lxc12'), '? is one character');
  t.true(globToRegExp('lxc?').test('lxc1'));
  t.false(globToRegExp('eth0.1').test('eth001'), 'a dot is a dot');
  t.true(globToRegExp('cali*').test('cali12345678901'));
});

test('monitor lines: a new or changed link, a deleted one, anything else ignored', (t) => {
  t.deepEqual(parseMonitorLine('3: vethA1@eth0: <BROADCAST,MULTICAST,M-DOWN> mtu 1500 qdisc noop state DOWN group default \\    link/ether 32:94:ec:3b:1a:01 brd ff:ff:ff:ff:ff:ff'),
    { deleted: false, ifindex: 3, ifname: 'vethA1' });
  t.deepEqual(parseMonitorLine('Deleted 3: vethB1@NONE: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default'),
    { deleted: true, ifindex: 3, ifname: 'vethB1' });
  t.deepEqual(parseMonitorLine('12: cni0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP'), { deleted: false, ifindex: 12, ifname: 'cni0' });
  t.is(parseMonitorLine(''), null);
  t.is(parseMonitorLine('    link/ether 32:94:ec:3b:1a:01 brd ff:ff:ff:ff:ff:ff'), null);
});
