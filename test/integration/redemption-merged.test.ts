import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import { billingClient } from '../../activities/services/billing';
import { programBody, recordHistory, uniqueId, startSagaStack, type SagaStack } from '../helpers/stack';

// A redemption naming a merged member's id (issue 14, item 7: merge chains of any length resolve):
// it redeems the survivor's points, as an accrual for that id earns them, and says so. Real API,
// saga, worker, database and simulators.
let stack: SagaStack;

beforeAll(async () => {
  stack = await startSagaStack(23);
});
afterAll(() => stack.stop());

test("a redemption for a member merged through a chain of two acts on the survivor's points, compresses the chain and names the survivor", async () => {
  const { call, pool } = stack;
  const programId = uniqueId('rm');
  const created = await call('POST', '/v1/programs', {
    body: programBody(programId, {
      chargebackWindow: 'PT30S',
      redemption: { minPoints: 100, maxInvoiceShare: 0.5, cohortOrder: 'oldest_first' },
      adjustments: { approvalThresholdPoints: 1_000_000 }, // the merges apply at once
    }),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  // c0 holds no jurisdiction of its own; c2, the survivor, bought in Minnesota
  for (const [memberId, jurisdiction] of [
    ['c0', undefined],
    ['c1', undefined],
    ['c2', 'US-MN'],
  ] as const) {
    const earned = await call('POST', `/v1/programs/${programId}/accruals`, {
      role: 'billing',
      body: {
        memberId,
        invoiceId: `earn-${memberId}`,
        amountMinor: 100_000,
        occurredAt: new Date().toISOString(),
        ...(jurisdiction ? { jurisdiction } : {}),
      },
    });
    assert.equal(earned.status, 201, JSON.stringify(earned.body)); // 1,000 points each
  }
  for (const [from, into] of [
    ['c1', 'c2'],
    ['c0', 'c2'],
  ]) {
    const merged = await call('POST', `/v1/programs/${programId}/members/${from}/merge`, {
      role: 'support',
      body: { intoMemberId: into },
    });
    assert.equal(merged.status, 201, JSON.stringify(merged.body));
  }
  // a chain of two, as merges left them before chains were kept one hop long: c0 → c1 → c2
  await pool.query(`update members set merged_into = 'c1' where program_id = $1 and member_id = 'c0'`, [programId]);

  const invoiceId = uniqueId('inv');
  await billingClient({ baseUrl: stack.sims.billingUrl, timeoutMs: 1000 }).createInvoice(
    { invoiceId, customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 20_000 }] },
    `inv-${invoiceId}`,
  );
  const res = await call('POST', `/v1/programs/${programId}/redemptions`, {
    role: 'billing',
    body: { invoiceId, memberId: 'c0', points: 2000, invoiceTotalMinor: 20_000, occurredAt: new Date().toISOString() },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.deepEqual(
    [res.body.status, res.body.memberId, res.body.pointsApplied, res.body.creditMinor],
    ['applied', 'c2', 2000, 2000],
    JSON.stringify(res.body),
  );
  const read = (await call('GET', `/v1/programs/${programId}/redemptions/${invoiceId}`, { role: 'support' })).body;
  assert.deepEqual([read.memberId, read.status], ['c2', 'applied'], JSON.stringify(read));
  // the survivor's tax treatment (its jurisdiction), not the merged id's (none)
  assert.equal(read.tax?.jurisdiction, 'US-MN', JSON.stringify(read.tax));
  const survivor = (await call('GET', `/v1/programs/${programId}/members/c2`, { role: 'support' })).body;
  assert.equal(survivor.balance, 3000 - 2000, JSON.stringify(survivor));
  const { rows } = await pool.query(
    `select member_id, merged_into from members where program_id = $1 and status = 'merged' order by member_id`,
    [programId],
  );
  assert.deepEqual(rows, [
    { member_id: 'c0', merged_into: 'c2' },
    { member_id: 'c1', merged_into: 'c2' },
  ]);
  await recordHistory(stack.worker.client, res.body.workflowId, 'redemption-member-resolved');
});
