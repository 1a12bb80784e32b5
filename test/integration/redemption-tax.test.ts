import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { Pool } from 'pg';
import { billingClient } from '../../activities/services/billing';
import { glClient } from '../../activities/services/gl';
import { readPeriodBooks } from '../../db/close-report';
import { periodFigures } from '../../domain/close-report';
import { quarterOf } from '../../domain/period';
import { httpClient, programBody, uniqueId, type TestWorker, startSagaStack, type SagaStack } from '../helpers/stack';

// Tax on redemptions end to end (issue 13, defect 9): the saga asks the tax service, stores the
// treatment on the redemption, sends it to billing with the credit, and books the output tax due on
// the part paid with points out of the released liability; give-backs take their share back; the
// reconciliation checks billing's credit carries the treatment. Real API, worker, database and
// simulators. The figures are docs/accounting.md's worked example.
let stack: SagaStack;
let pool: Pool;
let worker: TestWorker;
let call: ReturnType<typeof httpClient>;
let billing: ReturnType<typeof billingClient>;
let gl: ReturnType<typeof glClient>;
const tampered: string[] = [];

beforeAll(async () => {
  stack = await startSagaStack(17);
  ({ pool, worker, call } = stack);
  billing = billingClient({ baseUrl: stack.sims.billingUrl, timeoutMs: 1000 });
  gl = glClient({ baseUrl: stack.sims.glUrl, timeoutMs: 1000 });
});
afterAll(() => stack.stop(tampered));

const today = () => new Date().toISOString().slice(0, 10);

/**
 * A member who bought 2,500.00 in `jurisdiction` (2,500 points of 0.01, u = 0.8: allocation
 * 2,500.00 x 20.00 / 2,520.00 = 19.841269..., posted 19.84), and an invoice of 200.00 (120.00 and
 * 80.00) for them to pay 20.00 of with 2,000 points.
 */
async function setup(jurisdiction: string, rules: Record<string, unknown> = {}, earnedAt = new Date().toISOString()) {
  const programId = uniqueId('tax');
  const created = await call('POST', '/v1/programs', {
    body: programBody(programId, {
      chargebackWindow: 'PT30S',
      redemption: { minPoints: 100, maxInvoiceShare: 0.5, cohortOrder: 'oldest_first' },
      ...rules,
    }),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const invoiceId = uniqueId('inv');
  const earned = await call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    body: {
      memberId: 'm-1',
      invoiceId: `${invoiceId}-earn`,
      amountMinor: 250_000,
      occurredAt: earnedAt,
      jurisdiction,
    },
  });
  assert.equal(earned.status, 201, JSON.stringify(earned.body));
  await billing.createInvoice(
    {
      invoiceId,
      customerId: 'c-1',
      currency: 'USD',
      lines: [
        { description: 'Plan', amountMinor: 12_000 },
        { description: 'Add-on', amountMinor: 8_000 },
      ],
    },
    `inv-${invoiceId}`,
  );
  return { programId, invoiceId };
}

