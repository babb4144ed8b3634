/**
 * Conversion between sluice.v1 messages and the domain model: round trips,
 * enum names, zero values as "unset", errors naming the field, 64-bit
 * integers as strings; and field paths in proto names.
 */
import test from 'ava';
import { SluiceError } from '../../src/errors.js';
import type { ServiceDefinition } from '../../src/model/definition.js';
import {
  countersFromMessage,
  countersToMessage,
  definitionFromMessage,
  definitionToMessage,
  int64ToNumber,
  protocolFromName,
  serviceToMessage,
  stateFromName,
} from '../../src/api/convert.js';
import { protoFieldPath } from '../../src/api/status.js';
import type { ServiceMessage } from '../../src/api/messages.js';

const def: ServiceDefinition = {
  name: 'default/web',
  addresses: ['10.96.0.10', '10.96.0.11'],
  ports: [
    { name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 },
    { name: '53-udp', port: 53, protocol: 'udp', targetPort: 53 },
  ],
  backends: [
    { address: '10.1.0.1', weight: 1, state: 'active' },
    { address: '10.1.0.2', weight: 0, state: 'draining', leaseId: 'lease-1' },
    { address: '10.1.0.3', weight: 5, state: 'maintenance' },
  ],
  sessionAffinity: { timeoutSeconds: 600 },
  tableSize: 1021,
  noBackends: 'drop',
};

test('definition → message → definition is the identity', (t) => {
  t.deepEqual(definitionFromMessage(definitionToMessage(def)), def);
  const min: ServiceDefinition = { name: 'x', addresses: ['10.0.0.1'], ports: [{ name: '80-tcp', port: 80, protocol: 'tcp', targetPort: 80 }], backends: [], noBackends: 'reject' };
  t.deepEqual(definitionFromMessage(definitionToMessage(min)), min);
});

test('a stored service becomes a message with enum names and string revisions', (t) => {
  const m = serviceToMessage({ definition: def, owner: 'api', revision: 42, createRevision: 7 });
  t.is(m.revision, '42');
  t.is(m.owner, 'api');
  t.is(m.createRevision, '7');
  t.deepEqual(m.ports.map((p) => p.protocol), ['TCP', 'UDP']);
  t.deepEqual(m.backends.map((b) => [b.state, b.weight, b.leaseId]), [['ACTIVE', 1, ''], ['DRAINING', 0, 'lease-1'], ['MAINTENANCE', 5, '']]);
  t.deepEqual(m.sessionAffinity, { timeoutSeconds: 600 });
  const bare = serviceToMessage({ definition: { ...def, sessionAffinity: undefined, tableSize: undefined } as unknown as ServiceDefinition, owner: 'kubernetes', revision: 1, createRevision: 1 });
  t.is(bare.owner, 'kubernetes');
  t.is(bare.sessionAffinity, null);
  t.is(bare.tableSize, 0);
});

test('zero values of a decoded message mean "unset"', (t) => {
  const decoded: ServiceMessage = {
    name: 'x',
    addresses: ['10.0.0.1'],
    ports: [{ name: '', port: 80, protocol: 'TCP', targetPort: 0 }],
    backends: [{ address: '10.1.0.1', state: 'STATE_UNSPECIFIED', leaseId: '', health: 'HEALTH_UNSPECIFIED', lastProbe: null, effectiveState: 'STATE_UNSPECIFIED' }],
    sessionAffinity: null,
    tableSize: 0,
    revision: '9',
    createRevision: '3',
    effectiveTableSize: 0,
    owner: '',
    noBackends: 'NO_BACKENDS_UNSPECIFIED',
    healthCheck: null,
    ipFamilies: [],
  };
  const expected = {
    name: 'x',
    addresses: ['10.0.0.1'],
    ports: [{ name: '80-tcp', port: 80, protocol: 'tcp', targetPort: 80 }],
    backends: [{ address: '10.1.0.1', weight: 1, state: 'active' }],
    noBackends: 'reject',
  };
  t.deepEqual(definitionFromMessage(decoded), expected);
  // An owner on input: the API's own is as good as none; another is refused, not dropped.
  t.deepEqual(definitionFromMessage({ ...decoded, owner: 'api' }), expected);
  const err = t.throws(() => definitionFromMessage({ ...decoded, owner: 'kubernetes' }), { instanceOf: SluiceError });
  t.is(err?.code, 'INVALID_ARGUMENT');
  t.is(err?.field, 'owner');
  t.regex(err?.message ?? '', /output only; the API writes services as "api", not "kubernetes"/);
});

test('enum values: names map, unspecified and unknown values are refused with the field', (t) => {
  t.is(protocolFromName('UDP', 'p'), 'udp');
  t.is(stateFromName('MAINTENANCE', 's'), 'maintenance');
  t.is(stateFromName('STATE_UNSPECIFIED', 's', 'active'), 'active');
  const e1 = t.throws(() => protocolFromName('PROTOCOL_UNSPECIFIED', 'ports[2].protocol'), { instanceOf: SluiceError });
  t.is(e1.field, 'ports[2].protocol');
  t.is(e1.code, 'INVALID_ARGUMENT');
  t.is(t.throws(() => protocolFromName(132, 'x'), { instanceOf: SluiceError }).message, 'x: must be TCP or UDP, got 132');
  t.is(t.throws(() => stateFromName('STATE_UNSPECIFIED', 'state'), { instanceOf: SluiceError }).field, 'state');
  const e2 = t.throws(() => definitionFromMessage({ ...definitionToMessage(def), backends: [{ address: '10.1.0.1', state: 7 as unknown as 'ACTIVE' }] }), { instanceOf: SluiceError });
  t.is(e2.field, 'backends[0].state');
});

test('64-bit integers: decimal strings in, safe numbers out; counters as bigints', (t) => {
  t.is(int64ToNumber('12345', 'r'), 12345);
  t.is(int64ToNumber(7, 'r'), 7);
  t.is(t.throws(() => int64ToNumber('-1', 'expectedRevision'), { instanceOf: SluiceError }).field, 'expectedRevision');
  t.throws(() => int64ToNumber('9007199254740993', 'r'), { instanceOf: SluiceError });
  const big = { packets: 2n ** 63n, bytes: 1n, newConnections: 0n, replyPackets: 3n };
  t.deepEqual(countersToMessage(big), { packets: '9223372036854775808', bytes: '1', newConnections: '0', replyPackets: '3' });
  t.deepEqual(countersFromMessage(countersToMessage(big)), big);
});

test('field paths in proto names', (t) => {
  t.is(protoFieldPath('service.sessionAffinity.timeoutSeconds'), 'service.session_affinity.timeout_seconds');
  t.is(protoFieldPath('requests[3].service.ports[0].targetPort'), 'requests[3].service.ports[0].target_port');
  t.is(protoFieldPath('backends[12].leaseId'), 'backends[12].lease_id');
});
