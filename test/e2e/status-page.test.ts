/**
 * The status page of a real daemon attached in the lab, in headless
 * Chromium: it is served on the metrics address beside /metrics, shows a
 * service's packets exactly as GetStats counts them before and after real
 * traffic, its backends' health as the checker sees it, and draws its
 * charts. A screenshot is kept in test/artifacts/status-page-daemon.png.
 */
import test from 'ava';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startLab } from '../../src/demo/lab.js';
import { DEMO_HTTP_PORT, DEMO_VIP } from '../../src/demo/services.js';
import { freePort, lbInterfaceFlags } from '../../src/demo/topology.js';
import { testDaemon } from '../helpers/daemon.js';

const ARTIFACTS = path.resolve(import.meta.dirname, '../artifacts');

/** The `data-value` of the first cell `col` under `scope`, once the page has one. */
function valueOf(scope: string, col: string): string {
  return `${scope} [data-col="${col}"]`;
}

test('the daemon\'s status page shows what GetStats says and follows traffic', async (t) => {
  const tag = `sp${process.pid.toString(36)}`.slice(0, 8);
  const lab = await startLab(tag);
  t.teardown(() => lab.destroy());
  const { topo, client } = lab;
  const port = await freePort();
  const ifaces = lbInterfaceFlags(topo);
  const daemon = await testDaemon(t, 'status-page', [...ifaces, '--mode', 'xdp', '--metrics-bind-address', `127.0.0.1:${port}`]);
  await daemon.start();
  const api = daemon.client();
  t.teardown(() => api.close());
  await api.applyService({
    name: 'default/web',
    addresses: [DEMO_VIP],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: DEMO_HTTP_PORT }],
    backends: topo.backends.map((b) => ({ address: b.address })),
    healthCheck: { type: 'TCP', intervalMs: 200, rise: 1, fall: 2 },
  });

  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  const response = await page.goto(`http://127.0.0.1:${port}/`);
  t.is(response?.status(), 200);
  t.is(response?.headers()['content-security-policy'], "default-src 'self'");

  const web = '[data-service="default/web"]';
  /** Wait until the page's packet count for the service equals `want`. */
  const pageShows = (want: string) =>
    page.waitForFunction(([sel, w]) => (globalThis as unknown as { document: { querySelector(s: string): { dataset: { value?: string } } | null } }).document.querySelector(sel!)?.dataset.value === w,
      [valueOf(web, 'packets'), want] as const, { timeout: 30_000 });
  const apiPackets = async () => String((await api.getStats('default/web')).services[0]!.counters!.packets);

  // Nothing has gone through yet: both say 0.
  t.is(await apiPackets(), '0');
  await pageShows('0');

  // Every backend turns healthy on the page once its first probe passes (rise 1).
  for (const b of topo.backends) {
    await page.waitForFunction((sel) => /healthy/.test((globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }).document.querySelector(sel)?.textContent ?? ''),
      `${web} [data-backend="${b.address}"] [data-col="health"]`, { timeout: 30_000 });
  }

  // Real connections through the VIP; once they are done, the page catches up with GetStats exactly.
  const r = await client.http(`http://${DEMO_VIP}/`, 60, 4);
  t.is(r.ok, 60, `every request answered: ${r.errors.join('; ')}`);
  const after = await apiPackets();
  t.true(Number(after) > 0, 'GetStats counted the traffic');
  await pageShows(after);
  t.is(await page.locator(`${web} [data-backend]`).count(), topo.backends.length, 'a row per backend');

  t.is(await page.locator('#chart-packets canvas').count(), 1, 'the packets/s chart draws');
  t.is(await page.locator('#chart-bytes canvas').count(), 1, 'the bytes/s chart draws');
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'status-page-daemon.png'), fullPage: true });
  t.deepEqual(problems, [], 'no page or console error');

  // /metrics is still served beside the page.
  const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
  t.is(metrics.status, 200);
  t.regex(await metrics.text(), new RegExp(`^sluice_service_packets_total\\{service="default/web"\\} ${after}$`, 'm'));
});
