import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { Client, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Pool } from 'pg';
import { billingClient } from '../../activities/services/billing';
import { recordDecisionRequest, type DecisionRequest } from '../../db/approval-requests';
import { claimNaturalKey } from '../../db/idempotency';
import { createKey, ensurePrincipal, revokeKey, type Role } from '../../db/keys';
import { startSimulators, type RunningSimulators } from '../../simulators';
import { AesGcmCodec, newKeyFile } from '../../temporal/codec';
import { adjustmentApproval, decideUpdate } from '../../workflows/adjustment';
import { approveUpdate } from '../../workflows/close';
import {
  chargebackSignal,
  outcomeUpdate,
  redemptionSaga,
  stateQuery,
  type RedemptionInput,
} from '../../workflows/redemption';
import { decideRuleChangeUpdate, ruleChange, ruleChangeStateQuery, withdrawSignal } from '../../workflows/rule-change';
import {
  eventually,
  freshDatabase,
  httpClient,
  causeMessages,
  programBody,
  ruleChangeRules,
  recordHistory,
  startApi,
  startWorker,
  uniqueId,
  type TestApi,
  type TestWorker,
} from '../helpers/stack';

// Temporal is not a side door (issue 14, item 1). Whoever reaches the Temporal frontend (the CLI,
// the UI, a script) sends updates and starts workflows with this test's plain client, not through
// the API: an approval naming a controller or a finance user is refused unless the API's decision
// request, checked against the database, backs it; a redemption started with its own point value
// credits what the program's rules say; a withdrawal of a rule change likewise needs the API's
// request; with encryption on, a workflow started in clear never runs.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let sims: RunningSimulators;
let worker: TestWorker;
let api: TestApi;
let call: ReturnType<typeof httpClient>;

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  sims = await startSimulators({ billing: 0, gl: 0, tax: 0 }, 14);
  worker = await startWorker(pool, {
    services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 1000 },
  });
  api = await startApi(pool, async () => true, {
    client: worker.client,
    taskQueue: worker.taskQueue,
    closeApproval: { escalateAfter: 'PT1H', cancelAfter: 'PT2H' },
  });
  call = httpClient(api);
});
afterAll(async () => {
  await api?.close();
  await worker?.stop();
  await sims?.close();
  await db?.drop();
});

async function program(overrides: Record<string, unknown> = {}) {
  const programId = uniqueId('sd');
  const res = await call('POST', '/v1/programs', { body: programBody(programId, overrides) });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return programId;
}

/** The update's refusal code (the ApplicationFailure's type), or null when it was accepted. */
async function refusal(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
    return null;
  } catch (e) {
    assert.ok(e instanceof WorkflowUpdateFailedError, `an update refusal, not ${String(e)}`);
    return (e.cause as { type?: string } | undefined)?.type ?? 'unknown';
  }
}

/** A key of its own for `principal`, and a decision request it "made" (as if through the API). */
async function requestBy(principal: string, roles: Role[], r: DecisionRequest, o: { revoke?: boolean } = {}) {
  await ensurePrincipal(pool, { principalId: principal, roles, kind: 'person' });
  const { key } = await createKey(pool, { principal, roles });
  const requestId = await recordDecisionRequest(
    pool,
    { keyId: key.keyId, name: principal, kind: 'person', roles, programs: null },
    r,
  );
  if (o.revoke) await revokeKey(pool, key.keyId);
  return requestId;
}

/** A program needing finance and legal, and a change `changeId` proposed through the API, awaiting approvals. */
async function proposedChange(changeId: string) {
  const programId = await program({ ruleChanges: { requiredRoles: ['finance', 'legal'], noticePeriod: 'PT1S' } });
  const rules = ruleChangeRules({
    ruleChanges: { requiredRoles: ['finance', 'legal'], noticePeriod: 'PT1S' },
    earn: { points: 2, perAmountMinor: 100 },
  });
  const proposed = await call('POST', `/v1/programs/${programId}/rule-changes`, {
    role: 'program_owner',
    body: { changeId, effectiveAt: new Date().toISOString(), rules },
  });
  assert.equal(proposed.status, 202, JSON.stringify(proposed.body));
  const workflowId: string = proposed.body.workflowId;
  const handle = worker.client.workflow.getHandle(workflowId);
  await eventually(
    'awaiting approvals',
    async () => (await handle.query(ruleChangeStateQuery)).status === 'awaiting_approvals',
  );
  return { programId, changeId, workflowId, handle };
}

/** What the API records before it starts a redemption (the invoice's natural key), as billing. */
const recordedAsTheApiWould = (
  programId: string,
  r: { invoiceId: string; memberId: string; points: number; invoiceTotalMinor: number },
) =>
  claimNaturalKey(pool, {
    programId,
    kind: 'redemption',
    naturalId: r.invoiceId,
    subject: null,
    requestHash: null,
    principal: 'test-billing',
    request: { memberId: r.memberId, points: r.points, invoiceTotalMinor: r.invoiceTotalMinor },
  });

