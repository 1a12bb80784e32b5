import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, test } from 'vitest';
import type { Pool } from 'pg';
import { expireMember, getMember } from '../../db/ledger';
import {
  adjustRedemption,
  commitRedemption,
  holdRedemption,
  releaseRedemption,
  reverseRedemption,
  type HoldRequest,
} from '../../db/redemptions';
import { verifyInvariants } from '../../db/verify';
import {
  freshDatabase,
  rewriteAsLegacy,
  httpClient,
  programBody,
  startApi,
  uniqueId,
  type TestApi,
} from '../helpers/stack';

// The ledger side of redemptions (issue 3's saga drives it): hold, release, commit, reverse.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let api: TestApi;
let call: ReturnType<typeof httpClient>;

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  api = await startApi(pool);
  call = httpClient(api);
});
afterAll(async () => {
  const result = await verifyInvariants(pool);
  await api.close();
  await db.drop();
  assert.deepEqual(result.violations, []);
});

async function program(overrides: Record<string, unknown> = {}) {
  const programId = uniqueId('r');
  assert.equal((await call('POST', '/v1/programs', { body: programBody(programId, overrides) })).status, 201);
  return programId;
}
const accrue = (programId: string, memberId: string, invoiceId: string, amountMinor: number, occurredAt: string) =>
  call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    body: { memberId, invoiceId, amountMinor, occurredAt },
  });
const hold = (programId: string, o: Partial<HoldRequest> & { invoiceId: string; memberId: string; points: number }) =>
  holdRedemption(pool, {
    programId,
    redemptionId: randomUUID(),
    invoiceTotalMinor: 100_000,
    pointValueMinor: 1,
    minPoints: 100,
    maxInvoiceShareMillionths: '1000000',
    cohortOrder: 'oldest_first',
    occurredAt: new Date().toISOString(),
    ...o,
  });

test('hold caps by availability, invoice share and minimum; declines write nothing', async () => {
  const p = await program();
  await accrue(p, 'm', 'a', 50_000, '2026-10-01T00:00:00Z'); // 500 points
  assert.deepEqual(await hold(p, { invoiceId: 'x0', memberId: 'ghost', points: 100 }), {
    status: 'declined',
    reason: 'unknown_member',
  });
  const tooFew = await hold(p, { invoiceId: 'x1', memberId: 'm', points: 50 });
  assert.deepEqual([tooFew.status, tooFew.reason], ['declined', 'below_minimum']);
  const capped = await hold(p, {
    invoiceId: 'x2',
    memberId: 'm',
    points: 400,
    invoiceTotalMinor: 600,
    maxInvoiceShareMillionths: '500000',
  });
  assert.deepEqual([capped.status, capped.pointsApplied, capped.creditMinor], ['held', 300, 300]); // half of a 600 invoice
  const rest = await hold(p, { invoiceId: 'x3', memberId: 'm', points: 1000 });
  assert.deepEqual([rest.status, rest.pointsApplied], ['held', 200]); // only what the first hold left
  const none = await hold(p, { invoiceId: 'x4', memberId: 'm', points: 100 });
  assert.deepEqual([none.status, none.reason], ['declined', 'insufficient_points']);
  const again = await hold(p, { invoiceId: 'x2', memberId: 'm', points: 999 });
  assert.deepEqual([again.existing, again.pointsApplied], [true, 300], 'one invoice, one redemption');
  const member = await getMember(pool, p, 'm');
  assert.deepEqual([member!.balance, member!.held, member!.available], [500, 500, 0]);
  const { rows } = await pool.query(`select count(*)::int as n from redemptions where program_id = $1`, [p]);
  assert.equal(rows[0].n, 2);
});

