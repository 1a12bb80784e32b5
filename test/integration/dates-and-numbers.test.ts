import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { Pool } from 'pg';
import { billingClient } from '../../activities/services/billing';
import { holdRedemption } from '../../db/redemptions';
import { startSimulators, type RunningSimulators } from '../../simulators';
import {
  freshDatabase,
  httpClient,
  programBody,
  startApi,
  startWorker,
  uniqueId,
  type TestApi,
  type TestWorker,
} from '../helpers/stack';

// Dates and numbers in range (issue 14, item 7), against the real API and database: a refund is
// never dated before its sale, an accrual never before the program's go-live, a redemption obeys the
// accrual's clock-skew bound and is never dated before the member's first earn, a period's year is in
// 2000..2999, a number past what the database holds is a 4xx, and merge chains of any length resolve
// to the live member (and are compressed). Each refusal writes nothing.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let sims: RunningSimulators;
let worker: TestWorker;
let api: TestApi;
let call: ReturnType<typeof httpClient>;

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  sims = await startSimulators({ billing: 0, gl: 0, tax: 0 }, 7);
  worker = await startWorker(pool, {
    services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 1000 },
  });
  api = await startApi(pool, async () => true, { client: worker.client, taskQueue: worker.taskQueue });
  call = httpClient(api);
});
afterAll(async () => {
  await api.close();
  await worker.stop();
  await sims.close();
  await db.drop();
});

async function counts(programId: string) {
  const { rows } = await pool.query(
    `select (select count(*) from ledger_entries where program_id = $1)::int as ledger,
            (select count(*) from journal_entries where program_id = $1)::int as journal,
            (select count(*) from accruals where program_id = $1)::int as accruals,
            (select count(*) from refunds where program_id = $1)::int as refunds,
            (select count(*) from redemptions where program_id = $1)::int as redemptions,
            (select count(*) from members where program_id = $1)::int as members,
            (select count(*) from idempotency_keys where scope = $1)::int as keys`,
    [programId],
  );
  return rows[0];
}

async function newProgram(overrides: Record<string, unknown> = {}) {
  const programId = uniqueId('dn');
  const res = await call('POST', '/v1/programs', { body: programBody(programId, overrides) });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return programId;
}

const accrue = (programId: string, body: Record<string, unknown>) =>
  call('POST', `/v1/programs/${programId}/accruals`, { role: 'billing', body });

describe('refunds', () => {
  test('a refund dated before its sale is 422 refund_before_sale and writes nothing; at the sale it is recorded', async () => {
    const programId = await newProgram();
    const sale = await accrue(programId, {
      memberId: 'm',
      invoiceId: 'inv',
      amountMinor: 10_000,
      occurredAt: '2026-10-01T12:00:00Z',
    });
    assert.equal(sale.status, 201, JSON.stringify(sale.body));
    const before = await counts(programId);
    const early = await call('POST', `/v1/programs/${programId}/refunds`, {
      role: 'billing',
      body: { memberId: 'm', invoiceId: 'inv', refundId: 'r1', amountMinor: 1_000, occurredAt: '2026-10-01T11:59:59Z' },
    });
    assert.equal(early.status, 422, JSON.stringify(early.body));
    assert.equal(early.body.error.code, 'refund_before_sale');
    assert.equal(early.body.error.details.saleOccurredAt, '2026-10-01T12:00:00.000Z');
    assert.deepEqual(await counts(programId), before);
    const onTime = await call('POST', `/v1/programs/${programId}/refunds`, {
      role: 'billing',
      body: { memberId: 'm', invoiceId: 'inv', refundId: 'r1', amountMinor: 1_000, occurredAt: '2026-10-01T12:00:00Z' },
    });
    assert.equal(onTime.status, 201, JSON.stringify(onTime.body));
    assert.equal(onTime.body.pointsRevoked, 10);
  });
});