describe('a redemption started straight on Temporal', () => {
  test('with a point value of 1,000,000 in its input credits what the rule version says', async () => {
    // the program: 1 minor unit per point, at most half an invoice, at least 100 points
    const programId = await program({
      redemption: { minPoints: 100, maxInvoiceShare: 0.5, cohortOrder: 'oldest_first' },
    });
    const earned = await call('POST', `/v1/programs/${programId}/accruals`, {
      role: 'billing',
      body: { memberId: 'm-1', invoiceId: 'earn-1', amountMinor: 1_000_000, occurredAt: new Date().toISOString() },
    });
    assert.equal(earned.status, 201, JSON.stringify(earned.body)); // 10,000 points
    const invoiceId = uniqueId('inv');
    await billingClient({ baseUrl: sims.billingUrl, timeoutMs: 1000 }).createInvoice(
      {
        invoiceId,
        customerId: 'c-1',
        currency: 'USD',
        lines: [{ description: 'Plan', amountMinor: 8000 }],
      },
      `inv-${invoiceId}`,
    );
    const input: RedemptionInput = {
      programId,
      invoiceId,
      redemptionId: randomUUID(),
      memberId: 'm-1',
      points: 3000,
      invoiceTotalMinor: 8000,
      occurredAt: new Date().toISOString(),
      jurisdiction: null,
      // what an insider writes: each point worth 10,000.00, the whole invoice, no minimum, no window
      rules: {
        pointValueMinor: 1_000_000,
        minPoints: 0,
        maxInvoiceShareMillionths: '1000000',
        cohortOrder: 'pro_rata',
        chargebackWindow: 'PT0S',
      },
    };
    const workflowId = `redemption:${programId}:${invoiceId}`;
    // with no request of the API's behind it, nothing is held at all
    const unasked = await worker.client.workflow.start(redemptionSaga, {
      workflowId,
      taskQueue: worker.taskQueue,
      args: [input],
    });
    await assert.rejects(unasked.result(), (e: unknown) =>
      /redemption_request_unverified|asked for through the API/.test(causeMessages(e)),
    );
    assert.equal(
      (await pool.query('select 1 from redemptions where program_id = $1', [programId])).rowCount,
      0,
      'nothing held for a saga nobody asked for',
    );
    // other terms than the API recorded: refused the same way
    await recordedAsTheApiWould(programId, { ...input, points: 100 });
    const otherTerms = await worker.client.workflow.start(redemptionSaga, {
      workflowId: `${workflowId}-other`,
      taskQueue: worker.taskQueue,
      args: [input],
    });
    await assert.rejects(otherTerms.result(), (e: unknown) =>
      /redemption_request_unverified|asked for through the API/.test(causeMessages(e)),
    );
    // the terms billing asked for through the API: held, on the rule version's terms, not the input's
    await db.adminPool.query(`delete from request_natural_keys where program_id = $1 and natural_id = $2`, [
      programId,
      invoiceId,
    ]);
    await recordedAsTheApiWould(programId, input);
    const handle = await worker.client.workflow.start(redemptionSaga, {
      workflowId,
      taskQueue: worker.taskQueue,
      args: [input],
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    });
    const outcome = await handle.executeUpdate(outcomeUpdate);
    // half of 8,000 at 1 per point: 4,000 points at most; 3,000 asked, 3,000 credited at 1 each
    assert.deepEqual(
      [outcome.status, outcome.pointsApplied, outcome.creditMinor],
      ['applied', 3000, 3000],
      JSON.stringify(outcome),
    );
    const {
      rows: [r],
    } = await pool.query(
      'select points_applied::int as points, credit_minor::int as credit, rule_version from redemptions where program_id = $1 and invoice_id = $2',
      [programId, invoiceId],
    );
    assert.deepEqual(r, { points: 3000, credit: 3000, rule_version: 1 });
    // the saga waits out the program's chargeback window (P120D), not the input's PT0S
    const timer = await eventually('the chargeback window', async () => {
      const { events } = await handle.fetchHistory();
      return events?.find((e) => e.timerStartedEventAttributes)?.timerStartedEventAttributes ?? null;
    });
    assert.ok(Number(timer.startToFireTimeout?.seconds ?? 0) > 100 * 86_400, JSON.stringify(timer));
    await recordHistory(worker.client, workflowId, 'redemption-rules-from-ledger');
    await recordHistory(worker.client, workflowId, 'redemption-request-verified');
    await handle.terminate('test over');

    // the cap too: 5,000 points asked on the same terms are held to half the invoice (4,000)
    const second = uniqueId('inv');
    await billingClient({ baseUrl: sims.billingUrl, timeoutMs: 1000 }).createInvoice(
      { invoiceId: second, customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 8000 }] },
      `inv-${second}`,
    );
    await recordedAsTheApiWould(programId, { ...input, invoiceId: second, points: 5000 });
    const capped = await worker.client.workflow.start(redemptionSaga, {
      workflowId: `redemption:${programId}:${second}`,
      taskQueue: worker.taskQueue,
      args: [{ ...input, invoiceId: second, redemptionId: randomUUID(), points: 5000 }],
    });
    const cappedOutcome = await capped.executeUpdate(outcomeUpdate);
    assert.deepEqual([cappedOutcome.pointsApplied, cappedOutcome.creditMinor], [4000, 4000], 'half the invoice');
    await capped.terminate('test over');
  });
});