test('release gives the points back; commit spends them and recognises revenue; reversal undoes it', async () => {
  // The worked example of DESIGN.md: 4,000 points worth 1.00, 80% expected; 1,000 redeemed recognise 925.93.
  const p = await program({ pointValueMinor: 100, earn: { points: 1, perAmountMinor: 1000 } });
  await accrue(p, 'm', 'sale', 4_000_000, '2026-07-15T00:00:00Z');
  const held = await hold(p, {
    invoiceId: 'inv-r',
    memberId: 'm',
    points: 1000,
    invoiceTotalMinor: 500_000,
    pointValueMinor: 100,
  });
  assert.deepEqual([held.status, held.pointsApplied, held.creditMinor], ['held', 1000, 100_000]);
  const released = await releaseRedemption(pool, p, 'inv-r', 'billing_failed');
  assert.deepEqual([released.status, released.reason], ['declined', 'billing_failed']);
  assert.equal((await getMember(pool, p, 'm'))!.available, 4000);
  await assert.rejects(commitRedemption(pool, p, 'inv-r', 'test'), /the redemption is declined/);

  await hold(p, { invoiceId: 'inv-s', memberId: 'm', points: 1000, invoiceTotalMinor: 500_000, pointValueMinor: 100 });
  const applied = await commitRedemption(pool, p, 'inv-s', 'test');
  assert.equal(applied.status, 'applied');
  assert.equal((await commitRedemption(pool, p, 'inv-s', 'test')).status, 'applied', 'commit is idempotent');
  const m = await getMember(pool, p, 'm');
  assert.deepEqual([m!.balance, m!.held], [3000, 0]);
  const revenue = async () =>
    (
      await pool.query(
        `select coalesce(sum(l.credit_minor - l.debit_minor), 0)::int as r from journal_entries j join journal_lines l using (journal_entry_id)
      where j.program_id = $1 and l.account = 'loyalty_revenue'`,
        [p],
      )
    ).rows[0].r;
  assert.equal(await revenue(), 92_593);

  const reversed = await reverseRedemption(pool, p, 'inv-s', new Date().toISOString(), 'test', 'chargeback_lost');
  assert.equal(reversed.status, 'reversed');
  assert.equal(
    (await reverseRedemption(pool, p, 'inv-s', new Date().toISOString(), 'test', 'chargeback_lost')).status,
    'reversed',
    'reversal is idempotent',
  );
  assert.equal((await getMember(pool, p, 'm'))!.balance, 4000);
  assert.equal(await revenue(), 0);
});

test('pro rata takes from every open cohort; expiry leaves held points alone', async () => {
  const p = await program({
    redemption: { minPoints: 1, maxInvoiceShare: 1, cohortOrder: 'pro_rata' },
    expiry: { policy: 'rolling', window: 'P400D' },
  });
  await accrue(p, 'm', 'q2', 30_000, '2026-05-01T00:00:00Z'); // 300 in 2026-Q2
  await accrue(p, 'm', 'q3', 10_000, '2026-08-01T00:00:00Z'); // 100 in 2026-Q3
  const held = await hold(p, {
    invoiceId: 'pr',
    memberId: 'm',
    points: 100,
    minPoints: 1,
    cohortOrder: 'pro_rata',
    occurredAt: '2026-09-01T00:00:00Z',
  });
  assert.deepEqual(held.cohorts, { '2026-Q2': 75, '2026-Q3': 25 });
  const expired = await expireMember(pool, p, 'm', '2028-01-01T00:00:00Z', 'test');
  assert.equal(expired.expiredPoints, 300);
  const m = await getMember(pool, p, 'm');
  assert.deepEqual([m!.balance, m!.held, m!.available], [100, 100, 0]);
  assert.equal((await commitRedemption(pool, p, 'pr', 'test')).status, 'applied');
  assert.equal((await getMember(pool, p, 'm'))!.balance, 0);
});

test("a merged member's id redeems the survivor's points; a reversal after a merge returns the points to the survivor", async () => {
  const p = await program();
  await accrue(p, 'a', 'ia', 50_000, '2026-10-01T00:00:00Z');
  await accrue(p, 'b', 'ib', 10_000, '2026-10-01T00:00:00Z');
  await hold(p, { invoiceId: 'rb', memberId: 'b', points: 100 });
  await commitRedemption(pool, p, 'rb', 'test');
  assert.equal(
    (await call('POST', `/v1/programs/${p}/members/b/merge`, { role: 'support', body: { intoMemberId: 'a' } })).status,
    201,
  );
  // as an accrual for b earns on a (issue 14, item 7: merges resolve)
  const onSurvivor = await hold(p, { invoiceId: 'rb2', memberId: 'b', points: 100 });
  assert.deepEqual([onSurvivor.status, onSurvivor.memberId], ['held', 'a']);
  assert.deepEqual([(await getMember(pool, p, 'a'))!.held, (await getMember(pool, p, 'b'))!.held], [100, 0]);
  await releaseRedemption(pool, p, 'rb2', 'compensated');
  await reverseRedemption(pool, p, 'rb', new Date().toISOString(), 'test', 'chargeback_lost');
  assert.equal((await getMember(pool, p, 'a'))!.balance, 600);
});