describe("the program's go-live", () => {
  test('an accrual dated before goLiveAt is 422 accrual_before_go_live and writes nothing; from it on, accepted', async () => {
    const goLiveAt = '2026-07-01T00:00:00Z';
    const programId = await newProgram({ goLiveAt });
    const read = await call('GET', `/v1/programs/${programId}`, { role: 'billing' });
    assert.equal(read.body.goLiveAt, goLiveAt);
    const before = await counts(programId);
    const early = await accrue(programId, {
      memberId: 'm',
      invoiceId: 'early',
      amountMinor: 10_000,
      occurredAt: '2026-06-30T23:59:59Z',
    });
    assert.equal(early.status, 422, JSON.stringify(early.body));
    assert.equal(early.body.error.code, 'accrual_before_go_live');
    assert.equal(early.body.error.details.goLiveAt, goLiveAt);
    assert.deepEqual(await counts(programId), before);
    const atGoLive = await accrue(programId, {
      memberId: 'm',
      invoiceId: 'on',
      amountMinor: 10_000,
      occurredAt: goLiveAt,
    });
    assert.equal(atGoLive.status, 201, JSON.stringify(atGoLive.body));
    // absent: no bound
    const open = await newProgram();
    const old = await accrue(open, {
      memberId: 'm',
      invoiceId: 'old',
      amountMinor: 100,
      occurredAt: '1999-01-01T00:00:00Z',
    });
    assert.equal(old.status, 201, JSON.stringify(old.body));
  });

  test('goLiveAt is an RFC 3339 instant', async () => {
    for (const goLiveAt of ['2026-07-01', 'soon', '0001-01-01T00:00:00Z', 17]) {
      const programId = uniqueId('dn');
      const res = await call('POST', '/v1/programs', { body: programBody(programId, { goLiveAt }) });
      assert.equal(res.status, 400, `${String(goLiveAt)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'validation_failed');
    }
  });
});

describe('redemptions', () => {
  test('a redemption dated beyond the clock skew is 400 validation_failed, as an accrual, and writes nothing', async () => {
    const programId = await newProgram();
    await accrue(programId, {
      memberId: 'm',
      invoiceId: 'earn',
      amountMinor: 100_000,
      occurredAt: new Date().toISOString(),
    });
    const before = await counts(programId);
    const future = await call('POST', `/v1/programs/${programId}/redemptions`, {
      role: 'billing',
      body: {
        invoiceId: 'inv-f',
        memberId: 'm',
        points: 200,
        invoiceTotalMinor: 8000,
        occurredAt: new Date(Date.now() + 3_600_000).toISOString(),
      },
    });
    assert.equal(future.status, 422, JSON.stringify(future.body));
    assert.equal(future.body.error.code, 'occurred_at_in_future');
    assert.equal(future.body.error.message, 'occurredAt is in the future');
    assert.deepEqual(await counts(programId), before);
  });

  test("a redemption dated before the member's first earn is 422 redemption_before_first_earn and writes nothing", async () => {
    const programId = await newProgram();
    const earnedAt = new Date(Date.now() - 3_600_000).toISOString();
    await accrue(programId, { memberId: 'm', invoiceId: 'earn', amountMinor: 100_000, occurredAt: earnedAt });
    const before = await counts(programId);
    const early = await call('POST', `/v1/programs/${programId}/redemptions`, {
      role: 'billing',
      body: {
        invoiceId: 'inv-e',
        memberId: 'm',
        points: 200,
        invoiceTotalMinor: 8000,
        occurredAt: new Date(Date.parse(earnedAt) - 1000).toISOString(),
      },
    });
    assert.equal(early.status, 422, JSON.stringify(early.body));
    assert.equal(early.body.error.code, 'redemption_before_first_earn');
    assert.deepEqual(await counts(programId), before);
    const member = await call('GET', `/v1/programs/${programId}/members/m`, { role: 'billing' });
    assert.deepEqual([member.body.balance, member.body.held], [1000, 0]);
    // nothing kept the invoice: dated right, it is redeemed
    await billingClient({ baseUrl: sims.billingUrl, timeoutMs: 1000 }).createInvoice(
      { invoiceId: 'inv-e', customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 8000 }] },
      'inv-inv-e',
    );
    const again = await call('POST', `/v1/programs/${programId}/redemptions`, {
      role: 'billing',
      body: {
        invoiceId: 'inv-e',
        memberId: 'm',
        points: 200,
        invoiceTotalMinor: 8000,
        occurredAt: new Date().toISOString(),
      },
    });
    assert.equal(again.status, 201, JSON.stringify(again.body));
    assert.deepEqual([again.body.status, again.body.pointsApplied], ['applied', 200]);
  });

  test('the hold (the database) declines a redemption before the first earn, or in the future, holding nothing', async () => {
    const programId = await newProgram();
    await accrue(programId, {
      memberId: 'm',
      invoiceId: 'earn',
      amountMinor: 100_000,
      occurredAt: '2026-10-01T00:00:00Z',
    });
    const before = await counts(programId);
    const hold = (occurredAt: string) =>
      holdRedemption(pool, {
        programId,
        invoiceId: uniqueId('inv'),
        redemptionId: randomUUID(),
        memberId: 'm',
        points: 100,
        invoiceTotalMinor: 10_000,
        pointValueMinor: 1,
        minPoints: 1,
        maxInvoiceShareMillionths: '1000000',
        cohortOrder: 'oldest_first',
        occurredAt,
      });
    const early = await hold('2026-09-30T23:59:59Z');
    assert.deepEqual([early.status, early.reason], ['declined', 'redemption_before_first_earn']);
    const future = await hold(new Date(Date.now() + 3_600_000).toISOString());
    assert.deepEqual([future.status, future.reason], ['declined', 'occurred_at_in_future']);
    assert.deepEqual(await counts(programId), before);
    const onTime = await hold('2026-10-01T00:00:00Z');
    assert.equal(onTime.status, 'held', JSON.stringify(onTime));
  });
});

describe('periods', () => {
  test("a period's year is four digits from 2000 to 2999 on every route that takes one", async () => {
    const programId = await newProgram();
    for (const period of ['0001-Q1', '1999-Q4', '3000-Q1', '9999-Q4']) {
      const answers = [
        await call('POST', `/v1/programs/${programId}/closes`, { role: 'finance', body: { period } }),
        await call('GET', `/v1/programs/${programId}/closes/${period}`, { role: 'finance' }),
        await call('GET', `/v1/programs/${programId}/closes/${period}/report`, { role: 'finance' }),
        await call('POST', `/v1/programs/${programId}/closes/${period}/approve`, { role: 'controller', body: {} }),
      ];
      for (const a of answers) {
        assert.equal(a.status, 400, `${period}: ${JSON.stringify(a.body)}`);
        assert.equal(a.body.error.code, 'validation_failed');
      }
    }
    const { rows } = await pool.query('select count(*)::int as n from closes where program_id = $1', [programId]);
    assert.equal(rows[0].n, 0);
  });
});

describe('numbers', () => {
  test('a sum past bigint in the database is 422 amount_out_of_range, not 500, and writes nothing', async () => {
    const programId = await newProgram({ earn: { points: 1000, perAmountMinor: 1 } });
    const first = await accrue(programId, {
      memberId: 'm',
      invoiceId: 'a',
      amountMinor: 1_000_000_000,
      occurredAt: '2026-10-01T00:00:00Z',
    });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    // a balance near bigint's limit (9,223,372,036,854,775,807): no input bound alone can keep a sum
    // of many accruals inside it, so the database decides
    const huge = '9223372036854775000';
    await pool.query(
      `update member_cohorts set points = $2::bigint where program_id = $1 and member_id = 'm';
       update members set balance = $2::bigint where program_id = $1 and member_id = 'm'`
        .replace(/\$2/g, `'${huge}'`)
        .replace(/\$1/g, `'${programId}'`),
    );
    const before = await counts(programId);
    const over = await accrue(programId, {
      memberId: 'm',
      invoiceId: 'b',
      amountMinor: 1_000_000_000,
      occurredAt: '2026-10-02T00:00:00Z',
    });
    assert.equal(over.status, 422, JSON.stringify(over.body));
    assert.equal(over.body.error.code, 'amount_out_of_range');
    assert.deepEqual(await counts(programId), before);
  });
});

describe('merge chains', () => {
  test('a chain of 50 merges resolves to the live member everywhere, and is one hop long', async () => {
    const programId = await newProgram({ adjustments: { approvalThresholdPoints: 1_000_000_000 } });
    const N = 50;
    const id = (i: number) => `c${i}`;
    for (let i = 0; i <= N; i++) {
      const a = await accrue(programId, {
        memberId: id(i),
        invoiceId: `inv-${i}`,
        amountMinor: 1_000,
        occurredAt: '2026-10-01T00:00:00Z',
      });
      assert.equal(a.status, 201, JSON.stringify(a.body));
    }
    // c0 → c1, then c1 → c2, …: each merge takes a member whose predecessors were merged into it
    for (let i = 0; i < N; i++) {
      const m = await call('POST', `/v1/programs/${programId}/members/${id(i)}/merge`, {
        role: 'support',
        body: { intoMemberId: id(i + 1) },
      });
      assert.equal(m.status, 201, `${i}: ${JSON.stringify(m.body)}`);
    }
    const { rows: pointers } = await pool.query(
      `select member_id, merged_into from members where program_id = $1 and status = 'merged'`,
      [programId],
    );
    assert.equal(pointers.length, N);
    assert.ok(
      pointers.every((r) => r.merged_into === id(N)),
      'compressed: every merged member points at the live one',
    );
    const read = await call('GET', `/v1/programs/${programId}/members/${id(0)}`, { role: 'support' });
    assert.deepEqual([read.body.status, read.body.mergedInto], ['merged', id(N)]);
    // accrual
    const later = await accrue(programId, {
      memberId: id(0),
      invoiceId: 'later',
      amountMinor: 1_000,
      occurredAt: '2026-10-02T00:00:00Z',
    });
    assert.equal(later.status, 201, JSON.stringify(later.body));
    assert.deepEqual([later.body.memberId, later.body.balance], [id(N), (N + 2) * 10]);
    // refund of the first member's invoice
    const refund = await call('POST', `/v1/programs/${programId}/refunds`, {
      role: 'billing',
      body: {
        memberId: id(0),
        invoiceId: 'inv-0',
        refundId: 'r0',
        amountMinor: 1_000,
        occurredAt: '2026-10-03T00:00:00Z',
      },
    });
    assert.equal(refund.status, 201, JSON.stringify(refund.body));
    assert.deepEqual([refund.body.memberId, refund.body.balance], [id(N), (N + 1) * 10]);
    // adjustment: on a merged member's id it is refused as after one merge (409 member_not_active,
    // ll_request_adjustment), never a 500 however long the chain; on the live member it applies
    const onMerged = await call('POST', `/v1/programs/${programId}/adjustments`, {
      role: 'support',
      body: { memberId: id(0), points: 5, reasonCode: 'goodwill' },
    });
    assert.deepEqual([onMerged.status, onMerged.body.error?.code], [409, 'member_not_active']);
    const adjusted = await call('POST', `/v1/programs/${programId}/adjustments`, {
      role: 'support',
      body: { memberId: id(N), points: 5, reasonCode: 'goodwill' },
    });
    assert.deepEqual([adjusted.status, adjusted.body.status], [201, 'applied'], JSON.stringify(adjusted.body));
    const live = await call('GET', `/v1/programs/${programId}/members/${id(N)}`, { role: 'support' });
    assert.equal(live.body.balance, (N + 1) * 10 + 5);
  });

  test('a chain made before compression (any length) is followed and compressed by the next write', async () => {
    const programId = await newProgram();
    const N = 50;
    const id = (i: number) => `old${i}`;
    for (let i = 0; i <= N; i++)
      await accrue(programId, {
        memberId: id(i),
        invoiceId: `inv-${i}`,
        amountMinor: 100,
        occurredAt: '2026-10-01T00:00:00Z',
      });
    // as the ledger left it before: old0 → old1 → … → old50, balances moved along the chain
    await pool.query(
      `update member_cohorts set points = 0 where program_id = $1 and member_id <> $2;
       update member_cohorts set points = ${(N + 1) * 1} where program_id = $1 and member_id = $2;
       update members set balance = 0, expires_at = null, status = 'merged',
              merged_into = 'old' || (substr(member_id, 4)::int + 1)
        where program_id = $1 and member_id <> $2;
       update members set balance = ${N + 1} where program_id = $1 and member_id = $2`
        .replace(/\$1/g, `'${programId}'`)
        .replace(/\$2/g, `'${id(N)}'`),
    );
    const later = await accrue(programId, {
      memberId: id(0),
      invoiceId: 'later',
      amountMinor: 100,
      occurredAt: '2026-10-02T00:00:00Z',
    });
    assert.equal(later.status, 201, JSON.stringify(later.body));
    assert.deepEqual([later.body.memberId, later.body.balance], [id(N), N + 2]);
    const { rows } = await pool.query(
      `select count(*)::int as n from members where program_id = $1 and status = 'merged' and merged_into <> $2`,
      [programId, id(N)],
    );
    assert.equal(rows[0].n, 0, 'the chain followed is compressed');
  });

  test('a cycle is refused (a corruption), never followed forever', async () => {
    const programId = await newProgram();
    for (const m of ['x', 'y'])
      await accrue(programId, {
        memberId: m,
        invoiceId: `inv-${m}`,
        amountMinor: 100,
        occurredAt: '2026-10-01T00:00:00Z',
      });
    await pool.query(
      `update member_cohorts set points = 0 where program_id = $1;
       update members set balance = 0, expires_at = null, status = 'merged',
              merged_into = case member_id when 'x' then 'y' else 'x' end where program_id = $1`.replace(
        /\$1/g,
        `'${programId}'`,
      ),
    );
    const res = await accrue(programId, {
      memberId: 'x',
      invoiceId: 'c',
      amountMinor: 100,
      occurredAt: '2026-10-02T00:00:00Z',
    });
    assert.equal(res.status, 500);
    assert.equal(res.body.error.code, 'merge_chain_cycle');
  });
});
