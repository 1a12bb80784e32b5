import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { Pool } from 'pg';
import { createCloseActivities } from '../../activities/close';
import { glClient } from '../../activities/services/gl';
import { accrueBatch } from '../../db/ledger';
import { commitRedemption, holdRedemption } from '../../db/redemptions';
import { ApiError } from '../../domain/errors';
import { eventually, httpClient, programBody, startCloseStack, uniqueId, type CloseStack } from '../helpers/stack';

// Issue 13, defect 6: from the approval of a close on, new accruals and new cohorts start from its
// approved estimate (recorded on each accrual with the close that set it); the rule's rate is the
// prior before the first close, and accruals written before the approval are never repriced.
let stack: CloseStack;
let pool: Pool;
let call: ReturnType<typeof httpClient>;

beforeAll(async () => {
  stack = await startCloseStack(17);
  ({ pool, call } = stack);
});
afterAll(async () => {
  await stack.stop();
});

const accrue = (p: string, memberId: string, invoiceId: string, amountMinor: number, occurredAt: string) =>
  call('POST', `/v1/programs/${p}/accruals`, {
    role: 'billing',
    body: { memberId, invoiceId, amountMinor, occurredAt, jurisdiction: 'US-CA' },
  });
async function redeem(p: string, memberId: string, invoiceId: string, points: number, occurredAt: string) {
  const h = await holdRedemption(pool, {
    programId: p,
    invoiceId,
    redemptionId: randomUUID(),
    memberId,
    points,
    invoiceTotalMinor: 10_000_000,
    pointValueMinor: 100,
    minPoints: 1,
    maxInvoiceShareMillionths: '1000000',
    cohortOrder: 'oldest_first',
    occurredAt,
  });
  assert.equal(h.status, 'held');
  await commitRedemption(pool, p, invoiceId, 'test');
}
const awaitingApproval = (p: string, period: string) =>
  eventually(
    `${period} awaiting approval`,
    async () => {
      const s = (await call('GET', `/v1/programs/${p}/closes/${period}`, { role: 'controller' })).body;
      return s.step === 'awaiting_approval' ? s : null;
    },
    30_000,
  );
const accrualRow = async (p: string, invoiceId: string) =>
  (
    await pool.query(
      `select allocated_minor::int as allocated, redemption_rate::float8 as rate, rate_close, cohort
         from accruals where program_id = $1 and invoice_id = $2`,
      [p, invoiceId],
    )
  ).rows[0];
const cohortRate = async (p: string, cohort: string) =>
  (
    await pool.query(
      'select ultimate_redemption_rate::float8 as u from cohorts where program_id = $1 and cohort = $2',
      [p, cohort],
    )
  ).rows[0]?.u;
const accrualJournal = async (p: string) =>
  (
    await pool.query(
      `select j.reference, sum(l.credit_minor)::int as credit from journal_entries j join journal_lines l using (journal_entry_id)
        where j.program_id = $1 and j.kind = 'accrual' group by 1 order by 1`,
      [p],
    )
  ).rows;

