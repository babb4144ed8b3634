/** `sluice kube-proxy`'s flags: durations as kube-proxy takes them, and the daemon's remedies said in the agent's terms. */
import test from 'ava';
import { parseDuration } from '../../src/cli/kube-proxy-flags.js';
import { inAgentTerms, kubeProxyOptions } from '../../src/cli/kube-proxy-command.js';
import { checkHairpinAddress6 } from '../../src/daemon/daemon.js';
import { SluiceError } from '../../src/errors.js';
import { UsageError } from '../../src/cli/output.js';

test('durations: Go-style, as kube-proxy takes them', (t) => {
  t.is(parseDuration('min-sync-period', '1s'), 1000);
  t.is(parseDuration('min-sync-period', '250ms'), 250);
  t.is(parseDuration('min-sync-period', '1m30s'), 90_000);
  t.is(parseDuration('min-sync-period', '0'), 0);
  for (const bad of ['5', '1d', '-1s', '1s2', 's']) {
    const e = t.throws(() => parseDuration('min-sync-period', bad), { instanceOf: UsageError });
    t.regex(e!.message, /^--min-sync-period: must be a duration/);
  }
});

test('the daemon\'s remedies are said with the agent\'s flags: --cleanup, never --reset-dataplane, --adopt-dataplane or --force', (t) => {
  const empty = new SluiceError('FAILED_PRECONDITION', 'the store (SQLite in /var/lib/sluice) is empty, but the pinned dataplane in /sys/fs/bpf/sluice holds 3 service entries (VIP:port:protocol) that would be deleted: give --adopt-dataplane to rebuild the store from them (services named adopted/<vip>-<port>-<protocol>), or --reset-dataplane to start from empty maps (every connection is dropped)');
  const size = new SluiceError('FAILED_PRECONDITION', '--conntrack-size 4096 differs from the pinned dataplane in /sys/fs/bpf/sluice (65536): give --conntrack-size 65536, or --reset-dataplane to rebuild the maps at the new size (every connection is dropped)');
  const odd = new SluiceError('FAILED_PRECONDITION', 'the pinned map in /sys/fs/bpf/sluice: svc_stats has 65536 entries, --max-frontends 16383 gives it 16384: --reset-dataplane rebuilds the maps at the sizes of the flags (every connection is dropped)');
  const hook = new SluiceError('FAILED_PRECONDITION', "eth0: XDP already runs program 'sluice_xdp' (id 7), which is not this dataplane's; pass --force to replace it");
  for (const e of [empty, size, odd, hook]) {
    const said = (inAgentTerms(e) as SluiceError).message;
    t.notRegex(said, /--reset-dataplane|--adopt-dataplane|--force/, said);
    t.regex(said, /sluice kube-proxy --cleanup/);
    t.is((inAgentTerms(e) as SluiceError).code, 'FAILED_PRECONDITION');
  }
  const other = new SluiceError('INVALID_ARGUMENT', 'something else', { field: 'mode' });
  t.is(inAgentTerms(other), other, 'anything else is left as it is');
});

test('--cluster-cidr and --nodeport-addresses take CIDRs of both families; anything else is refused naming the flag', (t) => {
  const o = kubeProxyOptions({ clusterCidr: ['10.244.0.0/16', 'fd44::/64'], nodeportAddresses: ['fd00:7::/64', '192.168.7.0/24'], socketLb: '' });
  t.deepEqual(o.clusterCidr, ['10.244.0.0/16', 'fd44::/64']);
  t.deepEqual(o.nodePortAddresses, ['fd00:7::/64', '192.168.7.0/24']);
  const cases: Array<[{ clusterCidr?: string[]; nodeportAddresses?: string[] }, string, string]> = [
    [{ clusterCidr: ['fd44::/129'] }, '--cluster-cidr', 'fd44::/129'],
    [{ clusterCidr: ['10.244.0.0/16', 'pods'] }, '--cluster-cidr', 'pods'],
    [{ nodeportAddresses: ['fd00:7::2'] }, '--nodeport-addresses', 'fd00:7::2'],
    [{ nodeportAddresses: ['fe80::/64%eth0'] }, '--nodeport-addresses', 'fe80::/64%eth0'],
    [{ nodeportAddresses: ['10.0.0.0/33'] }, '--nodeport-addresses', '10.0.0.0/33'],
  ];
  for (const [flags, flag, bad] of cases) {
    const e = t.throws(() => kubeProxyOptions({ ...flags, socketLb: '' }), { instanceOf: UsageError });
    t.is(e!.message, `${flag}: must be CIDRs like 10.0.0.0/8 or fd00::/64, comma-separated, got ${JSON.stringify(bad)}`);
  }
});

test('the IPv6 hairpin address: an IPv6 unicast address, in RFC 5952 text; the rest refused naming the field', (t) => {
  t.is(checkHairpinAddress6('FD00:7:0:0::2', 'hairpinAddress6'), 'fd00:7::2');
  t.is(checkHairpinAddress6(null, 'hairpinAddress6'), null);
  for (const [bad, why] of [['10.0.0.1', /not an IPv6 address/], ['fe80::1', /link-local/], ['::1', /loopback/], ['ff02::1', /multicast/], ['::', /unspecified/], ['::ffff:10.0.0.1', /IPv4-mapped/], ['fe80::1%eth0', /not an IPv6 address/]] as const) {
    const e = t.throws(() => checkHairpinAddress6(bad, 'hairpinAddress6'), { instanceOf: SluiceError });
    t.regex(e!.message, why, bad);
    t.is(e!.field, 'hairpinAddress6');
  }
});