describe('a chargeback signalled straight to the saga', () => {
  test('a forged lost chargeback reverses nothing; the one billing reports through the API counts', async () => {
    const programId = await program();
    const earned = await call('POST', `/v1/programs/${programId}/accruals`, {
      role: 'billing',
      body: { memberId: 'm-1', invoiceId: 'earn-1', amountMinor: 500_000, occurredAt: new Date().toISOString() },
    });
    assert.equal(earned.status, 201, JSON.stringify(earned.body));
    const invoiceId = uniqueId('inv');
    await billingClient({ baseUrl: sims.billingUrl, timeoutMs: 1000 }).createInvoice(
      { invoiceId, customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 8000 }] },
      `inv-${invoiceId}`,
    );
    const redeemed = await call('POST', `/v1/programs/${programId}/redemptions`, {
      role: 'billing',
      body: { invoiceId, memberId: 'm-1', points: 1000, invoiceTotalMinor: 8000, occurredAt: new Date().toISOString() },
    });
    assert.deepEqual([redeemed.status, redeemed.body.status], [201, 'applied'], JSON.stringify(redeemed.body));
    const handle = worker.client.workflow.getHandle(`redemption:${programId}:${invoiceId}`);
    // what an insider sends from the Temporal CLI: a lost chargeback, then one with a made-up request id
    await handle.signal(chargebackSignal, { chargebackId: 'x1', status: 'lost' });
    await handle.signal(chargebackSignal, { chargebackId: 'x2', status: 'lost', requestId: randomUUID() });
    // billing's own, through the API: opened (freezes the window)
    const opened = await call('POST', `/v1/programs/${programId}/chargebacks`, {
      role: 'billing',
      body: { invoiceId, chargebackId: 'cb-1', status: 'opened' },
    });
    assert.equal(opened.status, 202, JSON.stringify(opened.body));
    const state = await eventually('the verified chargeback counted', async () => {
      const q = await handle.query(stateQuery);
      return q.chargebacks.length > 0 ? q : null;
    });
    assert.deepEqual(
      state.chargebacks.map((c) => `${c.chargebackId}:${c.status}`),
      ['cb-1:opened'],
      'the forged ones were dropped',
    );
    assert.deepEqual([state.outcome?.status, state.frozen], ['applied', true]);
    const view = await call('GET', `/v1/programs/${programId}/redemptions/${invoiceId}`, { role: 'billing' });
    assert.equal(view.body.status, 'applied', 'not reversed');
    const refunds = await pool.query(`select 1 from ledger_entries where program_id = $1 and type = 'earn_reversal'`, [
      programId,
    ]);
    assert.equal(refunds.rowCount, 0, 'nothing clawed back');
    await recordHistory(worker.client, handle.workflowId, 'chargeback-verified');
    await handle.terminate('test over');
  });
});

