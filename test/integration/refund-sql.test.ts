import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { commitRedemption, holdRedemption } from '../../db/redemptions';
import { verifyInvariants } from '../../db/verify';
import { freshDatabase, httpClient, programBody, startApi, uniqueId, type TestApi } from '../helpers/stack';

// Refund proration has one home, the database: ll_prorate (the cumulative pro-rata share) and
// ll_revocable (never more than the member has), both called by ll_refund. These are the
// examples and properties the TypeScript mirror (domain/refund.ts, removed) was tested with, run
// against the SQL that production runs.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let api: TestApi;
let call: ReturnType<typeof httpClient>;

beforeAll(async () => {
  db = await freshDatabase();
  api = await startApi(db.pool);
  call = httpClient(api);
});
afterAll(async () => {
  const result = await verifyInvariants(db.pool);
  await api.close();
  await db.drop();
  assert.deepEqual(result.violations, []);
});

interface ProrateInput {
  earned: bigint;
  invoiceAmountMinor: bigint;
  refundedBeforeMinor: bigint;
  refundMinor: bigint;
}

/** ll_prorate: what one refund revokes. */
async function revocationForRefund(q: ProrateInput): Promise<bigint> {
  const { rows } = await db.pool.query<{ v: string }>('select ll_prorate($1, $2, $3, $4)::text as v', [
    q.earned.toString(),
    q.refundedBeforeMinor.toString(),
    q.refundMinor.toString(),
    q.invoiceAmountMinor.toString(),
  ]);
  return BigInt(rows[0]!.v);
}

/** Revocations for a sequence of refunds of one invoice, in order (one query: each refund after the sum of those before it). */
async function revocations(earned: bigint, invoiceAmountMinor: bigint, refunds: bigint[]): Promise<bigint[]> {
  if (refunds.length === 0) return [];
  const { rows } = await db.pool.query<{ v: string }>(
    `select ll_prorate($1, coalesce(sum(r) over (order by i rows between unbounded preceding and 1 preceding), 0), r, $2)::text as v
       from unnest($3::numeric[]) with ordinality as t(r, i) order by i`,
    [earned.toString(), invoiceAmountMinor.toString(), refunds.map(String)],
  );
  return rows.map((r) => BigInt(r.v));
}

/** ll_revocable, and the shortfall ll_refund records beside it (what was to be revoked less what was). */
async function applyRevocation(toRevoke: bigint, available: bigint): Promise<{ revoked: bigint; shortfall: bigint }> {
  const { rows } = await db.pool.query<{ v: string }>('select ll_revocable($1, $2)::text as v', [
    toRevoke.toString(),
    available.toString(),
  ]);
  const revoked = BigInt(rows[0]!.v);
  return { revoked, shortfall: toRevoke - revoked };
}

/** ll_prorate refuses a refund outside the invoice amount (SQLSTATE 22003, numeric value out of range). */
const outOfRange = (e: unknown) => (e as { code?: string }).code === '22003';

const sum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);

