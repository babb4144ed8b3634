/**
 * Apply reconciler operations to a Dataplane, in order, batching runs of
 * backend, table, service, VIP and reply_nat writes (one system call, or one mapping
 * of the table array, per run), and keep a mirror of
 * what the maps hold (`current`) exact: an operation is recorded only once
 * it succeeded, so after a failure the mirror still tells the truth.
 */
import type { Dataplane } from '../dataplane/dataplane.js';
import { BackendTable } from './backend-table.js';
import { ReplyTable } from './reply-table.js';
import { digestTable, keyString, type DataplaneState, type Operation, type TableImage } from './reconcile.js';

/** Thrown when an operation fails; `applied` operations before it took effect. */
export class ApplyError extends Error {
  constructor(
    readonly operation: Operation,
    readonly applied: number,
    cause: unknown,
  ) {
    super(`${operation.op} failed after ${applied} operations: ${(cause as Error).message}`, { cause });
    this.name = 'ApplyError';
  }
}

type OpOf<K extends Operation['op']> = Extract<Operation, { op: K }>;

/** The run of consecutive operations of the same kind as ops[i], from i on. */
function runOf<K extends Operation['op']>(ops: readonly Operation[], i: number, kind: K): Array<OpOf<K>> {
  let j = i;
  while (j < ops.length && ops[j]!.op === kind) j++;
  return ops.slice(i, j) as Array<OpOf<K>>;
}

/** Apply `ops` in order; on success `current` equals the state they lead to. */
export async function applyOperations(dp: Dataplane, ops: readonly Operation[], current: DataplaneState): Promise<void> {
  let i = 0;
  while (i < ops.length) {
    const op = ops[i]!;
    try {
      // Writes come in runs of one kind (reconcile orders them so): each
      // run is one batch.
      switch (op.op) {
        case 'putBackend': {
          const run = runOf(ops, i, op.op);
          dp.putBackends(run.map((o) => [o.id, o.value] as const));
          for (const o of run) current.backends.set(o.id, o.value);
          i += run.length;
          continue;
        }
        case 'putService': {
          const run = runOf(ops, i, op.op);
          dp.putServices(run.map((o) => ({ key: o.key, value: o.value })));
          for (const o of run) current.services.set(keyString(o.key), { key: o.key, value: o.value });
          i += run.length;
          continue;
        }
        case 'writeTable': {
          const run = runOf(ops, i, op.op);
          dp.writeTables(run);
          for (const o of run) current.tables.set(o.base, digestTable(o.table));
          i += run.length;
          continue;
        }
        case 'putVip': {
          const run = runOf(ops, i, op.op);
          dp.putVips(run);
          for (const o of run) current.vips.set(o.address, o.services);
          i += run.length;
          continue;
        }
        case 'putReply': {
          const run = runOf(ops, i, op.op);
          dp.putReplies(run.map((o) => [o.endpoint, o.backendId] as const));
          for (const o of run) current.replies.set(o.endpoint, o.backendId);
          i += run.length;
          continue;
        }
        case 'deleteReply':
          dp.deleteReply(op.endpoint);
          current.replies.delete(op.endpoint);
          break;
        case 'deleteService':
          dp.deleteService(op.key);
          current.services.delete(keyString(op.key));
          break;
        case 'deleteVip':
          dp.deleteVip(op.address);
          current.vips.delete(op.address);
          break;
        case 'releaseTable':
          current.tables.delete(op.base);
          break;
        case 'deleteBackend':
          dp.deleteBackend(op.id);
          current.backends.delete(op.id);
          break;
      }
      i++;
    } catch (err) {
      throw new ApplyError(op, i, err);
    }
  }
}

/** Read what the maps hold now (adopting a running dataplane). */
export function readState(dp: Dataplane): DataplaneState {
  const services = new Map<string, { key: import('../dataplane/codec.js').ServiceKey; value: import('../dataplane/codec.js').ServiceValue }>();
  const tables = new Map<number, TableImage>();
  for (const e of dp.listServices()) {
    services.set(keyString(e.key), e);
    const { tableBase, tableSize } = e.value;
    if (tableSize > 0 && !tables.has(tableBase) && tableBase + tableSize <= dp.tableCapacity()) {
      tables.set(tableBase, digestTable(dp.readTable(tableBase, tableSize)));
    }
  }
  const vips = new Map<string, number>();
  for (const a of dp.listVips()) vips.set(a, 0);
  // The count stored in the map is informational; take the real one.
  for (const { key } of services.values()) if (vips.has(key.address)) vips.set(key.address, (vips.get(key.address) ?? 0) + 1);
  return { services, backends: BackendTable.from(dp.listBackends()), tables, vips, replies: ReplyTable.from(dp.listReplies()) };
}