describe('approvals sent straight to the workflow', () => {
  test('a close: an approval naming a controller, a forged, revoked, wrong-role, wrong-close or self request is refused and changes nothing; the API approval counts', async () => {
    const programId = await program({ expiry: { policy: 'rolling', window: 'P400D' } });
    // activity in 2026-Q3, an ended quarter (the clock of these tests is past it)
    const earned = await call('POST', `/v1/programs/${programId}/accruals`, {
      role: 'billing',
      body: { memberId: 'm-1', invoiceId: 'q3-a', amountMinor: 100_000, occurredAt: '2026-08-01T00:00:00Z' },
    });
    assert.equal(earned.status, 201, JSON.stringify(earned.body));
    const period = '2026-Q3';
    const started = await call('POST', `/v1/programs/${programId}/closes`, { role: 'finance', body: { period } });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const workflowId: string = started.body.workflowId;
    await eventually('awaiting approval', async () => {
      const s = (await call('GET', `/v1/programs/${programId}/closes/${period}`, { role: 'controller' })).body;
      return s.step === 'awaiting_approval' ? s : null;
    });
    const handle = worker.client.workflow.getHandle(workflowId);
    const approve = (arg: { approver?: string; requestId?: string }) =>
      refusal(handle.executeUpdate(approveUpdate, { args: [arg] }));
    const forClose: DecisionRequest = {
      kind: 'close_approval',
      programId,
      subject: period,
      workflowId,
      decision: 'approve',
      comment: null,
    };

    assert.equal(
      await approve({ approver: 'test-controller' }),
      'decision_request_required',
      'a name counts for nothing',
    );
    assert.equal(await approve({ requestId: randomUUID() }), 'decision_request_unknown', 'an id the API never wrote');
    assert.equal(await approve({ requestId: 'not-an-id' }), 'decision_request_unknown');
    const revoked = await requestBy('carla', ['controller'], forClose, { revoke: true });
    assert.equal(await approve({ requestId: revoked }), 'unauthorized', 'a revoked key');
    const finance = await requestBy('fiona', ['finance'], forClose);
    assert.equal(await approve({ requestId: finance }), 'forbidden', 'not a controller');
    const starter = await requestBy('test-finance', ['controller'], forClose);
    assert.equal(await approve({ requestId: starter }), 'segregation_of_duties', "the close's starter");
    const otherClose = await requestBy('cody', ['controller'], { ...forClose, subject: '2026-Q2' });
    assert.equal(await approve({ requestId: otherClose }), 'decision_request_mismatch', 'a request for another close');
    const otherWorkflow = await requestBy('cora', ['controller'], { ...forClose, workflowId: `${workflowId}-x` });
    assert.equal(await approve({ requestId: otherWorkflow }), 'decision_request_mismatch');

    const close = (await call('GET', `/v1/programs/${programId}/closes/${period}`, { role: 'controller' })).body;
    assert.deepEqual([close.step, close.approvedBy ?? null], ['awaiting_approval', null], 'nothing changed');
    const {
      rows: [row],
    } = await pool.query('select status, approved_by from closes where program_id = $1 and period = $2', [
      programId,
      period,
    ]);
    assert.deepEqual(row, { status: 'proposed', approved_by: null });

    const approved = await call('POST', `/v1/programs/${programId}/closes/${period}/approve`, { role: 'controller' });
    assert.deepEqual([approved.status, approved.body.status], [200, 'locked'], JSON.stringify(approved.body));
    const after = await pool.query('select approved_by from closes where program_id = $1 and period = $2', [
      programId,
      period,
    ]);
    assert.equal(after.rows[0].approved_by, 'test-controller');
    await recordHistory(worker.client, workflowId, 'close-approval-verified');
  });

  test('a rule change: a decision naming a finance user, or a request by the proposer, is refused; the API decision counts under the name the keys table holds', async () => {
    const { programId, changeId, workflowId, handle } = await proposedChange('richer');
    const decide = (arg: Record<string, unknown>) =>
      refusal(handle.executeUpdate(decideRuleChangeUpdate, { args: [arg] }));
    const forChange: DecisionRequest = {
      kind: 'rule_change_decision',
      programId,
      subject: changeId,
      workflowId,
      decision: 'approve',
      comment: null,
    };

    for (const by of ['test-finance', 'test-legal'])
      assert.equal(
        await decide({ by, roles: [by.slice(5)], decision: 'approve', comment: null }),
        'decision_request_required',
        `a decision naming ${by}`,
      );
    assert.equal(await decide({ requestId: randomUUID() }), 'decision_request_unknown');
    // the proposer, even with a key that holds finance (and admin)
    const self = await requestBy('test-program_owner', ['finance', 'admin'], forChange);
    assert.equal(await decide({ requestId: self }), 'segregation_of_duties');
    const support = await requestBy('sam', ['support'], forChange);
    assert.equal(await decide({ requestId: support }), 'forbidden', 'a role the change does not need');
    const revoked = await requestBy('fran', ['finance'], forChange, { revoke: true });
    assert.equal(await decide({ requestId: revoked }), 'unauthorized');
    const elsewhere = await requestBy('finn', ['finance'], { ...forChange, subject: 'other' });
    assert.equal(await decide({ requestId: elsewhere }), 'decision_request_mismatch');
    assert.deepEqual((await handle.query(ruleChangeStateQuery)).approvals, [], 'nothing decided');
    const { rows } = await pool.query(`select approvals from rule_changes where program_id = $1 and change_id = $2`, [
      programId,
      changeId,
    ]);
    assert.deepEqual(rows[0].approvals ?? [], [], 'nothing recorded');

    // through the API: the decision counts, under the principal of the key
    const byApi = await call('POST', `/v1/programs/${programId}/rule-changes/${changeId}/approvals`, {
      role: 'finance',
      body: { decision: 'approve', comment: 'fine' },
    });
    assert.equal(byApi.status, 200, JSON.stringify(byApi.body));
    assert.deepEqual(
      byApi.body.approvals.map((a: { role: string; by: string; comment: string | null }) => [a.role, a.by, a.comment]),
      [['finance', 'test-finance', 'fine']],
    );
    // the same person again, through a request of their own: one person, one role
    const again = await requestBy('test-finance', ['legal'], forChange);
    assert.equal(await decide({ requestId: again }), 'segregation_of_duties');
    const legal = await call('POST', `/v1/programs/${programId}/rule-changes/${changeId}/approvals`, {
      role: 'legal',
      body: { decision: 'approve' },
    });
    assert.equal(legal.status, 200, JSON.stringify(legal.body));
    assert.equal(legal.body.status, 'scheduled');
    assert.equal((await handle.result()).status, 'active');
    await recordHistory(worker.client, workflowId, 'rule-change-decision-verified');
  });
});

