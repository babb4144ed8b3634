/**
 * The VIP filter's counts: a bit is set with its first VIP, stays while
 * any VIP of it is left, and is cleared with its last; the words are what
 * the dataplane reads.
 */
import test from 'ava';
import { VIP_FILTER_WORDS, VipFilter, vipFilterBit } from '../../src/dataplane/vip-filter.js';

/** Two addresses of one bit, found by search. */
function sameBit(): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const a = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const b = vipFilterBit(a);
    const other = seen.get(b);
    if (other !== undefined) return [other, a];
    seen.set(b, a);
  }
}

test('a bit lives as long as any of its VIPs; the word to write is said once', (t) => {
  const f = new VipFilter();
  const [a, b] = sameBit();
  const bit = vipFilterBit(a);
  const word = bit >>> 6;
  const set = (): boolean => (f.words[word]! & (1n << BigInt(bit & 63))) !== 0n;
  t.is(f.add(a), word, 'the first VIP of a bit sets it: write the word first');
  t.true(set());
  t.is(f.add(a), undefined, 'the same VIP again changes nothing');
  t.is(f.add(b), undefined, 'a second VIP of the bit needs no write');
  t.is(f.remove(a), undefined, 'the bit stays while b is left');
  t.true(set());
  t.is(f.remove(b), word, 'the last one clears it');
  t.false(set());
  t.is(f.remove(b), undefined, 'removing an unknown VIP changes nothing');
  t.true(f.words.every((w) => w === 0n));
});

test('bits are spread over the whole filter and stay within it', (t) => {
  const words = new Set<number>();
  for (let i = 0; i < 4096; i++) {
    const bit = vipFilterBit(`10.96.${i >> 8}.${i & 255}`);
    t.true(bit >= 0 && bit < VIP_FILTER_WORDS * 64);
    words.add(bit >>> 6);
  }
  t.true(words.size > VIP_FILTER_WORDS * 0.9, `4,096 consecutive VIPs touch ${words.size} of ${VIP_FILTER_WORDS} words`);
  t.throws(() => vipFilterBit('fd00::1%eth0'), { instanceOf: RangeError });
  t.throws(() => vipFilterBit('nope'), { instanceOf: RangeError });
});

test('IPv6: the XOR of the four words as the dataplane loads them, hashed as an IPv4 address is', (t) => {
  // Words of 2001:db8::1 as little-endian loads of its network-order bytes:
  // 20 01 0d b8 | 00 00 00 00 | 00 00 00 00 | 00 00 00 01.
  const x = (0xb80d0120 ^ 0x01000000) >>> 0;
  t.is(vipFilterBit('2001:db8::1'), Math.imul(x, 0x9e3779b1) >>> 16);
  t.is(vipFilterBit('2001:DB8:0::1'), vipFilterBit('2001:db8::1'), 'any spelling, one bit');
  // One bitmap for both families: an IPv6 address whose words XOR to an
  // IPv4 address's word shares its bit.
  t.is(vipFilterBit('::a60:a'), vipFilterBit('10.96.0.10'));
  t.is(vipFilterBit('a60:a::1:0:1'), vipFilterBit('10.96.0.10'));
});

test('an IPv6 VIP\'s bit: the four words as loaded, folded by xor, multiplied as IPv4\'s (lb6.h vip6_filter_hash)', (t) => {
  // fd96::10: words (little-endian loads of the network bytes) 0x96fd, 0, 0, 0x10000000.
  const folded = (0x96fd ^ 0x10000000) >>> 0;
  t.is(vipFilterBit('fd96::10'), Math.imul(folded, 0x9e3779b1) >>> 16);
  t.is(vipFilterBit('fd96:0:0:0:0:0:0:10'), vipFilterBit('fd96::10'), 'one address, one bit, however written');
  const words = new Set<number>();
  for (let i = 0; i < 4096; i++) words.add(vipFilterBit(`fd96::${i.toString(16)}`) >>> 6);
  t.true(words.size > VIP_FILTER_WORDS * 0.9, `4,096 consecutive IPv6 VIPs touch ${words.size} of ${VIP_FILTER_WORDS} words`);
});