test('a hold released after the deadline passed: its points expire then (expiry skipped them only because they were held)', async () => {
  const p = await program({ expiry: { policy: 'rolling', window: 'P30D' } });
  await accrue(p, 'm', 'e1', 50_000, '2026-01-01T00:00:00Z'); // 500 points, deadline 2026-01-31
  await hold(p, { invoiceId: 'late', memberId: 'm', points: 200, occurredAt: '2026-01-20T00:00:00Z' });
  assert.equal((await expireMember(pool, p, 'm', '2026-02-01T00:00:00Z', 'test')).expiredPoints, 300);
  await releaseRedemption(pool, p, 'late', 'compensated');
  const m = await getMember(pool, p, 'm');
  assert.deepEqual([m!.balance, m!.held, m!.available], [0, 0, 0]);
  const { rows } = await pool.query(`select type, points from ledger_entries where program_id = $1 order by entry_id`, [
    p,
  ]);
  assert.deepEqual(
    rows.map((r) => [r.type, Number(r.points)]),
    [
      ['earn', 500],
      ['expire', -300],
      ['expire', -200],
    ],
  );
  await releaseRedemption(pool, p, 'late', 'compensated'); // idempotent: nothing expires twice
  assert.equal((await getMember(pool, p, 'm'))!.balance, 0);

  // released before any expiry: the points stay
  await accrue(p, 'n', 'e2', 50_000, new Date().toISOString());
  await hold(p, { invoiceId: 'early', memberId: 'n', points: 200 });
  await releaseRedemption(pool, p, 'early', 'compensated');
  assert.equal((await getMember(pool, p, 'n'))!.available, 500);
});

test('an invoice lowered below its credit gives back the excess points in proportion to the cohorts; a reversal then gives back the rest', async () => {
  const p = await program({ expiry: { policy: 'rolling', window: 'P400D' } });
  await accrue(p, 'm', 'q2', 150_000, '2026-05-01T00:00:00Z'); // 1,500 in 2026-Q2
  await accrue(p, 'm', 'q3', 500_000, '2026-08-01T00:00:00Z'); // 5,000 in 2026-Q3
  await hold(p, {
    invoiceId: 'big',
    memberId: 'm',
    points: 4000,
    invoiceTotalMinor: 8000,
    occurredAt: '2026-09-01T00:00:00Z',
  });
  await commitRedemption(pool, p, 'big', 'test');
  const adj = (total: number, adjustmentId = 'a1') =>
    adjustRedemption(pool, {
      programId: p,
      invoiceId: 'big',
      adjustmentId,
      invoiceTotalMinor: total,
      maxInvoiceShareMillionths: '1000000',
      occurredAt: '2026-09-10T00:00:00Z',
      actor: 'test',
    });
  const first = await adj(2000);
  assert.deepEqual(
    [first.adjustmentPoints, first.adjustmentCreditMinor, first.pointsReversed, first.creditReversedMinor],
    [2000, 2000, 2000, 2000],
  );
  const { rows } = await pool.query(
    `select c.cohort, c.points from ledger_entries e join ledger_entry_cohorts c using (entry_id)
      where e.program_id = $1 and e.idempotency_key = 'redeem-adjust:big:a1' order by c.cohort`,
    [p],
  );
  assert.deepEqual(
    rows.map((r) => [r.cohort, Number(r.points)]),
    [
      ['2026-Q2', 750],
      ['2026-Q3', 1250],
    ],
  ); // 1,500 : 2,500 of the 4,000
  const again = await adj(2000);
  assert.deepEqual(
    [again.existing, again.adjustmentPoints, again.pointsReversed],
    [true, 2000, 2000],
    'once per adjustment',
  );
  assert.equal((await adj(9000, 'a2')).adjustmentPoints, 0, 'a total the credit still fits gives nothing back');
  assert.equal((await getMember(pool, p, 'm'))!.balance, 6500 - 4000 + 2000);

  const reversed = await reverseRedemption(pool, p, 'big', '2026-09-20T00:00:00Z', 'test', 'chargeback_lost');
  assert.deepEqual([reversed.status, reversed.pointsReversed, reversed.creditReversedMinor], ['reversed', 4000, 4000]);
  assert.equal((await getMember(pool, p, 'm'))!.balance, 6500);
  const after = await adj(1000, 'a3');
  assert.equal(after.adjustmentPoints, 0, 'nothing is out after the reversal');
});