describe('a rule change withdrawn straight on Temporal', () => {
  test('a withdrawal naming the program owner, or backed by a forged, revoked or wrong-role request, changes nothing; the API withdrawal counts', async () => {
    const { programId, changeId, workflowId, handle } = await proposedChange('keep');
    const forChange: DecisionRequest = {
      kind: 'rule_change_withdrawal',
      programId,
      subject: changeId,
      workflowId,
      decision: 'withdraw',
      comment: null,
    };
    // in order: a name alone, an id the API never wrote, a support key's, a revoked owner key's, and
    // an owner's request for another change
    await handle.signal(withdrawSignal, { by: 'test-program_owner' });
    await handle.signal(withdrawSignal, { by: 'mallory', requestId: randomUUID() });
    await handle.signal(withdrawSignal, { requestId: await requestBy('sam', ['support'], forChange) });
    const revoked = await requestBy('olga', ['program_owner'], forChange, { revoke: true });
    await handle.signal(withdrawSignal, { requestId: revoked });
    const other = await requestBy('otto', ['program_owner'], { ...forChange, subject: 'other' });
    await handle.signal(withdrawSignal, { requestId: other });
    const refused = await eventually('the four requests refused', async () => {
      const { events } = await handle.fetchHistory();
      const failed = (events ?? []).filter((e) => e.activityTaskFailedEventAttributes);
      return failed.length === 4 ? failed : null;
    });
    assert.equal(refused.length, 4);
    assert.equal((await handle.query(ruleChangeStateQuery)).status, 'awaiting_approvals', 'not withdrawn');
    const { rows } = await pool.query(`select status from rule_changes where program_id = $1 and change_id = $2`, [
      programId,
      changeId,
    ]);
    assert.equal(rows[0].status, 'awaiting_approvals');

    // through the API: withdrawn, and the memo names the principal of the key
    const withdrawn = await call('POST', `/v1/programs/${programId}/rule-changes/${changeId}/withdraw`, {
      role: 'program_owner',
    });
    assert.equal(withdrawn.status, 202, JSON.stringify(withdrawn.body));
    assert.equal((await handle.result()).status, 'withdrawn');
    const memo = (await handle.describe()).memo as { summary?: string } | undefined;
    assert.equal(memo?.summary, `${changeId}: withdrawn by test-program_owner`);
    await recordHistory(worker.client, workflowId, 'rule-change-withdrawal-verified');
  });
});

