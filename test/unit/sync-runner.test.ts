/** The SyncRunner's schedule, on a clock the test moves. */
import test from 'ava';
import { SyncRunner } from '../../src/kube/sync-runner.js';

function clock() {
  let now = 0;
  const timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  return {
    now: () => now,
    setTimer: (fn: () => void, ms: number) => {
      const t = { at: now + ms, fn, live: true };
      timers.push(t);
      return { cancel: () => void (t.live = false) };
    },
    async advance(ms: number): Promise<void> {
      now += ms;
      for (const t of timers.filter((x) => x.live && x.at <= now)) {
        t.live = false;
        t.fn();
      }
      await new Promise((r) => setImmediate(r));
    },
  };
}

test('a lone request runs at once; requests within the interval collapse into one run when it ends', async (t) => {
  const c = clock();
  const runs: number[] = [];
  const r = new SyncRunner({ run: async () => void runs.push(c.now()), onError: () => t.fail(), minIntervalMs: 1000, now: c.now, setTimer: c.setTimer });
  r.request();
  await new Promise((x) => setImmediate(x));
  t.deepEqual(runs, [0]);
  for (let i = 0; i < 50; i++) r.request();
  await c.advance(500);
  t.deepEqual(runs, [0], 'nothing runs inside the interval');
  await c.advance(500);
  t.deepEqual(runs, [0, 1000], 'fifty requests, one run');
  await c.advance(5000);
  r.request();
  await new Promise((x) => setImmediate(x));
  t.deepEqual(runs, [0, 1000, 6000], 'after a quiet spell, at once again');
});

test('a request during a run is run after it; a failed run goes to onError and the next request runs again', async (t) => {
  const c = clock();
  const errors: unknown[] = [];
  let release: () => void = () => {};
  let n = 0;
  const r = new SyncRunner({
    run: async () => {
      n++;
      if (n === 1) await new Promise<void>((res) => (release = res));
      if (n === 2) throw new Error('boom');
    },
    onError: (e) => errors.push(e),
    minIntervalMs: 0,
    now: c.now,
    setTimer: c.setTimer,
  });
  r.request();
  r.request();
  t.is(n, 1);
  release();
  await new Promise((x) => setImmediate(x));
  await c.advance(0);
  t.is(n, 2);
  t.is(errors.length, 1);
  r.request();
  await new Promise((x) => setImmediate(x));
  t.is(n, 3);
  await r.settled();
});
