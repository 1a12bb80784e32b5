import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import fc from 'fast-check';
import type { Pool } from 'pg';
import { randomUUID } from 'node:crypto';
import { expireMember } from '../../db/ledger';
import { commitRedemption, holdRedemption, reverseRedemption } from '../../db/redemptions';
import { recognizedToDate } from '../../domain/recognition';
import { stripeOf } from '../../domain/stripe';
import { freshDatabase, httpClient, programBody, startApi, uniqueId, type TestApi } from '../helpers/stack';

// ll_recognize_cohort (SQL) and recognizedToDate (TypeScript) must agree to the minor unit.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let api: TestApi;

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  api = await startApi(pool);
});
afterAll(async () => {
  await api.close();
  await db.drop();
});

async function setCohort(
  programId: string,
  cohort: string,
  f: {
    n: bigint;
    aMinor: bigint;
    aMicro: bigint;
    r: bigint;
    x: bigint;
    u: bigint;
    revMinor?: bigint;
    revMicro?: bigint;
  },
) {
  await pool.query(
    `insert into cohort_stripes (program_id, cohort, stripe, points_issued, allocated_minor, allocated_micro, points_redeemed, points_expired,
                                 allocated_reversed_minor, allocated_reversed_micro)
     values ($1, $2, 0, $3, $4, $5, $6, $7, $8, $9)
     on conflict (program_id, cohort, stripe) do update set points_issued = excluded.points_issued, allocated_minor = excluded.allocated_minor,
       allocated_micro = excluded.allocated_micro, points_redeemed = excluded.points_redeemed, points_expired = excluded.points_expired,
       allocated_reversed_minor = excluded.allocated_reversed_minor, allocated_reversed_micro = excluded.allocated_reversed_micro`,
    [
      programId,
      cohort,
      f.n.toString(),
      f.aMinor.toString(),
      f.aMicro.toString(),
      f.r.toString(),
      f.x.toString(),
      (f.revMinor ?? 0n).toString(),
      (f.revMicro ?? 0n).toString(),
    ],
  );
  await pool.query(
    `insert into cohorts (program_id, cohort, ultimate_redemption_rate) values ($1, $2, $3::numeric / 1000000)
     on conflict (program_id, cohort) do update set ultimate_redemption_rate = excluded.ultimate_redemption_rate`,
    [programId, cohort, f.u.toString()],
  );
}

async function recognizeInSql(programId: string, cohort: string): Promise<bigint> {
  await pool.query(`select ll_recognize_cohort($1, $2, now(), 'test', $3, 'loyalty_revenue')`, [
    programId,
    cohort,
    uniqueId('k'),
  ]);
  const { rows } = await pool.query('select recognized_minor from cohorts where program_id = $1 and cohort = $2', [
    programId,
    cohort,
  ]);
  return BigInt(rows[0].recognized_minor);
}

test('the worked example of DESIGN.md, to the minor unit, through the database', async () => {
  const call = httpClient(api);
  const programId = uniqueId('design');
  // 40,000.00 of sales earn 4,000 points worth 1.00 each; 80% expected to be redeemed.
  const created = await call('POST', '/v1/programs', {
    body: programBody(programId, {
      pointValueMinor: 100,
      earn: { points: 1, perAmountMinor: 1000 },
      expectedRedemptionRate: 0.8,
    }),
  });
  assert.equal(created.status, 201);
  const accrual = await call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    body: { memberId: 'm-1', invoiceId: 'inv-1', amountMinor: 4_000_000, occurredAt: '2026-07-15T00:00:00Z' },
  });
  assert.equal(accrual.body.points, 4000);
  assert.equal(accrual.body.allocatedMinor, 296_296); // 2,962.96
  // 1,000 points redeemed (redemptions arrive with the redemption saga; set the figure here)
  await pool.query(`update cohort_stripes set points_redeemed = 1000 where program_id = $1`, [programId]);
  assert.equal(await recognizeInSql(programId, '2026-Q3'), 92_593n); // 925.93
  await pool.query(`update cohorts set ultimate_redemption_rate = 0.9 where program_id = $1`, [programId]);
  assert.equal(await recognizeInSql(programId, '2026-Q3'), 82_305n); // 823.05
  const { rows } = await pool.query(
    `select l.account, l.debit_minor::int as d, l.credit_minor::int as c from journal_entries j join journal_lines l using (journal_entry_id)
      where j.program_id = $1 and j.kind = 'recognition' order by j.journal_entry_id, l.line_no`,
    [programId],
  );
  assert.deepEqual(rows, [
    { account: 'loyalty_contract_liability', d: 92_593, c: 0 },
    { account: 'loyalty_revenue', d: 0, c: 92_593 },
    { account: 'loyalty_revenue', d: 10_288, c: 0 }, // the catch-up of -102.88
    { account: 'loyalty_contract_liability', d: 0, c: 10_288 },
  ]);
});

/** Half away from zero, to the minor unit, as each accrual's journal entry posts its allocation. */
const roundMicro = (m: bigint) => (m + 500_000n) / 1_000_000n;

test('redemptions at N x u in an open cohort recognise what was posted, not round(A_micro)', async () => {
  const programId = uniqueId('cap');
  await pool.query(
    `insert into programs (program_id, name, currency, currency_digits, created_by) values ($1, 'p', 'USD', 2, 'test')`,
    [programId],
  );
  // three accruals of 1.4 each post 1 + 1 + 1 = 3.00 but carry 4.2: round(A_micro) = 4 > 3
  await setCohort(programId, '2001-Q1', { n: 100n, aMinor: 3n, aMicro: 4_200_000n, r: 80n, x: 0n, u: 800_000n });
  assert.equal(await recognizeInSql(programId, '2001-Q1'), 3n);
  const { rows } = await pool.query(
    `select coalesce(sum(l.debit_minor), 0)::int as taken from journal_entries j join journal_lines l using (journal_entry_id)
      where j.program_id = $1 and l.account = 'loyalty_contract_liability'`,
    [programId],
  );
  assert.equal(rows[0].taken, 3); // the liability gives up the 3.00 its accruals credited, and no more
});

