/**
 * Which addresses a VIP or backend may be, and the one text of each: IPv4
 * as before, IPv6 in any RFC 4291 spelling kept in its RFC 5952 form, the
 * ranges that cannot carry a flow refused with their reason.
 */
import test from 'ava';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import {
  addressProblem,
  canonicalAddress,
  clientProblem,
  compareAddresses,
  familyOf,
  hostPort,
  isAddressProblem,
  isIPAddress,
  isIPv4Address,
  parseAddress,
  type AddressProblem,
  type ParsedAddress,
} from '../../src/model/address.js';
import { formatIPv6, readAddr, writeAddr } from '../../src/dataplane/codec.js';

const ACCEPTED: Array<[string, ParsedAddress]> = [
  ['10.96.0.10', { family: 4, text: '10.96.0.10' }],
  ['100.64.0.1', { family: 4, text: '100.64.0.1' }],
  ['2001:db8::1', { family: 6, text: '2001:db8::1' }],
  ['2001:DB8::1', { family: 6, text: '2001:db8::1' }],
  ['2001:db8:0::1', { family: 6, text: '2001:db8::1' }],
  ['2001:0db8:0000:0000:0000:0000:0000:0001', { family: 6, text: '2001:db8::1' }],
  ['2001:db8:0:0:1:0:0:1', { family: 6, text: '2001:db8::1:0:0:1' }],
  ['2001:db8::1:0:0:0:1', { family: 6, text: '2001:db8:0:1::1' }],
  ['fd96::10', { family: 6, text: 'fd96::10' }],
  ['FC00::1', { family: 6, text: 'fc00::1' }],
  ['64:ff9b::10.0.0.1', { family: 6, text: '64:ff9b::a00:1' }],
  ['2001:db8::192.168.1.5', { family: 6, text: '2001:db8::c0a8:105' }],
  ['2606:4700:4700::1111', { family: 6, text: '2606:4700:4700::1111' }],
  ['100::1:0:0:0:1', { family: 6, text: '100:0:0:1::1' }],
];

const REFUSED: Array<[string, AddressProblem]> = [
  ['0.0.0.0', { kind: 'range', why: 'the unspecified ("this network") range 0.0.0.0/8' }],
  ['127.0.0.1', { kind: 'range', why: 'loopback (127.0.0.0/8): it never leaves the host' }],
  ['::', { kind: 'range', why: 'the unspecified address ::' }],
  ['0:0:0:0:0:0:0:0', { kind: 'range', why: 'the unspecified address ::' }],
  ['::1', { kind: 'range', why: 'loopback (::1): it never leaves the host' }],
  ['::ffff:10.0.0.1', { kind: 'range', why: 'an IPv4-mapped address (::ffff:0:0/96): write it as the IPv4 address 10.0.0.1' }],
  ['::FFFF:a00:1', { kind: 'range', why: 'an IPv4-mapped address (::ffff:0:0/96): write it as the IPv4 address 10.0.0.1' }],
  // A mapped address whose IPv4 form is refused too: the hint would suggest a refused address.
  ['::ffff:127.0.0.1', { kind: 'range', why: 'an IPv4-mapped address (::ffff:0:0/96), and its IPv4 address 127.0.0.1 is loopback (127.0.0.0/8): it never leaves the host' }],
  ['::ffff:0.0.0.0', { kind: 'range', why: 'an IPv4-mapped address (::ffff:0:0/96), and its IPv4 address 0.0.0.0 is the unspecified ("this network") range 0.0.0.0/8' }],
  ['::ffff:0:0', { kind: 'range', why: 'an IPv4-mapped address (::ffff:0:0/96), and its IPv4 address 0.0.0.0 is the unspecified ("this network") range 0.0.0.0/8' }],
  ['::ffff:255.255.255.255', { kind: 'range', why: 'an IPv4-mapped address (::ffff:0:0/96), and its IPv4 address 255.255.255.255 is the limited broadcast address' }],
  ['::10.0.0.1', { kind: 'range', why: 'an IPv4-compatible address (::/96), deprecated by RFC 4291' }],
  ['::a00:1', { kind: 'range', why: 'an IPv4-compatible address (::/96), deprecated by RFC 4291' }],
  ['fe80::1', { kind: 'range', why: 'link-local (fe80::/10): it is not routed' }],
  ['febf::1', { kind: 'range', why: 'link-local (fe80::/10): it is not routed' }],
  ['fec0::1', { kind: 'range', why: 'site-local (fec0::/10), deprecated by RFC 3879' }],
  ['ff02::1', { kind: 'range', why: 'multicast (ff00::/8): one flow cannot go to one backend' }],
  ['ff05::1:3', { kind: 'range', why: 'multicast (ff00::/8): one flow cannot go to one backend' }],
  ['100::1', { kind: 'range', why: 'discard-only (100::/64): routers drop it' }],
  // Not addresses at all.
  ['fe80::1%eth0', { kind: 'syntax' }],
  ['2001:db8::1%1', { kind: 'syntax' }],
  ['2001:db8::g', { kind: 'syntax' }],
  ['[2001:db8::1]', { kind: 'syntax' }],
  [' 2001:db8::1', { kind: 'syntax' }],
  ['2001:db8::1/64', { kind: 'syntax' }],
  ['2001:db8:::1', { kind: 'syntax' }],
  ['2001::db8::1', { kind: 'syntax' }],
  ['1:2:3:4:5:6:7:8:9', { kind: 'syntax' }],
  ['1:2:3:4:5:6:7', { kind: 'syntax' }],
  ['02001:db8::1', { kind: 'syntax' }],
  ['::ffff:010.0.0.1', { kind: 'syntax' }],
  ['::ffff:0x0a.0.0.1', { kind: 'syntax' }],
  ['::ffff:10.0.0.256', { kind: 'syntax' }],
  ['2001:db8::10.0.0', { kind: 'syntax' }],
  ['10.0.0.1::', { kind: 'syntax' }],
  ['10.96.0.020', { kind: 'syntax' }],
  ['10.1', { kind: 'syntax' }],
  [':', { kind: 'syntax' }],
  ['', { kind: 'syntax' }],
];

