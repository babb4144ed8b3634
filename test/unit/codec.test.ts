import test from 'ava';
import { encodeLookupFrame } from '../../src/dataplane/lookup-frame.js';
import {
  CodecError,
  LAYOUTS,
  RNAT_FLAG_AMBIGUOUS,
  decodeReplyKey,
  decodeReplyValue,
  encodeReplyKeyInto,
  encodeReplyValueInto,
  endpointCode,
  endpointKey,
  endpointOfCode,
  endpointOfKey,
  readAddr,
  writeAddr,
  decodeBackendValue,
  decodeConntrackKey,
  decodeConntrackValue,
  decodeServiceKey,
  decodeServiceValue,
  encodeBackendValue,
  encodeConntrackKey,
  encodeConntrackValue,
  encodeServiceKey,
  encodeServiceValue,
  CT_REPLY,
} from '../../src/dataplane/codec.js';

test('service key: network order address and port, protocol number, family', (t) => {
  const b = encodeServiceKey({ address: '10.96.0.10', port: 80, protocol: 'tcp' });
  t.is(b.toString('hex'), '0a60000a' + '00'.repeat(12) + '0050' + '06' + '02');
  t.deepEqual(decodeServiceKey(b), { address: '10.96.0.10', port: 80, protocol: 'tcp' });
});

test('service value, backend value, conntrack key and value round-trip', (t) => {
  const v = { id: 7, flags: 1, affinityTimeoutSec: 10800, tableSize: 1021, tableBase: 40960 };
  t.deepEqual(decodeServiceValue(encodeServiceValue(v)), v);
  const be = { address: '10.1.0.11', port: 8080, flags: 1, serviceId: 70_000 };
  t.deepEqual(decodeBackendValue(encodeBackendValue(be)), be);
  const k = { saddr: '10.1.0.11', daddr: '192.168.1.2', sport: 8080, dport: 40000, protocol: 'udp' as const };
  t.deepEqual(decodeConntrackKey(encodeConntrackKey(k)), k);
  const ct = { dir: CT_REPLY as typeof CT_REPLY, natAddress: '10.96.0.10', natPort: 53, backendId: 9, serviceId: 7, state: 'closing' as const, created: 5, expires: 6 };
  t.deepEqual(decodeConntrackValue(encodeConntrackValue(ct)), ct);
});

test('bad inputs name the field', (t) => {
  const e1 = t.throws(() => encodeServiceKey({ address: '10.96.0.300', port: 80, protocol: 'tcp' }), { instanceOf: CodecError });
  t.is(e1?.field, 'address');
  const e2 = t.throws(() => encodeServiceKey({ address: '10.96.0.1', port: 0, protocol: 'tcp' }), { instanceOf: CodecError });
  t.is(e2?.field, 'port');
  const e3 = t.throws(() => encodeBackendValue({ address: '10.1.0.1', port: 70000, flags: 0, serviceId: 1 }), { instanceOf: CodecError });
  t.is(e3?.field, 'backend.port');
  // A flow's addresses are of one family (one table each): a mixed tuple is refused, not truncated.
  const e4 = t.throws(() => encodeConntrackKey({ saddr: '10.0.0.1', daddr: 'fd00::1', sport: 1, dport: 2, protocol: 'tcp' }), { instanceOf: CodecError });
  t.is(e4?.field, 'daddr');
  t.regex(e4?.message ?? '', /addresses are of one family/);
  const e5 = t.throws(() => encodeConntrackKey({ saddr: 'fd00::1', daddr: 'fd00::g', sport: 1, dport: 2, protocol: 'tcp' }), { instanceOf: CodecError });
  t.is(e5?.field, 'daddr');
});

test('IPv6 conntrack entries: struct ct6_key and ct6_value, by the addresses\' family, and back by length', (t) => {
  const key = { saddr: '2001:db8::7', daddr: 'fd96::10', sport: 40000, dport: 80, protocol: 'tcp' as const };
  const k = encodeConntrackKey(key);
  t.is(k.length, LAYOUTS.ct6_key.size);
  t.is(k.subarray(0, 16).toString('hex'), '20010db8000000000000000000000007', 'the source, 16 bytes in network order');
  t.is(k.readUInt16BE(LAYOUTS.ct6_key.offsets.sport), 40000);
  t.is(k[LAYOUTS.ct6_key.offsets.proto], 6);
  t.deepEqual(decodeConntrackKey(k), key);
  const value = { dir: CT_REPLY, natAddress: 'fd96::10', natPort: 80, backendId: 3, serviceId: 2, state: 'new' as const, created: 100, expires: 160, hairpin: true };
  const v = encodeConntrackValue(value);
  t.is(v.length, LAYOUTS.ct6_value.size);
  t.deepEqual(decodeConntrackValue(v), value);
  t.is(encodeConntrackKey({ ...key, saddr: '10.0.0.1', daddr: '10.96.0.10' }).length, LAYOUTS.ct_key.size, 'IPv4 keys stay 16 bytes');
  t.throws(() => decodeConntrackKey(Buffer.alloc(20)), { instanceOf: CodecError, message: /16 \(IPv4\) or 40 \(IPv6\) bytes, got 20/ });
});

