/**
 * Stage "conntrack-gc": what the daemon's conntrack work costs on a full
 * table: 2,000,000 entries (1,000,000 flows; quick: 200,000 entries), half
 * of them dead, written into a real conntrack map through the addon.
 *
 *  - The collector's full pass (ConntrackGc.collect, unpaced): wall and CPU
 *    time, and its share of one CPU at the default interval (CPU time ÷
 *    interval: a paced pass does the same work spread over the interval).
 *    The baseline, measured in the same run on the same table, is a bare
 *    walk (Dataplane.readConntrack over the table, nothing decided).
 *  - A paged scrape of the table through the API (ListConnections over a
 *    unix socket, 1,000 a page, as `sluice conntrack list` pages), before
 *    the collection: client and server in this process, so its CPU time
 *    is both sides'.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { connect } from '../../src/api/client.js';
import { startApiServer } from '../../src/api/server.js';
import { CT_FORWARD, CT_REPLY, encodeConntrackKey, encodeConntrackValue } from '../../src/dataplane/codec.js';
import type { ConntrackCursor } from '../../src/dataplane/dataplane.js';
import { NativeDataplane } from '../../src/dataplane/native-dataplane.js';
import { buildControlPlane } from '../../src/node/control-plane.js';
import { ConntrackGc, GC_INTERVAL_DEFAULT_S } from '../../src/node/conntrack-gc.js';
import { MemoryKvStore } from '../../src/store/memory-kv.js';
import { round } from '../lib/figures.js';
import type { Stage, StageContext, StageResult } from '../lib/types.js';

const TITLE = 'Conntrack collection and listing on a full table';

const nowS = (): number => Number(process.hrtime.bigint() / 1_000_000_000n);

/** Fill `dp`'s conntrack with `flows` flows (two entries each), every other one dead. */
function fill(dp: NativeDataplane, flows: number): void {
  const now = nowS();
  const CHUNK = 50_000;
  for (let base = 0; base < flows; base += CHUNK) {
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    for (let i = base; i < Math.min(flows, base + CHUNK); i++) {
      const client = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const backend = `10.200.${(i >> 8) & 15}.${1 + (i & 127)}`;
      const sport = 1024 + (i % 60_000);
      const expires = i % 2 === 0 ? now - 30 : now + 3600;
      const common = { backendId: 1 + (i % 4000), serviceId: 1 + (i % 16), state: 'established' as const, created: now - 100, expires };
      keys.push(
        encodeConntrackKey({ saddr: client, daddr: `10.96.0.${10 + (i % 16)}`, sport, dport: 80, protocol: 'tcp' }),
        encodeConntrackKey({ saddr: backend, daddr: client, sport: 8080, dport: sport, protocol: 'tcp' }),
      );
      values.push(
        encodeConntrackValue({ ...common, dir: CT_FORWARD, natAddress: backend, natPort: 8080 }),
        encodeConntrackValue({ ...common, dir: CT_REPLY, natAddress: `10.96.0.${10 + (i % 16)}`, natPort: 80 }),
      );
    }
    dp.raw.mapUpdateBatch('conntrack', Buffer.concat(keys), Buffer.concat(values));
  }
}

/** A full V8 collection now, so that the garbage of the fill and the scrape is not charged to what follows. */
function settle(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** A bare walk over the table: wall and CPU ms, entries. */
function walk(dp: NativeDataplane): { entries: number; wallMs: number; cpuMs: number } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let at: ConntrackCursor | null = null;
  let entries = 0;
  do {
    const { rows, next } = dp.readConntrack(at, 1024);
    entries += rows.count;
    at = next;
  } while (at !== null);
  const c = process.cpuUsage(c0);
  return { entries, wallMs: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 };
}

