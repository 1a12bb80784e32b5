import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { Pool } from 'pg';
import { billingClient } from '../../activities/services/billing';
import { commitRedemption, holdRedemption } from '../../db/redemptions';
import type { CloseReport } from '../../domain/close-report';
import { quarterOf } from '../../domain/period';
import { eventually, httpClient, programBody, startCloseStack, uniqueId, type CloseStack } from '../helpers/stack';

// The worked examples of docs/accounting.md ("Worked examples"), reproduced to the minor unit
// through the API, the database functions and the close workflow. Every figure asserted here is
// one the memo prints; if the code changes a booking, the memo is wrong and this file says so.
//
// All examples use one program shape: a point is worth 0.05 (5 minor units), a purchase earns 2
// points per 1.00, and 75% of points are expected to be redeemed.
let stack: CloseStack;
let pool: Pool;
let call: ReturnType<typeof httpClient>;

beforeAll(async () => {
  stack = await startCloseStack(1313);
  ({ pool, call } = stack);
});
afterAll(async () => {
  await stack.stop();
});

async function program(overrides: Record<string, unknown> = {}) {
  const p = uniqueId('ex');
  const created = await call('POST', '/v1/programs', {
    body: programBody(p, {
      pointValueMinor: 5,
      earn: { points: 2, perAmountMinor: 100 },
      expectedRedemptionRate: 0.75,
      expiry: { policy: 'rolling', window: 'P400D' },
      ...overrides,
    }),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return p;
}
const accrue = (p: string, memberId: string, invoiceId: string, amountMinor: number, occurredAt: string) =>
  call('POST', `/v1/programs/${p}/accruals`, {
    role: 'billing',
    body: { memberId, invoiceId, amountMinor, occurredAt, jurisdiction: 'US-CA', storeId: 'store-1' },
  });
async function redeem(p: string, memberId: string, invoiceId: string, points: number, occurredAt: string) {
  const h = await holdRedemption(pool, {
    programId: p,
    invoiceId,
    redemptionId: randomUUID(),
    memberId,
    points,
    invoiceTotalMinor: 10_000_000,
    pointValueMinor: 5,
    minPoints: 1,
    maxInvoiceShareMillionths: '1000000',
    cohortOrder: 'oldest_first',
    occurredAt,
  });
  assert.equal(h.status, 'held', JSON.stringify(h));
  await commitRedemption(pool, p, invoiceId, 'test');
}
async function closeQuarter(p: string, period: string, override?: { rate: number; justification: string }) {
  const started = await call('POST', `/v1/programs/${p}/closes`, {
    role: 'finance',
    body: { period, ...(override ? { redemptionRateOverride: override } : {}) },
  });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  await eventually(
    `${period} awaiting approval`,
    async () =>
      (await call('GET', `/v1/programs/${p}/closes/${period}`, { role: 'controller' })).body.step ===
      'awaiting_approval',
    30_000,
  );
  const approved = await call('POST', `/v1/programs/${p}/closes/${period}/approve`, { role: 'controller' });
  assert.deepEqual([approved.status, approved.body.status], [200, 'locked'], JSON.stringify(approved.body));
  return (await call('GET', `/v1/programs/${p}/closes/${period}/report`, { role: 'finance' })).body as CloseReport;
}
/** Every journal line of the program, in order: [kind, account, debit, credit, cohort]. */
const journal = async (p: string) =>
  (
    await pool.query(
      `select j.kind, l.account, l.debit_minor::int as d, l.credit_minor::int as c, l.cohort
         from journal_entries j join journal_lines l using (journal_entry_id)
        where j.program_id = $1 order by j.journal_entry_id, l.line_no`,
      [p],
    )
  ).rows.map((r) => [r.kind, r.account, r.d, r.c, r.cohort]);
/** Net credit per account over the program's journal (accounts that net to zero left out). */
const netCredit = async (p: string) =>
  Object.fromEntries(
    (
      await pool.query(
        `select l.account, sum(l.credit_minor - l.debit_minor)::int as net
           from journal_entries j join journal_lines l using (journal_entry_id)
          where j.program_id = $1 group by 1 having sum(l.credit_minor - l.debit_minor) <> 0 order by 1`,
        [p],
      )
    ).rows.map((r) => [r.account, r.net]),
  );
/** A cohort's figures as the database carries them. */
const cohort = async (p: string, name: string) =>
  (
    await pool.query(
      `select (select sum(points_issued - points_revoked) from cohort_stripes s where s.program_id = c.program_id and s.cohort = c.cohort)::int as n,
              (select sum(points_redeemed) from cohort_stripes s where s.program_id = c.program_id and s.cohort = c.cohort)::int as r,
              (select sum(allocated_minor - allocated_reversed_minor) from cohort_stripes s where s.program_id = c.program_id and s.cohort = c.cohort)::int as posted,
              (select sum(allocated_micro - allocated_reversed_micro) from cohort_stripes s where s.program_id = c.program_id and s.cohort = c.cohort)::text as micro,
              recognized_minor::int as recognized, ultimate_redemption_rate::text as u, liability_account as account
         from cohorts c where program_id = $1 and cohort = $2`,
      [p, name],
    )
  ).rows[0];

describe('docs/accounting.md, worked examples', () => {
  test('Examples 1 and 2: a first close of one young cohort keeps the prior; a lower estimate catches up cumulatively and prices new points', async () => {
    const p = await program();
    // Example 1. 500.00 earns 1,000 points: S = 1,000 x 5 x 0.75 = 3,750; a = 50,000 x 3,750 / 53,750
    const sale = await accrue(p, 'm1', 'ex1-sale', 50_000, '2026-01-20T00:00:00Z');
    assert.equal(sale.status, 201, JSON.stringify(sale.body));
    assert.deepEqual(
      [sale.body.points, sale.body.allocatedMinor, sale.body.cohort, sale.body.expectedRedemptionRate],
      [1_000, 3_488, '2026-Q1', 0.75],
    );
    await redeem(p, 'm1', 'ex1-spend', 300, '2026-02-10T00:00:00Z'); // 300 points pay 15.00
    assert.deepEqual(await cohort(p, '2026-Q1'), {
      n: 1_000,
      r: 300,
      posted: 3_488,
      micro: '3488372093', // 3,488.372093 minor units, carried exactly
      recognized: 1_395, // round(3,488.372093 x 300 / 750) = round(1,395.348837)
      u: '0.750000',
      account: 'loyalty_contract_liability',
    });
    const q1 = await closeQuarter(p, '2026-Q1');
    const [a1] = q1.assumptions.cohorts;
    assert.deepEqual(
      [a1!.cohort, a1!.method, a1!.rate, a1!.priorRate, a1!.lowerBound, a1!.upperBound, a1!.bounded, a1!.catchUpMinor],
      ['2026-Q1', 'prior', 0.75, 0.75, 0.3, 1, null, 0],
    );
    assert.match(
      a1!.reason!,
      /development beyond age 0 not observed: no cohort is older, and no tail factor is approved/,
    );
    assert.deepEqual(q1.liability, {
      openingMinor: 0,
      issuedMinor: 3_488,
      recognizedMinor: 1_395,
      recognized: { redemptionsMinor: 1_395, breakageMinor: 0, estimateChangeMinor: 0 },
      adjustedMinor: 0,
      closingMinor: 2_093,
    });
    assert.equal(q1.revenueFromOpeningBalanceMinor, 0);

    // Example 2. The 2026-Q2 close with finance's estimate of 0.60 (within R/N = 0.30 .. 1):
    // recognised to date round(3,488.372093 x 300 / 600) = 1,744, a catch-up of 1,744 - 1,395 = +349
    const q2 = await closeQuarter(p, '2026-Q2', { rate: 0.6, justification: 'example 2: fewer redeem than planned' });
    const [a2] = q2.assumptions.cohorts;
    assert.deepEqual(
      [a2!.method, a2!.rate, a2!.priorRate, a2!.lowerBound, a2!.upperBound, a2!.bounded, a2!.catchUpMinor],
      ['override', 0.6, 0.75, 0.3, 1, null, 349],
    );
    assert.deepEqual(q2.liability, {
      openingMinor: 2_093,
      issuedMinor: 0,
      recognizedMinor: 349,
      recognized: { redemptionsMinor: 0, breakageMinor: 0, estimateChangeMinor: 349 },
      adjustedMinor: 0,
      closingMinor: 1_744,
    });
    assert.equal(q2.revenueFromOpeningBalanceMinor, 349, 'the catch-up came out of the opening liability');
    const { rows: catchUp } = await pool.query(
      `select j.occurred_at, j.reference from journal_entries j where j.program_id = $1 and j.idempotency_key = 'close:2026-Q2:2026-Q1'`,
      [p],
    );
    assert.deepEqual(
      catchUp.map((r) => [r.occurred_at.toISOString(), r.reference]),
      [['2026-06-30T23:59:59.999Z', 'close:2026-Q2']],
      "dated at the quarter's last instant",
    );
    assert.deepEqual(await journal(p), [
      ['accrual', 'revenue', 3_488, 0, null],
      ['accrual', 'loyalty_contract_liability', 0, 3_488, '2026-Q1'],
      ['recognition', 'loyalty_contract_liability', 1_395, 0, '2026-Q1'],
      ['recognition', 'loyalty_revenue', 0, 1_395, '2026-Q1'],
      ['recognition', 'loyalty_contract_liability', 349, 0, '2026-Q1'],
      ['recognition', 'loyalty_revenue', 0, 349, '2026-Q1'],
    ]);

    // the approved 0.60 prices the next purchase: S = 1,000 x 5 x 0.6 = 3,000; a = 50,000 x 3,000 / 53,000
    const next = await accrue(p, 'm2', 'ex2-sale', 50_000, '2026-08-15T00:00:00Z');
    assert.equal(next.status, 201, JSON.stringify(next.body));
    assert.deepEqual(
      [next.body.allocatedMinor, next.body.expectedRedemptionRate, next.body.rateSetByClose, next.body.cohort],
      [2_830, 0.6, '2026-Q2', '2026-Q3'],
    );
    assert.equal((await cohort(p, '2026-Q3')).micro, '2830188679');
    assert.equal((await cohort(p, '2026-Q1')).u, '0.600000');
  });

  test('Example 3: a refund after the points were spent: only the points revoked give up allocation; the shortfall stays with the spent points', async () => {
    const p = await program();
    await accrue(p, 'a', 'ex3-a', 50_000, '2026-10-05T00:00:00Z'); // 1,000 points, 3,488 posted, 3,488.372093 exact
    const b = await accrue(p, 'b', 'ex3-b', 25_000, '2026-10-06T00:00:00Z'); // 500 points: a = 25,000 x 1,875 / 26,875
    assert.deepEqual([b.body.points, b.body.allocatedMinor], [500, 1_744]);
    await redeem(p, 'a', 'ex3-spend', 800, '2026-10-20T00:00:00Z');
    assert.deepEqual(await cohort(p, '2026-Q4'), {
      n: 1_500,
      r: 800,
      posted: 5_232,
      micro: '5232558140',
      recognized: 3_721, // round(5,232.558140 x 800 / 1,125) = round(3,720.930233)
      u: '0.750000',
      account: 'loyalty_contract_liability',
    });
    // half of A's purchase is refunded: 500 points to revoke, 200 left to A, a shortfall of 300
    const refund = await call('POST', `/v1/programs/${p}/refunds`, {
      role: 'billing',
      body: {
        memberId: 'a',
        invoiceId: 'ex3-a',
        refundId: 'ex3-refund',
        amountMinor: 25_000,
        occurredAt: '2026-11-02T00:00:00Z',
      },
    });
    assert.equal(refund.status, 201, JSON.stringify(refund.body));
    // the refund's share of the allocation, round(3,488 x 1/2) = 1,744, split over its 500 points:
    // the 200 revoked give up round(1,744 x 200 / 500) = 698
    assert.deepEqual(
      [refund.body.pointsRevoked, refund.body.shortfallPoints, refund.body.allocatedReversedMinor, refund.body.balance],
      [200, 300, 698, 0],
    );
    // N 1,300, A 5,232.558140 - 697.674419 = 4,534.883721: round(4,534.883721 x 800 / 975) = 3,721, unchanged
    assert.deepEqual(await cohort(p, '2026-Q4'), {
      n: 1_300,
      r: 800,
      posted: 4_534,
      micro: '4534883721',
      recognized: 3_721,
      u: '0.750000',
      account: 'loyalty_contract_liability',
    });
    const lines = await journal(p);
    assert.deepEqual(
      lines.filter(([kind]) => kind === 'refund'),
      [
        ['refund', 'loyalty_contract_liability', 698, 0, '2026-Q4'],
        ['refund', 'revenue', 0, 698, null],
      ],
    );
    assert.equal(lines.filter(([kind]) => kind === 'recognition').length, 2, 'the refund re-measured: nothing to post');
    // the liability left, 4,534 - 3,721 = 813, is B's 500 points and A's none: A's 800 spent points
    // keep 3,721 recognised; B's share of the liability (1,744 posted) is what it was
    assert.deepEqual(await netCredit(p), {
      loyalty_contract_liability: 813,
      loyalty_revenue: 3_721,
      revenue: -4_534,
    });
  });

  test('Example 4: goodwill points under revenue_reduction and under marketing', async () => {
    const goodwill = `${quarterOf(new Date())}-goodwill`;
    const run = async (treatment: 'revenue_reduction' | 'marketing') => {
      const p = await program({ adjustments: { approvalThresholdPoints: 1_000, goodwillTreatment: treatment } });
      const bought = new Date(Date.now() - 60_000);
      const purchased = quarterOf(bought);
      // 50.00 earns 100 points: a = 5,000 x 375 / 5,375 = 348.837209, posted 3.49
      const sale = await accrue(p, 'g', 'ex4-sale', 5_000, bought.toISOString());
      assert.deepEqual([sale.body.points, sale.body.allocatedMinor], [100, 349]);
      // 400 points of goodwill: 400 x 5 x 0.75 = 1,500
      const grant = await call('POST', `/v1/programs/${p}/adjustments`, {
        role: 'support',
        body: { memberId: 'g', points: 400, reasonCode: 'goodwill', comment: 'late delivery' },
      });
      assert.deepEqual([grant.status, grant.body.status], [201, 'applied'], JSON.stringify(grant.body));
      // 300 points spent, oldest cohort first: the 100 purchased (the cohort completes) and 200 of the goodwill
      await redeem(p, 'g', 'ex4-spend', 300, new Date().toISOString());
      const gw = await cohort(p, goodwill);
      assert.deepEqual(
        [gw.n, gw.r, gw.posted, gw.micro, gw.recognized],
        [400, 200, 1_500, '1500000000', 1_000], // 1,500 x 200 / (400 x 0.75)
      );
      assert.deepEqual((await cohort(p, purchased)).recognized, 349);
      return { p, purchased, gw, lines: await journal(p), net: await netCredit(p) };
    };

    const reduction = await run('revenue_reduction');
    const bought = reduction.purchased;
    assert.equal(reduction.gw.account, 'loyalty_contract_liability');
    assert.deepEqual(reduction.lines, [
      ['accrual', 'revenue', 349, 0, null],
      ['accrual', 'loyalty_contract_liability', 0, 349, bought],
      ['accrual', 'revenue', 1_500, 0, null], // the grant: a reduction of revenue
      ['accrual', 'loyalty_contract_liability', 0, 1_500, goodwill],
      ['recognition', 'loyalty_contract_liability', 349, 0, bought], // every purchased point redeemed
      ['recognition', 'loyalty_revenue', 0, 349, bought],
      ['recognition', 'loyalty_contract_liability', 1_000, 0, goodwill],
      ['recognition', 'revenue', 0, 1_000, goodwill], // released back to revenue, never loyalty revenue
    ]);
    assert.deepEqual(reduction.net, {
      loyalty_contract_liability: 500, // the goodwill points still expected: 1,500 - 1,000
      loyalty_revenue: 349, // the purchased points, all redeemed
      revenue: -849, // -349 allocated to the points bought, -1,500 granted, +1,000 released back
    });

    const marketing = await run('marketing');
    assert.equal(marketing.gw.account, 'loyalty_provision');
    assert.deepEqual(marketing.lines, [
      ['accrual', 'revenue', 349, 0, null],
      ['accrual', 'loyalty_contract_liability', 0, 349, marketing.purchased],
      ['accrual', 'loyalty_expense', 1_500, 0, null], // the grant: a cost accrual
      ['accrual', 'loyalty_provision', 0, 1_500, goodwill],
      ['recognition', 'loyalty_contract_liability', 349, 0, marketing.purchased],
      ['recognition', 'loyalty_revenue', 0, 349, marketing.purchased],
      ['recognition', 'loyalty_provision', 1_000, 0, goodwill],
      ['recognition', 'loyalty_expense', 0, 1_000, goodwill],
    ]);
    assert.deepEqual(marketing.net, {
      loyalty_expense: -500,
      loyalty_provision: 500,
      loyalty_revenue: 349,
      revenue: -349,
    });
  });

  test('Example 5: a redemption in a consideration jurisdiction (US-MN): the tax on the credit comes out of the released liability', async () => {
    // points worth 0.01, 10 per 1.00, 80% expected (this example's own program)
    const p = await program({
      pointValueMinor: 1,
      earn: { points: 10, perAmountMinor: 100 },
      expectedRedemptionRate: 0.8,
    });
    // 250.00 earns 2,500 points: S = 2,500 x 1 x 0.8 = 2,000; a = 25,000 x 2,000 / 27,000 = 1,851.851852
    const earned = await call('POST', `/v1/programs/${p}/accruals`, {
      role: 'billing',
      body: {
        memberId: 'mn',
        invoiceId: 'ex5-sale',
        amountMinor: 25_000,
        occurredAt: new Date().toISOString(),
        jurisdiction: 'US-MN',
      },
    });
    assert.deepEqual([earned.status, earned.body.points, earned.body.allocatedMinor], [201, 2_500, 1_852]);
    const billing = billingClient({ baseUrl: stack.sims.billingUrl, timeoutMs: 1000 });
    const invoiceId = uniqueId('ex5-inv');
    await billing.createInvoice(
      {
        invoiceId,
        customerId: 'mn',
        currency: 'USD',
        lines: [
          { description: 'Plan', amountMinor: 12_000 },
          { description: 'Add-on', amountMinor: 8_000 },
        ],
      },
      `inv-${invoiceId}`,
    );
    // 2,000 points pay 20.00 of the 200.00 invoice
    const redeemed = await call('POST', `/v1/programs/${p}/redemptions`, {
      role: 'billing',
      body: {
        invoiceId,
        memberId: 'mn',
        points: 2_000,
        invoiceTotalMinor: 20_000,
        occurredAt: new Date().toISOString(),
      },
    });
    assert.deepEqual([redeemed.status, redeemed.body.status], [201, 'applied'], JSON.stringify(redeemed.body));
    const { tax } = (await call('GET', `/v1/programs/${p}/redemptions/${invoiceId}`, { role: 'support' })).body;
    assert.deepEqual(
      [tax.jurisdiction, tax.treatment, tax.basis, tax.rateMillionths, tax.totalTaxMinor, tax.taxOnCreditMinor],
      ['US-MN', 'consideration', 'law', 68_750, 1_375, 138], // 13.75 on the full price; round(2,000 x 0.06875) = round(137.5)
    );
    // the 2,000 points are N x u: the cohort releases all 18.52 posted; 1.38 of it is output tax
    const { rows } = await pool.query(
      `select j.kind, l.account, l.debit_minor::int as d, l.credit_minor::int as c
         from journal_entries j join journal_lines l using (journal_entry_id)
        where j.program_id = $1 and j.idempotency_key like $2 order by j.journal_entry_id, l.line_no`,
      [p, `redeem:${invoiceId}:%`],
    );
    assert.deepEqual(
      rows.map((r) => [r.kind, r.account, r.d, r.c]),
      [
        ['recognition', 'loyalty_contract_liability', 1_852, 0],
        ['recognition', 'loyalty_revenue', 0, 1_852],
        ['redemption_tax', 'loyalty_revenue', 138, 0],
        ['redemption_tax', 'output_tax_payable', 0, 138],
      ],
    );
    assert.deepEqual(await netCredit(p), {
      loyalty_revenue: 1_714, // 18.52 - 1.38: revenue net of tax
      output_tax_payable: 138,
      revenue: -1_852,
    });
  });
});