test('SQL and TypeScript recognise the same amount for any cohort, never more than was posted', async () => {
  const programId = uniqueId('prop');
  await pool.query(
    `insert into programs (program_id, name, currency, currency_digits, created_by) values ($1, 'p', 'USD', 2, 'test')`,
    [programId],
  );
  let i = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.bigInt({ min: 1n, max: 10n ** 12n }),
      // each accrual posts its allocation rounded; the cohort carries the exact sum too, so the sum of
      // the rounded allocations (allocated_minor) differs from round(allocated_micro)
      fc.array(fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 15n }), fc.bigInt({ min: 0n, max: 3_000_000n })), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.bigInt({ min: 1n, max: 1_000_000n }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1, noNaN: true })),
      async (n, accruals, u, rShare, xShare, reversedShare) => {
        const r = BigInt(Math.floor(Number(n) * rShare));
        const x = BigInt(Math.floor(Number(n - r) * xShare));
        const aMicro = accruals.reduce((s, m) => s + m, 0n);
        const aMinor = accruals.reduce((s, m) => s + roundMicro(m), 0n);
        // a refund reverses a share of the allocation, posted rounded and carried exact
        const share = BigInt(Math.floor(reversedShare * 1_000_000));
        const revMicro = (aMicro * share) / 1_000_000n;
        const revMinor = roundMicro(revMicro);
        const cohort = `2000-Q${(i++ % 4) + 1}`;
        await pool.query('update cohorts set recognized_minor = 0 where program_id = $1 and cohort = $2', [
          programId,
          cohort,
        ]);
        await setCohort(programId, cohort, { n, aMinor, aMicro, r, x, u, revMinor, revMicro });
        const sql = await recognizeInSql(programId, cohort);
        const posted = aMinor - revMinor;
        const ts = recognizedToDate({
          pointsIssued: n,
          allocatedMinor: posted,
          allocatedMicro: aMicro - revMicro,
          pointsRedeemed: r,
          pointsExpired: x,
          ultimateRedemption: u,
        });
        const seen = JSON.stringify({
          n: String(n),
          accruals: accruals.map(String),
          revMicro: String(revMicro),
          u: String(u),
          r: String(r),
          x: String(x),
        });
        assert.equal(sql, ts, seen);
        assert.ok(sql >= 0n && sql <= (posted > 0n ? posted : 0n), `recognised ${sql} of ${posted} posted: ${seen}`);
      },
    ),
    { numRuns: 200 },
  );
});

test('a reversal on a cohort that completed and released its remainder to breakage reverses breakage revenue first', async () => {
  const call = httpClient(api);
  const programId = uniqueId('rel');
  assert.equal((await call('POST', '/v1/programs', { body: programBody(programId) })).status, 201);
  // 10,000 points, 80% expected: allocated 79.37 (7,936.507936... micro-exact)
  const accrual = await call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    body: { memberId: 'm', invoiceId: 'buy', amountMinor: 1_000_000, occurredAt: '2026-10-15T00:00:00Z' },
  });
  assert.equal(accrual.body.allocatedMinor, 7_937);
  const held = await holdRedemption(pool, {
    programId,
    invoiceId: 'spend',
    redemptionId: randomUUID(),
    memberId: 'm',
    points: 4_000,
    invoiceTotalMinor: 10_000_000,
    pointValueMinor: 1,
    minPoints: 1,
    maxInvoiceShareMillionths: '1000000',
    cohortOrder: 'oldest_first',
    occurredAt: '2026-11-01T00:00:00Z',
  });
  assert.equal(held.status, 'held');
  await commitRedemption(pool, programId, 'spend', 'test'); // half of N x u: 39.68 to loyalty revenue
  await expireMember(pool, programId, 'm', '2027-11-01T00:00:00Z', 'test'); // the rest expires: 39.69 released to breakage
  const net = async () => {
    const { rows } = await pool.query(
      `select l.account, sum(l.credit_minor - l.debit_minor)::int as net from journal_entries j join journal_lines l using (journal_entry_id)
        where j.program_id = $1 and l.cohort = '2026-Q4' group by l.account order by l.account`,
      [programId],
    );
    return Object.fromEntries(rows.map((r) => [r.account, r.net]));
  };
  assert.deepEqual(await net(), { breakage_revenue: 3_969, loyalty_contract_liability: 0, loyalty_revenue: 3_968 });
  // a lost chargeback gives the 4,000 points back: R = 0, the cohort is open again and recognises
  // nothing; the breakage its completion released is what is taken back first, then loyalty revenue
  await reverseRedemption(pool, programId, 'spend', '2027-11-02T00:00:00Z', 'test', 'chargeback_lost');
  assert.deepEqual(await net(), { breakage_revenue: 0, loyalty_contract_liability: 7_937, loyalty_revenue: 0 });
  const { rows } = await pool.query('select recognized_minor::int as r from cohorts where program_id = $1', [
    programId,
  ]);
  assert.equal(rows[0].r, 0);
});

test('the API computes the same stripe as the database (lanes rely on it)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.string({ minLength: 1, maxLength: 128, unit: 'grapheme' }), async (memberId) => {
      const { rows } = await pool.query('select ll_stripe($1) as s', [memberId]);
      assert.equal(stripeOf(memberId), rows[0].s);
    }),
    { numRuns: 200 },
  );
});