test('points given back after the deadline passed get a deadline again and expire at once (reversal, lowered invoice, release)', async () => {
  const p = await program({ expiry: { policy: 'rolling', window: 'P30D' } });
  const wakes = async (memberId: string) =>
    (await pool.query(`select 1 from member_wakeups where program_id = $1 and member_id = $2`, [p, memberId])).rowCount;
  const expireEntries = async (memberId: string) =>
    (
      await pool.query(
        `select points, ll_ts(occurred_at) as at from ledger_entries where program_id = $1 and member_id = $2 and type = 'expire' order by entry_id`,
        [p, memberId],
      )
    ).rows.map((r) => [Number(r.points), r.at]);
  const spendAll = async (memberId: string, invoiceId: string) => {
    await accrue(p, memberId, `${invoiceId}-earn`, 50_000, '2026-01-01T00:00:00Z'); // 500 points, deadline 2026-01-31
    await hold(p, { invoiceId, memberId, points: 500, invoiceTotalMinor: 1000, occurredAt: '2026-01-20T00:00:00Z' });
  };
  const pastDeadline = async (memberId: string) => {
    assert.equal((await expireMember(pool, p, memberId, '2026-02-01T00:00:00Z', 'test')).expiredPoints, 0);
    assert.equal((await getMember(pool, p, memberId))!.expiresAt, null, 'the expiry cleared the deadline');
    await pool.query(`delete from member_wakeups where program_id = $1 and member_id = $2`, [p, memberId]);
  };

  // a lost chargeback after the deadline
  await spendAll('a', 'inv-a');
  await commitRedemption(pool, p, 'inv-a', 'test');
  await pastDeadline('a');
  await reverseRedemption(pool, p, 'inv-a', '2026-02-10T00:00:00Z', 'test', 'chargeback_lost');
  let m = await getMember(pool, p, 'a');
  assert.deepEqual([m!.balance, m!.expiresAt], [500, '2026-02-10T00:00:00.000Z'], 'they expire at once');
  assert.equal(await wakes('a'), 1, 'the member workflow is woken to read the deadline');
  assert.equal((await expireMember(pool, p, 'a', '2026-02-10T00:00:01Z', 'test')).expiredPoints, 500);
  assert.deepEqual(await expireEntries('a'), [[-500, '2026-02-10T00:00:00.000Z']]);

  // an invoice lowered after the deadline: only the points given back are out again
  await spendAll('b', 'inv-b');
  await commitRedemption(pool, p, 'inv-b', 'test');
  await pastDeadline('b');
  const adjusted = await adjustRedemption(pool, {
    programId: p,
    invoiceId: 'inv-b',
    adjustmentId: 'a1',
    invoiceTotalMinor: 100,
    maxInvoiceShareMillionths: '1000000',
    occurredAt: '2026-02-05T00:00:00Z',
    actor: 'test',
  });
  assert.equal(adjusted.adjustmentPoints, 400);
  m = await getMember(pool, p, 'b');
  assert.deepEqual([m!.balance, m!.expiresAt], [400, '2026-02-05T00:00:00.000Z']);
  assert.equal(await wakes('b'), 1);

  // a hold released after an expiry that found every point held (it wrote no entry)
  await spendAll('c', 'inv-c');
  await pastDeadline('c');
  await releaseRedemption(pool, p, 'inv-c', 'compensated');
  m = await getMember(pool, p, 'c');
  assert.equal(m!.balance, 500);
  assert.notEqual(m!.expiresAt, null, 'a deadline again');
  assert.equal(await wakes('c'), 1);
  assert.equal(
    (await expireMember(pool, p, 'c', new Date(Date.now() + 1000).toISOString(), 'test')).expiredPoints,
    500,
  );

  // a window lengthened since: the deadline re-arms by the rule (last purchase plus the window)
  await spendAll('d', 'inv-d');
  await commitRedemption(pool, p, 'inv-d', 'test');
  await pastDeadline('d');
  await rewriteAsLegacy(
    db.adminPool,
    `update program_rule_versions set rules = jsonb_set(rules, '{expiry,window}', '"P90D"') where program_id = $1`,
    [p],
  );
  await reverseRedemption(pool, p, 'inv-d', '2026-02-10T00:00:00Z', 'test', 'chargeback_lost');
  assert.equal((await getMember(pool, p, 'd'))!.expiresAt, '2026-04-01T00:00:00.000Z');

  // policy none: points given back never expire
  const keep = await program({ expiry: { policy: 'none' } });
  await accrue(keep, 'k', 'k-earn', 50_000, '2026-01-01T00:00:00Z');
  await hold(keep, {
    invoiceId: 'inv-k',
    memberId: 'k',
    points: 500,
    invoiceTotalMinor: 1000,
    occurredAt: '2026-01-20T00:00:00Z',
  });
  await commitRedemption(pool, keep, 'inv-k', 'test');
  await reverseRedemption(pool, keep, 'inv-k', '2026-02-10T00:00:00Z', 'test', 'chargeback_lost');
  assert.deepEqual(
    [(await getMember(pool, keep, 'k'))!.balance, (await getMember(pool, keep, 'k'))!.expiresAt],
    [500, null],
  );
});

