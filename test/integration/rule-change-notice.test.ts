import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, test } from 'vitest';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Pool } from 'pg';
import { createRuleChangeActivities } from '../../activities/rule-change';
import { recordDecisionRequest } from '../../db/approval-requests';
import { putKey, type Role } from '../../db/keys';
import { temporalTestServerPath } from '../../cli/stack/binaries';
import { decideRuleChangeUpdate, ruleChange, ruleChangeStateQuery } from '../../workflows/rule-change';
import { addDuration } from '../../domain/duration';
import { eventually, freshDatabase, programBody, recordHistory, uniqueId } from '../helpers/stack';

// Long timers on the Java time-skipping test server: the decision window (a reminder halfway, then
// expiry) and a 30-day notice period (an approved change adverse to members, a shorter expiry
// window, takes effect 30 days after its approval, not at its effective instant).
const DAY = 86_400_000;
let env: TestWorkflowEnvironment;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;

beforeAll(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: temporalTestServerPath() } },
  });
  db = await freshDatabase();
  pool = db.pool;
});
afterAll(async () => {
  await db?.drop();
  await env?.teardown();
});

// The notice period and the approvers are the base version's (the workflow reads them there).
async function proposed(programId: string, changeId: string, noticePeriod = 'P30D') {
  const {
    programId: _p,
    name: _n,
    currency: _c,
    ...rules
  } = programBody(programId, {
    ruleChanges: { requiredRoles: ['finance', 'legal'], noticePeriod },
  });
  await pool.query(
    `insert into programs (program_id, name, currency, currency_digits, created_by) values ($1, 'Notice', 'USD', 2, 'test')`,
    [programId],
  );
  await pool.query(
    `insert into program_rule_versions (program_id, version, effective_at, rules, created_by) values ($1, 1, now() - interval '1 day', $2, 'test')`,
    [programId, JSON.stringify(rules)],
  );
  const lower = { ...rules, expiry: { policy: 'rolling', window: 'P200D' } }; // the window shrinks: adverse
  await pool.query(
    `insert into rule_changes (program_id, change_id, proposed_by, base_version, rules, effective_at, status) values ($1, $2, 'olga', 1, $3, now(), 'assessing')`,
    [programId, changeId, JSON.stringify(lower)],
  );
}

/**
 * A decision as the API asks for it (issue 14, item 1): a decision request of `by`'s key, whose id is
 * all the workflow takes.
 */
async function decision(programId: string, by: string, role: Role) {
  await putKey(pool, {
    keyId: `key-${programId}-${by}`,
    secret: `secret-${programId}-${by}`,
    principal: by,
    roles: [role],
  });
  const requestId = await recordDecisionRequest(
    pool,
    { keyId: `key-${programId}-${by}`, name: by, kind: 'person', roles: [role], programs: null },
    {
      kind: 'rule_change_decision',
      programId,
      subject: 'c',
      workflowId: `rule-change:${programId}:c`,
      decision: 'approve',
      comment: null,
    },
  );
  return { args: [{ requestId }] as [{ requestId: string }] };
}

const testWorker = (taskQueue: string) =>
  Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    activities: createRuleChangeActivities(pool),
    workflowBundle: { code: readFileSync(process.env.LOYALTY_TEST_WORKFLOW_BUNDLE!, 'utf8') },
  });

/** The change proposed by olga, started now, approved by finance (fred): legal is still awaited. */
async function financeApproved(programId: string, taskQueue: string, noticePeriod = 'P30D') {
  const start = await env.currentTimeMs();
  const handle = await env.client.workflow.start(ruleChange, {
    workflowId: `rule-change:${programId}:c`,
    taskQueue,
    args: [
      {
        programId,
        changeId: 'c',
        proposedBy: 'olga',
        effectiveAt: new Date(start).toISOString(),
        requiredRoles: ['finance', 'legal'],
        noticePeriod,
        decideWithin: 'P14D',
      },
    ],
  });
  await eventually(
    'awaiting approvals',
    async () => (await handle.query(ruleChangeStateQuery)).status === 'awaiting_approvals',
  );
  await handle.executeUpdate(decideRuleChangeUpdate, await decision(programId, 'fred', 'finance'));
  return { start, handle };
}

