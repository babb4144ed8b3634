/**
 * `sluice kube-proxy` on the command line: flags (kube-proxy-flags.ts) into
 * KubeProxyOptions, errors named by their flag, and the process's life.
 */
import { SluiceError } from '../errors.js';
import { cleanupNode, formatCleanupReport, type CleanupReport } from '../daemon/cleanup.js';
import { resolveKubeProxyOptions, startKubeProxy, type KubeProxyOptions } from '../daemon/kube-proxy.js';
import { asFlagError, capacityOf, untilStopped } from './daemon-command.js';
import { conntrackOptions } from './conntrack-flags.js';
import { KUBE_PROXY_FLAGS, type KubeProxyFlags } from './kube-proxy-flags.js';
import { UsageError } from './output.js';

/** The agent's flag for a DaemonOptions field it sets. */
const DAEMON_FIELDS: Record<string, string> = {
  followInterfaces: '--pod-interfaces',
  socketLb: '--socket-lb',
  interfaces: '--interface',
};

/** A KubeProxyOptions (or daemon) field's flag. */
function flagOf(field: string): string | undefined {
  const f = KUBE_PROXY_FLAGS.find((x) => x.field === field);
  return f ? f.flags.split(' ')[0] : DAEMON_FIELDS[field];
}

/**
 * The daemon's remedies in the agent's terms: the agent has no
 * --adopt-dataplane, --reset-dataplane or --force; its way to start afresh
 * is --cleanup (which also names another dataplane's pins).
 */
const REMEDIES: ReadonlyArray<[RegExp, string]> = [
  [/give --adopt-dataplane to rebuild the store from them \([^)]*\), or --reset-dataplane to start from empty maps \(every connection is dropped\)/,
    'give the agent its --state-dir back, or run `sluice kube-proxy --cleanup` with this --pin-dir and --state-dir first (every connection is dropped)'],
  [/or --reset-dataplane to rebuild the maps at the new size \(every connection is dropped\)/,
    'or run `sluice kube-proxy --cleanup` with this --pin-dir and --state-dir first to rebuild the maps at the new size (every connection is dropped)'],
  [/--reset-dataplane rebuilds the maps at the sizes of the flags \(every connection is dropped\)/,
    'run `sluice kube-proxy --cleanup` with this --pin-dir and --state-dir first to rebuild the maps at the sizes of the flags (every connection is dropped)'],
  [/\(with --adopt-dataplane, the store is rebuilt from the pinned dataplane\)/, '(or run `sluice kube-proxy --cleanup` with this --pin-dir and --state-dir)'],
  [/pass --force to replace it/, 'remove it first (`sluice kube-proxy --cleanup` with that dataplane\'s --pin-dir removes another sluice\'s)'],
];

export function inAgentTerms(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  let message = err.message;
  for (const [re, said] of REMEDIES) message = message.replace(re, said);
  if (message === err.message) return err;
  if (err instanceof SluiceError) {
    const own = err.field !== undefined && message.startsWith(`${err.field}: `) ? message.slice(err.field.length + 2) : message;
    return new SluiceError(err.code, own, { ...(err.field !== undefined ? { field: err.field } : {}), cause: err });
  }
  return new Error(message, { cause: err });
}

/** An agent error about an option, named by its flag (UsageError for an invalid value); daemon fields go to the daemon's names. */
function asKubeFlagError(e: unknown): unknown {
  const err = inAgentTerms(e);
  if (!(err instanceof SluiceError) || err.field === undefined) return err;
  const flag = flagOf(err.field);
  if (flag === undefined) return asFlagError(err);
  const reason = err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message;
  if (err.code === 'INVALID_ARGUMENT') return new UsageError(`${flag}: ${reason}`);
  return new SluiceError(err.code, `${flag}: ${reason}`, { cause: err });
}

export function kubeProxyOptions(f: KubeProxyFlags): KubeProxyOptions {
  try {
    return resolveKubeProxyOptions({
      ...(f.kubeconfig !== undefined ? { kubeconfig: f.kubeconfig } : {}),
      ...(f.hostnameOverride !== undefined ? { hostnameOverride: f.hostnameOverride } : {}),
      ...(f.healthzBindAddress !== undefined ? { healthzBindAddress: f.healthzBindAddress } : {}),
      ...(f.metricsBindAddress !== undefined ? { metricsBindAddress: f.metricsBindAddress } : {}),
      ...(f.nodeportAddresses !== undefined ? { nodePortAddresses: f.nodeportAddresses } : {}),
      ...(f.clusterCidr !== undefined ? { clusterCidr: f.clusterCidr } : {}),
      ...(f.mode !== undefined ? { mode: f.mode } : {}),
      ...(f.pinDir !== undefined ? { pinDir: f.pinDir } : {}),
      ...(f.stateDir !== undefined ? { stateDir: f.stateDir } : {}),
      ...(f.netns !== undefined ? { netns: f.netns } : {}),
      ...(f.interface !== undefined ? { interfaces: f.interface } : {}),
      ...(f.podInterfaces !== undefined ? { podInterfaces: f.podInterfaces } : {}),
      ...(f.socketLb !== undefined ? { socketLb: f.socketLb } : {}),
      ...(Object.keys(capacityOf(f)).length > 0 ? { capacity: capacityOf(f) } : {}),
      ...(f.listen !== undefined ? { listen: f.listen } : {}),
      ...(f.minSyncPeriod !== undefined ? { minSyncMs: f.minSyncPeriod } : {}),
      ...(f.logLevel !== undefined ? { logLevel: f.logLevel } : {}),
      ...conntrackOptions(f),
    });
  } catch (err) {
    throw asKubeFlagError(err);
  }
}

/** Run the agent until SIGTERM or SIGINT. */
export async function runKubeProxy(opts: KubeProxyOptions, exitWithParent: boolean): Promise<void> {
  let running;
  try {
    running = await startKubeProxy(opts);
  } catch (err) {
    throw asKubeFlagError(err);
  }
  await untilStopped(running, exitWithParent);
}

/**
 * `--cleanup`: take sluice off the node that --netns, --pin-dir and
 * --state-dir name, without the API server. The other flags are not looked
 * at (the DaemonSet's arguments may be given as they are), nor is the node's
 * name: a host name that is not a node name must not refuse a cleanup.
 */
export async function runKubeProxyCleanup(f: KubeProxyFlags): Promise<{ report: CleanupReport; text: string }> {
  const opts = kubeProxyOptions({
    hostnameOverride: 'cleanup',
    ...(f.netns !== undefined ? { netns: f.netns } : {}),
    ...(f.pinDir !== undefined ? { pinDir: f.pinDir } : {}),
    ...(f.stateDir !== undefined ? { stateDir: f.stateDir } : {}),
    ...(f.socketLb !== undefined ? { socketLb: f.socketLb } : {}),
  });
  try {
    const report = await cleanupNode({ ...(opts.netns !== undefined ? { netns: opts.netns } : {}), pinDir: opts.pinDir, stateDir: opts.stateDir, ...(opts.socketLb !== '' ? { socketLb: opts.socketLb } : {}) });
    return { report, text: formatCleanupReport(report) };
  } catch (err) {
    throw asKubeFlagError(err);
  }
}
