/**
 * The table of bad API requests, shared by the unit test (fake dataplane)
 * and the BPF test (real maps compared byte for byte).
 */
import * as grpc from '@grpc/grpc-js';
import { MAX_BACKENDS_PER_SERVICE } from '../../src/model/service.js';
import type { Dataplane } from '../../src/dataplane/dataplane.js';
import { webService, type ApiFixture } from './api.js';

/** One bad request and the answer it must get. */
export interface Case {
  description: string;
  client: 'registry' | 'registration' | 'operations';
  method: string;
  request: (f: ApiFixture<Dataplane>) => unknown;
  code: grpc.status;
  /** The field the message (and the BadRequest detail) must name; undefined: no field. */
  field?: string;
  /** Something else the message must say. */
  says?: RegExp;
}

const svc = (over: Record<string, unknown> = {}, name = 'new'): unknown => ({ service: { ...webService(name, '10.96.0.99', ['10.1.0.1']), ...over } });
const tcp80 = { port: 80, protocol: 'TCP' };

/** A ListConnections page token around `cursor`, for requests without filters (the format of src/api/page-token.ts). */
function connectionsToken(cursor: string): string {
  return Buffer.from(JSON.stringify({ c: cursor, f: { service: '', backend: '', client: '', state: '' } })).toString('base64url');
}

