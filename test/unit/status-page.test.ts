/**
 * The status page's routes on a plain node:http server over a fake
 * SnapshotSource whose counters the test moves: the JSON and SSE routes
 * read with plain HTTP (one snapshot per tick for all streams, none while
 * no page listens), the static files with their types and CSP header, and
 * the page itself in headless Chromium (playwright-core): its cells show
 * the source's exact numbers, follow them when they change, the charts
 * draw, and nothing is refused by the CSP or logged as an error. A
 * screenshot is kept in test/artifacts/status-page.png.
 */
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { chromium } from 'playwright-core';
import type { BackendSnapshot, NodeSnapshot, SnapshotSource } from '../../src/metrics/snapshot.js';
import { statusRoutes, type StatusOptions } from '../../src/status/routes.js';

const ARTIFACTS = path.resolve(import.meta.dirname, '../artifacts');

const backend = (address: string, packets: number, over: Partial<BackendSnapshot> = {}): BackendSnapshot => ({
  address,
  weight: 1,
  adminState: 'active',
  effectiveState: 'active',
  health: { state: 'healthy', lastProbe: { atMs: Date.now(), ok: true, latencyMs: 0.42 } },
  counters: { packets, bytes: packets * 100, newConnections: Math.floor(packets / 10), replyPackets: packets },
  activeConnections: 2,
  ...over,
});

/** A node with two services whose counters the test sets. */
class FakeSource implements SnapshotSource {
  reads = 0;
  fail: Error | undefined;
  web = 1000;
  dns = 10;
  noBackend = 3;
  /** Services added after the two, each with packets moving with `web`. */
  extra = 0;

  async snapshot(): Promise<NodeSnapshot> {
    this.reads++;
    if (this.fail) throw this.fail;
    const w = this.web;
    const extra = Array.from({ length: this.extra }, (_, i) => ({
      name: `team-${i}/service-${i}`,
      addresses: [`10.96.1.${i}`],
      ports: [{ name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 }],
      noBackends: 'reject',
      counters: { packets: w * (i + 1), bytes: w * (i + 1) * 1500, newConnections: w, replyPackets: w },
      backends: [backend(`10.1.1.${i}`, w * (i + 1))],
    }));
    return {
      atMs: Date.now(),
      services: [
        {
          name: 'default/dns',
          addresses: ['10.96.0.10'],
          ports: [{ name: 'dns', port: 53, protocol: 'udp', targetPort: 5353 }],
          noBackends: 'reject',
          counters: { packets: this.dns, bytes: this.dns * 60, newConnections: this.dns, replyPackets: this.dns },
          backends: [backend('10.1.0.1', this.dns, { health: { state: 'unchecked' } })],
        },
        {
          name: 'default/web',
          addresses: ['10.96.0.10'],
          ports: [{ name: 'http', port: 80, protocol: 'tcp', targetPort: 8080 }],
          noBackends: 'reject',
          counters: { packets: w, bytes: w * 100, newConnections: Math.floor(w / 10), replyPackets: w },
          activeConnections: 7,
          backends: [
            backend('10.1.0.1', w - 400, { weight: 3 }),
            backend('10.1.0.2', 400, {
              effectiveState: 'draining',
              health: { state: 'unhealthy', lastProbe: { atMs: Date.now(), ok: false, latencyMs: 1000, error: 'ECONNREFUSED' } },
            }),
            backend('10.1.0.3', 0, { health: { state: 'unknown' }, adminState: 'maintenance', effectiveState: 'maintenance' }),
          ],
        },
        ...extra,
      ],
      drops: { no_backend: this.noBackend, malformed: 0 },
      rejects: { tcp_rst: 5 },
    };
  }
}

/** A server with the routes (404 elsewhere), closed with the test. */
async function serve(t: ExecutionContext, source: SnapshotSource, opts: StatusOptions = {}): Promise<{ url: string; abort: AbortController }> {
  const abort = new AbortController();
  const routes = statusRoutes(source, { signal: abort.signal, ...opts });
  const server = http.createServer((req, res) => {
    const route = routes.get(new URL(req.url ?? '/', 'http://x').pathname);
    if (route) route(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    abort.abort();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, abort };
}

function get(url: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http.request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => (body += s)).on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    }).on('error', reject).end();
  });
}

