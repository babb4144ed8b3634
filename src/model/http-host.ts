/**
 * The host an HTTP(S) health check names (`healthCheck.host`): what its
 * Host header says and the TLS server name it sends.
 *
 * Accepted: a DNS name, an IPv4 address, or an IPv6 literal, bare
 * ("fd88:1::2") or in brackets ("[fd88:1::2]"); a name, an IPv4 address
 * or a bracketed IPv6 literal may end in ":PORT". The Host header writes
 * an IPv6 literal in brackets (RFC 7230 section 5.4: the colons of a bare
 * one would read as a port) and keeps a given port. The server name is
 * the DNS name alone: RFC 6066 section 3 allows no IP literal in SNI, nor
 * a port.
 */
import { familyOf } from './address.js';

/** A health check's host as a request sends it. */
export interface HttpHost {
  /** The Host header. */
  header: string;
  /** The TLS server name; undefined for an IP literal. */
  servername?: string;
}

/** Labels of letters, digits, "-" and "_" (as service names in the wild use them), dot-separated, an optional final dot. */
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
const BRACKETED = /^\[([^\]]*)\](?::(\d{1,5}))?$/;
const NAME_PORT = /^([^:[\]]+)(?::(\d{1,5}))?$/;

/** What `healthCheck.host` must be, for its error message. */
export const HTTP_HOST_FORMS = 'must be a host name, an IPv4 address or an IPv6 literal, each optionally with :PORT (an IPv6 literal in brackets then: [2001:db8::5]:8080)';

function portOk(p: string | undefined): boolean {
  return p === undefined || (+p >= 1 && +p <= 65535 && !p.startsWith('0'));
}

/** The Host header and server name of a health check's host, or undefined if it is none of the accepted forms. */
export function parseHttpHost(s: string): HttpHost | undefined {
  if (familyOf(s) === 6) return { header: `[${s}]` };
  const b = BRACKETED.exec(s);
  if (b) return familyOf(b[1]) === 6 && portOk(b[2]) ? { header: s } : undefined;
  const m = NAME_PORT.exec(s);
  if (!m || !portOk(m[2])) return undefined;
  const name = m[1]!;
  if (familyOf(name) === 4) return { header: s };
  if (!DNS_NAME.test(name)) return undefined;
  return { header: s, servername: name.replace(/\.$/, '') };
}
