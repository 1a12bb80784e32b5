import assert from 'node:assert/strict';
import { expireMember } from '../../db/ledger';
import { afterAll, beforeAll, test } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { commitRedemption, holdRedemption } from '../../db/redemptions';
import { quarterOf } from '../../domain/period';
import { verifyInvariants } from '../../db/verify';
import {
  principalKey,
  eventually,
  freshDatabase,
  httpClient,
  programBody,
  recordHistory,
  startApi,
  startWorker,
  uniqueId,
  type TestApi,
  type TestWorker,
} from '../helpers/stack';

// Manual adjustments: below the program's threshold applied at once; above it, a finance
// approval by someone other than the requester; each an `adjust` entry and its journal entry.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let worker: TestWorker;
let api: TestApi;
let call: ReturnType<typeof httpClient>;

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  worker = await startWorker(pool);
  api = await startApi(pool, async () => true, { client: worker.client, taskQueue: worker.taskQueue });
  call = httpClient(api);
});
afterAll(async () => {
  const result = await verifyInvariants(pool);
  await api.close();
  await worker.stop();
  await db.drop();
  assert.deepEqual(result.violations, []);
});

async function program() {
  const p = uniqueId('adj');
  assert.equal(
    (await call('POST', '/v1/programs', { body: programBody(p, { adjustments: { approvalThresholdPoints: 1000 } }) }))
      .status,
    201,
  );
  assert.equal(
    (
      await call('POST', `/v1/programs/${p}/accruals`, {
        role: 'billing',
        body: { memberId: 'm-1', invoiceId: 'i-1', amountMinor: 200_000, occurredAt: new Date().toISOString() },
      })
    ).status,
    201,
  );
  return p; // m-1 has 2,000 points
}
const adjust = (
  p: string,
  body: Record<string, unknown>,
  o: { role?: 'support' | 'admin' | 'billing'; idem?: string; key?: string } = {},
) =>
  call('POST', `/v1/programs/${p}/adjustments`, {
    role: o.role ?? 'support',
    key: o.key,
    idem: o.idem,
    body: { memberId: 'm-1', reasonCode: 'goodwill', ...body },
  });
const balance = async (p: string) =>
  (await call('GET', `/v1/programs/${p}/members/m-1`, { role: 'support' })).body.balance as number;
const journal = async (p: string, key: string) =>
  (
    await pool.query(
      `select l.account, l.debit_minor::int as d, l.credit_minor::int as c from journal_entries j join journal_lines l using (journal_entry_id)
    where j.program_id = $1 and j.idempotency_key like $2 order by l.account`,
      [p, key],
    )
  ).rows;

