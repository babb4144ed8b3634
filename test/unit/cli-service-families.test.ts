/**
 * Service files and views of the CLI for IPv6 and dual-stack services, as a
 * person uses them: the compiled `sluice` against a real gRPC server (over a
 * fake dataplane and a memory store). A dual-stack service with no backend
 * of one family applies with a warning and says so in list and get;
 * ipFamilies, output only, must be what the API writes; unknown fields are
 * reported before missing ones, all of them, with the field meant.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { dataplaneSnapshot, startApi } from '../helpers/api.js';
import { sluice } from '../helpers/cli.js';

function tmp(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `sluice-families-${process.pid}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The cell of `column` in the row of `name` of `service list`'s table (up to the next column). */
function cell(listing: string, name: string, column: string): string | undefined {
  const [head, ...rows] = listing.trimEnd().split('\n');
  const row = rows.find((r) => r.startsWith(`${name} `));
  const at = head!.indexOf(column);
  const next = head!.slice(at + column.length).search(/\S/);
  return row?.slice(at, next < 0 ? undefined : at + column.length + next).trim();
}

const HALF = `name: default/half
addresses: [10.96.88.40, fd96::40]
ports: [{port: 80, protocol: tcp}]
backends: [{address: 10.88.1.2}, {address: 10.88.2.2}]
`;

test('a dual-stack service without backends of one family: applied with a warning per VIP, counted by family in list and get', async (t) => {
  const f = await startApi(t, { tag: 'cli-fam-half' });
  const server = ['--server', f.server.address];
  const file = path.join(tmp(t), 'half.yaml');
  writeFileSync(file, `services:
- ${HALF.trimEnd().split('\n').join('\n  ')}
- name: default/dropper
  addresses: [fd96::41, 10.96.88.41, fd96::42]
  ports: [{port: 53, protocol: udp}]
  backends: [{address: 10.88.1.3}]
  noBackends: drop
- name: default/waiting
  addresses: [10.96.88.43, fd96::43]
  ports: [{port: 80, protocol: tcp}]
- name: default/v4
  addresses: [10.96.88.44]
  ports: [{port: 80, protocol: tcp}]
  backends: [{address: 10.88.1.4}, {address: 10.88.1.5, weight: 0}]
`);
  let r = await sluice([...server, 'service', 'apply', '-f', file]);
  t.is(r.code, 0, 'legal: backends may register later');
  t.is(r.stdout, ['half', 'dropper', 'waiting', 'v4'].map((n) => `service default/${n} applied (revision 1)\n`).join(''));
  t.is(r.stderr, [
    'sluice: warning: service default/half: VIP fd96::40 has no IPv6 backend, so connections to fd96::40 are refused (noBackends: reject); add an IPv6 backend to backends (or register one), or remove fd96::40 from addresses',
    'sluice: warning: service default/dropper: VIP fd96::41 has no IPv6 backend, so packets to fd96::41 are dropped (noBackends: drop); add an IPv6 backend to backends (or register one), or remove fd96::41 from addresses',
    'sluice: warning: service default/dropper: VIP fd96::42 has no IPv6 backend, so packets to fd96::42 are dropped (noBackends: drop); add an IPv6 backend to backends (or register one), or remove fd96::42 from addresses',
    '',
  ].join('\n'), 'one line per VIP; none for a service without any backend or of one family');
  r = await sluice([...server, '-o', 'json', 'service', 'apply', '-f', file]);
  t.is(r.code, 0);
  t.is(r.stderr.split('\n').filter((l) => l.startsWith('sluice: warning: ')).length, 3, 'warned with -o json too, on stderr');
  t.true(Array.isArray(JSON.parse(r.stdout)), 'stdout stays JSON');

  r = await sluice([...server, 'service', 'list']);
  t.is(cell(r.stdout, 'default/half', 'BACKENDS'), '2/2 (IPv4 2/2, IPv6 0/0)', r.stdout);
  t.is(cell(r.stdout, 'default/dropper', 'BACKENDS'), '1/1 (IPv6 0/0, IPv4 1/1)', 'in the order of the VIPs');
  t.is(cell(r.stdout, 'default/waiting', 'BACKENDS'), '0/0 (IPv4 0/0, IPv6 0/0)');
  t.is(cell(r.stdout, 'default/v4', 'BACKENDS'), '1/2', 'a single-stack service as before');
  t.is(cell(r.stdout, 'default/half', 'AFFINITY'), '-');

  r = await sluice([...server, 'service', 'get', 'default/half']);
  t.regex(r.stdout, /^families: {5}IPv4, IPv6 \(dual-stack: each VIP is balanced over the backends of its family\)$/m, r.stdout);
  t.regex(r.stdout, /^backends: {5}IPv4 2\/2, IPv6 0\/0 \(taking new flows\/all\); no IPv6 backend: connections to fd96::40 are refused \(noBackends: reject\)$/m);
  r = await sluice([...server, 'service', 'get', 'default/dropper']);
  t.regex(r.stdout, /^backends: {5}IPv6 0\/0, IPv4 1\/1 \(taking new flows\/all\); no IPv6 backend: packets to fd96::41, fd96::42 are dropped \(noBackends: drop\)$/m);
  r = await sluice([...server, 'service', 'get', 'default/v4']);
  t.regex(r.stdout, /^families: {5}IPv4$/m);
  t.notRegex(r.stdout, /^backends:/m, 'a single-stack service: its table says it');

  // A registered IPv6 backend fills the family; applying the file again keeps it and warns no more.
  await f.client.registerBackend({ service: 'default/half', address: 'fd88::2', ttlSeconds: 60 });
  r = await sluice([...server, 'service', 'list']);
  t.is(cell(r.stdout, 'default/half', 'BACKENDS'), '3/3 (IPv4 2/2, IPv6 1/1)');
  r = await sluice([...server, 'service', 'get', 'default/half']);
  t.regex(r.stdout, /^backends: {5}IPv4 2\/2, IPv6 1\/1 \(taking new flows\/all\)$/m);
  writeFileSync(file, HALF);
  r = await sluice([...server, 'service', 'apply', '-f', file]);
  t.is(r.stdout, 'service default/half unchanged (revision 1; 1 registered backend kept)\n');
  t.is(r.stderr, '');
});

