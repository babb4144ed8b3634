/**
 * An address with a port as typed on the command line (--listen, --server,
 * $SLUICE_SERVER, the daemon's bind addresses): host:port, or [v6]:port,
 * whose brackets keep the IPv6 address's colons apart from the port's.
 * Checked before anything starts or is sent, so that a mistake is a wrong
 * command line (exit 2) naming its flag and what to write, not a failed
 * name resolution of "dns:::1:19470" once the daemon is half started.
 */
import { canonicalAddress, familyOf, unbracketedIPv6 } from '../model/address.js';
import { UsageError } from './output.js';

/** How one flag takes a host:port. */
export interface HostPortRules {
  /** What messages name: the flag ("--listen"). */
  flag: string;
  /** The forms the flag takes, as its message lists them ("unix:///absolute/path, host:port or [v6]:port"). */
  forms: string;
  /** The port the examples use (9469 for the metrics port). */
  examplePort: number;
  /** The lowest port: 0 for a listener (any free port), 1 for the address of a peer. */
  minPort: 0 | 1;
  /** Said after the forms' examples, e.g. `, or "" to turn it off`. */
  also?: string;
  /** Said at the end of each message, e.g. " (from $SLUICE_SERVER)". */
  from?: string;
}

/** What a message quotes of a typed value: a long one by its length. */
function quoted(v: string): string {
  return v.length <= 64 ? JSON.stringify(v) : `a value of ${v.length} characters`;
}

/** A host name (a final dot allowed: a fully qualified one) or an IPv4 address: letters, digits, dots, dashes and underscores. */
const HOST = /^[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?\.?$/;

/**
 * `v` as host:port or [v6]:port, returned as the text to use (an IPv6
 * address in its RFC 5952 form, in brackets); a UsageError naming
 * `r.flag` otherwise, with the fix when the mistake is a known one (an
 * IPv6 address without brackets, a missing port).
 */
export function checkHostPort(v: string, r: HostPortRules): string {
  const fail = (why: string): never => {
    throw new UsageError(`${r.flag}: ${why}${r.from ?? ''}`);
  };
  const general = (): never =>
    fail(`must be ${r.forms} (e.g. 127.0.0.1:${r.examplePort} or [::1]:${r.examplePort})${r.also ?? ''}, got ${quoted(v)}`);
  const port = (p: string): number => {
    if (!/^\d+$/.test(p)) return general();
    const n = Number(p);
    if (!(n >= r.minPort && n <= 65535)) fail(`the port must be in ${r.minPort}..65535, got ${p.length <= 16 ? p : `a number of ${p.length} digits`}`);
    return n;
  };
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(v);
  if (bracketed) {
    const inner = bracketed[1]!;
    const address = familyOf(inner) === 6 ? canonicalAddress(inner)! : undefined;
    if (address === undefined) {
      if (familyOf(inner) === 4 && /^\d{1,5}$/.test(bracketed[2] ?? '')) fail(`brackets are for an IPv6 address: write ${inner}:${bracketed[2]}`);
      return general();
    }
    if (bracketed[2] === undefined) return fail(`[${inner}] has no port: write [${address}]:PORT (e.g. [${address}]:${r.examplePort})`);
    return `[${address}]:${port(bracketed[2])}`;
  }
  // An IPv6 address and a port run together ("::1:19470"), or an IPv6 address alone ("fd00::1").
  const unbracketed = unbracketedIPv6(v, r.examplePort);
  if (unbracketed) return fail(unbracketed);
  if (v.split(':').length > 2) return general();
  const m = /^([^:]*):(.*)$/.exec(v);
  if (!m || !HOST.test(m[1]!)) return general();
  return `${m[1]}:${port(m[2]!)}`;
}