test('no decision in 14 days: a reminder to the role still awaited at day 7, then the change expires', async () => {
  const programId = uniqueId('remind');
  await proposed(programId, 'c');
  const taskQueue = uniqueId('tq');
  const worker = await testWorker(taskQueue);
  await worker.runUntil(async () => {
    const { start, handle } = await financeApproved(programId, taskQueue);
    const done = await handle.result(); // the server skips the 14 days
    assert.equal(done.status, 'expired');
    const remindedAt = Date.parse(done.remindedAt!);
    assert.ok(
      remindedAt - start >= 7 * DAY && remindedAt - start < 8 * DAY,
      `the reminder at half the window: ${done.remindedAt}`,
    );
    assert.ok((await env.currentTimeMs()) - start >= 14 * DAY, 'expired only at the end of the window');
    const { rows: sent } = await pool.query(
      'select kind, recipients, message from notifications where program_id = $1',
      [programId],
    );
    assert.equal(sent.length, 1, 'one reminder');
    assert.equal(sent[0].kind, 'rule_change_reminder');
    assert.deepEqual(sent[0].recipients, ['legal'], 'only the role still awaited');
    assert.match(sent[0].message, /awaits the approval of legal/);
    const {
      rows: [c],
    } = await pool.query('select status, reminded_at from rule_changes where program_id = $1', [programId]);
    assert.equal(c.status, 'expired');
    assert.ok(c.reminded_at, 'the change records when the reminder went out');
    const { rows: versions } = await pool.query('select version from program_rule_versions where program_id = $1', [
      programId,
    ]);
    assert.equal(versions.length, 1, 'an expired change activates nothing');
  });
});

test('an adverse change approved today takes effect after the 30-day notice, by a durable timer', async () => {
  const programId = uniqueId('notice');
  await proposed(programId, 'c');
  const taskQueue = uniqueId('tq');
  const worker = await testWorker(taskQueue);
  await worker.runUntil(async () => {
    const { start, handle } = await financeApproved(programId, taskQueue);
    const scheduled = await handle.executeUpdate(decideRuleChangeUpdate, await decision(programId, 'lena', 'legal'));
    assert.equal(scheduled.status, 'scheduled');
    const activatesAt = Date.parse(scheduled.activatesAt!);
    assert.ok(activatesAt - start >= 30 * DAY, `not before the notice: ${scheduled.activatesAt}`);
    const done = await handle.result(); // the server skips the 30 days
    assert.equal(done.status, 'active');
    assert.ok((await env.currentTimeMs()) >= activatesAt, 'it took effect only once the notice had passed');
    const { rows } = await pool.query(
      `select version, rules->'expiry'->>'window' as w from program_rule_versions where program_id = $1 order by version`,
      [programId],
    );
    assert.deepEqual(
      rows.map((r) => [r.version, r.w]),
      [
        [1, 'P365D'],
        [2, 'P200D'],
      ],
    );
  });
});

test('a notice period in months is calendar months (P12M is a year after the approval, not 360 days); its history replays', async () => {
  const programId = uniqueId('notice-months');
  await proposed(programId, 'c', 'P12M');
  const taskQueue = uniqueId('tq');
  const worker = await testWorker(taskQueue);
  await worker.runUntil(async () => {
    const { handle } = await financeApproved(programId, taskQueue, 'P12M');
    const before = await env.currentTimeMs();
    const scheduled = await handle.executeUpdate(decideRuleChangeUpdate, await decision(programId, 'lena', 'legal'));
    const after = await env.currentTimeMs();
    const activatesAt = Date.parse(scheduled.activatesAt!);
    // approved between `before` and `after`: a year later by the calendar (365 or 366 days), where
    // twelve 30-day months would be 360
    assert.ok(
      activatesAt >= addDuration(before, 'P12M') && activatesAt <= addDuration(after, 'P12M'),
      scheduled.activatesAt!,
    );
    assert.ok(activatesAt - after >= 365 * DAY - 1000, `not 360 days: ${scheduled.activatesAt}`);
    assert.equal((await handle.result()).status, 'active');
    await recordHistory(env.client, handle.workflowId, 'rule-change-notice-calendar-months');
  });
});