test('IPv4 parsing: dotted quads only, no leading zeros, each octet ≤ 255', (t) => {
  for (const good of ['0.0.0.0', '255.255.255.255', '10.96.0.10', '1.2.3.4']) {
    t.is(decodeServiceKey(encodeServiceKey({ address: good, port: 1, protocol: 'udp' })).address, good, good);
  }
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1..2.3', 'a.b.c.d', '1.2.3.4 ', '-1.2.3.4', '1.2.3.1000']) {
    t.throws(() => encodeServiceKey({ address: bad, port: 1, protocol: 'udp' }), { instanceOf: CodecError }, JSON.stringify(bad));
  }
});

test('endpoint codes: exact, distinct per protocol, and the reply_nat key they encode to', (t) => {
  for (const [a, p, proto] of [['10.1.0.2', 8080, 'tcp'], ['255.255.255.255', 65535, 'udp'], ['0.0.0.1', 1, 'tcp']] as const) {
    const code = endpointCode(a, p, proto);
    t.deepEqual(endpointOfCode(code), { address: a, port: p, protocol: proto });
    const key = encodeReplyKeyInto(Buffer.alloc(LAYOUTS.rnat_key.size), 0, code);
    t.is(decodeReplyKey(key), code);
  }
  t.not(endpointCode('10.1.0.2', 8080, 'tcp'), endpointCode('10.1.0.2', 8080, 'udp'));
  t.is(endpointCode('fd00::1', 80, 'tcp'), -1);
  const key = encodeReplyKeyInto(Buffer.alloc(20), 0, endpointCode('10.1.0.2', 8080, 'udp'));
  t.is(key.toString('hex'), '0a010002' + '00'.repeat(12) + '1f90' + '11' + '02');
  const v = encodeReplyValueInto(Buffer.alloc(8), 0, 0);
  t.is(v.readUInt32LE(4), RNAT_FLAG_AMBIGUOUS, 'backend id 0 is written as ambiguous');
  t.is(decodeReplyValue(encodeReplyValueInto(Buffer.alloc(8), 0, 77)), 77);
});

test('IPv6 addresses: written as 16 network-order bytes from any spelling, read back in RFC 5952 form', (t) => {
  const b = encodeServiceKey({ address: '2001:DB8:0:0::1', port: 80, protocol: 'tcp' });
  t.is(b.toString('hex'), '20010db8' + '00'.repeat(11) + '01' + '0050' + '06' + '0a');
  t.deepEqual(decodeServiceKey(b), { address: '2001:db8::1', port: 80, protocol: 'tcp' });
  const buf = Buffer.alloc(16);
  for (const [given, canonical] of [
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['fd00:0:0:0:0:0:0:0', 'fd00::'],
    ['64:ff9b::10.0.0.1', '64:ff9b::a00:1'],
    ['2001:0db8:85a3:0000:0000:8a2e:0370:7334', '2001:db8:85a3::8a2e:370:7334'],
  ] as const) {
    t.is(writeAddr(buf, 0, given), 10, given);
    t.is(readAddr(buf, 0, 10), canonical, given);
  }
  t.throws(() => writeAddr(buf, 0, 'fe80::1%eth0'), { instanceOf: CodecError });
  t.throws(() => writeAddr(buf, 0, '2001:db8::g'), { instanceOf: CodecError });
});

test('endpoint keys: IPv4 keeps its code, IPv6 is "<RFC 5952>|port|proto"; both round-trip through reply_nat keys', (t) => {
  t.is(endpointKey('10.1.0.2', 8080, 'udp'), endpointCode('10.1.0.2', 8080, 'udp'));
  const k = endpointKey('2001:DB8::0:2', 8080, 'udp');
  t.is(k, '2001:db8::2|8080|udp');
  t.deepEqual(endpointOfKey(k), { address: '2001:db8::2', port: 8080, protocol: 'udp' });
  const key = encodeReplyKeyInto(Buffer.alloc(LAYOUTS.rnat_key.size), 0, k);
  t.is(key.toString('hex'), '20010db8' + '00'.repeat(11) + '02' + '1f90' + '11' + '0a');
  t.is(decodeReplyKey(key), k);
  t.is(endpointKey('2001:db8::g', 80, 'tcp'), -1);
  t.is(endpointKey('2001:db8::1', 70000, 'tcp'), -1);
  const bogus = Buffer.from(key);
  bogus[LAYOUTS.rnat_key.offsets.proto] = 1;
  t.is(decodeReplyKey(bogus), -1, 'not TCP/UDP');
});

test('a lookup frame of an IPv6 flow: Ethernet, IPv6 without extension headers, the answer where IPv4\'s goes', (t) => {
  const f = encodeLookupFrame({ saddr: '2001:db8::5', sport: 40000, daddr: '2001:db8::10', dport: 80, protocol: 'tcp' });
  t.is(f.readUInt16BE(12), 0x86dd);
  t.is(f[14]! >> 4, 6, 'version 6');
  t.is(f[14 + 6], 6, 'next header TCP');
  t.is(f.subarray(14 + 24, 14 + 40).toString('hex'), '20010db8' + '00'.repeat(11) + '10');
  t.is(f.readUInt16BE(14 + 40 + 2), 80);
  t.throws(() => encodeLookupFrame({ saddr: '10.0.0.5', sport: 1, daddr: '2001:db8::10', dport: 80, protocol: 'tcp' }), { instanceOf: CodecError });
});
