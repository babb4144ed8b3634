/**
 * `sluice daemon` on the command line: its flags (daemon-flags.ts) turned
 * into DaemonOptions, and the process's life around the daemon (signals,
 * and --exit-with-parent for the demo and tests).
 */
import { SluiceError } from '../errors.js';
import type { DataplaneCapacity } from '../dataplane/native-dataplane.js';
import { resolveDaemonOptions, startDaemon, type DaemonOptions } from '../daemon/daemon.js';
import { conntrackOptions } from './conntrack-flags.js';
import { DAEMON_FLAGS, type CapacityFlags, type DaemonFlags } from './daemon-flags.js';
import { UsageError } from './output.js';

/** The flag an option field is set by ("capacity.conntrack" → "--conntrack-size"). */
function flagOf(field: string): string {
  if (field === 'tls.cert') return '--tls-cert';
  if (field === 'tls.key') return '--tls-key';
  if (field === 'tls.ca') return '--tls-ca';
  if (field === 'tls') return '--tls-cert';
  const f = DAEMON_FLAGS.find((x) => x.field === field);
  return f ? f.flags.split(' ')[0]! : field;
}

/** A daemon error about an option, named by its flag: a UsageError (exit 2) for an invalid value. */
export function asFlagError(err: unknown): unknown {
  if (!(err instanceof SluiceError) || err.field === undefined) return err;
  const reason = err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message;
  if (err.code === 'INVALID_ARGUMENT') return new UsageError(`${flagOf(err.field)}: ${reason}`);
  // A failure of the machine's state (a socket path taken), not of the value: exit 1, still named by its flag.
  return new SluiceError(err.code, `${flagOf(err.field)}: ${reason}`, { cause: err });
}

/** The capacities the flags give (those of CAPACITY_FLAGS, which the daemon and the agent share). */
export function capacityOf(f: CapacityFlags): Partial<DataplaneCapacity> {
  const capacity: Partial<DataplaneCapacity> = {};
  if (f.conntrackSize !== undefined) capacity.conntrack = f.conntrackSize;
  if (f.affinitySize !== undefined) capacity.affinity = f.affinitySize;
  if (f.maxFrontends !== undefined) capacity.frontends = f.maxFrontends;
  if (f.maxBackends !== undefined) capacity.backends = f.maxBackends;
  if (f.maglevSlots !== undefined) capacity.maglevSlots = f.maglevSlots;
  if (f.socketLbSize !== undefined) capacity.sockets = f.socketLbSize;
  return capacity;
}

/** DaemonOptions from the flags and the global TLS files; a wrong value is a UsageError naming its flag. */
export function daemonOptions(f: DaemonFlags, tls: { tlsCert?: string | undefined; tlsKey?: string | undefined; tlsCa?: string | undefined }): DaemonOptions {
  if ((tls.tlsCert === undefined) !== (tls.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (tls.tlsCert === undefined && (tls.tlsCa !== undefined || f.requireClientCert)) {
    throw new UsageError(`${tls.tlsCa !== undefined ? '--tls-ca' : '--require-client-cert'}: applies to a TLS listener: give --tls-cert and --tls-key too`);
  }
  if (f.adoptDataplane && f.resetDataplane) throw new UsageError('--adopt-dataplane and --reset-dataplane: give one or the other');
  const capacity = capacityOf(f);
  try {
    return resolveDaemonOptions({
      interfaces: f.interface ?? [],
      followInterfaces: f.followInterfaces ?? [],
      ...(f.hairpinSnatAddress !== undefined ? { hairpinSnatAddress: f.hairpinSnatAddress } : {}),
      ...(f.socketLb !== undefined ? { socketLb: f.socketLb } : {}),
      ...(f.mode !== undefined ? { mode: f.mode } : {}),
      ...(f.listen !== undefined ? { listen: f.listen } : {}),
      ...(f.metricsBindAddress !== undefined ? { metricsBindAddress: f.metricsBindAddress } : {}),
      ...(tls.tlsCert !== undefined && tls.tlsKey !== undefined
        ? { tls: { cert: tls.tlsCert, key: tls.tlsKey, ...(tls.tlsCa !== undefined ? { ca: tls.tlsCa } : {}), requireClientCert: f.requireClientCert === true } }
        : {}),
      ...(f.stateDir !== undefined ? { stateDir: f.stateDir } : {}),
      ...(f.pinDir !== undefined ? { pinDir: f.pinDir } : {}),
      detachOnExit: f.detachOnExit === true,
      capacity,
      force: f.force === true,
      dataplaneStart: f.adoptDataplane ? 'adopt' : f.resetDataplane ? 'reset' : 'refuse-unknown',
      ...(f.logLevel !== undefined ? { logLevel: f.logLevel } : {}),
      ...(f.store !== undefined ? { store: f.store } : {}),
      ...(f.storeCa !== undefined || f.storeCert !== undefined || f.storeKey !== undefined
        ? { storeTls: { ...(f.storeCa !== undefined ? { ca: f.storeCa } : {}), ...(f.storeCert !== undefined ? { cert: f.storeCert } : {}), ...(f.storeKey !== undefined ? { key: f.storeKey } : {}) } }
        : {}),
      ...(f.storePrefix !== undefined ? { storePrefix: f.storePrefix } : {}),
      ...(f.statelessReplies === false ? { statelessReplies: false } : {}),
      ...(f.dnsBindAddress !== undefined ? { dnsBindAddress: f.dnsBindAddress } : {}),
      ...(f.dnsZone !== undefined ? { dnsZone: f.dnsZone } : {}),
      ...(f.dnsTtl !== undefined ? { dnsTtl: f.dnsTtl } : {}),
      ...(f.healthNetns !== undefined ? { healthNetns: f.healthNetns } : {}),
      ...conntrackOptions(f),
    });
  } catch (err) {
    throw asFlagError(err);
  }
}

/** Run the daemon until SIGTERM or SIGINT (or, with exitWithParent, the parent's death). */
export async function runDaemon(opts: DaemonOptions, exitWithParent: boolean): Promise<void> {
  let d;
  try {
    d = await startDaemon(opts);
  } catch (err) {
    throw asFlagError(err);
  }
  await untilStopped(d, exitWithParent);
}

/**
 * Wait for SIGTERM, SIGINT or SIGHUP (the terminal of a process run in the
 * foreground closing), or with exitWithParent the parent's death; then
 * stop `running` and resolve.
 */
export function untilStopped(running: { stop(): Promise<void> }, exitWithParent: boolean): Promise<void> {
  return new Promise<void>((resolve) => {
    let watch: NodeJS.Timeout | undefined;
    const stop = (): void => {
      clearInterval(watch);
      void running.stop().then(resolve);
    };
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(sig, stop);
    if (exitWithParent) {
      const parent = process.ppid;
      watch = setInterval(() => {
        if (process.ppid !== parent) stop();
      }, 500);
    }
  });
}