/** `s` as a regular expression that matches it literally. */
function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Every bad request. */
export const CASES: Case[] = [
  { description: 'VIP not an IPv4 address', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['10.96.0.300'] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[0]' },
  { description: 'VIP in 0.0.0.0/8', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['0.1.2.3'] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[0]', says: /cannot be a VIP: it is the unspecified/ },
  { description: 'multicast VIP', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['239.0.0.1'] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[0]', says: /multicast/ },
  { description: 'broadcast backend', client: 'registry', method: 'ApplyService', request: () => svc({ backends: [{ address: '255.255.255.255' }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.backends[0].address', says: /broadcast/ },
  { description: 'backend on the service\'s own VIP', client: 'registry', method: 'ApplyService', request: () => svc({ backends: [{ address: '10.96.0.99' }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.backends[0].address', says: /is a VIP of this service/ },
  { description: 'a name of 254 characters', client: 'registry', method: 'ApplyService', request: () => svc({ name: 'n'.repeat(254) }), code: grpc.status.INVALID_ARGUMENT, field: 'service.name', says: /at most 253 characters, got 254$/ },
  { description: 'register a loopback backend', client: 'registration', method: 'RegisterBackend', request: () => ({ service: 'web', address: '127.0.0.2' }), code: grpc.status.INVALID_ARGUMENT, field: 'address', says: /loopback/ },
  { description: 'register an address that is a static backend', client: 'registration', method: 'RegisterBackend', request: () => ({ service: 'web', address: '10.1.0.1' }), code: grpc.status.ALREADY_EXISTS, field: 'address', says: /static backend/ },
  { description: 'get with a name of 300 characters', client: 'registry', method: 'GetService', request: () => ({ name: 'g'.repeat(300) }), code: grpc.status.INVALID_ARGUMENT, field: 'name', says: /got 300$/ },
  { description: 'duplicate VIP', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['10.96.0.99', '10.96.0.99'] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[1]' },
  { description: 'no VIP', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: [] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses' },
  { description: 'backend address not IPv4', client: 'registry', method: 'ApplyService', request: () => svc({ backends: [{ address: 'not-an-ip' }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.backends[0].address' },
  { description: 'port 0', client: 'registry', method: 'ApplyService', request: () => svc({ ports: [{ port: 0, protocol: 'TCP' }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.ports[0].port', says: /1\.\.65535, got 0$/ },
  { description: 'port 65536', client: 'registry', method: 'ApplyService', request: () => svc({ ports: [tcp80, { port: 65536, protocol: 'UDP' }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.ports[1].port', says: /got 65536/ },
  { description: 'target port 70000', client: 'registry', method: 'ApplyService', request: () => svc({ ports: [{ ...tcp80, targetPort: 70000 }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.ports[0].target_port' },
  { description: 'unknown protocol number', client: 'registry', method: 'ApplyService', request: () => svc({ ports: [{ port: 80, protocol: 132 }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.ports[0].protocol', says: /132/ },
  { description: 'unknown no_backends value', client: 'registry', method: 'ApplyService', request: () => svc({ noBackends: 5 }), code: grpc.status.INVALID_ARGUMENT, field: 'service.no_backends', says: /must be reject or drop, got 5$/ },
  { description: 'protocol unspecified', client: 'registry', method: 'ApplyService', request: () => svc({ ports: [{ port: 80, protocol: 'PROTOCOL_UNSPECIFIED' }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.ports[0].protocol' },
  { description: 'duplicate port', client: 'registry', method: 'ApplyService', request: () => svc({ ports: [tcp80, tcp80] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.ports[1]' },
  { description: 'no port', client: 'registry', method: 'ApplyService', request: () => svc({ ports: [] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.ports' },
  { description: 'VIP:port:protocol owned by another service', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['10.96.0.99', '10.96.0.10'] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[1]', says: /10\.96\.0\.10:80\/tcp .*"owner"/ },
  { description: 'weight above 1000', client: 'registry', method: 'ApplyService', request: () => svc({ backends: [{ address: '10.1.0.1' }, { address: '10.1.0.2', weight: 1001 }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.backends[1].weight' },
  { description: 'duplicate backend', client: 'registry', method: 'ApplyService', request: () => svc({ backends: [{ address: '10.1.0.1' }, { address: '10.1.0.1' }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.backends[1].address' },
  {
    description: 'too many backends',
    client: 'registry',
    method: 'ApplyService',
    request: () => svc({ backends: Array.from({ length: MAX_BACKENDS_PER_SERVICE + 1 }, (_, i) => ({ address: `10.2.${i >> 8}.${i & 255}` })) }),
    code: grpc.status.INVALID_ARGUMENT,
    field: 'service.backends',
  },
  { description: 'table size not prime', client: 'registry', method: 'ApplyService', request: () => svc({ tableSize: 1000 }), code: grpc.status.INVALID_ARGUMENT, field: 'service.table_size' },
  { description: 'table size too small for the backends', client: 'registry', method: 'ApplyService', request: () => svc({ tableSize: 97 }), code: grpc.status.INVALID_ARGUMENT, field: 'service.table_size' },
  { description: 'affinity timeout 0', client: 'registry', method: 'ApplyService', request: () => svc({ sessionAffinity: { timeoutSeconds: 0 } }), code: grpc.status.INVALID_ARGUMENT, field: 'service.session_affinity.timeout_seconds' },
  { description: 'backend state unknown', client: 'registry', method: 'ApplyService', request: () => svc({ backends: [{ address: '10.1.0.1', state: 9 }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.backends[0].state' },
  { description: 'backend lease that does not exist', client: 'registry', method: 'ApplyService', request: () => svc({ backends: [{ address: '10.1.0.1', leaseId: 'nope' }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.backends[0].lease_id' },
  { description: 'missing name', client: 'registry', method: 'ApplyService', request: () => svc({ name: '' }), code: grpc.status.INVALID_ARGUMENT, field: 'service.name' },
  { description: 'name with a space', client: 'registry', method: 'ApplyService', request: () => svc({ name: 'a b' }), code: grpc.status.INVALID_ARGUMENT, field: 'service.name' },
  { description: 'missing service', client: 'registry', method: 'ApplyService', request: () => ({}), code: grpc.status.INVALID_ARGUMENT, field: 'service', says: /required/ },
  { description: 'an invalid update of an existing service', client: 'registry', method: 'ApplyService', request: () => svc({ ports: [{ port: 0, protocol: 'TCP' }] }, 'web'), code: grpc.status.INVALID_ARGUMENT, field: 'service.ports[0].port' },
  { description: 'stale revision', client: 'registry', method: 'ApplyService', request: () => ({ ...(svc({}, 'web') as object), expectedRevision: '1' }), code: grpc.status.FAILED_PRECONDITION, field: 'expected_revision', says: /revision \d+, not 1/ },
  { description: 'create-only on an existing service', client: 'registry', method: 'ApplyService', request: () => ({ ...(svc({}, 'web') as object), expectedRevision: '0' }), code: grpc.status.ALREADY_EXISTS, field: 'expected_revision' },
  {
    description: 'batch: the second item is invalid, the first is not applied either',
    client: 'registry',
    method: 'ApplyServices',
    request: () => ({ requests: [svc({}, 'fine'), svc({ ports: [{ port: 0, protocol: 'UDP' }] }, 'bad')] }),
    code: grpc.status.INVALID_ARGUMENT,
    field: 'requests[1].service.ports[0].port',
  },
  {
    description: 'batch: two items claim the same VIP:port:protocol',
    client: 'registry',
    method: 'ApplyServices',
    request: () => ({ requests: [svc({}, 'one'), svc({}, 'two')] }),
    code: grpc.status.INVALID_ARGUMENT,
    field: 'requests[1].service.addresses[0]',
  },
  {
    description: 'batch of 20 (its frontends read as one range): the last claims a VIP:port:protocol another service owns',
    client: 'registry',
    method: 'ApplyServices',
    request: () => ({
      requests: [
        ...Array.from({ length: 19 }, (_, i) => svc({ addresses: [`10.96.1.${i + 1}`] }, `many-${i}`)),
        svc({ addresses: ['10.96.0.10'] }, 'many-19'),
      ],
    }),
    code: grpc.status.INVALID_ARGUMENT,
    field: 'requests[19].service.addresses[0]',
    says: /10\.96\.0\.10:80\/tcp .*"owner"/,
  },
  { description: 'batch: the same name twice', client: 'registry', method: 'ApplyServices', request: () => ({ requests: [svc({}, 'x'), svc({ addresses: ['10.96.0.98'] }, 'x')] }), code: grpc.status.INVALID_ARGUMENT, field: 'requests[1].service.name' },
  { description: 'batch: stale revision of one item', client: 'registry', method: 'ApplyServices', request: () => ({ requests: [svc({}, 'fine'), { ...(svc({}, 'web') as object), expectedRevision: '1' }] }), code: grpc.status.FAILED_PRECONDITION, field: 'requests[1].expected_revision' },
  { description: 'batch: empty', client: 'registry', method: 'ApplyServices', request: () => ({ requests: [] }), code: grpc.status.INVALID_ARGUMENT, field: 'requests' },
  { description: 'delete of an unknown service', client: 'registry', method: 'DeleteService', request: () => ({ name: 'nope' }), code: grpc.status.NOT_FOUND, field: 'name' },
  { description: 'delete at a stale revision', client: 'registry', method: 'DeleteService', request: () => ({ name: 'web', expectedRevision: '1' }), code: grpc.status.FAILED_PRECONDITION, field: 'expected_revision' },
  { description: 'get of an unknown service', client: 'registry', method: 'GetService', request: () => ({ name: 'nope' }), code: grpc.status.NOT_FOUND, field: 'name' },
  { description: 'list with a malformed page token', client: 'registry', method: 'ListServices', request: () => ({ pageToken: '!!' }), code: grpc.status.INVALID_ARGUMENT, field: 'page_token' },
  { description: 'list by a VIP that is not an address', client: 'registry', method: 'ListServices', request: () => ({ address: 'x' }), code: grpc.status.INVALID_ARGUMENT, field: 'address' },
  { description: 'heartbeat of an unknown lease', client: 'registration', method: 'Heartbeat', request: () => ({ leaseId: 'nope' }), code: grpc.status.NOT_FOUND, field: 'lease_id' },
  { description: 'heartbeat without a lease', client: 'registration', method: 'Heartbeat', request: () => ({}), code: grpc.status.INVALID_ARGUMENT, field: 'lease_id' },
  // IPv6: addresses that cannot carry a flow, syntax, families.
  { description: 'v4-mapped IPv6 VIP', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['::ffff:10.0.0.1'] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[0]', says: /IPv4-mapped .*write it as the IPv4 address 10\.0\.0\.1$/ },
  { description: 'link-local IPv6 VIP', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['fe80::1'] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[0]', says: /fe80::1 cannot be a VIP: it is link-local \(fe80::\/10\)/ },
  { description: 'multicast IPv6 VIP', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['ff02::1'] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[0]', says: /multicast \(ff00::\/8\)/ },
  { description: 'IPv6 loopback VIP', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['::1'] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[0]', says: /loopback \(::1\)/ },
  { description: 'the unspecified IPv6 address as a VIP', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['::'] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[0]', says: /the unspecified address ::$/ },
  { description: 'an IPv6 VIP with a zone id', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['fe80::1%eth0'] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[0]', says: /must be an IPv4 or IPv6 address, got "fe80::1%eth0"$/ },
  { description: 'an IPv6 backend that is no address', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['10.96.0.99', '2001:db8::99'], backends: [{ address: '2001:db8::g' }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.backends[0].address', says: /must be an IPv4 or IPv6 address, got "2001:db8::g"$/ },
  { description: 'an IPv6 backend on an IPv4-only service', client: 'registry', method: 'ApplyService', request: () => svc({ backends: [{ address: '10.1.0.1' }, { address: '10.1.0.2' }, { address: '2001:db8::5' }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.backends[2].address', says: /2001:db8::5 is IPv6, and the service has no IPv6 VIP$/ },
  { description: 'an IPv4 backend on an IPv6-only service', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['2001:db8::99'], backends: [{ address: '10.1.0.1' }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.backends[0].address', says: /10\.1\.0\.1 is IPv4, and the service has no IPv4 VIP$/ },
  { description: 'duplicate IPv6 VIP written two ways', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['2001:DB8::99', '2001:db8:0::99'], backends: [] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[1]', says: /duplicate VIP 2001:db8::99 \(the same address as addresses\[0\]\)$/ },
  { description: 'duplicate IPv6 backend written two ways', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['2001:db8::99'], backends: [{ address: '2001:db8::1:0:0:1' }, { address: '2001:DB8:0:0:1::1' }] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.backends[1].address', says: /duplicate backend 2001:db8::1:0:0:1$/ },
  { description: 'register an IPv6 backend to an IPv4-only service', client: 'registration', method: 'RegisterBackend', request: () => ({ service: 'web', address: '2001:db8::5' }), code: grpc.status.INVALID_ARGUMENT, field: 'address', says: /2001:db8::5 is IPv6, and the service has no IPv6 VIP$/ },
  { description: 'register a link-local IPv6 backend', client: 'registration', method: 'RegisterBackend', request: () => ({ service: 'web', address: 'fe80::5' }), code: grpc.status.INVALID_ARGUMENT, field: 'address', says: /link-local/ },
  { description: 'register an IPv6 backend with a zone id', client: 'registration', method: 'RegisterBackend', request: () => ({ service: 'web', address: 'fe80::5%eth0' }), code: grpc.status.INVALID_ARGUMENT, field: 'address', says: /must be an IPv4 or IPv6 address/ },
  { description: 'lookup from an IPv4 client to an IPv6 VIP', client: 'operations', method: 'LookupFlow', request: () => ({ clientAddress: '10.0.0.1', clientPort: 1, address: '2001:db8::10', port: 80, protocol: 'TCP' }), code: grpc.status.INVALID_ARGUMENT, field: 'client_address', says: /10\.0\.0\.1 is IPv4, and the VIP 2001:db8::10 is IPv6/ },
  { description: 'lookup from a link-local zone', client: 'operations', method: 'LookupFlow', request: () => ({ clientAddress: 'fe80::1%eth0', clientPort: 1, address: '2001:db8::10', port: 80, protocol: 'TCP' }), code: grpc.status.INVALID_ARGUMENT, field: 'client_address', says: /must be an IPv4 or IPv6 address/ },
  // A client no flow comes from: the IPv6 dataplane passes its packets before any map is read, or it is IPv4 written as mapped IPv6.
  ...([
    ['fe80::1', 'link-local (fe80::/10)'],
    ['::1', 'loopback (::1)'],
    ['ff02::1', 'multicast (ff00::/8)'],
    ['::', 'the unspecified address'],
  ] as const).map(([client, what]): Case => ({
    description: `lookup from ${client}, a source the IPv6 dataplane passes untouched`,
    client: 'operations',
    method: 'LookupFlow',
    request: () => ({ clientAddress: client, clientPort: 40000, address: 'fd96::10', port: 80, protocol: 'TCP' }),
    code: grpc.status.INVALID_ARGUMENT,
    field: 'client_address',
    says: new RegExp(`^client_address: ${escape(`${client} is ${what}: the dataplane passes packets from it untouched`)}$`),
  })),
  { description: 'lookup from an IPv4-mapped client, sent in hex', client: 'operations', method: 'LookupFlow', request: () => ({ clientAddress: '::ffff:c0a8:5802', clientPort: 40000, address: '10.96.0.10', port: 80, protocol: 'TCP' }), code: grpc.status.INVALID_ARGUMENT, field: 'client_address', says: /^client_address: ::ffff:192\.168\.88\.2 is an IPv4-mapped address \(::ffff:0:0\/96\): write it as the IPv4 address 192\.168\.88\.2$/ },
  { description: 'lookup to an IPv4-mapped VIP', client: 'operations', method: 'LookupFlow', request: () => ({ clientAddress: '2001:db8::5', clientPort: 40000, address: '::ffff:10.96.0.10', port: 80, protocol: 'TCP' }), code: grpc.status.INVALID_ARGUMENT, field: 'address', says: /^address: ::ffff:10\.96\.0\.10 cannot be a VIP: it is an IPv4-mapped address \(::ffff:0:0\/96\): write it as the IPv4 address 10\.96\.0\.10$/ },
  // IPv4 sources are not filtered by the dataplane: a loopback IPv4 client is asked about as any other.
  { description: 'lookup from 127.0.0.1 on a port no service has', client: 'operations', method: 'LookupFlow', request: () => ({ clientAddress: '127.0.0.1', clientPort: 1, address: '10.96.0.10', port: 81, protocol: 'TCP' }), code: grpc.status.NOT_FOUND, field: 'address', says: /no service on 10\.96\.0\.10:81\/tcp$/ },
  { description: 'connections by an IPv4-mapped client', client: 'operations', method: 'ListConnections', request: () => ({ clientAddress: '::ffff:192.168.88.2' }), code: grpc.status.INVALID_ARGUMENT, field: 'client_address', says: /^client_address: ::ffff:192\.168\.88\.2 is an IPv4-mapped .*write it as the IPv4 address 192\.168\.88\.2$/ },
  { description: 'connections of IPv4 by an IPv4-mapped client: the address is the mistake, not the family', client: 'operations', method: 'ListConnections', request: () => ({ family: 'IPV4', clientAddress: '::ffff:c0a8:5802' }), code: grpc.status.INVALID_ARGUMENT, field: 'client_address', says: /write it as the IPv4 address 192\.168\.88\.2$/ },
  { description: 'connections by a link-local client', client: 'operations', method: 'ListConnections', request: () => ({ clientAddress: 'fe80::1' }), code: grpc.status.INVALID_ARGUMENT, field: 'client_address', says: /fe80::1 is link-local \(fe80::\/10\): the dataplane passes packets from it untouched$/ },
  { description: 'connections by an IPv4-mapped backend', client: 'operations', method: 'ListConnections', request: () => ({ backendAddress: '::ffff:10.1.0.1' }), code: grpc.status.INVALID_ARGUMENT, field: 'backend_address', says: /^backend_address: ::ffff:10\.1\.0\.1 cannot be a backend: it is an IPv4-mapped .*write it as the IPv4 address 10\.1\.0\.1$/ },
  { description: 'flush by an IPv4-mapped client', client: 'operations', method: 'FlushConnections', request: () => ({ clientAddress: '::ffff:192.168.88.2' }), code: grpc.status.INVALID_ARGUMENT, field: 'client_address', says: /write it as the IPv4 address 192\.168\.88\.2$/ },
  { description: 'flush by a mapped loopback client', client: 'operations', method: 'FlushConnections', request: () => ({ clientAddress: '::ffff:127.0.0.1' }), code: grpc.status.INVALID_ARGUMENT, field: 'client_address', says: /and its IPv4 address 127\.0\.0\.1 is loopback \(127\.0\.0\.0\/8\)/ },
  { description: 'flush by a multicast client', client: 'operations', method: 'FlushConnections', request: () => ({ clientAddress: 'ff02::1' }), code: grpc.status.INVALID_ARGUMENT, field: 'client_address', says: /multicast/ },
  { description: 'a VIP that is a mapped loopback address', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['::ffff:127.0.0.1'] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[0]', says: /^service\.addresses\[0\]: ::ffff:127\.0\.0\.1 cannot be a VIP: it is an IPv4-mapped address \(::ffff:0:0\/96\), and its IPv4 address 127\.0\.0\.1 is loopback \(127\.0\.0\.0\/8\): it never leaves the host$/ },
  { description: 'a VIP that is the mapped unspecified address', client: 'registry', method: 'ApplyService', request: () => svc({ addresses: ['::ffff:0:0'] }), code: grpc.status.INVALID_ARGUMENT, field: 'service.addresses[0]', says: /and its IPv4 address 0\.0\.0\.0 is the unspecified \("this network"\) range 0\.0\.0\.0\/8$/ },
  { description: 'list services by an address that is none', client: 'registry', method: 'ListServices', request: () => ({ address: '2001:db8::g' }), code: grpc.status.INVALID_ARGUMENT, field: 'address', says: /must be an IPv4 or IPv6 address/ },
  { description: 'register to an unknown service', client: 'registration', method: 'RegisterBackend', request: () => ({ service: 'nope', address: '10.1.0.5' }), code: grpc.status.NOT_FOUND, field: 'service' },
  { description: 'register a bad address', client: 'registration', method: 'RegisterBackend', request: () => ({ service: 'web', address: '10.1.0' }), code: grpc.status.INVALID_ARGUMENT, field: 'address' },
  { description: 'register with weight 5000', client: 'registration', method: 'RegisterBackend', request: () => ({ service: 'web', address: '10.1.0.5', weight: 5000 }), code: grpc.status.INVALID_ARGUMENT, field: 'weight' },
  { description: 'register with a TTL over a day', client: 'registration', method: 'RegisterBackend', request: () => ({ service: 'web', address: '10.1.0.5', ttlSeconds: 86401 }), code: grpc.status.INVALID_ARGUMENT, field: 'ttl_seconds' },
  { description: 'register under an unknown lease', client: 'registration', method: 'RegisterBackend', request: () => ({ service: 'web', address: '10.1.0.5', leaseId: 'nope' }), code: grpc.status.NOT_FOUND, field: 'lease_id' },
  { description: 'state of an unknown backend', client: 'registration', method: 'SetBackendState', request: () => ({ service: 'web', address: '10.1.0.9', state: 'DRAINING' }), code: grpc.status.NOT_FOUND, field: 'address' },
  { description: 'deregister from an unknown service', client: 'registration', method: 'DeregisterBackend', request: () => ({ service: 'nope', address: '10.1.0.1' }), code: grpc.status.NOT_FOUND, field: 'service' },
  { description: 'lookup with client port 0', client: 'operations', method: 'LookupFlow', request: () => ({ clientAddress: '10.0.0.1', clientPort: 0, address: '10.96.0.10', port: 80, protocol: 'TCP' }), code: grpc.status.INVALID_ARGUMENT, field: 'client_port' },
  { description: 'lookup on a port no service has', client: 'operations', method: 'LookupFlow', request: () => ({ clientAddress: '10.0.0.1', clientPort: 1, address: '10.96.0.10', port: 81, protocol: 'TCP' }), code: grpc.status.NOT_FOUND, field: 'address' },
  { description: 'stats of an unknown service', client: 'operations', method: 'GetStats', request: () => ({ service: 'nope' }), code: grpc.status.NOT_FOUND, field: 'service' },
  { description: 'connections by a bad client address', client: 'operations', method: 'ListConnections', request: () => ({ clientAddress: '10.0.0' }), code: grpc.status.INVALID_ARGUMENT, field: 'client_address' },
  { description: 'connections of IPv6 by an IPv4 client address', client: 'operations', method: 'ListConnections', request: () => ({ family: 'IPV6', clientAddress: '10.0.0.1' }), code: grpc.status.INVALID_ARGUMENT, field: 'family', says: /is IPv6, and clientAddress 10\.0\.0\.1 is an IPv4 address/ },
  { description: 'connections by client and backend addresses of two families', client: 'operations', method: 'ListConnections', request: () => ({ clientAddress: '2001:db8::5', backendAddress: '10.1.0.1' }), code: grpc.status.INVALID_ARGUMENT, field: 'client_address' },
  { description: 'flush by an unknown family', client: 'operations', method: 'FlushConnections', request: () => ({ family: 7 }), code: grpc.status.INVALID_ARGUMENT, field: 'family' },
  { description: 'connections with a malformed page token', client: 'operations', method: 'ListConnections', request: () => ({ pageToken: '!!' }), code: grpc.status.INVALID_ARGUMENT, field: 'page_token' },
  { description: 'connections with a page token of another version', client: 'operations', method: 'ListConnections', request: () => ({ pageToken: connectionsToken('2.AAAAAA.') }), code: grpc.status.INVALID_ARGUMENT, field: 'page_token', says: /malformed page token/ },
  { description: 'connections with a page token whose table cursor is cut short', client: 'operations', method: 'ListConnections', request: () => ({ pageToken: connectionsToken('1.AAA.') }), code: grpc.status.INVALID_ARGUMENT, field: 'page_token' },
  { description: 'connections with a page token holding half a key', client: 'operations', method: 'ListConnections', request: () => ({ pageToken: connectionsToken('1.AAAAAA.AAAAAAAA') }), code: grpc.status.INVALID_ARGUMENT, field: 'page_token' },
  { description: 'connections with a page token made for other filters', client: 'operations', method: 'ListConnections', request: () => ({ clientAddress: '10.0.0.1', pageToken: connectionsToken('1.AAAAAA.') }), code: grpc.status.INVALID_ARGUMENT, field: 'page_token', says: /other filters/ },
  { description: 'flush everything with a filter too', client: 'operations', method: 'FlushConnections', request: () => ({ all: true, service: 'web' }), code: grpc.status.INVALID_ARGUMENT, field: 'all' },
];

