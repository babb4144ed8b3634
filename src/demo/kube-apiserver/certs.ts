/**
 * A CA and a server certificate for 127.0.0.1 and localhost, made with
 * openssl for one server (as test/helpers/tls.ts does for the gRPC tests,
 * with P-256 keys, which are quicker to make than RSA). The files live only
 * while openssl runs: the PEM text is read back and the directory removed.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** PEM text of the CA certificate and of the server's certificate and key. */
export interface ServerCerts {
  ca: string;
  cert: string;
  key: string;
}

/** Make a throwaway CA and a server certificate signed by it (openssl runs without blocking the event loop). */
export async function makeServerCerts(): Promise<ServerCerts> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `sluice-kubeapi-certs-${process.pid}-`));
  try {
    const ssl = async (...args: string[]): Promise<void> => {
      await run('openssl', args, { cwd: dir });
    };
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=sluice test kube CA');
    await ssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver');
    await writeFile(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    await ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
    const read = (f: string): Promise<string> => readFile(path.join(dir, f), 'utf8');
    return { ca: await read('ca.pem'), cert: await read('server.pem'), key: await read('server.key') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