/** An /events stream: its snapshots as they come. */
function stream(url: string): Promise<{ next(): Promise<NodeSnapshot>; close(): void; ended: Promise<void>; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/events`, (res) => {
      const queue: NodeSnapshot[] = [];
      const waiting: Array<(s: NodeSnapshot) => void> = [];
      let buf = '';
      res.setEncoding('utf8').on('data', (s: string) => {
        buf += s;
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (!/^event: snapshot$/m.test(block) || data === '') continue;
          const snap = JSON.parse(data) as NodeSnapshot;
          const w = waiting.shift();
          if (w) w(snap);
          else queue.push(snap);
        }
      });
      const ended = new Promise<void>((r) => res.on('end', () => r()).on('close', () => r()));
      resolve({
        next: () => new Promise((r) => (queue.length > 0 ? r(queue.shift()!) : waiting.push(r))),
        close: () => req.destroy(),
        ended,
        headers: res.headers,
      });
    }).on('error', reject);
  });
}

/** Timers the test fires by hand. */
function manualTimers() {
  const running = new Map<number, () => void>();
  let id = 0;
  return {
    running,
    tick: () => [...running.values()].forEach((fn) => fn()),
    setInterval: (fn: () => void) => (running.set(++id, fn), id),
    clearInterval: (h: unknown) => void running.delete(h as number),
  };
}

test('/api/status: the snapshot as JSON, with the CSP header', async (t) => {
  const source = new FakeSource();
  const { url } = await serve(t, source);
  const r = await get(`${url}/api/status`);
  t.is(r.status, 200);
  t.is(r.headers['content-type'], 'application/json; charset=utf-8');
  t.is(r.headers['content-security-policy'], "default-src 'self'");
  const snap = JSON.parse(r.body) as NodeSnapshot;
  const want = await source.snapshot();
  t.deepEqual({ ...snap, atMs: 0, services: snap.services.map((s) => ({ ...s, backends: s.backends.map((b) => ({ ...b, health: b.health.state })) })) },
    { ...want, atMs: 0, services: want.services.map((s) => ({ ...s, backends: s.backends.map((b) => ({ ...b, health: b.health.state })) })) });
  source.fail = new Error('maps unreadable');
  const failed = await get(`${url}/api/status`);
  t.is(failed.status, 503);
  t.is(failed.body, 'status: the node could not be read: maps unreadable\n');
  t.is((await get(`${url}/api/status`, 'POST')).status, 405);
});

test('static files: the page, its module and uPlot from the package, with types; no inline script', async (t) => {
  const { url } = await serve(t, new FakeSource());
  const files: Array<[string, RegExp, RegExp]> = [
    ['/', /^text\/html/, /<script type="module" src="\/status\.js"><\/script>/],
    ['/status.js', /^text\/javascript/, /new EventSource\('\/events'\)/],
    ['/status.css', /^text\/css/, /\.chart/],
    ['/uPlot.iife.min.js', /^text\/javascript/, /uPlot/],
    ['/uPlot.min.css', /^text\/css/, /\.uplot/],
    ['/favicon.svg', /^image\/svg\+xml/, /^<svg /],
  ];
  for (const [p, type, body] of files) {
    const r = await get(`${url}${p}`);
    t.is(r.status, 200, p);
    t.regex(r.headers['content-type'] ?? '', type, p);
    t.is(r.headers['content-security-policy'], "default-src 'self'", p);
    t.regex(r.body, body, p);
  }
  const html = (await get(`${url}/`)).body;
  t.deepEqual(html.match(/<script[^>]*>/g)?.filter((s) => !/ src="\/[^"]+"/.test(s)) ?? [], [], 'every script is a file of this origin');
  t.notRegex(html, /style=|<style|https?:\/\//, 'no inline style, nothing from elsewhere');
  const head = await get(`${url}/status.js`, 'HEAD');
  t.is(head.status, 200);
  t.is(head.body, '');
});

test('/events: a snapshot at once, then one read per tick for every stream; none while no stream is open', async (t) => {
  const source = new FakeSource();
  const timers = manualTimers();
  const { url } = await serve(t, source, { timers });
  const a = await stream(url);
  t.is(a.headers['content-type'], 'text/event-stream; charset=utf-8');
  t.is(a.headers['content-security-policy'], "default-src 'self'");
  t.is((await a.next()).services[1]!.counters.packets, 1000, 'the first snapshot comes without waiting for a tick');
  const b = await stream(url);
  await b.next();
  t.is(timers.running.size, 1, 'one ticker for both streams');
  const before = source.reads;
  source.web = 2500;
  timers.tick();
  const [sa, sb] = await Promise.all([a.next(), b.next()]);
  t.is(source.reads, before + 1, 'one read for both streams');
  t.is(sa.services[1]!.counters.packets, 2500);
  t.deepEqual(sa, sb);
  a.close();
  b.close();
  await Promise.all([a.ended, b.ended]);
  for (let i = 0; i < 100 && timers.running.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.is(timers.running.size, 0, 'the ticker stops with the last stream');
});

test('/events: a failed read skips a beat, and the streams end when the server closes', async (t) => {
  const source = new FakeSource();
  const timers = manualTimers();
  const errors: unknown[] = [];
  const { url, abort } = await serve(t, source, { timers, onError: (e) => errors.push(e) });
  const s = await stream(url);
  await s.next();
  source.fail = new Error('boom');
  timers.tick();
  for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.is((errors[0] as Error | undefined)?.message, 'boom');
  source.fail = undefined;
  source.web = 4242;
  timers.tick();
  t.is((await s.next()).services[1]!.counters.packets, 4242, 'the stream goes on after a failed read');
  abort.abort();
  await s.ended;
  t.is(timers.running.size, 0);
  t.is((await get(`${url}/events`)).status, 503, 'no new stream once closing');
});

test('/events: a client that stops reading skips snapshots instead of piling them up, and is ended', async (t) => {
  // Snapshots of 4 MB: the kernel's socket buffers fill after a few, then only the daemon's heap would hold them.
  const source = new FakeSource();
  const pad = 'x'.repeat(4 << 20);
  const big: SnapshotSource = { snapshot: async () => ({ ...(await source.snapshot()), rejects: { pad: 0 }, drops: { [pad]: 1 } }) };
  const size = Buffer.byteLength(JSON.stringify(await big.snapshot()));
  const timers = manualTimers();
  const abort = new AbortController();
  const routes = statusRoutes(big, { signal: abort.signal, timers, maxTicksBehind: 5 });
  let res: http.ServerResponse | undefined;
  const server = http.createServer((req, r) => {
    res = r;
    routes.get('/events')!(req, r);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  t.teardown(async () => {
    abort.abort();
    client.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  client.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
  // The client reads nothing from here on.
  client.pause();
  const settle = async (reads: number): Promise<void> => {
    for (let i = 0; i < 500 && source.reads < reads; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setImmediate(r));
  };
  await settle(2);
  let most = 0;
  for (let i = 0; i < 40 && !res!.destroyed; i++) {
    const before = source.reads;
    timers.tick();
    await settle(before + 1);
    most = Math.max(most, res!.writableLength);
  }
  t.true(most > 0, 'the stream did fall behind');
  t.true(most <= 2 * size + 1024, `at most two snapshots buffered: ${most} bytes for snapshots of ${size}`);
  t.true(res!.destroyed, 'the stream that stays behind is ended');
  t.is(timers.running.size, 0, 'and the ticker stops with it');
});

test('the page in headless Chromium shows the source\'s numbers and follows them live', async (t) => {
  const source = new FakeSource();
  const { url } = await serve(t, source, { eventIntervalMs: 200 });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  // Recorded by the page itself: a CSP refusal is an event there, whatever the console says.
  await page.addInitScript(() => {
    const w = globalThis as unknown as { cspViolations: string[]; document: { addEventListener(t: string, f: (e: { violatedDirective: string; blockedURI: string }) => void): void } };
    w.cspViolations = [];
    w.document.addEventListener('securitypolicyviolation', (e) => w.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const response = await page.goto(url);
  t.is(response?.headers()['content-security-policy'], "default-src 'self'");

  const cell = (scope: string, col: string) => page.locator(`${scope} [data-col="${col}"]`).first();
  const web = '[data-service="default/web"]';
  const textOf = async (scope: string, col: string): Promise<string> => (await cell(scope, col).textContent()) ?? '';
  const waitText = async (scope: string, col: string, want: string): Promise<void> => {
    await page.waitForFunction(([sel, w]) => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }).document.querySelector(sel!)?.textContent === w,
      [`${scope} [data-col="${col}"]`, want] as const, { timeout: 15_000 });
  };

  await waitText(web, 'packets', '1000');
  t.is(await textOf(web, 'bytes'), '100000');
  t.is(await textOf(web, 'conns'), '100');
  t.is(await textOf(web, 'connections'), '7');
  t.is(await textOf('[data-service="default/dns"]', 'packets'), '10');
  const be = (a: string): string => `${web} [data-backend="${a}"]`;
  t.is(await textOf(be('10.1.0.1'), 'packets'), '600');
  t.is(await textOf(be('10.1.0.1'), 'weight'), '3');
  t.is(await textOf(be('10.1.0.1'), 'health'), 'healthy');
  t.is(await textOf(be('10.1.0.2'), 'health'), 'unhealthy');
  t.is(await textOf(be('10.1.0.2'), 'state'), 'active → draining');
  t.regex(await cell(be('10.1.0.2'), 'health').getAttribute('title') ?? '', /failed .*ECONNREFUSED/);
  t.is(await textOf(be('10.1.0.3'), 'state'), 'maintenance');
  t.is(await textOf(be('10.1.0.3'), 'health'), 'unknown');
  t.is(await textOf('[data-service="default/dns"] [data-backend="10.1.0.1"]', 'health'), 'not checked', 'as `service get` and `top` say');
  t.is(await textOf('[data-service="default/dns"]', 'health'), 'not checked');
  t.is(await textOf(web, 'state'), '1/3 active');
  t.is(await textOf('[data-drop="no_backend"]', 'total'), '3');
  t.is(await textOf('[data-reject="tcp_rst"]', 'total'), '5');

  // The counters move: the page follows over SSE, with rates from the deltas.
  // A rate is above 0 for one snapshot only (the next has the same totals), so
  // the page records the highest it showed: a slow test must not miss it.
  await page.evaluate((scope) => {
    type El = { dataset: { value?: string } };
    const w = globalThis as unknown as {
      rateMax: Record<string, number>;
      document: { body: unknown; querySelector(s: string): El | null };
      MutationObserver: new (f: () => void) => { observe(n: unknown, o: object): void };
    };
    w.rateMax = { packets: 0, bytes: 0 };
    // Inline, not a named const: tsx would wrap a named function in a helper the page lacks.
    new w.MutationObserver(() => {
      for (const k of ['packets', 'bytes']) {
        const v = Number(w.document.querySelector(`${scope} [data-col="${k}-rate"]`)?.dataset.value);
        if (v > w.rateMax[k]!) w.rateMax[k] = v;
      }
    }).observe(w.document.body, { subtree: true, childList: true, attributes: true });
  }, web);
  source.web = 25_000;
  source.noBackend = 50;
  await waitText(web, 'packets', '25000');
  await waitText(be('10.1.0.1'), 'packets', '24600');
  await waitText('[data-drop="no_backend"]', 'total', '50');
  const rateMax = async (): Promise<Record<string, number>> => page.evaluate(() => (globalThis as unknown as { rateMax: Record<string, number> }).rateMax);
  await page.waitForFunction(() => (globalThis as unknown as { rateMax: Record<string, number> }).rateMax.packets! > 0, undefined, { timeout: 15_000 });
  t.true((await rateMax()).bytes! > 0, 'bytes/s moved too');
  t.is(await cell('[data-service="default/dns"]', 'packets-rate').getAttribute('data-value'), '0', 'a service without traffic: 0/s');
  // Keep traffic going a few snapshots, so the charts have lines.
  for (let i = 0; i < 4; i++) {
    source.web += 5000;
    await waitText(web, 'packets', String(source.web));
  }
  t.is(await page.locator('#chart-packets canvas').count(), 1, 'the packets/s chart draws');
  t.is(await page.locator('#chart-bytes canvas').count(), 1, 'the bytes/s chart draws');
  t.regex(await page.locator('#chart-packets .u-legend').textContent() ?? '', /default\/web/, 'with a series per service');
  t.is(await page.locator('#state').getAttribute('data-state'), 'live');

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'status-page.png'), fullPage: true });
  t.deepEqual(await page.evaluate(() => (globalThis as unknown as { cspViolations: string[] }).cspViolations), [], 'no CSP violation');
  t.deepEqual(problems, [], 'no console error, page error or failed request');
});

test('the page at 1024 px with many services: legends take their own space, nothing is wider than the window', async (t) => {
  const source = new FakeSource();
  source.extra = 8;
  const { url } = await serve(t, source, { eventIntervalMs: 200 });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1024, height: 800 } });
  await page.goto(url);
  // Lines in the charts: a few snapshots with traffic.
  for (let i = 0; i < 4; i++) {
    source.web += 1000;
    await page.waitForFunction((w) => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }).document
      .querySelector('[data-service="default/web"] [data-col="packets"]')?.textContent === w, String(source.web), { timeout: 15_000 });
  }
  await page.locator('#chart-bytes canvas').waitFor({ timeout: 15_000 });
  t.is(await page.locator('#chart-packets .u-legend .u-series').count(), 10, 'the time, "all" and 8 services in the legend');

  type Box = { x: number; y: number; width: number; height: number };
  const box = async (sel: string): Promise<Box> => {
    const b = await page.locator(sel).first().boundingBox();
    if (!b) throw new Error(`${sel} has no box`);
    return b;
  };
  const overlap = (a: Box, b: Box): boolean => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  const check = async (width: number): Promise<void> => {
    const legends = [await box('#chart-packets .u-legend'), await box('#chart-bytes .u-legend')];
    const others: Array<[string, Box]> = [
      ['the bytes/s chart', await box('#chart-bytes .u-wrap')],
      ['the bytes/s caption', await box('#charts figure:nth-child(2) figcaption')],
      ['the Services heading', await box('h2')],
      ['the services table header', await box('#services thead')],
    ];
    for (const [name, b] of others) t.false(overlap(legends[0]!, b), `${width} px: the packets/s legend overlaps ${name}`);
    for (const [name, b] of others.slice(2)) t.false(overlap(legends[1]!, b), `${width} px: the bytes/s legend overlaps ${name}`);
    for (const chart of ['#chart-packets', '#chart-bytes']) {
      const b = await box(`${chart} .uplot`);
      t.true(b.x >= 0 && b.x + b.width <= width, `${width} px: ${chart} spans ${b.x}..${b.x + b.width}`);
    }
    const scroll = await box('#services');
    t.true((await box('.scroll')).x + (await box('.scroll')).width <= width, `${width} px: the table's box fits the window (table ${scroll.width} px)`);
    t.true(await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement.scrollWidth
      <= (globalThis as unknown as { document: { documentElement: { clientWidth: number } } }).document.documentElement.clientWidth), `${width} px: the page does not scroll sideways`);
  };
  await check(1024);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'status-page-1024.png'), fullPage: true });

  // Narrower and wider: each chart follows its cell's width.
  const fitted = (): Promise<unknown> => page.waitForFunction(() => {
    const d = (globalThis as unknown as { document: { querySelector(s: string): { getBoundingClientRect(): { width: number } } } }).document;
    return ['packets', 'bytes'].every((k) => Math.abs(d.querySelector(`#chart-${k} .uplot`).getBoundingClientRect().width - d.querySelector(`#chart-${k}`).getBoundingClientRect().width) <= 1);
  }, undefined, { timeout: 15_000 });
  await fitted();
  const at1024 = (await box('#chart-packets .uplot')).width;
  for (const width of [600, 1400]) {
    await page.setViewportSize({ width, height: 900 });
    await fitted();
    t.not((await box('#chart-packets .uplot')).width, at1024, `${width} px: the chart was resized`);
    await check(width);
  }
});