export async function measureConntrackGc(ctx: Pick<StageContext, 'quick' | 'progress' | 'log' | 'onCleanup'>): Promise<StageResult> {
  const t0 = performance.now();
  const flows = ctx.quick ? 100_000 : 1_000_000;
  // Room to spare: an LRU hash evicts before it is full (per-CPU free lists).
  const capacity = ctx.quick ? 262_144 : 2_621_440;
  ctx.progress(0, 4, `fill ${(2 * flows).toLocaleString('en-US')} entries`);
  const dp = await NativeDataplane.open({ fibRedirect: false, capacity: { conntrack: capacity, maglevSlots: 262_144 } });
  const undoDp = ctx.onCleanup(() => dp.close());
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-bench-ct-'));
  const undoDir = ctx.onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  try {
    fill(dp, flows);
    const before = walk(dp);
    ctx.log(`conntrack-gc: ${before.entries} entries in the table (${2 * flows} written)`);

    // The API's paged scrape, over the full table.
    ctx.progress(1, 4, 'ListConnections scrape');
    const store = new MemoryKvStore();
    const plane = await buildControlPlane({ store, dataplane: dp });
    const server = await startApiServer({ plane, listen: `unix://${path.join(dir, 'api.sock')}` });
    const client = connect(server.address);
    let listed = 0;
    let pages = 0;
    const s0 = performance.now();
    const sc0 = process.cpuUsage();
    try {
      let pageToken = '';
      do {
        const page = await client.listConnections({ pageSize: 1000, pageToken });
        listed += page.connections.length;
        pages++;
        pageToken = page.nextPageToken;
      } while (pageToken);
    } finally {
      client.close();
      await server.close();
      plane.close();
      await store.close();
    }
    const scrapeCpu = process.cpuUsage(sc0);
    const scrapeMs = performance.now() - s0;

    ctx.progress(2, 4, 'bare walk (baseline)');
    settle();
    const bare = walk(dp);
    ctx.progress(3, 4, 'collector pass');
    settle();
    const gc = new ConntrackGc({ dataplane: dp, tableSize: capacity });
    const pass = await gc.collect();
    const after = walk(dp);
    const intervalMs = GC_INTERVAL_DEFAULT_S * 1000;
    const share = pass.cpuMs / intervalMs;
    const rows = [
      ['bare walk (baseline)', bare.entries, round(bare.wallMs, 0), round(bare.cpuMs, 0), round((bare.cpuMs * 1e6) / Math.max(1, bare.entries), 0), '-'],
      ['collector pass', pass.entries, round(pass.wallMs, 0), round(pass.cpuMs, 0), round((pass.cpuMs * 1e6) / Math.max(1, pass.entries), 0), `${round(100 * share, 2)} %`],
    ];
    return {
      id: 'conntrack-gc',
      title: TITLE,
      method: [
        `${(2 * flows).toLocaleString('en-US')} entries (${flows.toLocaleString('en-US')} TCP flows, forward and reply) written into a real conntrack map of ${capacity.toLocaleString('en-US')} through the addon, every other flow dead (expired 30 s ago), the rest alive for an hour.`,
        'The collector\'s pass unpaced (the daemon spreads the same work over its interval): each dead entry is looked up again, its flow\'s other entry looked up, and both deleted in one call. Its CPU share of one core is its CPU time ÷ the default interval. The baseline is a bare walk of the same table in batches of 1,024.',
        'The scrape pages through ListConnections over a unix socket, 1,000 connections a page, as `sluice conntrack list` does; client and server share this process, so its CPU time is both sides\'.',
      ],
      tables: [
        {
          title: 'Collector pass',
          columns: ['work', 'entries read', 'wall ms', 'CPU ms', 'CPU ns/entry', `CPU share at ${GC_INTERVAL_DEFAULT_S} s`],
          rows,
          notes: [
            `deleted ${pass.deleted.toLocaleString('en-US')} entries (${pass.expired.established.toLocaleString('en-US')} flows expired, ${pass.orphanedReplies} orphaned replies, ${pass.raced} raced); ${after.entries.toLocaleString('en-US')} left.`,
            `collector ÷ bare walk: ${round(pass.cpuMs / Math.max(1e-9, bare.cpuMs), 1)} × the CPU time.`,
          ],
        },
        {
          title: 'ListConnections scrape (API, paged)',
          columns: ['connections', 'pages', 'wall s', 'CPU s', 'connections/s'],
          rows: [[listed, pages, round(scrapeMs / 1000, 2), round((scrapeCpu.user + scrapeCpu.system) / 1e6, 2), Math.round(listed / (scrapeMs / 1000))]],
          notes: [`Live flows only, one per flow (${(flows / 2).toLocaleString('en-US')} of the ${flows.toLocaleString('en-US')} in the table): the listing reads every entry and leaves the dead out.`],
        },
      ],
      charts: [{
        id: 'conntrack-gc-cpu',
        title: `CPU time over ${before.entries.toLocaleString('en-US')} entries`,
        unit: 'ms',
        bars: [
          { label: 'bare walk', value: round(bare.cpuMs, 0), reference: true },
          { label: 'collector pass', value: round(pass.cpuMs, 0) },
          { label: 'ListConnections scrape', value: round((scrapeCpu.user + scrapeCpu.system) / 1000, 0) },
        ],
      }],
      targets: [{
        what: 'collector CPU share of one core, full table, default interval',
        target: '≤ 5 %',
        measured: `${round(100 * share, 2)} %`,
        met: share <= 0.05,
      }],
      seconds: (performance.now() - t0) / 1000,
      raw: { flows, capacity, before, bare, pass, after, scrape: { listed, pages, wallMs: scrapeMs, cpu: scrapeCpu }, intervalMs },
    };
  } finally {
    dp.close();
    undoDp();
    rmSync(dir, { recursive: true, force: true });
    undoDir();
  }
}

export const conntrackGcStage: Stage = {
  id: 'conntrack-gc',
  title: TITLE,
  quickBudgetSeconds: 30,
  run: (ctx) => measureConntrackGc(ctx),
};
