/**
 * The daemon's etcd://HOST:PORT[,HOST:PORT...] store URL, apart from the
 * etcd client (etcd-kv.ts), so that checking a command line does not load
 * etcd3 and its protocol definitions: a daemon on SQLite never does.
 */
import { invalid } from '../errors.js';

/**
 * etcd endpoints from a URL "etcd://HOST:PORT[,HOST:PORT...]" (the daemon's
 * --store flag). INVALID_ARGUMENT naming `store` if it is not one.
 */
export function parseEtcdUrl(url: string): string[] {
  const m = /^etcd:\/\/([^/?#]*)\/?$/.exec(url);
  if (!m || m[1] === '') throw invalid('store', `want etcd://HOST:PORT[,HOST:PORT...], got ${JSON.stringify(url)}`);
  const endpoints = m[1]!.split(',');
  for (const e of endpoints) checkEndpoint(e, 'store');
  return endpoints;
}

/** INVALID_ARGUMENT naming `field` unless `endpoint` is HOST:PORT. */
export function checkEndpoint(endpoint: string, field: string): void {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/.exec(endpoint);
  const port = m ? Number(m[3]) : 0;
  if (port < 1 || port > 65535) throw invalid(field, `${JSON.stringify(endpoint)} is not HOST:PORT with a port in 1..65535`);
}
