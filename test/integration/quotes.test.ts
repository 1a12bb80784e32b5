import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import { billingClient } from '../../activities/services/billing';
import { programBody, uniqueId, startSagaStack, type SagaStack } from '../helpers/stack';

// Quotes for billing (issue 15, item 6): what an accrual or a redemption would do, writing nothing,
// and the same figures the real one then gives. Real API, saga, worker, database and simulators.
let stack: SagaStack;

beforeAll(async () => {
  stack = await startSagaStack(31);
});
afterAll(() => stack.stop());

const TABLES = [
  'ledger_entries',
  'redemptions',
  'members',
  'audit_log',
  'idempotency_keys',
  'accruals',
  'journal_entries',
];

/** Row counts of the tables a write touches. */
async function counts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of TABLES) out[t] = (await stack.pool.query(`select count(*)::int as n from ${t}`)).rows[0].n;
  return out;
}

async function newProgram(overrides: Record<string, unknown>): Promise<string> {
  const programId = uniqueId('q');
  const created = await stack.call('POST', '/v1/programs', { body: programBody(programId, overrides) });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return programId;
}

const accrue = (programId: string, body: Record<string, unknown>) =>
  stack.call('POST', `/v1/programs/${programId}/accruals`, { role: 'billing', body });
const quoteAccrual = (programId: string, body: Record<string, unknown>) =>
  stack.call('POST', `/v1/programs/${programId}/quotes/accrual`, { role: 'billing', body, idem: null });
const quoteRedemption = (programId: string, body: Record<string, unknown>) =>
  stack.call('POST', `/v1/programs/${programId}/quotes/redemption`, { role: 'billing', body, idem: null });