test('up to the threshold: applied at once, with its journal entry; a take never exceeds what is available', async () => {
  const p = await program();
  const plus = await adjust(p, { points: 500, comment: 'late delivery' });
  assert.deepEqual(
    [plus.status, plus.body.status, plus.body.approvedBy, plus.body.requestedBy],
    [201, 'applied', null, 'test-support'],
  );
  assert.equal(await balance(p), 2500);
  assert.deepEqual(await journal(p, `adjust:${plus.body.adjustmentId}`), [
    { account: 'loyalty_contract_liability', d: 0, c: 400 }, // 500 points x 1 x 0.8, in the goodwill cohort
    { account: 'revenue', d: 400, c: 0 }, // a reduction of revenue (consideration payable to a customer)
  ]);
  const minus = await adjust(p, { points: -200, reasonCode: 'correction' });
  assert.deepEqual([minus.status, minus.body.status], [201, 'applied']);
  // the 200 points come out of the purchased cohort (the oldest): its share of the allocation is
  // released as breakage (the right lapses unexercised), never credited to loyalty_expense
  const taken = await journal(p, `adjust:${minus.body.adjustmentId}%`);
  assert.ok(
    taken.every((l) => l.account !== 'loyalty_expense'),
    JSON.stringify(taken),
  );
  assert.ok(
    taken.some((l) => l.account === 'breakage_revenue' && l.c > 0),
    JSON.stringify(taken),
  );
  assert.equal(await balance(p), 2300);
  // the threshold applies to the window's points moved without an approval, either way: 500 + 200
  // so far, so 300 more reach it exactly, and one point past it waits (approval-splitting.test.ts)
  const upTo = await adjust(p, { points: -300, reasonCode: 'fraud' });
  assert.deepEqual(
    [upTo.status, upTo.body.approvalThresholdPoints, upTo.body.approvalWindow, upTo.body.requesterPointsInWindow],
    [201, 1000, 'P30D', 700],
    'still within the threshold (cumulatively) and the available points',
  );
  const past = await adjust(p, { points: -1, reasonCode: 'fraud' });
  assert.deepEqual([past.status, past.body.status, past.body.needsApproval], [202, 'pending_approval', true]);
  const beyond = await adjust(p, { points: -1200, reasonCode: 'fraud' });
  assert.equal(beyond.status, 202, 'above the threshold: it waits');
  const { rows } = await pool.query(
    `select type, points::int, actor from ledger_entries where program_id = $1 order by entry_id`,
    [p],
  );
  assert.deepEqual(
    rows.map((r) => [r.type, r.points, r.actor]),
    [
      ['earn', 2000, 'test-billing'],
      ['adjust', 500, 'test-support'],
      ['adjust', -200, 'test-support'],
      ['adjust', -300, 'test-support'],
    ],
  );

  const replay = await adjust(p, { points: 10 }, { idem: 'same-key' });
  const again = await adjust(p, { points: 10 }, { idem: 'same-key' });
  assert.equal(again.body.adjustmentId, replay.body.adjustmentId, 'the same key answers the same adjustment');
  const other = await adjust(p, { points: 11 }, { idem: 'same-key' });
  assert.deepEqual([other.status, other.body.error.code], [409, 'idempotency_key_reused']);
});

test('above the threshold: waits for finance; the requester cannot decide; approved it is applied, rejected nothing is written', async () => {
  const p = await program();
  const big = await adjust(p, { points: 5000, reasonCode: 'migration' });
  assert.deepEqual(
    [big.status, big.body.status, big.body.workflowId],
    [202, 'pending_approval', `adjustment:${p}:${big.body.adjustmentId}`],
  );
  assert.equal(await balance(p), 2000, 'nothing applied yet');
  const approve = (role: 'finance' | 'admin' | 'support', id: string, decision = 'approve') =>
    call('POST', `/v1/programs/${p}/adjustments/${id}/approvals`, {
      role,
      body: { decision, comment: 'checked the old system' },
    });
  assert.equal((await approve('support', big.body.adjustmentId)).status, 403, 'support may not approve');
  const ok = await approve('finance', big.body.adjustmentId);
  assert.deepEqual([ok.status, ok.body.status, ok.body.approvedBy], [200, 'applied', 'test-finance']);
  assert.equal(await balance(p), 7000);
  const twice = await approve('finance', big.body.adjustmentId);
  assert.deepEqual([twice.status, twice.body.error.code], [409, 'adjustment_decided']);
  await eventually(
    'workflow done',
    async () => (await worker.client.workflow.getHandle(big.body.workflowId).describe()).status.name === 'COMPLETED',
  );
  await recordHistory(worker.client, big.body.workflowId, 'adjustment-approved');

  // one person holding both roles cannot approve their own request; admin does not stand in for finance
  const dual = await principalKey(pool, ['support', 'finance']);
  const own = await adjust(p, { points: 3000 }, { key: dual.key });
  const self = await call('POST', `/v1/programs/${p}/adjustments/${own.body.adjustmentId}/approvals`, {
    key: dual.key,
    body: { decision: 'approve', comment: 'my own' },
  });
  assert.deepEqual([self.status, self.body.error.code], [403, 'segregation_of_duties']);
  const byAdmin = await approve('admin', own.body.adjustmentId);
  assert.deepEqual([byAdmin.status, byAdmin.body.error.code], [403, 'forbidden']);
  const rejected = await approve('finance', own.body.adjustmentId, 'reject');
  assert.deepEqual([rejected.body.status, rejected.body.approvedBy], ['rejected', 'test-finance']);
  assert.equal(await balance(p), 7000);
  const read = await call('GET', `/v1/programs/${p}/adjustments/${own.body.adjustmentId}`, { role: 'finance' });
  assert.deepEqual([read.body.status, read.body.requestedBy], ['rejected', dual.principal]);
});

