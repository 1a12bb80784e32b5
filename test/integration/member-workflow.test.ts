import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { Pool } from 'pg';
import { verifyInvariants } from '../../db/verify';
import { memberWorkflowId } from '../../domain/workflow-ids';
import { memberLifecycle, wakeSignal } from '../../workflows/member';
import {
  eventually,
  freshDatabase,
  httpClient,
  programBody,
  recordHistory,
  startApi,
  startWorker,
  uniqueId,
  type TestApi,
  type TestWorker,
} from '../helpers/stack';

// Purchase protection end to end: real API, real PostgreSQL, real worker on the Temporal dev server,
// with windows of a few seconds.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let api: TestApi;
let call: ReturnType<typeof httpClient>;
let worker: TestWorker;

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  api = await startApi(pool);
  call = httpClient(api);
  worker = await startWorker(pool);
});

afterAll(async () => {
  const result = await verifyInvariants(pool);
  await worker.stop();
  await api.close();
  await db.drop();
  assert.deepEqual(result.violations, []);
});

async function newProgram(expiry: Record<string, unknown>) {
  const programId = uniqueId('wf');
  const res = await call('POST', '/v1/programs', { body: programBody(programId, { expiry }) });
  assert.equal(res.status, 201);
  return programId;
}

const accrue = (programId: string, memberId: string, invoiceId: string, amountMinor: number) =>
  call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    body: { memberId, invoiceId, amountMinor, occurredAt: new Date().toISOString() },
  });

const member = async (programId: string, memberId: string) =>
  (await call('GET', `/v1/programs/${programId}/members/${memberId}`, { role: 'support' })).body;

const ledger = async (programId: string, memberId: string) =>
  (await call('GET', `/v1/programs/${programId}/members/${memberId}/ledger`, { role: 'support' })).body
    .entries as Array<{ type: string; points: number; occurredAt: string }>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('member workflow (dev server, second-long windows)', () => {
  test('every purchase resets the deadline; expiry then takes exactly the remaining balance', async () => {
    const programId = await newProgram({ policy: 'rolling', window: 'PT4S' });
    const first = await accrue(programId, 'm-1', 'inv-1', 10_000);
    assert.equal(first.status, 201);
    const handle = worker.client.workflow.getHandle(memberWorkflowId(programId, 'm-1'));
    await eventually(
      'workflow started',
      async () => (await handle.describe().catch(() => null))?.status.name === 'RUNNING',
    );
    await sleep(2500);
    const second = await accrue(programId, 'm-1', 'inv-2', 5_000);
    assert.equal(second.body.balance, 150);
    await sleep(2500); // past the first deadline, inside the second
    assert.equal((await member(programId, 'm-1')).balance, 150, 'the second purchase protected the points');
    await eventually('points expired', async () => (await member(programId, 'm-1')).balance === 0, 15_000);
    const entries = await ledger(programId, 'm-1');
    assert.deepEqual(
      entries.map((e) => [e.type, e.points]),
      [
        ['earn', 100],
        ['earn', 50],
        ['expire', -150],
      ],
    );
    assert.equal(entries[2]!.occurredAt, second.body.expiresAt, 'expiry happens at the deadline, in business time');
    const desc = await handle.describe();
    assert.equal(desc.status.name, 'RUNNING', 'the workflow stays, idle, for the next purchase');
    assert.equal(desc.searchAttributes.LoyaltyProgramId?.[0], programId);
    assert.equal(desc.searchAttributes.LoyaltyMemberId?.[0], 'm-1');
    // a new purchase after expiry wakes the idle workflow and arms a new deadline
    await accrue(programId, 'm-1', 'inv-3', 2_000);
    await eventually(
      'second expiry',
      async () => (await member(programId, 'm-1')).balance === 0 && (await ledger(programId, 'm-1')).length === 5,
      15_000,
    );
    await recordHistory(worker.client, handle.workflowId, 'member-purchase-expiry-wake');
  });

  test('a merge ends the merged workflow with status merged; expiry of the survivor never goes negative', async () => {
    const programId = await newProgram({ policy: 'rolling', window: 'PT5S' });
    await accrue(programId, 'm-a', 'a', 10_000);
    await accrue(programId, 'm-b', 'b', 7_000);
    const handleB = worker.client.workflow.getHandle(memberWorkflowId(programId, 'm-b'));
    await eventually(
      'm-b workflow',
      async () => (await handleB.describe().catch(() => null))?.status.name === 'RUNNING',
    );
    const merge = await call('POST', `/v1/programs/${programId}/members/m-b/merge`, {
      role: 'support',
      body: { intoMemberId: 'm-a' },
    });
    assert.equal(merge.status, 201);
    assert.deepEqual(await handleB.result(), { status: 'merged', mergedInto: 'm-a' });
    await recordHistory(worker.client, handleB.workflowId, 'member-merged');
    await eventually('survivor expired', async () => (await member(programId, 'm-a')).balance === 0, 15_000);
    const entries = await ledger(programId, 'm-a');
    assert.deepEqual(
      entries.map((e) => [e.type, e.points]),
      [
        ['earn', 100],
        ['merge_in', 70],
        ['expire', -170],
      ],
    );
    // Purchases that arrive later for m-b land on m-a, whose workflow is still there.
    const later = await accrue(programId, 'm-b', 'c', 1_000);
    assert.equal(later.body.memberId, 'm-a');
  });

  test('policy none: the workflow idles and nothing expires', async () => {
    const programId = await newProgram({ policy: 'none' });
    await accrue(programId, 'm-n', 'n', 10_000);
    const handle = worker.client.workflow.getHandle(memberWorkflowId(programId, 'm-n'));
    await eventually('armed', async () => {
      const { rows } = await pool.query(`select 1 from member_wakeups where program_id = $1`, [programId]);
      return rows.length === 0 && (await handle.describe().catch(() => null))?.status.name === 'RUNNING';
    });
    await sleep(3000);
    assert.equal((await member(programId, 'm-n')).balance, 100);
  });

  test('continue-as-new keeps the history bounded', async () => {
    const programId = await newProgram({ policy: 'none' });
    await pool.query(`insert into members (program_id, member_id) values ($1, 'm-can')`, [programId]);
    const handle = await worker.client.workflow.start(memberLifecycle, {
      workflowId: memberWorkflowId(programId, 'm-can'),
      taskQueue: worker.taskQueue,
      args: [{ programId, memberId: 'm-can', maxRoundsPerRun: 2 }],
    });
    for (let i = 0; i < 3; i++) {
      await handle.signal(wakeSignal);
      await sleep(300);
    }
    const firstRun = worker.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
    const history = await firstRun.fetchHistory();
    const last = history.events?.[history.events.length - 1];
    assert.ok(last?.workflowExecutionContinuedAsNewEventAttributes, 'the first run ended in continue-as-new');
    const current = await worker.client.workflow.getHandle(handle.workflowId).describe();
    assert.notEqual(current.runId, handle.firstExecutionRunId);
    assert.equal(current.status.name, 'RUNNING');
  });

  test('the Temporal UI finds a member by search attributes', async () => {
    const programId = await newProgram({ policy: 'rolling', window: 'P365D' });
    await accrue(programId, 'm-s', 's', 10_000);
    const found = await eventually('visible in search', async () => {
      const ids: string[] = [];
      for await (const wf of worker.client.workflow.list({
        query: `LoyaltyProgramId = '${programId}' AND LoyaltyMemberId = 'm-s'`,
      }))
        ids.push(wf.workflowId);
      return ids.length > 0 ? ids : null;
    });
    assert.deepEqual(found, [memberWorkflowId(programId, 'm-s')]);
  });
});