describe('adjustment approvals sent straight to the workflow', () => {
  /** A program with a threshold of 1,000 points, m-1 and m-2 holding 2,000 each. */
  async function adjustmentProgram() {
    const programId = await program({ adjustments: { approvalThresholdPoints: 1000 } });
    for (const m of ['m-1', 'm-2']) {
      const earned = await call('POST', `/v1/programs/${programId}/accruals`, {
        role: 'billing',
        body: { memberId: m, invoiceId: `earn-${m}`, amountMinor: 200_000, occurredAt: new Date().toISOString() },
      });
      assert.equal(earned.status, 201, JSON.stringify(earned.body));
    }
    return programId;
  }
  const ledgerOf = async (programId: string) =>
    (
      await pool.query(`select member_id, balance::int from members where program_id = $1 order by member_id`, [
        programId,
      ])
    ).rows.map((r) => [r.member_id, r.balance]);
  const rowOf = async (programId: string, adjustmentId: string) =>
    (
      await pool.query(
        'select status, approved_by, entry_id from manual_adjustments where program_id = $1 and adjustment_id = $2',
        [programId, adjustmentId],
      )
    ).rows[0];

  test('an approval naming a finance user, a forged, revoked, wrong-role, wrong-adjustment or self request is refused and applies nothing; the API approval counts', async () => {
    const programId = await adjustmentProgram();
    const big = await call('POST', `/v1/programs/${programId}/adjustments`, {
      role: 'support',
      body: { memberId: 'm-1', points: 5000, reasonCode: 'migration' },
    });
    assert.equal(big.status, 202, JSON.stringify(big.body));
    const { adjustmentId, workflowId } = big.body as { adjustmentId: string; workflowId: string };
    const handle = worker.client.workflow.getHandle(workflowId);
    const decide = (arg: Record<string, unknown>) => refusal(handle.executeUpdate(decideUpdate, { args: [arg] }));
    const forAdjustment: DecisionRequest = {
      kind: 'adjustment_approval',
      programId,
      subject: adjustmentId,
      workflowId,
      decision: 'approve',
      comment: null,
    };

    assert.equal(
      await decide({ decision: 'approve', by: 'test-finance', comment: null }),
      'decision_request_required',
      'a name counts for nothing',
    );
    assert.equal(await decide({ requestId: randomUUID() }), 'decision_request_unknown', 'an id the API never wrote');
    assert.equal(await decide({ requestId: 'not-an-id' }), 'decision_request_unknown');
    const revoked = await requestBy('frida', ['finance'], forAdjustment, { revoke: true });
    assert.equal(await decide({ requestId: revoked }), 'unauthorized', 'a revoked key');
    const support = await requestBy('sven', ['support'], forAdjustment);
    assert.equal(await decide({ requestId: support }), 'forbidden', 'not finance');
    // the requester, even with a key that holds finance (and admin)
    const self = await requestBy('test-support', ['finance', 'admin'], forAdjustment);
    assert.equal(await decide({ requestId: self }), 'segregation_of_duties', 'the requester');
    const other = await requestBy('felix', ['finance'], { ...forAdjustment, subject: randomUUID() });
    assert.equal(await decide({ requestId: other }), 'decision_request_mismatch', 'a request for another adjustment');
    const closeKind = await requestBy('fay', ['finance'], { ...forAdjustment, kind: 'close_approval' });
    assert.equal(await decide({ requestId: closeKind }), 'decision_request_mismatch', 'a request of another kind');
    const rejecter = await requestBy('fern', ['finance'], { ...forAdjustment, decision: 'reject' }, { revoke: true });
    assert.equal(await decide({ requestId: rejecter }), 'unauthorized', 'a rejection by a revoked key');

    assert.deepEqual(
      await ledgerOf(programId),
      [
        ['m-1', 2000],
        ['m-2', 2000],
      ],
      'nothing applied',
    );
    assert.deepEqual(await rowOf(programId, adjustmentId), {
      status: 'pending_approval',
      approved_by: null,
      entry_id: null,
    });
    assert.equal((await handle.describe()).status.name, 'RUNNING', 'still waiting for finance');

    const approved = await call('POST', `/v1/programs/${programId}/adjustments/${adjustmentId}/approvals`, {
      role: 'finance',
      body: { decision: 'approve', comment: 'checked' },
    });
    assert.deepEqual(
      [approved.status, approved.body.status, approved.body.approvedBy],
      [200, 'applied', 'test-finance'],
      JSON.stringify(approved.body),
    );
    assert.deepEqual(await ledgerOf(programId), [
      ['m-1', 7000],
      ['m-2', 2000],
    ]);
    // decided (and ended): another finance user's request, even a valid one, counts for nothing
    await eventually('workflow done', async () => (await handle.describe()).status.name === 'COMPLETED');
    const late = await requestBy('fabian', ['finance'], { ...forAdjustment, decision: 'reject' });
    await assert.rejects(handle.executeUpdate(decideUpdate, { args: [{ requestId: late }] }));
    assert.deepEqual(await rowOf(programId, adjustmentId), {
      status: 'applied',
      approved_by: 'test-finance',
      entry_id: approved.body.entryId,
    });
    await recordHistory(worker.client, workflowId, 'adjustment-approval-verified');
  });

  test('a merge past the threshold: an approval naming a finance user or by its requester is refused and merges nothing; the API approval merges', async () => {
    const programId = await adjustmentProgram();
    const merge = await call('POST', `/v1/programs/${programId}/members/m-2/merge`, {
      role: 'support',
      body: { intoMemberId: 'm-1' },
    });
    assert.equal(merge.status, 202, JSON.stringify(merge.body));
    const { adjustmentId, workflowId } = merge.body as { adjustmentId: string; workflowId: string };
    const handle = worker.client.workflow.getHandle(workflowId);
    const decide = (arg: Record<string, unknown>) => refusal(handle.executeUpdate(decideUpdate, { args: [arg] }));
    assert.equal(await decide({ decision: 'approve', by: 'test-finance', comment: null }), 'decision_request_required');
    const self = await requestBy('test-support', ['finance'], {
      kind: 'adjustment_approval',
      programId,
      subject: adjustmentId,
      workflowId,
      decision: 'approve',
      comment: null,
    });
    assert.equal(await decide({ requestId: self }), 'segregation_of_duties');
    assert.deepEqual(
      await ledgerOf(programId),
      [
        ['m-1', 2000],
        ['m-2', 2000],
      ],
      'nothing merged',
    );
    assert.equal((await rowOf(programId, adjustmentId)).status, 'pending_approval');
    const approved = await call('POST', `/v1/programs/${programId}/adjustments/${adjustmentId}/approvals`, {
      role: 'finance',
      body: { decision: 'approve' },
    });
    assert.deepEqual([approved.status, approved.body.status], [200, 'applied'], JSON.stringify(approved.body));
    assert.deepEqual(
      await ledgerOf(programId),
      [
        ['m-1', 4000],
        ['m-2', 0],
      ],
      'merged',
    );
  });

  test("a run started straight on Temporal with another requester, member and points applies the row's, and refuses its real requester", async () => {
    const programId = await adjustmentProgram();
    const big = await call('POST', `/v1/programs/${programId}/adjustments`, {
      role: 'support',
      body: { memberId: 'm-1', points: 1500, reasonCode: 'migration' },
    });
    assert.equal(big.status, 202, JSON.stringify(big.body));
    const { adjustmentId, workflowId } = big.body as { adjustmentId: string; workflowId: string };
    await worker.client.workflow.getHandle(workflowId).terminate('replaced by an insider');
    // what an insider writes: somebody else asked, a million points for m-2
    const handle = await worker.client.workflow.start(adjustmentApproval, {
      workflowId,
      taskQueue: worker.taskQueue,
      args: [
        { programId, adjustmentId, memberId: 'm-2', points: 1_000_000, requestedBy: 'mallory', decideWithin: 'P7D' },
      ],
    });
    const self = await requestBy('test-support', ['finance'], {
      kind: 'adjustment_approval',
      programId,
      subject: adjustmentId,
      workflowId,
      decision: 'approve',
      comment: null,
    });
    assert.equal(
      await refusal(handle.executeUpdate(decideUpdate, { args: [{ requestId: self }] })),
      'segregation_of_duties',
      "the row's requester, not the input's",
    );
    assert.deepEqual(
      await ledgerOf(programId),
      [
        ['m-1', 2000],
        ['m-2', 2000],
      ],
      'nothing applied',
    );
    const approved = await call('POST', `/v1/programs/${programId}/adjustments/${adjustmentId}/approvals`, {
      role: 'finance',
      body: { decision: 'approve' },
    });
    assert.deepEqual([approved.status, approved.body.status], [200, 'applied'], JSON.stringify(approved.body));
    assert.deepEqual(
      await ledgerOf(programId),
      [
        ['m-1', 3500],
        ['m-2', 2000],
      ],
      "the row's 1,500 points to m-1",
    );
    const memo = (await handle.describe()).memo as { summary?: string } | undefined;
    assert.match(String(memo?.summary), /^1500 pts for m-1: applied by test-finance$/);
  });
});