for (const [s, want] of ACCEPTED) {
  test(`accepted: ${s}`, (t) => {
    t.deepEqual(parseAddress(s), want);
    t.is(canonicalAddress(s), want.text);
    t.is(familyOf(s), want.family);
    t.true(isIPAddress(s));
  });
}

for (const [s, want] of REFUSED) {
  test(`refused: ${JSON.stringify(s)}`, (t) => {
    const r = parseAddress(s);
    t.deepEqual(r, want);
    t.true(isAddressProblem(r));
    t.is(isIPAddress(s), want.kind === 'range', 'a refused range is still an address; bad syntax is none');
  });
}

test('non-strings are no address', (t) => {
  for (const x of [undefined, null, 10, ['10.0.0.1'], { address: '::1' }]) {
    t.deepEqual(parseAddress(x), { kind: 'syntax' });
    t.false(isIPAddress(x));
    t.is(canonicalAddress(x), undefined);
    t.is(familyOf(x), undefined);
  }
});

test('the IPv4-only helpers stay IPv4-only (the hairpin address and kube translation use them)', (t) => {
  t.false(isIPv4Address('2001:db8::1'));
  t.deepEqual(addressProblem('2001:db8::1'), { kind: 'syntax' });
  t.deepEqual(addressProblem('127.0.0.1'), { kind: 'range', why: 'loopback (127.0.0.0/8): it never leaves the host' });
  t.is(addressProblem('10.0.0.1'), undefined);
});

test('an IPv4-mapped address is written with its IPv4 tail (RFC 5952 section 5), never in hex, by the model and the codec', (t) => {
  for (const s of ['::ffff:192.168.88.2', '::ffff:c0a8:5802', '::FFFF:C0A8:5802', '0:0:0:0:0:ffff:192.168.88.2']) t.is(canonicalAddress(s), '::ffff:192.168.88.2', s);
  const b = Buffer.alloc(16);
  t.is(writeAddr(b, 0, '::ffff:c0a8:5802'), 10);
  t.is(formatIPv6(b), '::ffff:192.168.88.2');
  t.is(readAddr(b, 0, 10), '::ffff:192.168.88.2');
  // Other addresses with an IPv4 tail are not mapped ones: RFC 5952 hex.
  t.is(canonicalAddress('64:ff9b::10.0.0.1'), '64:ff9b::a00:1');
  t.is(canonicalAddress('::ffff:0:10.0.0.1'), '::ffff:0:a00:1');
});

