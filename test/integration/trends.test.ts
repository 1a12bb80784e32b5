import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, test } from 'vitest';
import { expireMember } from '../../db/ledger';
import { commitRedemption, holdRedemption, releaseRedemption } from '../../db/redemptions';
import { verifyInvariants } from '../../db/verify';
import { freshDatabase, httpClient, programBody, startApi, uniqueId, type TestApi } from '../helpers/stack';

// The trends behind the console's dashboard (issue 16): each day's closing liability checked
// against the point-in-time liability of the same instant (a separate query), each month's points
// by kind and its redemptions against what was written, the range's rules and the defaults.
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

const DAY_MS = 86_400_000;
const dates = (from: string, to: string) => {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += DAY_MS)
    out.push(new Date(t).toISOString().slice(0, 10));
  return out;
};

test('each day closes at the liability of its last instant; months count points and redemptions by kind', async () => {
  const p = uniqueId('tr');
  // 1 point per 1.00, worth 0.10; a 30-day window so that October's points expire in November
  const rules = { pointValueMinor: 10, expiry: { policy: 'rolling', window: 'P30D' } };
  assert.equal((await call('POST', '/v1/programs', { body: programBody(p, rules) })).status, 201);
  const accrue = async (memberId: string, invoiceId: string, amountMinor: number, occurredAt: string) => {
    const res = await call('POST', `/v1/programs/${p}/accruals`, {
      role: 'billing',
      body: { memberId, invoiceId, amountMinor, occurredAt },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  };
  await accrue('a', 'i1', 120_000, '2026-10-03T10:00:00Z'); // 1,200 points
  await accrue('e', 'i2', 30_000, '2026-10-20T23:59:59.999Z'); // 300 points, expiring 2026-11-19
  await accrue('a', 'i3', 50_000, '2026-11-02T00:00:00Z'); // 500 points
  const refund = await call('POST', `/v1/programs/${p}/refunds`, {
    role: 'billing',
    body: { memberId: 'a', invoiceId: 'i3', refundId: 'r1', amountMinor: 10_000, occurredAt: '2026-11-04T08:00:00Z' },
  });
  assert.equal(refund.status, 201, JSON.stringify(refund.body)); // 100 points revoked
  assert.equal((await expireMember(db.pool, p, 'e', '2026-11-25T00:00:00Z', 'test')).expiredPoints, 300);
  const hold = (invoiceId: string, points: number, occurredAt: string) =>
    holdRedemption(db.pool, {
      programId: p,
      redemptionId: randomUUID(),
      invoiceId,
      memberId: 'a',
      points,
      invoiceTotalMinor: 100_000,
      pointValueMinor: 10,
      minPoints: 100,
      maxInvoiceShareMillionths: '1000000',
      cohortOrder: 'oldest_first',
      occurredAt,
    });
  assert.equal((await hold('inv-1', 700, '2026-11-10T12:00:00Z')).status, 'held');
  assert.equal((await commitRedemption(db.pool, p, 'inv-1', 'test')).status, 'applied');
  assert.equal((await hold('inv-2', 300, '2026-11-11T12:00:00Z')).status, 'held');
  assert.equal((await commitRedemption(db.pool, p, 'inv-2', 'test')).status, 'applied');
  // declined after its hold (billing refused the credit): counted; one refused before any hold writes nothing
  assert.equal((await hold('inv-3', 100, '2026-11-12T12:00:00Z')).status, 'held');
  assert.equal((await releaseRedemption(db.pool, p, 'inv-3', 'billing_failed')).status, 'declined');
  assert.equal((await hold('inv-4', 50, '2026-11-12T12:00:00Z')).status, 'declined');
  // two runs of one day: the later one counts
  for (const differences of [1, 0])
    await db.pool.query(
      `insert into reconciliation_runs (program_id, business_date, workflow_id, redemptions_checked, credits_checked,
                                        gl_entries_checked, difference_count)
       values ($1, '2026-11-10', 'reconcile-test', 1, 1, 1, $2)`,
      [p, differences],
    );

  const res = await call('GET', `/v1/programs/${p}/trends?from=2026-10-01&to=2026-11-30`, { role: 'finance' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const t = res.body;
  assert.deepEqual([t.programId, t.currency, t.from, t.to], [p, 'USD', '2026-10-01', '2026-11-30']);
  assert.deepEqual(
    t.days.map((d: { date: string }) => d.date),
    dates('2026-10-01', '2026-11-30'),
  );
  for (const d of t.days) {
    const at = await call('GET', `/v1/programs/${p}/liability?asOf=${d.date}T23:59:59.999Z`, { role: 'finance' });
    assert.deepEqual(
      [d.deferredRevenueMinor, d.provisionMinor, d.outstandingPoints],
      [at.body.deferredRevenueMinor, at.body.provisionMinor, at.body.outstandingPoints],
      d.date,
    );
  }
  assert.equal(t.days[0].outstandingPoints, 0);
  assert.equal(t.days.at(-1).outstandingPoints, 1_200 + 300 + 500 - 100 - 300 - 1_000);
  assert.ok(t.days.at(-1).deferredRevenueMinor > 0);
  assert.deepEqual(t.months, [
    {
      month: '2026-10',
      issuedPoints: 1_500,
      redeemedPoints: 0,
      expiredPoints: 0,
      adjustedPoints: 0,
      burnRate: '0.0000',
      redemptions: 0,
      declinedRedemptions: 0,
      creditMinor: 0,
      costPerRedemptionMinor: null,
    },
    {
      month: '2026-11',
      issuedPoints: 400,
      redeemedPoints: 1_000,
      expiredPoints: 300,
      adjustedPoints: 0,
      burnRate: '2.5000',
      redemptions: 2,
      declinedRedemptions: 1,
      creditMinor: 10_000,
      costPerRedemptionMinor: 5_000,
    },
  ]);
  assert.deepEqual(
    t.reconciliations.map((r: Record<string, unknown>) => [r.date, r.differenceCount, r.inProgressCount]),
    [['2026-11-10', 0, 0]],
  );

  // today's adjustment in the default range: the 90 days to today
  const adj = await call('POST', `/v1/programs/${p}/adjustments`, {
    role: 'support',
    body: { memberId: 'a', points: -50, reasonCode: 'goodwill' },
  });
  assert.equal(adj.status, 201, JSON.stringify(adj.body));
  const today = new Date().toISOString().slice(0, 10);
  const byDefault = (await call('GET', `/v1/programs/${p}/trends`, { role: 'controller' })).body;
  assert.equal(byDefault.to, today);
  assert.equal(byDefault.days.length, 90);
  assert.equal(byDefault.days.at(-1).outstandingPoints, 1_200 + 300 + 500 - 100 - 300 - 1_000 - 50);
  assert.equal(byDefault.months.at(-1).adjustedPoints, -50);
  assert.equal(byDefault.months.at(-1).burnRate, null, 'nothing issued this month');
});

test('a reversed or longer-than-a-year range is a 422, a bad date a 400; billing may not read it', async () => {
  const p = uniqueId('tr');
  assert.equal((await call('POST', '/v1/programs', { body: programBody(p) })).status, 201);
  const get = (q: string, role: 'finance' | 'billing' = 'finance') =>
    call('GET', `/v1/programs/${p}/trends${q}`, { role });
  const reversed = await get('?from=2026-11-02&to=2026-11-01');
  assert.deepEqual([reversed.status, reversed.body.error.code], [422, 'trend_range_invalid']);
  const long = await get('?from=2025-01-01&to=2026-01-02');
  assert.deepEqual([long.status, long.body.error.code], [422, 'trend_range_invalid']);
  const year = await get('?from=2025-01-01&to=2026-01-01');
  assert.equal(year.status, 200);
  assert.equal(year.body.days.length, 366);
  assert.equal(year.body.months.length, 13);
  assert.equal((await get('?from=2026-02-30')).status, 400);
  assert.equal((await get('?days=3')).status, 400);
  assert.equal((await get('', 'billing')).status, 403);
  assert.equal((await call('GET', `/v1/programs/nope/trends`, { role: 'finance' })).status, 404);
});