describe('a workflow started straight on Temporal with its own terms', () => {
  test("a rule change started with no required roles and another proposer waits for the base version's approvers", async () => {
    const programId = await program({ ruleChanges: { requiredRoles: ['finance', 'legal'], noticePeriod: 'PT1S' } });
    const rules = ruleChangeRules({
      ruleChanges: { requiredRoles: ['finance', 'legal'], noticePeriod: 'PT1S' },
      earn: { points: 3, perAmountMinor: 100 },
    });
    // the change as the API records a proposal (by test-program_owner, against version 1)
    await pool.query(
      `insert into rule_changes (program_id, change_id, proposed_by, base_version, rules, effective_at, status)
       values ($1, 'quiet', 'test-program_owner', 1, $2, now(), 'assessing')`,
      [programId, JSON.stringify(rules)],
    );
    const handle = await worker.client.workflow.start(ruleChange, {
      workflowId: `rule-change:${programId}:quiet`,
      taskQueue: worker.taskQueue,
      args: [
        {
          programId,
          changeId: 'quiet',
          proposedBy: 'mallory',
          effectiveAt: new Date().toISOString(),
          requiredRoles: [], // what an insider writes: nobody needs to approve
          noticePeriod: 'PT0S',
          decideWithin: 'P14D',
        },
      ],
    });
    await eventually(
      'awaiting approvals',
      async () => (await handle.query(ruleChangeStateQuery)).status === 'awaiting_approvals',
    );
    const finance = await call('POST', `/v1/programs/${programId}/rule-changes/quiet/approvals`, {
      role: 'finance',
      body: { decision: 'approve' },
    });
    assert.deepEqual([finance.status, finance.body.status], [200, 'awaiting_approvals'], 'legal still awaited');
    const versions = await pool.query('select version from program_rule_versions where program_id = $1', [programId]);
    assert.equal(versions.rowCount, 1, 'nothing activated');
    // the proposer is the database's, not the input's: test-program_owner, even holding legal, may not decide
    const self = await requestBy('test-program_owner', ['legal'], {
      kind: 'rule_change_decision',
      programId,
      subject: 'quiet',
      workflowId: handle.workflowId,
      decision: 'approve',
      comment: null,
    });
    assert.equal(
      await refusal(handle.executeUpdate(decideRuleChangeUpdate, { args: [{ requestId: self }] })),
      'segregation_of_duties',
    );
    const legal = await call('POST', `/v1/programs/${programId}/rule-changes/quiet/approvals`, {
      role: 'legal',
      body: { decision: 'approve' },
    });
    assert.deepEqual([legal.status, legal.body.status], [200, 'scheduled'], JSON.stringify(legal.body));
    assert.equal((await handle.result()).status, 'active');
    await recordHistory(worker.client, handle.workflowId, 'rule-change-terms-from-ledger');
  });
});