/** Client addresses and why no flow from them is balanced (undefined: an address a flow can come from). */
const CLIENTS: Array<[string, string | undefined]> = [
  ['fe80::1', 'fe80::1 is link-local (fe80::/10): the dataplane passes packets from it untouched'],
  ['::1', '::1 is loopback (::1): the dataplane passes packets from it untouched'],
  ['::', ':: is the unspecified address: the dataplane passes packets from it untouched'],
  ['0::0', ':: is the unspecified address: the dataplane passes packets from it untouched'],
  ['ff02::1', 'ff02::1 is multicast (ff00::/8): the dataplane passes packets from it untouched'],
  ['::ffff:c0a8:5802', '::ffff:192.168.88.2 is an IPv4-mapped address (::ffff:0:0/96): write it as the IPv4 address 192.168.88.2'],
  ['::ffff:127.0.0.1', '::ffff:127.0.0.1 is an IPv4-mapped address (::ffff:0:0/96), and its IPv4 address 127.0.0.1 is loopback (127.0.0.0/8): it never leaves the host'],
  // Refused as VIPs and backends, but the dataplane balances packets from them.
  ['fec0::1', undefined],
  ['::1.2.3.4', undefined],
  ['100::1', undefined],
  ['fd96::5', undefined],
  // IPv4 sources are not filtered by the dataplane.
  ['127.0.0.1', undefined],
  ['0.0.0.0', undefined],
  ['10.0.0.1', undefined],
  // Not addresses: the caller's syntax check says so.
  ['fe80::1%eth0', undefined],
];

for (const [s, want] of CLIENTS) {
  test(`clientProblem: ${s}`, (t) => {
    t.is(clientProblem(s), want);
  });
}

test('compareAddresses: IPv4 before IPv6, numeric within a family, spelling ignored', (t) => {
  const list = ['2001:db8::10', '10.0.0.10', '2001:db8::9', 'fd00::1', '10.0.0.9', '2001:DB8::a', '9.255.255.255', 'nope'];
  t.deepEqual([...list].sort(compareAddresses), ['nope', '9.255.255.255', '10.0.0.9', '10.0.0.10', '2001:db8::9', '2001:DB8::a', '2001:db8::10', 'fd00::1']);
  t.is(compareAddresses('2001:db8::1', '2001:DB8:0::1'), 0);
});

test('hostPort brackets IPv6 only', (t) => {
  t.is(hostPort('10.0.0.1', 80), '10.0.0.1:80');
  t.is(hostPort('2001:db8::1', 80), '[2001:db8::1]:80');
  t.is(hostPort('2001:db8::1', '8080'), '[2001:db8::1]:8080');
});

/** Any IPv6 address as ipaddr.js writes it in one of its forms. */
const spelled = fc
  .tuple(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 3 }), fc.boolean())
  .map(([parts, form, upper]) => {
    const a = new ipaddr.IPv6(parts);
    const text = form === 0 ? a.toString() : form === 1 ? a.toNormalizedString() : form === 2 ? parts.map((p) => p.toString(16).padStart(4, '0')).join(':') : a.toRFC5952String();
    return { parts, text: upper ? text.toUpperCase() : text };
  });

test('property: every spelling of an IPv6 address has one text, which the codec reads back', (t) => {
  fc.assert(
    fc.property(spelled, ({ parts, text }) => {
      const c = canonicalAddress(text);
      const a = new ipaddr.IPv6(parts);
      const want = a.isIPv4MappedAddress() ? `::ffff:${a.toIPv4Address().toString()}` : a.toRFC5952String();
      if (c !== want) return false;
      // Written into a map key and read back: the same text.
      const b = Buffer.alloc(16);
      if (writeAddr(b, 0, text) !== 10) return false;
      return readAddr(b, 0, 10) === want && formatIPv6(b) === want && canonicalAddress(want) === want;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('property: parseAddress text is a fixed point (canonical in, the same out)', (t) => {
  fc.assert(
    fc.property(spelled, ({ text }) => {
      const r = parseAddress(text);
      if (isAddressProblem(r)) return r.kind === 'range';
      return r.family === 6 && (parseAddress(r.text) as ParsedAddress).text === r.text;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