test('a refund after the points were spent: the allocation moves only with the points revoked; no other member loses deferred revenue, no liability goes negative', async () => {
  const cohortFigures = async (p: string) => {
    const { rows } = await pool.query(
      `select (select sum(allocated_minor - allocated_reversed_minor) from cohort_stripes s
                where s.program_id = c.program_id and s.cohort = c.cohort)::int as carried,
              recognized_minor::int as recognized
         from cohorts c where program_id = $1 and cohort = '2026-Q4'`,
      [p],
    );
    return { ...rows[0], liability: rows[0].carried - rows[0].recognized } as {
      carried: number;
      recognized: number;
      liability: number;
    };
  };
  const refund = (p: string, memberId: string, invoiceId: string, amountMinor: number) =>
    call('POST', `/v1/programs/${p}/refunds`, {
      role: 'billing',
      body: { memberId, invoiceId, refundId: `${invoiceId}-r`, amountMinor, occurredAt: '2026-11-01T00:00:00Z' },
    });
  const spend = async (p: string, memberId: string, invoiceId: string, points: number) => {
    await hold(p, { invoiceId, memberId, points, occurredAt: '2026-10-15T00:00:00Z' });
    await commitRedemption(pool, p, invoiceId, 'test');
  };

  // two members in one cohort; A redeems 600 of 1,000, then the whole purchase is refunded
  const p = await program();
  await accrue(p, 'a', 'a-earn', 100_000, '2026-10-01T00:00:00Z'); // 1,000 points, allocated 793.65
  await accrue(p, 'b', 'b-earn', 100_000, '2026-10-01T00:00:00Z');
  await spend(p, 'a', 'a-spend', 600);
  const before = await cohortFigures(p);
  const r = await refund(p, 'a', 'a-earn', 100_000);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.deepEqual([r.body.pointsRevoked, r.body.shortfallPoints], [400, 600]);
  assert.equal(r.body.allocatedReversedMinor, 318, 'the 400 points revoked: 794 posted x 400 / 1,000');
  const after = await cohortFigures(p);
  assert.ok(
    Math.abs(after.recognized - before.recognized) <= 1,
    `nothing of B's recognised: ${JSON.stringify([before, after])}`,
  );
  assert.ok(Math.abs(after.liability - (before.liability - 318)) <= 1, JSON.stringify([before, after]));

  // the same as if A had only ever earned the 600 points spent: B's deferred revenue is the same
  const q = await program();
  await accrue(q, 'a', 'a-earn', 60_000, '2026-10-01T00:00:00Z');
  await accrue(q, 'b', 'b-earn', 100_000, '2026-10-01T00:00:00Z');
  await spend(q, 'a', 'a-spend', 600);
  const reference = await cohortFigures(q);
  assert.ok(Math.abs(after.liability - reference.liability) <= 1, JSON.stringify([after, reference]));
  assert.ok(Math.abs(after.recognized - reference.recognized) <= 1, JSON.stringify([after, reference]));

  // one member alone in the cohort: the liability never goes below zero
  const s = await program();
  await accrue(s, 'a', 'a-earn', 100_000, '2026-10-01T00:00:00Z');
  await spend(s, 'a', 'a-spend', 600);
  const half = await refund(s, 'a', 'a-earn', 50_000); // 500 to revoke, 400 available
  assert.deepEqual([half.body.pointsRevoked, half.body.shortfallPoints], [400, 100]);
  const lone = await cohortFigures(s);
  assert.ok(lone.liability >= 0, JSON.stringify(lone));
  assert.equal(lone.liability, 0, 'every point left is redeemed: the cohort released all it carries');
  const rest = await call('POST', `/v1/programs/${s}/refunds`, {
    role: 'billing',
    body: {
      memberId: 'a',
      invoiceId: 'a-earn',
      refundId: 'a-earn-r2',
      amountMinor: 50_000,
      occurredAt: '2026-11-02T00:00:00Z',
    },
  });
  assert.deepEqual([rest.body.pointsRevoked, rest.body.shortfallPoints, rest.body.allocatedReversedMinor], [0, 500, 0]);
  assert.equal((await cohortFigures(s)).liability, 0);
});