test('ipFamilies must be what the API writes for the addresses, named with the fix; get -o yaml applies back, edited or piped', async (t) => {
  const f = await startApi(t, { tag: 'cli-fam-ipfam' });
  const server = ['--server', f.server.address];
  const dir = tmp(t);
  const six = (fam: string): string => `name: default/six\naddresses: [fd96::90]\nports: [{port: 80, protocol: tcp}]\n${fam}`;
  const dual = (addresses: string, fam: string): string => `name: default/dual\naddresses: ${addresses}\nports: [{port: 80, protocol: tcp}]\n${fam}`;
  const tail = '(service get writes it from addresses: delete it when you change them)';
  const cases: Array<{ what: string; text: string; says: string }> = [
    { what: 'IPv4 on an IPv6-only service', text: six('ipFamilies: [IPV4]\n'), says: `ipFamilies: output only: it follows addresses (one IPv6 VIP, so [IPV6]), got [IPV4]; add an IPv4 VIP to addresses to make the service dual-stack, or delete ipFamilies ${tail}` },
    { what: 'dual-stack asked for, as in Kubernetes', text: six('ipFamilies: [IPV4, IPV6]\n'), says: `ipFamilies: output only: it follows addresses (one IPv6 VIP, so [IPV6]), got [IPV4, IPV6]; add an IPv4 VIP to addresses to make the service dual-stack, or delete ipFamilies ${tail}` },
    { what: 'Kubernetes spelling', text: six('ipFamilies: [IPv6, IPv4]\n'), says: `ipFamilies: output only: it follows addresses (one IPv6 VIP, so [IPV6]), got [IPv6, IPv4]; add an IPv4 VIP to addresses to make the service dual-stack, or delete ipFamilies ${tail}` },
    { what: 'an empty list', text: six('ipFamilies: []\n'), says: `ipFamilies: output only: it follows addresses (one IPv6 VIP, so [IPV6]), got []; delete ipFamilies ${tail}` },
    { what: 'not a family', text: six('ipFamilies: [bogus, 7]\n'), says: `ipFamilies: output only: it follows addresses (one IPv6 VIP, so [IPV6]), got [bogus, 7]; delete ipFamilies ${tail}` },
    { what: 'the families in another order', text: dual('[10.96.0.90, fd96::91]', 'ipFamilies: [IPV6, IPV4]\n'), says: `ipFamilies: output only: it follows addresses (one family per VIP, so [IPV4, IPV6]), got [IPV6, IPV4]; delete ipFamilies ${tail}` },
    { what: 'one entry for two IPv4 VIPs', text: dual('[10.96.0.90, 10.96.0.91]', 'ipFamilies: [IPV4]\n'), says: `ipFamilies: output only: it follows addresses (IPv4 VIPs only, so [IPV4, IPV4]), got [IPV4]; delete ipFamilies ${tail}` },
    { what: 'not a list', text: six('ipFamilies: IPV6\n'), says: 'ipFamilies: output only (the VIPs\' families, as service get writes them): a list, got "IPV6"' },
    { what: 'the second service of a list', text: `- ${six('').trimEnd().split('\n').join('\n  ')}\n- ${dual('[10.96.0.90]', 'ipFamilies: [IPV4, IPV6]').split('\n').join('\n  ')}\n`, says: `[1].ipFamilies: output only: it follows addresses (one IPv4 VIP, so [IPV4]), got [IPV4, IPV6]; add an IPv6 VIP to addresses to make the service dual-stack, or delete ipFamilies ${tail}` },
  ];
  const before = dataplaneSnapshot(f.dp);
  for (const [i, c] of cases.entries()) {
    const file = path.join(dir, `bad-${i}.yaml`);
    writeFileSync(file, c.text);
    const r = await sluice([...server, 'service', 'apply', '-f', file]);
    t.is(r.stderr, `sluice: ${file}: ${c.says}\n`, c.what);
    t.is(r.code, 1, `${c.what}: exit status`);
  }
  t.is(dataplaneSnapshot(f.dp), before, 'nothing applied');

  // What the API writes is accepted: one family per VIP, in their order.
  const file = path.join(dir, 'dual.yaml');
  writeFileSync(file, dual('[fd96::91, 10.96.0.90, fd96::92]', 'ipFamilies: [IPV6, IPV4, IPV6]\n'));
  let r = await sluice([...server, 'service', 'apply', '-f', file]);
  t.is(r.stdout, 'service default/dual applied (revision 1)\n', r.stderr);
  // get -o yaml piped into apply -f -: unchanged.
  const yaml = (await sluice([...server, '-o', 'yaml', 'service', 'get', 'default/dual'])).stdout;
  t.regex(yaml, /^ipFamilies:\n {2}- IPV6\n {2}- IPV4\n {2}- IPV6$/m);
  r = await sluice([...server, 'service', 'apply', '-f', '-'], { input: yaml });
  t.is(r.stdout, 'service default/dual unchanged (revision 1)\n', r.stderr);
  // Edited, with ipFamilies left consistent: applied.
  r = await sluice([...server, 'service', 'apply', '-f', '-'], { input: yaml.replace('port: 80', 'port: 81') });
  t.is(r.stdout, 'service default/dual applied (revision 2)\n', r.stderr);
  // A VIP removed from the file, ipFamilies not: told to delete it.
  const edited = yaml.replace(/^revision: .*\n/m, '').replace(/^ {2}- 10\.96\.0\.90\n/m, '');
  r = await sluice([...server, 'service', 'apply', '-f', '-'], { input: edited });
  t.is(r.stderr, `sluice: stdin: ipFamilies: output only: it follows addresses (IPv6 VIPs only, so [IPV6, IPV6]), got [IPV6, IPV4, IPV6]; add an IPv4 VIP to addresses to make the service dual-stack, or delete ipFamilies ${tail}\n`);
  r = await sluice([...server, 'service', 'apply', '-f', '-'], { input: edited.replace(/^ipFamilies:\n( {2}- \w+\n)*/m, '') });
  t.is(r.stdout, 'service default/dual applied (revision 3)\n', r.stderr);
  t.deepEqual((await f.client.getService('default/dual')).ipFamilies, ['IPV6', 'IPV6']);
});

