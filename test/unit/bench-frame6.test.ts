/**
 * The per-packet stage's IPv6 frames (bench/lib/frame6.ts): the IPv4 frame
 * of test/helpers/packet.ts with the fixed IPv6 header in place of the IPv4
 * one, and an L4 checksum over the IPv6 pseudo-header that a parse re-sums.
 */
import test from 'ava';

import { buildPacket6, ip6Bytes, parsePacket6 } from '../../bench/lib/frame6.js';
import { buildPacket } from '../helpers/packet.js';

const spec = { saddr: 'fd50::7', daddr: 'fd96::10', sport: 40001, dport: 80 } as const;

test('a TCP frame is the IPv4 one with a 40-byte IPv6 header, its checksum right', (t) => {
  const v6 = buildPacket6({ ...spec, proto: 'tcp', tcpFlags: { ack: true, psh: true } });
  const v4 = buildPacket({ saddr: '10.0.0.1', daddr: '10.96.0.10', sport: 40001, dport: 80, proto: 'tcp', tcpFlags: { ack: true, psh: true } });
  t.is(v6.length, v4.length + 20);
  t.is(v6.readUInt16BE(12), 0x86dd);
  t.is(v6[14]! >> 4, 6, 'version');
  t.is(v6.readUInt16BE(18), v4.length - 34, 'payload length: the TCP header and payload');
  t.is(v6[20], 6, 'next header: TCP, no extension header');
  t.deepEqual(v6.subarray(0, 12), v4.subarray(0, 12), 'the same MACs');
  // The TCP bytes agree but for the checksum (offset 16), whose pseudo-header differs.
  const l4v6 = Buffer.from(v6.subarray(54));
  const l4v4 = Buffer.from(v4.subarray(34));
  l4v6.writeUInt16BE(0, 16);
  l4v4.writeUInt16BE(0, 16);
  t.deepEqual(l4v6, l4v4);
  const p = parsePacket6(v6);
  t.like(p, { saddr: 'fd50::7', daddr: 'fd96::10', proto: 6, sport: 40001, dport: 80, l4ChecksumOk: true });
});

test('a parse re-sums the checksum: one changed address byte makes it wrong', (t) => {
  const f = buildPacket6({ ...spec, proto: 'tcp' });
  f[14 + 24 + 15]! ^= 1;
  const p = parsePacket6(f);
  t.is(p.daddr, 'fd96::11');
  t.false(p.l4ChecksumOk);
});

test('UDP: the checksum is always set, a computed 0 sent as 0xffff', (t) => {
  const f = buildPacket6({ ...spec, proto: 'udp' });
  t.true(parsePacket6(f).l4ChecksumOk);
  t.not(f.readUInt16BE(54 + 6), 0);
  // Payloads with every checksum: the one whose sum is 0 is sent as 0xffff.
  let zero = 0;
  for (let i = 0; i < 65536 && zero === 0; i++) {
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(i);
    const g = buildPacket6({ ...spec, proto: 'udp', payload });
    t.not(g.readUInt16BE(54 + 6), 0, `payload ${i}`);
    if (g.readUInt16BE(54 + 6) === 0xffff) zero++;
  }
  t.is(zero, 1);
});

test('addresses are read back in RFC 5952 text, and only IPv6 is taken', (t) => {
  const f = buildPacket6({ ...spec, daddr: '2001:DB8:0:0:1:0:0:1', proto: 'tcp' });
  t.is(parsePacket6(f).daddr, '2001:db8::1:0:0:1');
  t.throws(() => ip6Bytes('10.96.0.10'), { message: 'not an IPv6 address: 10.96.0.10' });
  t.throws(() => parsePacket6(buildPacket({ ...spec, saddr: '10.0.0.1', daddr: '10.0.0.2', proto: 'tcp' })),
    { message: 'not an Ethernet + IPv6 frame' });
});
