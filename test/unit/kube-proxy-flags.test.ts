/** `sluice kube-proxy`'s flags: durations as kube-proxy takes them, and the daemon's remedies said in the agent's terms. */
import test from 'ava';
import { parseDuration } from '../../src/cli/kube-proxy-flags.js';
import { inAgentTerms } from '../../src/cli/kube-proxy-command.js';
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