async function redeem(programId: string, body: { memberId: string; points: number; invoiceTotalMinor: number }) {
  const invoiceId = uniqueId('inv');
  await billingClient({ baseUrl: stack.sims.billingUrl, timeoutMs: 1000 }).createInvoice(
    {
      invoiceId,
      customerId: 'c-1',
      currency: 'USD',
      lines: [{ description: 'Plan', amountMinor: body.invoiceTotalMinor }],
    },
    `inv-${invoiceId}`,
  );
  const res = await stack.call('POST', `/v1/programs/${programId}/redemptions`, {
    role: 'billing',
    body: { invoiceId, ...body, occurredAt: new Date().toISOString() },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

test('an accrual quote gives the points, allocation, balance and deadline the accrual then gives, and writes nothing', async () => {
  // 3 points per 1.00 at 2 minor units a point, 80% expected: an allocation that rounds
  const programId = await newProgram({
    pointValueMinor: 2,
    earn: { points: 3, perAmountMinor: 100 },
    expiry: { policy: 'rolling', window: 'P90D' },
  });
  const cases = [
    { memberId: 'a-1', invoiceId: 'i-1', amountMinor: 4_999, occurredAt: '2026-10-01T10:00:00Z' },
    // the same member later: the deadline moves, the balance adds up
    { memberId: 'a-1', invoiceId: 'i-2', amountMinor: 123_457, occurredAt: '2026-10-20T08:30:00Z' },
    { memberId: 'a-2', invoiceId: 'i-3', amountMinor: 99, occurredAt: '2026-10-21T08:30:00Z', jurisdiction: 'US-CA' },
  ];
  for (const body of cases) {
    const before = await counts();
    const quote = await quoteAccrual(programId, body);
    assert.equal(quote.status, 200, JSON.stringify(quote.body));
    assert.deepEqual(await counts(), before, 'a quote writes nothing');
    const real = await accrue(programId, body);
    assert.equal(real.status, 201, JSON.stringify(real.body));
    for (const field of ['memberId', 'points', 'allocatedMinor', 'balance', 'expiresAt', 'cohort']) {
      assert.notEqual(real.body[field], undefined, field);
      assert.deepEqual(quote.body[field], real.body[field], `${field}: ${JSON.stringify([quote.body, real.body])}`);
    }
  }
  assert.ok(Number((await quoteAccrual(programId, { ...cases[0], invoiceId: 'i-9' })).body.allocatedMinor) > 0);
  // an invoice that already earned: the accrual would be refused, and so is its quote
  const again = await quoteAccrual(programId, { ...cases[0], amountMinor: 5_000 });
  assert.deepEqual(
    [again.status, again.body.error?.code],
    [409, 'invoice_already_accrued'],
    JSON.stringify(again.body),
  );
});

test('a redemption quote gives the points and credit the redemption then applies, capped by the share, the points or the request', async () => {
  const programId = await newProgram({
    pointValueMinor: 2,
    redemption: { minPoints: 100, maxInvoiceShare: 0.5, cohortOrder: 'oldest_first' },
  });
  const now = new Date().toISOString();
  assert.equal(
    (await accrue(programId, { memberId: 'r-1', invoiceId: 'e-1', amountMinor: 200_000, occurredAt: now })).status,
    201,
  ); // 2,000 points
  assert.equal(
    (await accrue(programId, { memberId: 'r-2', invoiceId: 'e-2', amountMinor: 30_000, occurredAt: now })).status,
    201,
  ); // 300 points

  const cases: Array<{ memberId: string; points?: number; invoiceTotalMinor: number; limitedBy: string }> = [
    // half of 3,001 at 2 a point: 750 points (the cap rounds down), 1,500 credit
    { memberId: 'r-1', invoiceTotalMinor: 3_001, limitedBy: 'invoice_share' },
    { memberId: 'r-1', points: 2_000, invoiceTotalMinor: 3_001, limitedBy: 'invoice_share' },
    { memberId: 'r-1', points: 150, invoiceTotalMinor: 3_001, limitedBy: 'requested' },
    { memberId: 'r-2', points: 1_000, invoiceTotalMinor: 100_000, limitedBy: 'available' },
  ];
  for (const c of cases) {
    const before = await counts();
    const quote = await quoteRedemption(programId, {
      memberId: c.memberId,
      invoiceTotalMinor: c.invoiceTotalMinor,
      ...(c.points ? { points: c.points } : {}),
    });
    assert.equal(quote.status, 200, JSON.stringify(quote.body));
    assert.deepEqual(await counts(), before, 'a quote writes nothing');
    assert.equal(quote.body.limitedBy, c.limitedBy, JSON.stringify(quote.body));
    assert.deepEqual(
      [quote.body.pointValueMinor, quote.body.minPoints, quote.body.maxInvoiceShare],
      [2, 100, 0.5],
      JSON.stringify(quote.body),
    );
    const real = await redeem(programId, {
      memberId: c.memberId,
      points: c.points ?? quote.body.points,
      invoiceTotalMinor: c.invoiceTotalMinor,
    });
    assert.equal(real.status, 'applied', JSON.stringify(real));
    assert.deepEqual(
      [quote.body.points, quote.body.creditMinor],
      [real.pointsApplied, real.creditMinor],
      JSON.stringify([quote.body, real]),
    );
    assert.equal(quote.body.creditMinor, quote.body.points * 2);
  }
  // r-1 spent 750 + 750 + 150 of its 2,000: the quote sees what is left
  const left = await quoteRedemption(programId, { memberId: 'r-1', invoiceTotalMinor: 100_000 });
  assert.deepEqual([left.body.available, left.body.points, left.body.limitedBy], [350, 350, 'available']);
});

test('a redemption quote refuses where the redemption would decline, follows merges, and writes nothing', async () => {
  const programId = await newProgram({
    redemption: { minPoints: 100, maxInvoiceShare: 0.5, cohortOrder: 'oldest_first' },
    adjustments: { approvalThresholdPoints: 1_000_000 },
  });
  const now = new Date().toISOString();
  for (const [memberId, amountMinor] of [
    ['s-1', 100_000],
    ['s-2', 5_000],
    ['s-3', 40_000],
  ] as const)
    assert.equal(
      (await accrue(programId, { memberId, invoiceId: `e-${memberId}`, amountMinor, occurredAt: now })).status,
      201,
    );
  const merged = await stack.call('POST', `/v1/programs/${programId}/members/s-3/merge`, {
    role: 'support',
    body: { intoMemberId: 's-1' },
  });
  assert.equal(merged.status, 201, JSON.stringify(merged.body));

  const before = await counts();
  // the share of 150 is 75 points, below the minimum of 100
  const below = await quoteRedemption(programId, { memberId: 's-1', invoiceTotalMinor: 150 });
  assert.deepEqual([below.status, below.body.error?.code], [422, 'below_minimum'], JSON.stringify(below.body));
  assert.equal(below.body.error.details.maxPointsForInvoice, 75);
  // 50 points, the minimum is 100
  const few = await quoteRedemption(programId, { memberId: 's-2', invoiceTotalMinor: 100_000 });
  assert.deepEqual([few.status, few.body.error?.code], [422, 'insufficient_points'], JSON.stringify(few.body));
  const unknown = await quoteRedemption(programId, { memberId: 'nobody', invoiceTotalMinor: 100_000 });
  assert.deepEqual([unknown.status, unknown.body.error?.code], [422, 'unknown_member'], JSON.stringify(unknown.body));
  // a merged member's id quotes the survivor's points (1,000 + 400)
  const survivor = await quoteRedemption(programId, { memberId: 's-3', invoiceTotalMinor: 100_000 });
  assert.equal(survivor.status, 200, JSON.stringify(survivor.body));
  assert.deepEqual(
    [survivor.body.memberId, survivor.body.requestedMemberId, survivor.body.available, survivor.body.points],
    ['s-1', 's-3', 1_400, 1_400],
  );
  const noProgram = await quoteRedemption(uniqueId('none'), { memberId: 's-1', invoiceTotalMinor: 100 });
  assert.equal(noProgram.status, 404);
  assert.deepEqual(await counts(), before, 'quotes write nothing');

  // the redemptions themselves decline the same ones
  const realBelow = await redeem(programId, { memberId: 's-1', points: 1_000, invoiceTotalMinor: 150 });
  assert.deepEqual([realBelow.status, realBelow.reason], ['declined', 'below_minimum'], JSON.stringify(realBelow));
  const realFew = await redeem(programId, { memberId: 's-2', points: 100, invoiceTotalMinor: 100_000 });
  assert.deepEqual([realFew.status, realFew.reason], ['declined', 'insufficient_points'], JSON.stringify(realFew));
  const realMerged = await redeem(programId, { memberId: 's-3', points: 1_400, invoiceTotalMinor: 100_000 });
  assert.deepEqual(
    [realMerged.status, realMerged.memberId, realMerged.pointsApplied],
    ['applied', 's-1', survivor.body.points],
    JSON.stringify(realMerged),
  );
});

test('quotes are for billing; bad input is 400 and an accrual quote needs no Idempotency-Key', async () => {
  const programId = await newProgram({});
  const body = { memberId: 'k-1', invoiceId: 'k-1', amountMinor: 100, occurredAt: new Date().toISOString() };
  const support = await stack.call('POST', `/v1/programs/${programId}/quotes/accrual`, { role: 'support', body });
  assert.deepEqual([support.status, support.body.error?.code], [403, 'forbidden']);
  const bad = await quoteRedemption(programId, { memberId: 'k-1', invoiceTotalMinor: -1 });
  assert.deepEqual([bad.status, bad.body.error?.code], [400, 'validation_failed']);
  const future = await quoteRedemption(programId, {
    memberId: 'k-1',
    invoiceTotalMinor: 100,
    occurredAt: new Date(Date.now() + 3_600_000).toISOString(),
  });
  assert.deepEqual([future.status, future.body.error?.code], [422, 'occurred_at_in_future']);
});