const redeem = async (programId: string, invoiceId: string, points = 2000) => {
  const res = await call('POST', `/v1/programs/${programId}/redemptions`, {
    role: 'billing',
    body: { invoiceId, memberId: 'm-1', points, invoiceTotalMinor: 20_000, occurredAt: new Date().toISOString() },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.status, 'applied', JSON.stringify(res.body));
  return res.body as { redemptionId: string; workflowId: string };
};

const readRedemption = async (programId: string, invoiceId: string) =>
  (await call('GET', `/v1/programs/${programId}/redemptions/${invoiceId}`, { role: 'support' })).body;

/** The subledger per account, net (credit positive), over the program's journals whose key starts with `prefix`. */
async function netByAccount(programId: string, prefix: string): Promise<Record<string, number>> {
  const { rows } = await pool.query(
    `select l.account, sum(l.credit_minor - l.debit_minor)::bigint as net
       from journal_entries j join journal_lines l using (journal_entry_id)
      where j.program_id = $1 and j.idempotency_key like $2 group by 1 order by 1`,
    [programId, `${prefix}%`],
  );
  return Object.fromEntries(rows.map((r) => [r.account, Number(r.net)]));
}

describe('tax on redemptions', () => {
  test('Minnesota (full price): the tax on the 20.00 paid with points, 1.38, comes out of the 19.84 released; revenue 18.46', async () => {
    const { programId, invoiceId } = await setup('US-MN');
    const r = await redeem(programId, invoiceId);
    const read = await readRedemption(programId, invoiceId);
    assert.deepEqual(
      [read.tax.jurisdiction, read.tax.treatment, read.tax.basis, read.tax.scheme, read.tax.rateMillionths],
      ['US-MN', 'consideration', 'law', 'own_store', 68_750],
    );
    assert.deepEqual(
      [read.tax.taxableBaseMinor, read.tax.totalTaxMinor, read.tax.taxOnCreditMinor],
      [20_000, 1375, 138],
    );
    assert.equal(read.tax.taxLines.length, 2);
    // the journal: debit the liability 19.84, credit revenue 18.46 and output tax 1.38
    assert.deepEqual(await netByAccount(programId, `redeem:${invoiceId}:`), {
      loyalty_contract_liability: -1984,
      loyalty_revenue: 1846,
      output_tax_payable: 138,
    });
    // the GL entry carries the same net lines
    const entry = await gl.getEntry(`loyalty:${programId}:redeem:${invoiceId}`);
    const lines = Object.fromEntries(entry.lines.map((l) => [l.account, l.creditMinor - l.debitMinor]));
    assert.deepEqual(lines, { loyalty_contract_liability: -1984, loyalty_revenue: 1846, output_tax_payable: 138 });
    // billing's credit is marked: a payment, tax due on the full price
    const credit = (await billing.getInvoice(invoiceId)).credits.find((c) => c.creditId === r.redemptionId)!;
    assert.deepEqual(credit.taxTreatment, { jurisdiction: 'US-MN', treatment: 'consideration' });

    // a lost chargeback gives the points back and takes the output tax back with them
    const cb = await call('POST', `/v1/programs/${programId}/chargebacks`, {
      role: 'billing',
      body: { invoiceId, chargebackId: 'cb-1', status: 'lost' },
    });
    assert.equal(cb.status, 202);
    assert.equal((await worker.client.workflow.getHandle(r.workflowId).result()).status, 'reversed');
    assert.deepEqual(await netByAccount(programId, `redeem-reversal:${invoiceId}:`), {
      loyalty_contract_liability: 1984,
      loyalty_revenue: -1846,
      output_tax_payable: -138,
    });
    // the redemption says what of its tax is still due: none
    const after = (await readRedemption(programId, invoiceId)).tax;
    assert.deepEqual([after.taxOnCreditMinor, after.taxReversedMinor, after.taxOnCreditOutMinor], [138, 138, 0]);
  });

  test('California (Regulation 1671.1): store points are a discount, no output tax on them; billing is told so', async () => {
    const { programId, invoiceId } = await setup('US-CA');
    const r = await redeem(programId, invoiceId);
    const read = await readRedemption(programId, invoiceId);
    assert.deepEqual(
      [read.tax.treatment, read.tax.taxableBaseMinor, read.tax.taxOnCreditMinor],
      ['discount', 18_000, 0],
    );
    assert.deepEqual(await netByAccount(programId, `redeem:${invoiceId}:`), {
      loyalty_contract_liability: -1984,
      loyalty_revenue: 1984,
    });
    const credit = (await billing.getInvoice(invoiceId)).credits.find((c) => c.creditId === r.redemptionId)!;
    assert.deepEqual(credit.taxTreatment, { jurisdiction: 'US-CA', treatment: 'discount' });
  });

  test("EU: an own-store scheme's points are a discount, a third party's consideration; a program's own setting wins", async () => {
    const own = await setup('DE');
    await redeem(own.programId, own.invoiceId);
    assert.deepEqual(
      [(await readRedemption(own.programId, own.invoiceId)).tax.treatment],
      ['discount'],
      'own_store is the default scheme',
    );
    const third = await setup('DE', { tax: { scheme: 'third_party' } });
    await redeem(third.programId, third.invoiceId);
    const t = (await readRedemption(third.programId, third.invoiceId)).tax;
    // 19% of the 12.00 and 8.00 shares of the credit: 2.28 + 1.52
    assert.deepEqual([t.treatment, t.basis, t.taxOnCreditMinor], ['consideration', 'law', 380]);
    assert.equal((await netByAccount(third.programId, `redeem:${third.invoiceId}:`)).output_tax_payable, 380);

    const set = await setup('US-CA', { tax: { treatments: { 'US-CA': 'consideration' } } });
    await redeem(set.programId, set.invoiceId);
    const s = (await readRedemption(set.programId, set.invoiceId)).tax;
    assert.deepEqual([s.treatment, s.basis, s.taxOnCreditMinor], ['consideration', 'program', 145]);
  });

  test("goodwill points' output tax comes out of what their release credited (revenue), not loyalty revenue", async () => {
    const programId = uniqueId('tax-gw');
    const created = await call('POST', '/v1/programs', {
      body: programBody(programId, {
        chargebackWindow: 'PT5S',
        adjustments: { approvalThresholdPoints: 5000 },
        redemption: { minPoints: 100, maxInvoiceShare: 0.5, cohortOrder: 'oldest_first' },
      }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // the member exists through a purchase of one point; the rest of what they redeem is goodwill
    const earned = await call('POST', `/v1/programs/${programId}/accruals`, {
      role: 'billing',
      body: { memberId: 'm-1', invoiceId: 'gw-earn', amountMinor: 100, occurredAt: new Date().toISOString() },
    });
    assert.equal(earned.status, 201, JSON.stringify(earned.body));
    const grant = await call('POST', `/v1/programs/${programId}/adjustments`, {
      role: 'support',
      body: { memberId: 'm-1', points: 2000, reasonCode: 'goodwill' },
    });
    assert.equal(grant.status, 201, JSON.stringify(grant.body));
    const invoiceId = uniqueId('inv');
    await billing.createInvoice(
      {
        invoiceId,
        customerId: 'c-1',
        currency: 'USD',
        lines: [
          { description: 'Plan', amountMinor: 12_000 },
          { description: 'Add-on', amountMinor: 8_000 },
        ],
      },
      `inv-${invoiceId}`,
    );
    const res = await call('POST', `/v1/programs/${programId}/redemptions`, {
      role: 'billing',
      body: {
        invoiceId,
        memberId: 'm-1',
        points: 2000,
        invoiceTotalMinor: 20_000,
        occurredAt: new Date().toISOString(),
        jurisdiction: 'US-MN',
      },
    });
    assert.equal(res.body.status, 'applied', JSON.stringify(res.body));
    // 1 point from the purchased cohort (its share of the tax rounds to 0), 1,999 from the goodwill
    // cohort, whose release went back to revenue (a reduction undone): so does its tax
    assert.deepEqual(await netByAccount(programId, `redeem:${invoiceId}:tax`), {
      revenue: -138,
      output_tax_payable: 138,
    });
  });

  test('points redeemed after their cohort recognised all it carries: their output tax is a cost, never negative revenue', async () => {
    const { programId, invoiceId } = await setup('US-MN');
    await redeem(programId, invoiceId);
    // the first 2,000 points reached N x u (2,500 x 0.8): the cohort recognised all 19.84 it carries
    const second = uniqueId('inv');
    await billing.createInvoice(
      { invoiceId: second, customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 20_000 }] },
      `inv-${second}`,
    );
    await redeem(programId, second, 500);
    // 500 x 6.875% = 34.375 -> 34, and the release of these 500 points is 0: all of it a cost
    assert.deepEqual(await netByAccount(programId, `redeem:${second}:tax`), {
      loyalty_expense: -34,
      output_tax_payable: 34,
    });
    assert.equal((await netByAccount(programId, `redeem:${second}:`)).loyalty_revenue ?? 0, 0);
    const read = (await readRedemption(programId, second)).tax;
    assert.deepEqual([read.taxOnCreditMinor, read.taxOnCreditOutMinor], [34, 34]);
  });

  test("revenue from the opening liability is net of the output tax on the opening cohorts' redemptions", async () => {
    // earned in the quarter before this one: the cohort's liability is in this quarter's opening balance
    const now = new Date();
    const lastQuarter = new Date(Date.UTC(now.getUTCFullYear(), Math.floor(now.getUTCMonth() / 3) * 3 - 1, 15));
    const { programId, invoiceId } = await setup('US-MN', {}, lastQuarter.toISOString());
    await redeem(programId, invoiceId);
    const period = quarterOf(now);
    const figures = periodFigures(programId, period, await readPeriodBooks(pool, programId, period));
    // 19.84 released from the opening liability, 1.38 of it output tax: 18.46 of revenue
    assert.equal(figures.liability.recognized.redemptionsMinor, 1984);
    assert.equal(figures.revenueFromOpeningBalanceMinor, 1846);
  });

  test('a bad tax setting is refused with a clear 400 and writes nothing', async () => {
    const programId = uniqueId('tax-bad');
    for (const tax of [
      { scheme: 'airline' },
      { treatments: { 'US-CA': 'tender' } },
      { treatments: { california: 'discount' } },
    ]) {
      const res = await call('POST', '/v1/programs', { body: programBody(programId, { tax }) });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'validation_failed');
    }
    assert.equal((await call('GET', `/v1/programs/${programId}`, { role: 'finance' })).status, 404);
  });

  test('an invoice lowered after the redemption: the points given back take their share of the tax back', async () => {
    const { programId, invoiceId } = await setup('US-MN');
    const r = await redeem(programId, invoiceId);
    // the invoice falls to 12.00: half of it is 6.00, so 1,400 of the 2,000 points go back
    await billing.adjustInvoice(invoiceId, [{ description: 'Plan', amountMinor: 1200 }], `adj-${invoiceId}`);
    const adj = await call('POST', `/v1/programs/${programId}/redemptions/${invoiceId}/adjustments`, {
      role: 'billing',
      body: { adjustmentId: 'a-1', invoiceTotalMinor: 1200, occurredAt: new Date().toISOString() },
    });
    assert.ok([200, 201].includes(adj.status), JSON.stringify(adj.body));
    assert.equal(adj.body.pointsReversed, 1400, JSON.stringify(adj.body));
    // 138 x 1,400 / 2,000 = 96.6 -> 97 back; 41 stays with the 600 points still spent
    assert.equal((await netByAccount(programId, `redeem-adjust:${invoiceId}:a-1:`)).output_tax_payable, -97);
    const left = (await readRedemption(programId, invoiceId)).tax;
    assert.deepEqual([left.taxReversedMinor, left.taxOnCreditOutMinor], [97, 41]);
    assert.ok(r.redemptionId);

    // the close report's tax effect for the quarter: one redemption whose credit is now 6.00, and
    // 1.38 - 0.97 = 0.41 of output tax, 6.875% of it
    const period = quarterOf(new Date());
    const figures = periodFigures(programId, period, await readPeriodBooks(pool, programId, period));
    assert.deepEqual(figures.taxEffect, [
      { jurisdiction: 'US-MN', treatment: 'consideration', redemptions: 1, creditMinor: 600, outputTaxMinor: 41 },
    ]);
  });

  test("the reconciliation finds a billing credit that does not carry the ledger's treatment", async () => {
    const { programId, invoiceId } = await setup('US-MN');
    await redeem(programId, invoiceId);
    const clean = await call('POST', `/v1/programs/${programId}/reconciliations`, {
      role: 'finance',
      body: { date: today() },
    });
    assert.equal(clean.body.differenceCount, 0, JSON.stringify(clean.body));
    // the ledger's record changed behind billing's back (test-only SQL): the two no longer agree
    tampered.push(programId);
    await pool.query(
      `update redemption_taxes set treatment = 'discount', tax_on_credit_minor = 0 where program_id = $1`,
      [programId],
    );
    const run = await call('POST', `/v1/programs/${programId}/reconciliations`, {
      role: 'finance',
      body: { date: today() },
    });
    assert.deepEqual(
      run.body.differences.map((d: { reason: string; invoiceId: string }) => [d.reason, d.invoiceId]),
      [['tax_treatment_mismatch', invoiceId]],
    );
  });
});