describe('the approved estimate prices new points', () => {
  test('an accrual after the approval of a close uses its estimate and records the close; one before used the rule (0.8) and keeps it; a new cohort starts from the estimate', async () => {
    const p = uniqueId('px');
    // DESIGN.md's worked example: 40,000.00 earns 4,000 points worth 1.00 each
    const created = await call('POST', '/v1/programs', {
      body: programBody(p, {
        pointValueMinor: 100,
        earn: { points: 1, perAmountMinor: 1000 },
        expiry: { policy: 'rolling', window: 'P400D' },
      }),
    });
    assert.equal(created.status, 201);

    // before any close: the rule's 0.8 (a = 4,000,000 x 320,000 / 4,320,000 = 296,296.30)
    const q1 = await accrue(p, 'm', 'sale-q1', 4_000_000, '2026-01-15T00:00:00Z');
    assert.equal(q1.status, 201);
    assert.deepEqual(
      [q1.body.allocatedMinor, q1.body.expectedRedemptionRate, q1.body.rateSetByClose],
      [296_296, 0.8, null],
    );
    await redeem(p, 'm', 'r', 1000, '2026-02-15T00:00:00Z');
    const before = await accrue(p, 'm2', 'sale-q2-before', 4_000_000, '2026-04-15T00:00:00Z');
    assert.deepEqual([before.body.allocatedMinor, before.body.rateSetByClose], [296_296, null]);

    // the close of 2026-Q1 with an override of 0.9: proposed, not approved yet, prices nothing
    const started = await call('POST', `/v1/programs/${p}/closes`, {
      role: 'finance',
      body: { period: '2026-Q1', redemptionRateOverride: { rate: 0.9, justification: 'member survey' } },
    });
    assert.equal(started.status, 202);
    const proposed = await awaitingApproval(p, '2026-Q1');
    assert.deepEqual(proposed.proposal?.newPointsRate ?? null, { rate: '0.900000', source: 'override', cohort: null });
    const waiting = await accrue(p, 'm3', 'sale-q2-waiting', 4_000_000, '2026-04-20T00:00:00Z');
    assert.deepEqual([waiting.body.allocatedMinor, waiting.body.rateSetByClose], [296_296, null]);
    const approved = await call('POST', `/v1/programs/${p}/closes/2026-Q1/approve`, { role: 'controller' });
    assert.deepEqual([approved.status, approved.body.status], [200, 'locked'], JSON.stringify(approved.body));
    const journalBefore = await accrualJournal(p);

    // from the approval on: 0.9, recorded with the close (a = 4,000,000 x 360,000 / 4,360,000 = 330,275.23)
    const after = await accrue(p, 'm4', 'sale-q2-after', 4_000_000, '2026-05-01T00:00:00Z');
    assert.equal(after.status, 201, JSON.stringify(after.body));
    assert.deepEqual(
      [after.body.allocatedMinor, after.body.expectedRedemptionRate, after.body.rateSetByClose, after.body.cohort],
      [330_275, 0.9, '2026-Q1', '2026-Q2'],
    );
    assert.deepEqual(await accrualRow(p, 'sale-q2-after'), {
      allocated: 330_275,
      rate: 0.9,
      rate_close: '2026-Q1',
      cohort: '2026-Q2',
    });
    // a replay answers what was written
    const replay = await accrue(p, 'm4', 'sale-q2-after', 4_000_000, '2026-05-01T00:00:00Z');
    assert.deepEqual([replay.status, replay.body], [200, after.body]);

    // the accruals written before the approval are not repriced: their rate, close and journal stay
    for (const inv of ['sale-q1', 'sale-q2-before', 'sale-q2-waiting'])
      assert.deepEqual(
        [(await accrualRow(p, inv)).allocated, (await accrualRow(p, inv)).rate, (await accrualRow(p, inv)).rate_close],
        [296_296, 0.8, null],
        inv,
      );
    assert.deepEqual(
      (await accrualJournal(p)).filter((r) => r.reference !== 'invoice:sale-q2-after'),
      journalBefore,
    );
    // the cohort the close re-estimated carries its estimate; 2026-Q2, created before the approval, keeps its own
    assert.equal(await cohortRate(p, '2026-Q1'), 0.9);
    assert.equal(await cohortRate(p, '2026-Q2'), 0.8);

    // an item priced before the approval was booked (an API's cached estimate) is refused, nothing written,
    // and the API prices it again
    const stale = await accrueBatch(pool, [
      {
        programId: p,
        idemKey: 'stale-1',
        requestHash: 'h-stale',
        accrualId: randomUUID(),
        memberId: 'm9',
        invoiceId: 'sale-stale',
        amountMinor: '4000000',
        points: '4000',
        allocatedMinor: '296296',
        allocatedMicro: '296296296296',
        cohort: '2026-Q2',
        occurredAt: '2026-05-02T00:00:00.000Z',
        expiry: { policy: 'rolling', window: 'P400D' },
        expectedRedemptionRate: 0.8,
        rateClose: null,
        ruleVersion: 1,
        debitAccount: 'revenue',
        creditAccount: 'loyalty_contract_liability',
        actor: 'test',
      },
    ]);
    assert.ok(stale[0] instanceof ApiError && stale[0].code === 'estimate_changed', String(stale[0]));
    assert.equal(await accrualRow(p, 'sale-stale'), undefined);

    // a new cohort after the approval starts from the approved estimate, without a rule change
    const q3 = await accrue(p, 'm5', 'sale-q3', 4_000_000, '2026-08-01T00:00:00Z');
    assert.deepEqual(
      [q3.body.allocatedMinor, q3.body.expectedRedemptionRate, q3.body.rateSetByClose, q3.body.cohort],
      [330_275, 0.9, '2026-Q1', '2026-Q3'],
    );
    assert.equal(await cohortRate(p, '2026-Q3'), 0.9);
    const program = (await call('GET', `/v1/programs/${p}`, { role: 'billing' })).body;
    assert.equal(program.activeRuleVersion.version, 1, 'no rule change');
    assert.equal(program.expectedRedemptionRate, 0.8);

    // a close whose cohorts only kept their prior (no override, development not observed) sets no
    // estimate: the one in force stays
    await awaitingApprovalAfterStart(p, '2026-Q2');
    const approvedQ2 = await call('POST', `/v1/programs/${p}/closes/2026-Q2/approve`, { role: 'controller' });
    assert.equal(approvedQ2.body.status, 'locked');
    const q3b = await accrue(p, 'm6', 'sale-q3-b', 4_000_000, '2026-08-02T00:00:00Z');
    assert.deepEqual([q3b.body.allocatedMinor, q3b.body.rateSetByClose], [330_275, '2026-Q1']);

    // goodwill points are valued at the same approved estimate: 500 x 1.00 x 0.9, not the rule's 0.8
    const grant = await call('POST', `/v1/programs/${p}/adjustments`, {
      role: 'support',
      body: { memberId: 'm5', points: 500, reasonCode: 'goodwill' },
    });
    assert.equal(grant.status, 201, JSON.stringify(grant.body));
    const { rows } = await pool.query(
      `select l.account, l.credit_minor::int as credit from journal_entries j join journal_lines l using (journal_entry_id)
        where j.program_id = $1 and j.idempotency_key = $2 and l.credit_minor > 0`,
      [p, `adjust:${grant.body.adjustmentId}`],
    );
    assert.deepEqual(rows, [{ account: 'loyalty_contract_liability', credit: 45_000 }]);
  });
});