test('unknown fields come before missing ones, all of a service\'s at once, with the field meant', async (t) => {
  const f = await startApi(t, { tag: 'cli-fam-unknown' });
  const dir = tmp(t);
  const svc = (body: string): string => `name: default/six\n${body}ports: [{port: 80, protocol: tcp}]\n`;
  const cases: Array<{ what: string; text: string; says: string }> = [
    { what: 'vips, as list and get label them', text: svc('vips: [fd96::90]\n'), says: 'vips: unknown field; did you mean addresses?' },
    { what: 'vip', text: svc('VIP: fd96::90\n'), says: 'VIP: unknown field; did you mean addresses?' },
    { what: 'clusterIPs, as Kubernetes calls them', text: svc('clusterIPs: [fd96::90]\n'), says: 'clusterIPs: unknown field; did you mean addresses?' },
    { what: 'the singular of ipFamilies', text: svc('addresses: [fd96::90]\nipFamily: IPv6\n'), says: 'ipFamily: unknown field; did you mean ipFamilies?' },
    { what: 'the singular in another case', text: svc('addresses: [fd96::90]\nIPFamily: IPv6\n'), says: 'IPFamily: unknown field; did you mean ipFamilies?' },
    { what: 'a plural of a singular field', text: svc('addresses: [fd96::90]\nhealthChecks: {type: tcp}\n'), says: 'healthChecks: unknown field; did you mean healthCheck?' },
    { what: 'a plural inside a backend', text: svc('addresses: [fd96::90]\nbackends: [{addresses: fd88::1}]\n'), says: 'backends[0].addresses: unknown field; did you mean address?' },
    { what: 'top-level and nested, top-level first', text: svc('backends: [{adress: fd88::1}]\nadresses: [fd96::90]\n'), says: 'unknown fields: adresses (did you mean addresses?), backends[0].adress (did you mean address?)' },
    { what: 'one without a near field', text: svc('addresses: [fd96::90]\nbackends: [{address: fd88::1, colour: red}]\nipFamily: IPv6\n'), says: 'unknown fields: ipFamily (did you mean ipFamilies?), backends[0].colour (known: address, weight, state, leaseId, health, lastProbe, effectiveState)' },
    { what: 'still one field beside a wrong value', text: svc('addresses: [fd96::90]\nnoBackends: maybe\ntablesize: 7\n'), says: 'tablesize: unknown field; did you mean tableSize?' },
  ];
  for (const [i, c] of cases.entries()) {
    const file = path.join(dir, `bad-${i}.yaml`);
    writeFileSync(file, c.text);
    const r = await sluice(['--server', f.server.address, 'service', 'apply', '-f', file]);
    t.is(r.stderr, `sluice: ${file}: ${c.says}\n`, c.what);
    t.is(r.code, 1, `${c.what}: exit status`);
  }
});
