/**
 * The flow lifecycle's flags, shared by `sluice daemon` and `sluice
 * kube-proxy`: kube-proxy's names where it has the option (its
 * --conntrack-tcp-timeout-established and --conntrack-udp-timeout take Go
 * durations such as 24h0m0s, and so do these). Light, like daemon-flags.ts.
 */
import { CONNTRACK_LIMITS, GC_INTERVAL_DEFAULT_S } from '../node/conntrack-gc.js';
import type { DaemonFlag } from './daemon-flags.js';
import { UsageError } from './output.js';

const UNIT_NS: Record<string, bigint> = { ns: 1n, us: 1000n, 'µs': 1000n, 'μs': 1000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n };

/** Whole seconds as a duration for messages and help: 60s, 5m, 1h30m30s, 6h (seconds alone below two minutes). */
export function formatSeconds(s: number): string {
  if (s < 120) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${sec || (!h && !m) ? `${sec}s` : ''}`;
}

/**
 * A Go/Kubernetes duration (90s, 1h30m, 24h0m0s, 1.5h; units ns, us, ms,
 * s, m, h) as whole seconds in 1..max; a UsageError naming `--flag` and an
 * example otherwise.
 */
export function parseSeconds(flag: string, v: string, max: number = CONNTRACK_LIMITS.timeoutMaxS): number {
  const bad = (why: string): never => {
    throw new UsageError(`--${flag}: ${why} (e.g. 90s, 1h30m or 24h0m0s), got ${v.length > 40 ? `a value of ${v.length} characters` : JSON.stringify(v)}`);
  };
  // kube-proxy's "0: leave the kernel's setting as it is" has nothing to
  // leave here: sluice's table always has a timeout.
  if (v === '0') return bad('0 keeps kube-proxy from setting the kernel\'s timeout; sluice\'s own table always needs one: give a duration');
  // A bare number is most likely seconds without their unit.
  if (/^\d+$/.test(v)) return bad(`a duration needs its unit: ${v}s for ${v} seconds`);
  const parts = [...v.matchAll(/(\d+)(?:\.(\d+))?(ns|us|µs|μs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== v) return bad('must be a duration in whole seconds');
  let ns = 0n;
  for (const p of parts) {
    const unit = UNIT_NS[p[3]!]!;
    const frac = p[2] ?? '';
    ns += BigInt(p[1]!) * unit + (BigInt(frac || '0') * unit) / 10n ** BigInt(frac.length);
  }
  if (ns % 1_000_000_000n !== 0n) return bad('must be whole seconds');
  const s = ns / 1_000_000_000n;
  if (s < 1n || s > BigInt(max)) return bad(`must be 1s..${formatSeconds(max)}`);
  return Number(s);
}

function rate(flag: string) {
  return (v: string): number => {
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n > CONNTRACK_LIMITS.floodRateMax) throw new UsageError(`--${flag}: must be an integer in 0..${CONNTRACK_LIMITS.floodRateMax} (new flows a second per CPU, e.g. 125000; 0: no limit), got ${v}`);
    return n;
  };
}

/**
 * Defaults, for help: the dataplane's own (bpf/include/config.h, and
 * FLOW_TIMEOUT_DEFAULTS, which a test holds these to), in seconds and flows
 * a second; written here so that --help does not load the dataplane.
 */
export const CONNTRACK_DEFAULTS = { tcpSyn: 60, tcpEstablished: 21_600, tcpClosing: 10, udp: 60, floodRate: 125_000, gcInterval: GC_INTERVAL_DEFAULT_S } as const;

/** The flags, with their option fields (flowTimeouts.<state>, floodRate, conntrackGcInterval). */
export const CONNTRACK_FLAGS: readonly DaemonFlag[] = [
  { flags: '--conntrack-tcp-timeout-established <duration>', field: 'flowTimeouts.tcpEstablished', description: `how long an established TCP flow lives without a packet, e.g. 6h or 24h0m0s (default ${formatSeconds(CONNTRACK_DEFAULTS.tcpEstablished)})`, parse: (v) => parseSeconds('conntrack-tcp-timeout-established', v) },
  { flags: '--conntrack-tcp-timeout-syn <duration>', field: 'flowTimeouts.tcpSyn', description: `how long a TCP flow that has sent only its SYN lives without a packet (default ${formatSeconds(CONNTRACK_DEFAULTS.tcpSyn)})`, parse: (v) => parseSeconds('conntrack-tcp-timeout-syn', v) },
  { flags: '--conntrack-tcp-timeout-close <duration>', field: 'flowTimeouts.tcpClosing', description: `how long a TCP flow lives without a packet after a FIN or RST either way (default ${formatSeconds(CONNTRACK_DEFAULTS.tcpClosing)}); not kube-proxy's --conntrack-tcp-timeout-close-wait, which sets the kernel's CLOSE_WAIT timeout`, parse: (v) => parseSeconds('conntrack-tcp-timeout-close', v) },
  { flags: '--conntrack-udp-timeout <duration>', field: 'flowTimeouts.udp', description: `how long a UDP flow lives without a datagram either way (default ${formatSeconds(CONNTRACK_DEFAULTS.udp)}); then its next datagram is placed afresh, off a draining backend`, parse: (v) => parseSeconds('conntrack-udp-timeout', v) },
  { flags: '--conntrack-flood-rate <n>', field: 'floodRate', description: `new flows tracked per second per CPU; past it, new flows are balanced untracked (default ${CONNTRACK_DEFAULTS.floodRate}; 0: no limit)`, parse: rate('conntrack-flood-rate') },
  { flags: '--conntrack-gc-interval <duration>', field: 'conntrackGcInterval', description: `how often the collector walks the whole conntrack table deleting dead flows, its pass spread over the interval (default ${formatSeconds(CONNTRACK_DEFAULTS.gcInterval)})`, parse: (v) => parseSeconds('conntrack-gc-interval', v, CONNTRACK_LIMITS.gcIntervalMaxS) },
];

/** The flags' values as commander gives them (the same names on both commands). */
export interface ConntrackFlags {
  conntrackTcpTimeoutEstablished?: number;
  conntrackTcpTimeoutSyn?: number;
  conntrackTcpTimeoutClose?: number;
  conntrackUdpTimeout?: number;
  conntrackFloodRate?: number;
  conntrackGcInterval?: number;
}

/** The options these flags set, only those given. */
export function conntrackOptions(f: ConntrackFlags): { flowTimeouts?: { tcpSyn?: number; tcpEstablished?: number; tcpClosing?: number; udp?: number }; floodRate?: number; conntrackGcInterval?: number } {
  const t: { tcpSyn?: number; tcpEstablished?: number; tcpClosing?: number; udp?: number } = {};
  if (f.conntrackTcpTimeoutSyn !== undefined) t.tcpSyn = f.conntrackTcpTimeoutSyn;
  if (f.conntrackTcpTimeoutEstablished !== undefined) t.tcpEstablished = f.conntrackTcpTimeoutEstablished;
  if (f.conntrackTcpTimeoutClose !== undefined) t.tcpClosing = f.conntrackTcpTimeoutClose;
  if (f.conntrackUdpTimeout !== undefined) t.udp = f.conntrackUdpTimeout;
  return {
    ...(Object.keys(t).length ? { flowTimeouts: t } : {}),
    ...(f.conntrackFloodRate !== undefined ? { floodRate: f.conntrackFloodRate } : {}),
    ...(f.conntrackGcInterval !== undefined ? { conntrackGcInterval: f.conntrackGcInterval } : {}),
  };
}
