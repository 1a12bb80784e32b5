import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, test } from 'vitest';
import { checkAuditAnchors, fileAnchorStore, readAnchorKey } from '../../db/audit-anchors';
import { AUDIT_ANCHOR_SCHEDULE_ID } from '../../domain/workflow-ids';
import { ensureAuditAnchorSchedule } from '../../workers/schedules';
import { eventually, freshDatabase, startWorker, type TestWorker } from '../helpers/stack';

// Issue 14, item 2: besides each close, a Temporal Schedule anchors the audit chains outside the
// database on its own (workflows/audit-anchor.ts): a checkpoint lands in the anchor store, signed,
// and loyalty verify's anchor check reads it back clean.
const anchorDir = mkdtempSync(join(tmpdir(), 'loyalty-anchor-schedule-'));
process.env.LOYALTY_AUDIT_ANCHOR_DIR = join(anchorDir, 'anchors');
process.env.LOYALTY_AUDIT_ANCHOR_KEY_FILE = join(anchorDir, 'key.pem');

let db: Awaited<ReturnType<typeof freshDatabase>>;
let worker: TestWorker;

beforeAll(async () => {
  db = await freshDatabase();
  worker = await startWorker(db.pool);
});
afterAll(async () => {
  await worker.stop();
  await db.drop();
  rmSync(anchorDir, { recursive: true, force: true });
});

test('the audit anchor Schedule: created once; a triggered run writes a signed checkpoint that verify reads back', async () => {
  const database = (await db.pool.query<{ d: string }>('select current_database() as d')).rows[0]!.d;
  const store = fileAnchorStore(process.env.LOYALTY_AUDIT_ANCHOR_DIR!);
  assert.deepEqual(await store.read(database), [], 'no anchor before the schedule runs');
  assert.equal(
    await ensureAuditAnchorSchedule(worker.client, { taskQueue: worker.taskQueue, everyMinutes: 60 }),
    'created',
  );
  const handle = worker.client.schedule.getHandle(AUDIT_ANCHOR_SCHEDULE_ID);
  try {
    assert.equal(
      await ensureAuditAnchorSchedule(worker.client, { taskQueue: worker.taskQueue, everyMinutes: 60 }),
      'exists',
    );
    await assert.rejects(ensureAuditAnchorSchedule(worker.client, { taskQueue: worker.taskQueue, everyMinutes: 0 }));
    await handle.trigger();
    const action = await eventually(
      'a run started by the schedule',
      async () => (await handle.describe()).info.recentActions[0],
    );
    const written = await worker.client.workflow.getHandle(action.action.workflow.workflowId).result();
    assert.equal(written?.database, database);
    const lines = await store.read(database);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /"label":"schedule:audit-anchor:scheduled/);
    const check = await checkAuditAnchors(db.pool, {
      store,
      key: readAnchorKey(process.env.LOYALTY_AUDIT_ANCHOR_KEY_FILE!),
    });
    assert.deepEqual([check.checkpoints, check.badSignatures, check.problems], [1, [], []], JSON.stringify(check));
  } finally {
    await handle.delete();
  }
});
