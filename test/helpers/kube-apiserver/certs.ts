/**
 * A CA and a server certificate for 127.0.0.1 and localhost, made with
 * openssl for one server (as test/helpers/tls.ts does for the gRPC tests,
 * with P-256 keys, which are quicker to make than RSA). The files live only
 * while openssl runs: the PEM text is read back and the directory removed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** PEM text of the CA certificate and of the server's certificate and key. */
export interface ServerCerts {
  ca: string;
  cert: string;
  key: string;
}

/** Make a throwaway CA and a server certificate signed by it. */
export function makeServerCerts(): ServerCerts {
  const dir = mkdtempSync(path.join(os.tmpdir(), `sluice-kubeapi-certs-${process.pid}-`));
  try {
    const ssl = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    };
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=sluice test kube CA');
    ssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver');
    writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
    const read = (f: string): string => readFileSync(path.join(dir, f), 'utf8');
    return { ca: read('ca.pem'), cert: read('server.pem'), key: read('server.key') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