describe('revocationForRefund: examples', () => {
  test('a full refund revokes every point', async () => {
    assert.equal(
      await revocationForRefund({
        earned: 4_000n,
        invoiceAmountMinor: 4_000_000n,
        refundedBeforeMinor: 0n,
        refundMinor: 4_000_000n,
      }),
      4_000n,
    );
  });

  test('a half refund revokes half', async () => {
    assert.equal(
      await revocationForRefund({
        earned: 4_000n,
        invoiceAmountMinor: 4_000_000n,
        refundedBeforeMinor: 0n,
        refundMinor: 2_000_000n,
      }),
      2_000n,
    );
  });

  test('thirds: cumulative rounding, 33 + 34 + 33 = 100', async () => {
    assert.deepEqual(await revocations(100n, 10_000n, [3_333n, 3_333n, 3_334n]), [33n, 34n, 33n]);
  });

  test('a refund of one of three equal parts, in any order, revokes consistently', async () => {
    // 10 points on 3.00: 1.00 refunded -> round(3.33) = 3, then 2.00 in total -> round(6.67) = 7
    assert.deepEqual(await revocations(10n, 300n, [100n, 100n, 100n]), [3n, 4n, 3n]);
  });

  test('halves round away from zero on the cumulative figure', async () => {
    // 1 point on 2 minor units: refunding 1 is exactly half a point -> revoke it; the second refund revokes nothing
    assert.deepEqual(await revocations(1n, 2n, [1n, 1n]), [1n, 0n]);
    // 5 points on 2: 2.5 -> 3, then 5 - 3 = 2
    assert.deepEqual(await revocations(5n, 2n, [1n, 1n]), [3n, 2n]);
  });

  test('tiny refunds can revoke nothing, without drift: many 1-minor refunds still total the earned points', async () => {
    const refunds = Array.from({ length: 1_000 }, () => 1n);
    const rs = await revocations(7n, 1_000n, refunds);
    assert.equal(sum(rs), 7n);
    assert.ok(rs.every((r) => r === 0n || r === 1n));
  });

  test('no points earned: nothing to revoke', async () => {
    assert.deepEqual(await revocations(0n, 500n, [100n, 400n]), [0n, 0n]);
  });

  test('refunds outside the invoice amount are rejected', async () => {
    const base = { earned: 10n, invoiceAmountMinor: 1_000n };
    await assert.rejects(revocationForRefund({ ...base, refundedBeforeMinor: 0n, refundMinor: 0n }), outOfRange);
    await assert.rejects(revocationForRefund({ ...base, refundedBeforeMinor: 0n, refundMinor: -1n }), outOfRange);
    await assert.rejects(revocationForRefund({ ...base, refundedBeforeMinor: 0n, refundMinor: 1_001n }), outOfRange);
    await assert.rejects(revocationForRefund({ ...base, refundedBeforeMinor: 600n, refundMinor: 401n }), outOfRange);
    await assert.rejects(revocationForRefund({ ...base, refundedBeforeMinor: -1n, refundMinor: 1n }), outOfRange);
    assert.equal(await revocationForRefund({ ...base, refundedBeforeMinor: 600n, refundMinor: 400n }), 4n);
  });
});

describe('revocationForRefund: properties', () => {
  /** An invoice split into a sequence of positive refunds summing to its amount. */
  const split = fc
    .array(fc.oneof(fc.bigInt({ min: 1n, max: 10n }), fc.bigInt({ min: 1n, max: 10n ** 12n })), {
      minLength: 1,
      maxLength: 30,
    })
    .map((parts) => ({ parts, total: sum(parts) }));
  const earnedArb = fc.oneof(fc.bigInt({ min: 0n, max: 20n }), fc.bigInt({ min: 0n, max: 10n ** 12n }));

  test('revocations over any full split sum exactly to the earned points, each >= 0', async () => {
    await fc.assert(
      fc.asyncProperty(split, earnedArb, async ({ parts, total }, earned) => {
        const rs = await revocations(earned, total, parts);
        assert.equal(sum(rs), earned);
        for (const r of rs) assert.ok(r >= 0n, `negative revocation ${r}`);
      }),
      { numRuns: 2000 },
    );
  });

  test('a fixed invoice split at random cut points', async () => {
    const arb = fc
      .record({ total: fc.bigInt({ min: 1n, max: 10n ** 15n }), earned: earnedArb })
      .chain(({ total, earned }) =>
        fc
          .uniqueArray(fc.bigInt({ min: 1n, max: total }), { maxLength: 20, comparator: (a, b) => a === b })
          .map((cuts) => ({ total, earned, cuts: [...cuts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) })),
      );
    await fc.assert(
      fc.asyncProperty(arb, async ({ total, earned, cuts }) => {
        const points = [...cuts.filter((c) => c < total), total];
        const parts = points.map((p, i) => p - (i === 0 ? 0n : (points[i - 1] ?? 0n)));
        assert.equal(sum(parts), total);
        const rs = await revocations(earned, total, parts);
        assert.equal(sum(rs), earned);
        for (const r of rs) assert.ok(r >= 0n);
      }),
      { numRuns: 1000 },
    );
  });

  test('a partial sequence never revokes more than the earned points, and never more than the refunded share rounded', async () => {
    await fc.assert(
      fc.asyncProperty(split, earnedArb, fc.nat(), async ({ parts, total }, earned, k) => {
        const prefix = parts.slice(0, k % parts.length);
        const refunded = sum(prefix);
        const revoked = sum(await revocations(earned, total, prefix));
        assert.ok(revoked <= earned);
        // |revoked - earned * refunded / total| <= 1/2
        const diff = 2n * (revoked * total - earned * refunded);
        assert.ok(diff <= total && -diff <= total);
      }),
    );
  });
});

