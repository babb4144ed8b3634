// The flow lifecycle's flags: Go/Kubernetes durations in whole seconds,
// bounded; the same flags on `sluice daemon` and `sluice kube-proxy`,
// turned into the options the dataplane takes.
import test from 'ava';
import { CONNTRACK_DEFAULTS, CONNTRACK_FLAGS, conntrackOptions, formatSeconds, parseSeconds } from '../../src/cli/conntrack-flags.js';
import { daemonOptions } from '../../src/cli/daemon-command.js';
import { DAEMON_FLAGS } from '../../src/cli/daemon-flags.js';
import { KUBE_PROXY_FLAGS } from '../../src/cli/kube-proxy-flags.js';
import { kubeProxyOptions } from '../../src/cli/kube-proxy-command.js';
import { UsageError } from '../../src/cli/output.js';
import { FLOW_TIMEOUT_DEFAULTS } from '../../src/dataplane/native-dataplane.js';
import { GC_INTERVAL_DEFAULT_S } from '../../src/node/conntrack-gc.js';

test('durations: Go and Kubernetes forms, whole seconds', (t) => {
  for (const [v, s] of [['90s', 90], ['1h30m', 5400], ['24h0m0s', 86_400], ['6h', 21_600], ['1.5h', 5400], ['2000ms', 2], ['1m0.5s', NaN], ['1s', 1], ['8760h', 31_536_000]] as const) {
    if (Number.isNaN(s)) t.throws(() => parseSeconds('x', v), { instanceOf: UsageError });
    else t.is(parseSeconds('x', v), s, v);
  }
  for (const [bad, why] of [['60', 'a duration needs its unit: 60s for 60 seconds'], ['1d', 'must be a duration in whole seconds'], ['-1s', 'must be a duration in whole seconds'], ['', 'must be a duration in whole seconds'],
    ['1500ms', 'must be whole seconds'], ['0s', 'must be 1s..8760h'], ['0', '0 keeps kube-proxy from setting the kernel\'s timeout; sluice\'s own table always needs one: give a duration'], ['8761h', 'must be 1s..8760h'], ['1h 30m', 'must be a duration in whole seconds']] as const) {
    const e = t.throws(() => parseSeconds('conntrack-udp-timeout', bad), { instanceOf: UsageError });
    t.is(e!.message, `--conntrack-udp-timeout: ${why} (e.g. 90s, 1h30m or 24h0m0s), got ${JSON.stringify(bad)}`);
  }
  t.is(formatSeconds(21_600), '6h');
  t.is(formatSeconds(5430), '1h30m30s');
  t.is(formatSeconds(60), '60s');
  t.is(formatSeconds(300), '5m');
});

test('the help\'s defaults are the dataplane\'s and the collector\'s', (t) => {
  const { tcpSyn, tcpEstablished, tcpClosing, udp } = CONNTRACK_DEFAULTS;
  t.deepEqual({ tcpSyn, tcpEstablished, tcpClosing, udp }, { ...FLOW_TIMEOUT_DEFAULTS });
  t.is(CONNTRACK_DEFAULTS.gcInterval, GC_INTERVAL_DEFAULT_S);
});

test('both commands take the same flags, kube-proxy\'s names among them', (t) => {
  const names = (flags: typeof CONNTRACK_FLAGS): string[] => flags.map((f) => f.flags.split(' ')[0]!);
  for (const table of [DAEMON_FLAGS, KUBE_PROXY_FLAGS]) {
    for (const n of names(CONNTRACK_FLAGS)) t.true(names(table).includes(n), n);
  }
  t.true(names(CONNTRACK_FLAGS).includes('--conntrack-tcp-timeout-established'));
  t.true(names(CONNTRACK_FLAGS).includes('--conntrack-udp-timeout'));
  t.regex(CONNTRACK_FLAGS.find((f) => f.flags.startsWith('--conntrack-tcp-timeout-close '))!.description, /not kube-proxy's --conntrack-tcp-timeout-close-wait/);
});

test('flags become the daemon\'s and the agent\'s options; only those given', (t) => {
  const f = { conntrackTcpTimeoutEstablished: 86_400, conntrackUdpTimeout: 2, conntrackFloodRate: 0, conntrackGcInterval: 30 };
  t.deepEqual(conntrackOptions(f), { flowTimeouts: { tcpEstablished: 86_400, udp: 2 }, floodRate: 0, conntrackGcInterval: 30 });
  t.deepEqual(conntrackOptions({}), {});
  const d = daemonOptions({ ...f, stateDir: '/tmp/x', pinDir: '/sys/fs/bpf/x' }, {});
  t.like(d, { flowTimeouts: { tcpEstablished: 86_400, udp: 2 }, floodRate: 0, conntrackGcInterval: 30 });
  t.like(daemonOptions({}, {}), { flowTimeouts: {}, conntrackGcInterval: GC_INTERVAL_DEFAULT_S });
  const k = kubeProxyOptions({ ...f, hostnameOverride: 'node-1', socketLb: '' });
  t.like(k, { flowTimeouts: { tcpEstablished: 86_400, udp: 2 }, floodRate: 0, conntrackGcInterval: 30 });
});

test('an option out of range from the API side is refused naming its flag', (t) => {
  const e = t.throws(() => daemonOptions({ conntrackGcInterval: 0 }, {}), { instanceOf: UsageError });
  t.is(e!.message, '--conntrack-gc-interval: must be whole seconds in 1..86400, got 0');
  const e2 = t.throws(() => daemonOptions({ conntrackTcpTimeoutSyn: 1.5 }, {}), { instanceOf: UsageError });
  t.is(e2!.message, '--conntrack-tcp-timeout-syn: must be whole seconds in 1..31536000, got 1.5');
});