test('points added to a member whose deadline had passed and been expired get a deadline again', async () => {
  const p = uniqueId('adj');
  assert.equal((await call('POST', '/v1/programs', { body: programBody(p) })).status, 201);
  const longAgo = new Date(Date.now() - 400 * 86_400_000).toISOString(); // the window is P365D
  const earn = await call('POST', `/v1/programs/${p}/accruals`, {
    role: 'billing',
    body: { memberId: 'm-1', invoiceId: 'i-1', amountMinor: 50_000, occurredAt: longAgo },
  });
  assert.equal(earn.status, 201);
  await expireMember(pool, p, 'm-1', new Date().toISOString(), 'test');
  const lapsed = await pool.query('select balance, expires_at from members where program_id = $1', [p]);
  assert.deepEqual([Number(lapsed.rows[0].balance), lapsed.rows[0].expires_at], [0, null]);
  const plus = await adjust(p, { points: 100 });
  assert.deepEqual([plus.status, plus.body.status], [201, 'applied']);
  const { rows } = await pool.query('select balance, expires_at from members where program_id = $1', [p]);
  assert.equal(Number(rows[0].balance), 100);
  assert.ok(rows[0].expires_at && rows[0].expires_at.getTime() <= Date.now(), 'a deadline again (at once)');
});

test('bad adjustments: 4xx with a stable code, nothing written', async () => {
  const p = await program();
  const cases: Array<[Record<string, unknown>, number, string]> = [
    [{ points: 0 }, 400, 'validation_failed'],
    [{ points: 1.5 }, 400, 'validation_failed'],
    [{ points: 10, reasonCode: 'because' }, 400, 'validation_failed'],
    [{ points: 10, extra: true }, 400, 'validation_failed'],
    [{ points: 10, memberId: 'ghost' }, 404, 'not_found'],
    [{ points: -5000 }, 422, 'insufficient_points'],
  ];
  for (const [body, status, code] of cases) {
    const res = await adjust(p, body);
    assert.deepEqual([res.status, res.body.error?.code], [status, code], JSON.stringify(body));
  }
  assert.equal((await adjust(p, { points: 10 }, { role: 'billing' })).status, 403);
  assert.equal(
    (await pool.query('select count(*)::int as n from manual_adjustments where program_id = $1', [p])).rows[0].n,
    0,
  );
});

// Goodwill points are consideration payable to a customer (ASC 606-10-32-25; IFRS 15.70): in a
// cohort of their own, they never move the purchased points' allocation or recognition, and a grant
// then its redemption leaves loyalty_revenue, and revenue over their life, unchanged.
const byAccount = async (p: string) =>
  Object.fromEntries(
    (
      await pool.query(
        `select l.account, sum(l.credit_minor - l.debit_minor)::int as net from journal_entries j join journal_lines l using (journal_entry_id)
          where j.program_id = $1 group by 1`,
        [p],
      )
    ).rows.map((r) => [r.account, r.net]),
  ) as Record<string, number>;
const cohortFigures = async (p: string, cohort: string) =>
  (
    await pool.query(
      `select sum(s.points_issued - s.points_revoked)::text as n, sum(s.allocated_minor - s.allocated_reversed_minor)::text as allocated,
              sum(s.allocated_micro - s.allocated_reversed_micro)::text as micro, sum(s.points_redeemed)::text as r,
              (select c.recognized_minor::text from cohorts c where c.program_id = $1 and c.cohort = $2) as recognized,
              (select c.liability_account from cohorts c where c.program_id = $1 and c.cohort = $2) as account
         from cohort_stripes s where s.program_id = $1 and s.cohort = $2`,
      [p, cohort],
    )
  ).rows[0];
