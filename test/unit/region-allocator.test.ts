/**
 * The allocator of Maglev table regions: first fit, coalescing, quarantine
 * before reuse, adoption of regions found in the maps, and a clear error
 * when the array is full.
 */
import test from 'ava';
import { RegionAllocator } from '../../src/lb/region-allocator.js';
import { SluiceError } from '../../src/errors.js';

function clock(): { now: () => number; advance(ms: number): void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test('allocations do not overlap and fill the array first-fit', (t) => {
  const a = new RegionAllocator(100);
  const x = a.allocate(30);
  const y = a.allocate(30);
  const z = a.allocate(40);
  t.deepEqual([x, y, z], [0, 30, 60]);
  t.is(a.inUse(), 100);
  const err = t.throws(() => a.allocate(1), { instanceOf: SluiceError });
  t.is(err?.code, 'RESOURCE_EXHAUSTED');
});

test('a released region is reused only after the quarantine', (t) => {
  const c = clock();
  const a = new RegionAllocator(60, { quarantineMs: 1000, now: c.now });
  const x = a.allocate(30);
  a.allocate(30);
  a.release(x);
  t.throws(() => a.allocate(30), { instanceOf: SluiceError }, 'reused while a packet may still read it');
  c.advance(999);
  t.throws(() => a.allocate(30), { instanceOf: SluiceError });
  c.advance(1);
  t.is(a.allocate(30), x, 'the quarantined region comes back');
});

test('freed neighbours coalesce into one extent', (t) => {
  const c = clock();
  const a = new RegionAllocator(90, { quarantineMs: 0, now: c.now });
  const x = a.allocate(30);
  const y = a.allocate(30);
  const z = a.allocate(30);
  a.free_(y);
  a.free_(x);
  a.free_(z);
  t.is(a.allocate(90), 0, 'three freed regions make one of 90');
});

test('undo: an unreleased region stays in use; an unpublished one is free at once', (t) => {
  const a = new RegionAllocator(50, { quarantineMs: 10_000 });
  const x = a.allocate(25);
  a.release(x);
  a.unrelease(x);
  t.is(a.inUse(), 25);
  const y = a.allocate(25);
  a.free_(y);
  t.is(a.allocate(25), y, 'an unpublished region needs no quarantine');
});

test('adoption: regions found in the maps are reserved; overlaps are refused', (t) => {
  const a = new RegionAllocator(100);
  a.reserve(10, 20);
  a.reserve(50, 10);
  t.is(a.allocate(10), 0);
  t.is(a.allocate(20), 30, 'fits between the reserved regions');
  t.throws(() => a.reserve(15, 5), { instanceOf: SluiceError, message: /overlaps/ });
  t.is(a.retainOnly(new Set([10])), 3, 'everything but the kept region is released');
});