describe('applyRevocation', () => {
  test('examples', async () => {
    assert.deepEqual(await applyRevocation(30n, 100n), { revoked: 30n, shortfall: 0n });
    assert.deepEqual(await applyRevocation(100n, 100n), { revoked: 100n, shortfall: 0n });
    assert.deepEqual(await applyRevocation(100n, 30n), { revoked: 30n, shortfall: 70n });
    assert.deepEqual(await applyRevocation(100n, 0n), { revoked: 0n, shortfall: 100n });
    assert.deepEqual(await applyRevocation(0n, 0n), { revoked: 0n, shortfall: 0n });
    assert.deepEqual(await applyRevocation(0n, 50n), { revoked: 0n, shortfall: 0n });
    assert.deepEqual(await applyRevocation(10n, -5n), { revoked: 0n, shortfall: 10n });
  });

  test('property: never more than available, never negative, revoked + shortfall = toRevoke', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.bigInt({ min: 0n, max: 20n }), fc.bigInt({ min: 0n, max: 10n ** 15n })),
        fc.oneof(
          fc.constant(0n),
          fc.bigInt({ min: -20n, max: 20n }),
          fc.bigInt({ min: -(10n ** 6n), max: 10n ** 15n }),
        ),
        async (toRevoke, available) => {
          const { revoked, shortfall } = await applyRevocation(toRevoke, available);
          assert.ok(revoked >= 0n, `negative revoked ${revoked}`);
          assert.ok(shortfall >= 0n, `negative shortfall ${shortfall}`);
          assert.ok(revoked <= (available > 0n ? available : 0n));
          assert.ok(revoked <= toRevoke);
          assert.equal(revoked + shortfall, toRevoke);
          // takes as much as it can
          const availableNonNeg = available > 0n ? available : 0n;
          assert.equal(revoked, toRevoke < availableNonNeg ? toRevoke : availableNonNeg);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

// ll_refund itself: which points a refund revokes (the member's purchased points still available).
describe('ll_refund: which points a refund can revoke', () => {
  async function program() {
    const p = uniqueId('rf');
    const body = programBody(p, {
      redemption: { minPoints: 1, maxInvoiceShare: 1, cohortOrder: 'oldest_first' },
      adjustments: { approvalThresholdPoints: 1_000_000 },
    });
    assert.equal((await call('POST', '/v1/programs', { body })).status, 201);
    return p;
  }
  const accrue = async (p: string, memberId: string, invoiceId: string, amountMinor: number, occurredAt: string) =>
    assert.equal(
      (
        await call('POST', `/v1/programs/${p}/accruals`, {
          role: 'billing',
          body: { memberId, invoiceId, amountMinor, occurredAt },
        })
      ).status,
      201,
    );
  const refund = (p: string, memberId: string, invoiceId: string, amountMinor: number) =>
    call('POST', `/v1/programs/${p}/refunds`, {
      role: 'billing',
      body: { memberId, invoiceId, refundId: uniqueId('r'), amountMinor, occurredAt: new Date().toISOString() },
    });
  const hold = (p: string, memberId: string, invoiceId: string, points: number) =>
    holdRedemption(db.pool, {
      programId: p,
      redemptionId: randomUUID(),
      invoiceId,
      memberId,
      points,
      invoiceTotalMinor: 1_000_000,
      pointValueMinor: 1,
      minPoints: 1,
      maxInvoiceShareMillionths: '1000000',
      cohortOrder: 'oldest_first',
      occurredAt: new Date().toISOString(),
    });
  const memberCohorts = async (p: string, memberId: string) =>
    Object.fromEntries(
      (
        await db.pool.query(
          `select cohort, points::int as points from member_cohorts where program_id = $1 and member_id = $2 order by cohort`,
          [p, memberId],
        )
      ).rows.map((r) => [r.cohort, r.points]),
    );

  test('a refund never revokes goodwill points: what the purchase left is its shortfall', async () => {
    const p = await program();
    const now = new Date().toISOString();
    await accrue(p, 'm', 'buy', 100_000, now); // 1,000 points in this quarter
    await hold(p, 'm', 'spend', 600);
    await commitRedemption(db.pool, p, 'spend', 'test');
    const goodwill = await call('POST', `/v1/programs/${p}/adjustments`, {
      role: 'support',
      body: { memberId: 'm', points: 500, reasonCode: 'goodwill' },
    });
    assert.equal(goodwill.status, 201, JSON.stringify(goodwill.body));
    const gw = Object.keys(await memberCohorts(p, 'm')).find((c) => c.endsWith('-goodwill'))!;
    const liability = async () =>
      (
        await db.pool.query(
          `select coalesce(sum(l.credit_minor - l.debit_minor), 0)::int as v from journal_lines l
             join journal_entries j using (journal_entry_id)
            where j.program_id = $1 and l.account = 'loyalty_contract_liability' and l.cohort = $2`,
          [p, gw],
        )
      ).rows[0].v as number;
    const goodwillLiability = await liability();

    const r = await refund(p, 'm', 'buy', 100_000);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual([r.body.pointsRevoked, r.body.shortfallPoints], [400, 600]);
    assert.equal(r.body.balance, 500, 'the 500 goodwill points stay');
    assert.equal((await memberCohorts(p, 'm'))[gw], 500);
    assert.equal(await liability(), goodwillLiability, "the goodwill cohort's liability does not move");
  });

  test('a refund never revokes points held by a redemption in progress; the redemption still commits', async () => {
    const p = await program();
    await accrue(p, 'm', 'old', 10_000, '2026-07-15T00:00:00Z'); // 100 points in 2026-Q3
    await accrue(p, 'm', 'new', 10_000, '2026-10-15T00:00:00Z'); // 100 points in 2026-Q4
    await hold(p, 'm', 'spend', 100); // oldest first: the 100 of 2026-Q3
    const r = await refund(p, 'm', 'old', 10_000);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual([r.body.pointsRevoked, r.body.shortfallPoints], [100, 0]);
    assert.deepEqual(await memberCohorts(p, 'm'), { '2026-Q3': 100, '2026-Q4': 0 }, 'the held points stay');
    assert.equal((await commitRedemption(db.pool, p, 'spend', 'test')).status, 'applied');
    assert.deepEqual(await memberCohorts(p, 'm'), { '2026-Q3': 0, '2026-Q4': 0 });
  });
});

describe('ll_refund: the allocation follows the points', () => {
  test('a partial refund that revokes no point (rounding) loses no allocation: the full refund reverses all the invoice posted', async () => {
    const p = uniqueId('rfa');
    const body = programBody(p, { pointValueMinor: 100, earn: { points: 1, perAmountMinor: 10_000 } });
    assert.equal((await call('POST', '/v1/programs', { body })).status, 201);
    // 100.00 earns 1 point worth 1.00: a = 10,000 x 80 / 10,080 = 79.37, posted 79; another member the same
    for (const [memberId, invoiceId] of [
      ['m', 'sale'],
      ['o', 'other'],
    ]) {
      const r = await call('POST', `/v1/programs/${p}/accruals`, {
        role: 'billing',
        body: { memberId, invoiceId, amountMinor: 10_000, occurredAt: '2026-10-05T00:00:00Z' },
      });
      assert.deepEqual([r.status, r.body.allocatedMinor], [201, 79]);
    }
    const refund = (amountMinor: number) =>
      call('POST', `/v1/programs/${p}/refunds`, {
        role: 'billing',
        body: {
          memberId: 'm',
          invoiceId: 'sale',
          refundId: uniqueId('r'),
          amountMinor,
          occurredAt: '2026-11-01T00:00:00Z',
        },
      });
    const first = await refund(4_000); // round(0.4) = 0 points: nothing revoked, nothing of the allocation moves
    assert.deepEqual([first.body.pointsRevoked, first.body.allocatedReversedMinor], [0, 0]);
    const rest = await refund(6_000); // the point: all of its allocation
    assert.deepEqual([rest.body.pointsRevoked, rest.body.allocatedReversedMinor], [1, 79]);
    const { rows } = await db.pool.query(
      `select sum(points_issued - points_revoked)::int as n, sum(allocated_minor - allocated_reversed_minor)::int as carried
         from cohort_stripes where program_id = $1 and cohort = '2026-Q4'`,
      [p],
    );
    assert.deepEqual(rows[0], { n: 1, carried: 79 }, "the other member's point carries its own allocation, no more");
  });
});

describe('ll_refund: points revoked from another cohort', () => {
  test("take exactly their share of that cohort: the other members' deferred revenue there does not move", async () => {
    const p = uniqueId('rfx');
    const body = programBody(p, { redemption: { minPoints: 1, maxInvoiceShare: 1, cohortOrder: 'oldest_first' } });
    assert.equal((await call('POST', '/v1/programs', { body })).status, 201);
    const accrue = async (memberId: string, invoiceId: string, occurredAt: string) => {
      const r = await call('POST', `/v1/programs/${p}/accruals`, {
        role: 'billing',
        body: { memberId, invoiceId, amountMinor: 100_000, occurredAt },
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.allocatedMinor as number;
    };
    // A's sale in 2026-Q3 at a point value of 0.01: 1,000 points, 793.65 allocated
    assert.equal(await accrue('a', 'a-q3', '2026-08-01T00:00:00Z'), 794);
    // the points are worth 0.02 from now on (a rule version; the test writes it as a rule change would)
    const { rows: v } = await db.pool.query('select rules from program_rule_versions where program_id = $1', [p]);
    await db.pool.query(
      `insert into program_rule_versions (program_id, version, effective_at, rules, created_by) values ($1, 2, now(), $2, 'test')`,
      [p, JSON.stringify({ ...v[0].rules, pointValueMinor: 2 })],
    );
    await new Promise((r) => setTimeout(r, 1_100)); // the API's program cache holds a program for a second
    // A and B each buy in 2026-Q4 at 0.02: 1,000 points each, 1,574.80 allocated each
    const q4a = await accrue('a', 'a-q4', '2026-10-05T00:00:00Z');
    const q4b = await accrue('b', 'b-q4', '2026-10-05T00:00:00Z');
    assert.deepEqual([q4a, q4b], [1575, 1575]);
    // A spends the 2026-Q3 points, then the 2026-Q3 sale is refunded in full: A's 2026-Q4 points are revoked
    const h = await holdRedemption(db.pool, {
      programId: p,
      redemptionId: randomUUID(),
      invoiceId: 'a-spend',
      memberId: 'a',
      points: 1000,
      invoiceTotalMinor: 1_000_000,
      pointValueMinor: 1,
      minPoints: 1,
      maxInvoiceShareMillionths: '1000000',
      cohortOrder: 'oldest_first',
      occurredAt: '2026-11-01T00:00:00Z',
    });
    assert.equal(h.status, 'held');
    await commitRedemption(db.pool, p, 'a-spend', 'test');
    const r = await call('POST', `/v1/programs/${p}/refunds`, {
      role: 'billing',
      body: {
        memberId: 'a',
        invoiceId: 'a-q3',
        refundId: 'r-1',
        amountMinor: 100_000,
        occurredAt: '2026-11-15T00:00:00Z',
      },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual([r.body.pointsRevoked, r.body.shortfallPoints], [1000, 0]);
    // 2026-Q4 keeps exactly B's allocation (the invoice's own 7.94 would have left B's points 15.75 + 7.81)
    const { rows } = await db.pool.query(
      `select sum(points_issued - points_revoked)::int as n, sum(allocated_minor - allocated_reversed_minor)::int as carried
         from cohort_stripes where program_id = $1 and cohort = '2026-Q4'`,
      [p],
    );
    assert.deepEqual(rows[0], { n: 1000, carried: 1575 });
    assert.equal(r.body.allocatedReversedMinor, 1575, "what A's revoked points carried there");
  });
});

// ll_apply_adjustment: points taken by hand reverse their share of what the cohort's liability carries.
describe('ll_apply_adjustment: points taken back', () => {
  test('taking every point of a cohort reverses what it carries, never more: the liability ends at 0, not -1', async () => {
    const p = uniqueId('adj');
    const body = programBody(p, { adjustments: { approvalThresholdPoints: 1_000_000 } });
    assert.equal((await call('POST', '/v1/programs', { body })).status, 201);
    // two purchases of 3.00: 3 points each, a = 300 x 2.4 / 302.4 = 2.38 posted as 2; A = 4.76 (round 5), posted 4
    for (const invoiceId of ['a', 'b']) {
      const r = await call('POST', `/v1/programs/${p}/accruals`, {
        role: 'billing',
        body: { memberId: 'm', invoiceId, amountMinor: 300, occurredAt: '2026-10-05T00:00:00Z' },
      });
      assert.deepEqual([r.status, r.body.allocatedMinor], [201, 2]);
    }
    const taken = await call('POST', `/v1/programs/${p}/adjustments`, {
      role: 'support',
      body: { memberId: 'm', points: -6, reasonCode: 'correction' },
    });
    assert.equal(taken.status, 201, JSON.stringify(taken.body));
    const { rows } = await db.pool.query(
      `select (select sum(allocated_minor - allocated_reversed_minor) from cohort_stripes s
                where s.program_id = c.program_id and s.cohort = c.cohort)::int as carried,
              (select sum(l.credit_minor - l.debit_minor) from journal_lines l join journal_entries j using (journal_entry_id)
                where j.program_id = c.program_id and l.cohort = c.cohort and l.account = 'loyalty_contract_liability')::int as liability
         from cohorts c where program_id = $1 and cohort = '2026-Q4'`,
      [p],
    );
    assert.deepEqual(rows[0], { carried: 0, liability: 0 });
  });
});