async function redeem(p: string, memberId: string, invoiceId: string, points: number) {
  const h = await holdRedemption(pool, {
    programId: p,
    invoiceId,
    redemptionId: randomUUID(),
    memberId,
    points,
    invoiceTotalMinor: 10_000_000,
    pointValueMinor: 1,
    minPoints: 1,
    maxInvoiceShareMillionths: '1000000',
    cohortOrder: 'oldest_first',
    occurredAt: new Date().toISOString(),
  });
  assert.equal(h.status, 'held');
  await commitRedemption(pool, p, invoiceId, 'test');
}
async function goodwillProgram(adjustments: Record<string, unknown>) {
  const p = uniqueId('gw');
  assert.equal((await call('POST', '/v1/programs', { body: programBody(p, { adjustments }) })).status, 201);
  for (const [memberId, invoiceId, amountMinor] of [
    ['m-1', 'i-1', 200_000], // 2,000 purchased points
    ['m-2', 'i-2', 50], // no points: m-2 holds only what goodwill gives it
  ] as const) {
    const res = await call('POST', `/v1/programs/${p}/accruals`, {
      role: 'billing',
      body: { memberId, invoiceId, amountMinor, occurredAt: new Date().toISOString() },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
  await redeem(p, 'm-1', 'r-1', 500);
  return p;
}

test('goodwill (revenue reduction, the default): its own cohort; grant then redemption leave loyalty_revenue and revenue unchanged', async () => {
  const p = await goodwillProgram({ approvalThresholdPoints: 1000 });
  const quarter = quarterOf(new Date());
  const purchased = await cohortFigures(p, quarter);
  const before = await byAccount(p);
  const grant = await call('POST', `/v1/programs/${p}/adjustments`, {
    role: 'support',
    body: { memberId: 'm-2', points: 500, reasonCode: 'goodwill' },
  });
  assert.equal(grant.status, 201, JSON.stringify(grant.body));
  assert.deepEqual(await journal(p, `adjust:${grant.body.adjustmentId}`), [
    { account: 'loyalty_contract_liability', d: 0, c: 400 },
    { account: 'revenue', d: 400, c: 0 },
  ]);
  const goodwill = await cohortFigures(p, `${quarter}-goodwill`);
  assert.deepEqual([goodwill.n, goodwill.allocated, goodwill.account], ['500', '400', 'loyalty_contract_liability']);
  await redeem(p, 'm-2', 'r-2', 200); // 200 of the 400 expected: half released, back to revenue
  assert.equal((await cohortFigures(p, `${quarter}-goodwill`)).recognized, '200');
  await redeem(p, 'm-2', 'r-3', 300); // every goodwill point redeemed: all released
  assert.equal((await cohortFigures(p, `${quarter}-goodwill`)).recognized, '400');
  const after = await byAccount(p);
  assert.equal(after.loyalty_revenue ?? 0, before.loyalty_revenue ?? 0, 'free points create no loyalty revenue');
  assert.equal(after.revenue ?? 0, before.revenue ?? 0, 'net zero on revenue over their life');
  assert.equal(after.breakage_revenue ?? 0, before.breakage_revenue ?? 0);
  assert.equal(after.loyalty_expense ?? 0, before.loyalty_expense ?? 0);
  assert.deepEqual(await cohortFigures(p, quarter), purchased, "the purchased cohort's allocation and recognition");

  // taking goodwill points back undoes the reduction: credit revenue, never expense
  const again = await call('POST', `/v1/programs/${p}/adjustments`, {
    role: 'support',
    body: { memberId: 'm-2', points: 100, reasonCode: 'goodwill' },
  });
  const back = await call('POST', `/v1/programs/${p}/adjustments`, {
    role: 'support',
    body: { memberId: 'm-2', points: -100, reasonCode: 'correction' },
  });
  assert.deepEqual([again.status, back.status], [201, 201]);
  const lines = await journal(p, `adjust:${back.body.adjustmentId}%`);
  assert.ok(
    lines.every((l) => l.account !== 'loyalty_expense'),
    JSON.stringify(lines),
  );
  const end = await byAccount(p);
  assert.equal(end.revenue ?? 0, before.revenue ?? 0, JSON.stringify(lines));
  assert.equal(end.loyalty_revenue ?? 0, before.loyalty_revenue ?? 0);
  assert.deepEqual(await cohortFigures(p, quarter), purchased);
});

test('goodwill as marketing: a cost accrual released to expense, no revenue on redemption', async () => {
  const p = await goodwillProgram({ goodwillTreatment: 'marketing' });
  const quarter = quarterOf(new Date());
  const purchased = await cohortFigures(p, quarter);
  const before = await byAccount(p);
  const grant = await call('POST', `/v1/programs/${p}/adjustments`, {
    role: 'support',
    body: { memberId: 'm-2', points: 500, reasonCode: 'goodwill' },
  });
  assert.equal(grant.status, 201, JSON.stringify(grant.body));
  assert.deepEqual(await journal(p, `adjust:${grant.body.adjustmentId}`), [
    { account: 'loyalty_expense', d: 400, c: 0 },
    { account: 'loyalty_provision', d: 0, c: 400 },
  ]);
  await redeem(p, 'm-2', 'r-2', 500);
  const after = await byAccount(p);
  for (const account of ['loyalty_revenue', 'revenue', 'breakage_revenue'])
    assert.equal(after[account] ?? 0, before[account] ?? 0, account);
  assert.equal(after.loyalty_provision ?? 0, 0, 'the provision used up');
  assert.deepEqual(await cohortFigures(p, quarter), purchased);
});

test('goodwill to a member with no purchase on record gets a deadline by the rule: the window from the grant', async () => {
  const p = uniqueId('adj');
  assert.equal((await call('POST', '/v1/programs', { body: programBody(p) })).status, 201); // rolling, P365D
  // a member row without a purchase (what ll_accrue makes before it books one; or one loaded from
  // an older system): before the fix its goodwill points had no deadline and never expired
  await pool.query(`insert into members (program_id, member_id) values ($1, 'm-new')`, [p]);
  const before = Date.now();
  const plus = await call('POST', `/v1/programs/${p}/adjustments`, {
    role: 'support',
    body: { memberId: 'm-new', points: 100, reasonCode: 'goodwill' },
  });
  assert.deepEqual([plus.status, plus.body.status], [201, 'applied'], JSON.stringify(plus.body));
  const { rows } = await pool.query(
    `select balance::int, expires_at, (select count(*)::int from member_wakeups w where w.program_id = m.program_id and w.member_id = m.member_id) as wakeups
       from members m where program_id = $1 and member_id = 'm-new'`,
    [p],
  );
  assert.equal(rows[0].balance, 100);
  assert.ok(rows[0].expires_at, 'a deadline');
  const year = 365 * 86_400_000;
  assert.ok(
    rows[0].expires_at.getTime() >= before + year && rows[0].expires_at.getTime() <= Date.now() + year,
    `the grant plus P365D, got ${rows[0].expires_at.toISOString()}`,
  );
  // the member workflow is told (the outbox), as for a first purchase; the relay may have taken it already
  await eventually(
    'the member workflow armed on the deadline',
    async () =>
      rows[0].wakeups > 0 ||
      (await pool.query(`select armed_deadline from members where program_id = $1 and member_id = 'm-new'`, [p]))
        .rows[0].armed_deadline !== null,
  );
});

test('a goodwillTreatment changed mid-quarter: later grants follow the cohort the first grant made (its account and unit)', async () => {
  // incremental cost: a point is worth 10 but costs 2, so the unit tells the two treatments apart
  for (const [first, then] of [
    ['marketing', 'revenue_reduction'],
    ['revenue_reduction', 'marketing'],
  ] as const) {
    const p = uniqueId('gwt');
    const created = await call('POST', '/v1/programs', {
      body: programBody(p, {
        pointValueMinor: 10,
        adjustments: { goodwillTreatment: first },
        accounting: {
          method: 'incremental_cost',
          costPerPointMinor: 2,
          notMaterialRight: { justification: 'points give no more than any customer gets' },
        },
      }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(
      (
        await call('POST', `/v1/programs/${p}/accruals`, {
          role: 'billing',
          body: { memberId: 'm-1', invoiceId: 'i-1', amountMinor: 10_000, occurredAt: new Date().toISOString() },
        })
      ).status,
      201,
    );
    const give = async () => {
      const r = await call('POST', `/v1/programs/${p}/adjustments`, {
        role: 'support',
        body: { memberId: 'm-1', points: 100, reasonCode: 'goodwill' },
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return journal(p, `adjust:${r.body.adjustmentId}`);
    };
    const account = first === 'marketing' ? 'loyalty_provision' : 'loyalty_contract_liability';
    const unit = first === 'marketing' ? 2 : 10;
    const expected = [
      { account: first === 'marketing' ? 'loyalty_expense' : 'revenue', d: 100 * unit * 0.8, c: 0 },
      { account, d: 0, c: 100 * unit * 0.8 },
    ].sort((a, b) => (a.account < b.account ? -1 : 1));
    assert.deepEqual(await give(), expected, `${first}: the first grant makes the cohort`);

    // the treatment changes mid-quarter (a new rule version in force now; the rule-change workflow is
    // rule-change.test.ts's subject, not this one's)
    await pool.query(
      `insert into program_rule_versions (program_id, version, effective_at, rules, created_by)
       select program_id, version + 1, now(), jsonb_set(rules, '{adjustments,goodwillTreatment}', to_jsonb($2::text)), 'test'
         from program_rule_versions where program_id = $1 order by version desc limit 1`,
      [p, then],
    );
    assert.deepEqual(
      await give(),
      expected,
      `${first} then ${then}: the cohort's account and unit, not the new treatment's`,
    );
    const cohort = await pool.query(
      `select c.liability_account, sum(s.allocated_minor)::int as allocated, sum(s.points_issued)::int as issued
         from cohorts c join cohort_stripes s using (program_id, cohort)
        where c.program_id = $1 and c.cohort like '%-goodwill' group by 1`,
      [p],
    );
    assert.deepEqual(cohort.rows, [{ liability_account: account, allocated: 2 * 100 * unit * 0.8, issued: 200 }]);
  }
});

test('goodwill booked as marketing keeps its unit when the program moves to the cost method mid-quarter', async () => {
  // relative SSP, marketing: the provision cohort is measured at the point value (10); a switch to
  // incremental_cost (cost 2) mid-quarter must not value its later grants at cost
  const p = uniqueId('gwm');
  const created = await call('POST', '/v1/programs', {
    body: programBody(p, { pointValueMinor: 10, adjustments: { goodwillTreatment: 'marketing' } }),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const accrued = await call('POST', `/v1/programs/${p}/accruals`, {
    role: 'billing',
    body: { memberId: 'm-1', invoiceId: 'i-1', amountMinor: 10_000, occurredAt: new Date().toISOString() },
  });
  assert.equal(accrued.status, 201);
  const give = async () => {
    const r = await call('POST', `/v1/programs/${p}/adjustments`, {
      role: 'support',
      body: { memberId: 'm-1', points: 100, reasonCode: 'goodwill' },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return journal(p, `adjust:${r.body.adjustmentId}`);
  };
  const atValue = [
    { account: 'loyalty_expense', d: 800, c: 0 },
    { account: 'loyalty_provision', d: 0, c: 800 },
  ];
  assert.deepEqual(await give(), atValue);
  await pool.query(
    `insert into program_rule_versions (program_id, version, effective_at, rules, created_by)
     select program_id, version + 1, now(),
            jsonb_set(rules, '{accounting}', jsonb_build_object('method', 'incremental_cost', 'costPerPointMinor', 2,
              'notMaterialRight', jsonb_build_object('justification', 'test', 'judgedBy', 'test', 'judgedAt', now()))),
            'test'
       from program_rule_versions where program_id = $1 order by version desc limit 1`,
    [p],
  );
  assert.deepEqual(await give(), atValue, 'the cohort measured at the point value keeps it');
});