describe('the approved estimate lands with the booking', () => {
  // Review finding: the estimate was recorded after the booking's own transaction, and a failed or
  // matched-nothing update went unnoticed; a crash between the two left the booking pricing new
  // points at the old estimate. The booking and the estimate are one transaction now, checked.
  test('an estimate that cannot be recorded rolls the booking back; a different estimate for a booked close fails loudly; the approval then books once', async () => {
    const p = uniqueId('pa');
    assert.equal((await call('POST', '/v1/programs', { body: programBody(p, { pointValueMinor: 100 }) })).status, 201);
    assert.equal((await accrue(p, 'm', 'sale', 4_000_000, '2026-01-15T00:00:00Z')).status, 201);
    const started = await call('POST', `/v1/programs/${p}/closes`, {
      role: 'finance',
      body: { period: '2026-Q1', redemptionRateOverride: { rate: 0.9, justification: 'member survey' } },
    });
    assert.equal(started.status, 202);
    await awaitingApproval(p, '2026-Q1');
    const activities = createCloseActivities({
      pool,
      gl: glClient({ baseUrl: stack.sims.glUrl, timeoutMs: 1000 }),
    });
    const setRate = (rate: string) =>
      pool.query(
        `update closes set proposal = jsonb_set(proposal, '{newPointsRate,rate}', to_jsonb($3::text))
          where program_id = $1 and period = $2`,
        [p, '2026-Q1', rate],
      );
    const booked = async () =>
      (
        await pool.query(
          `select booked_at is not null as booked, points_rate::text as rate, gl_entry_id,
                  (select count(*)::int from journal_entries j where j.program_id = c.program_id and j.reference = 'close:2026-Q1') as entries
             from closes c where program_id = $1 and period = '2026-Q1'`,
          [p],
        )
      ).rows[0];
    const book = () =>
      activities.bookCatchUpAndPostToGl({ programId: p, period: '2026-Q1', approvedBy: 'test-controller' });

    // an estimate the closes table refuses (points_rate <= 1): nothing of the booking stays
    await setRate('1.5');
    await assert.rejects(book(), /closes_points_rate_check/);
    assert.deepEqual(await booked(), { booked: false, rate: null, gl_entry_id: null, entries: 0 });

    await setRate('0.900000');
    await book();
    const once = await booked();
    // no catch-up of its own (nothing redeemed yet): the close's GL entry is the one that carried
    // the quarter's days no daily posting had (none ran here)
    assert.deepEqual(
      [once.booked, once.rate, once.entries, once.gl_entry_id],
      [true, '0.900000', 0, `loyalty:${p}:close-rest:2026-Q1`],
    );
    // the same again (an activity retried): nothing more, and the close keeps the GL entry it posted
    await book();
    assert.deepEqual(await booked(), once);
    // another estimate for the close already booked: no row matches, and that is an error, not a no-op
    await setRate('0.850000');
    await assert.rejects(book(), /approved estimate 0.850000 .* was not recorded/);
    assert.deepEqual(await booked(), once);

    await setRate('0.900000');
    const approved = await call('POST', `/v1/programs/${p}/closes/2026-Q1/approve`, { role: 'controller' });
    assert.deepEqual([approved.status, approved.body.status], [200, 'locked'], JSON.stringify(approved.body));
    assert.deepEqual(await booked(), once);
    const after = await accrue(p, 'm2', 'sale-after', 4_000_000, '2026-04-15T00:00:00Z');
    assert.deepEqual([after.body.expectedRedemptionRate, after.body.rateSetByClose], [0.9, '2026-Q1']);
  });
});

async function awaitingApprovalAfterStart(p: string, period: string) {
  assert.equal((await call('POST', `/v1/programs/${p}/closes`, { role: 'finance', body: { period } })).status, 202);
  return awaitingApproval(p, period);
}