describe('with encryption on', () => {
  test('a workflow started in clear by a client without the codec fails its task and never runs', async () => {
    const keys = newKeyFile('k-side');
    const codec = new AesGcmCodec(keys.active, { 'k-side': Buffer.from(keys.keys['k-side']!, 'base64') });
    const encrypted = await startWorker(pool, {
      services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 1000 },
      codec,
    });
    try {
      const programId = await program();
      const earned = await call('POST', `/v1/programs/${programId}/accruals`, {
        role: 'billing',
        body: { memberId: 'm-1', invoiceId: 'earn-1', amountMinor: 500_000, occurredAt: new Date().toISOString() },
      });
      assert.equal(earned.status, 201);
      // the Temporal CLI's or UI's way: JSON in clear, no codec
      const plain = new Client({ connection: encrypted.client.connection, namespace: 'default' });
      const invoiceId = uniqueId('inv');
      const workflowId = `redemption:${programId}:${invoiceId}`;
      const handle = await plain.workflow.start(redemptionSaga, {
        workflowId,
        taskQueue: encrypted.taskQueue,
        args: [
          {
            programId,
            invoiceId,
            redemptionId: randomUUID(),
            memberId: 'm-1',
            points: 1000,
            invoiceTotalMinor: 8000,
            occurredAt: new Date().toISOString(),
            jurisdiction: null,
          },
        ],
      });
      const failed = await eventually('the workflow task failed', async () => {
        const { events } = await handle.fetchHistory();
        return events?.find((e) => e.workflowTaskFailedEventAttributes) ?? null;
      });
      // (its message is the worker's, encrypted: "not encrypted: refused" in the worker's log)
      assert.ok(failed.workflowTaskFailedEventAttributes!.failure, 'the task failed with a failure');
      const { events } = await handle.fetchHistory();
      assert.equal(
        events?.some((e) => e.markerRecordedEventAttributes || e.activityTaskScheduledEventAttributes),
        false,
        'no step ran',
      );
      assert.equal((await handle.describe()).status.name, 'RUNNING', 'stuck, not completed');
      const held = await pool.query('select 1 from redemptions where program_id = $1', [programId]);
      assert.equal(held.rowCount, 0, 'nothing held');
      await handle.terminate('test over');

      // the same start with the codec runs (the refusal is of the clear payload, not of the start)
      await recordedAsTheApiWould(programId, {
        invoiceId: `${invoiceId}-enc`,
        memberId: 'm-1',
        points: 1000,
        invoiceTotalMinor: 8000,
      });
      const ok = await encrypted.client.workflow.start(redemptionSaga, {
        workflowId: `redemption:${programId}:${invoiceId}-enc`,
        taskQueue: encrypted.taskQueue,
        args: [
          {
            programId,
            invoiceId: `${invoiceId}-enc`,
            redemptionId: randomUUID(),
            memberId: 'm-1',
            points: 1000,
            invoiceTotalMinor: 8000,
            occurredAt: new Date().toISOString(),
            jurisdiction: null,
          },
        ],
      });
      const outcome = await ok.executeUpdate(outcomeUpdate);
      // no invoice in billing: declined by billing, after the hold ran (the workflow ran)
      assert.ok(outcome.status === 'declined' || outcome.status === 'applied', JSON.stringify(outcome));
      assert.ok((await pool.query('select 1 from redemptions where program_id = $1', [programId])).rowCount! > 0);
      await ok.terminate('test over').catch(() => undefined);
    } finally {
      await encrypted.stop();
    }
  });
});
