import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { afterAll, beforeAll, test } from 'vitest';
import { newSecret, putKey } from '../../db/keys';
import { verifyInvariants } from '../../db/verify';
import {
  principalKey,
  eventually,
  freshDatabase,
  httpClient,
  programBody,
  startApi,
  startWorker,
  uniqueId,
  type TestApi,
  type TestWorker,
} from '../helpers/stack';

// Approvals that cannot be split or skipped (issue 14, item 4): the threshold applies to the points
// moved without a finance approval within the program's rolling window, per member and per
// requester, plus the new request's; a merge moving more than it waits for finance on the
// adjustment approval path. Each test fails on the code before: there every request under the
// threshold ran at once and a merge never waited.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let worker: TestWorker;
let api: TestApi;
let call: ReturnType<typeof httpClient>;
let support2: string; // a second support agent: per-member sums across requesters

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  worker = await startWorker(pool);
  api = await startApi(pool, async () => true, { client: worker.client, taskQueue: worker.taskQueue });
  call = httpClient(api);
  const keyId = uniqueId('test-support-2');
  support2 = newSecret(keyId);
  await putKey(pool, { keyId, secret: support2, principal: 'test-support-2', roles: ['support'] });
});
afterAll(async () => {
  const result = await verifyInvariants(pool);
  await api.close();
  await worker.stop();
  await db.drop();
  assert.deepEqual(result.violations, []);
});

/** A program with a threshold of 1,000 points; each member given earns 2,000 (or the points given). */
async function program(members: Record<string, number>, adjustments: Record<string, unknown> = {}) {
  const p = uniqueId('split');
  const created = await call('POST', '/v1/programs', {
    body: programBody(p, { adjustments: { approvalThresholdPoints: 1000, ...adjustments } }),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  for (const [memberId, points] of Object.entries(members)) {
    const r = await call('POST', `/v1/programs/${p}/accruals`, {
      role: 'billing',
      body: { memberId, invoiceId: `i-${memberId}`, amountMinor: points * 100, occurredAt: new Date().toISOString() },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  return p;
}
const adjust = (p: string, memberId: string, points: number, o: { key?: string; idem?: string } = {}) =>
  call('POST', `/v1/programs/${p}/adjustments`, {
    role: 'support',
    key: o.key,
    idem: o.idem,
    body: { memberId, points, reasonCode: points > 0 ? 'goodwill' : 'correction' },
  });
const merge = (
  p: string,
  from: string,
  into: string,
  o: { role?: 'support' | 'admin'; idem?: string; key?: string } = {},
) =>
  call('POST', `/v1/programs/${p}/members/${from}/merge`, {
    role: o.role ?? 'support',
    key: o.key,
    idem: o.idem,
    body: { intoMemberId: into },
  });
const decide = (p: string, id: string, role: 'finance' | 'admin', decision: 'approve' | 'reject') =>
  call('POST', `/v1/programs/${p}/adjustments/${id}/approvals`, { role, body: { decision } });
const member = async (p: string, m: string) =>
  (await call('GET', `/v1/programs/${p}/members/${m}`, { role: 'support' })).body as {
    balance: number;
    status: string;
    mergedInto: string | null;
  };

test('three requests just under the threshold: the one that crosses it waits, per member across requesters and per requester across members', async () => {
  const p = await program({ 'm-1': 2000, 'm-2': 2000, 'm-3': 2000 });
  // one requester, one member: 400 + 400 = 800; with 400 more 1,200 > 1,000
  const first = await adjust(p, 'm-1', 400);
  const second = await adjust(p, 'm-1', 400);
  const third = await adjust(p, 'm-1', 400);
  assert.deepEqual(
    [first.status, second.status, third.status, third.body.status],
    [201, 201, 202, 'pending_approval'],
    JSON.stringify(third.body),
  );
  assert.deepEqual(
    [third.body.memberPointsInWindow, third.body.requesterPointsInWindow, third.body.approvalWindow],
    [800, 800, 'P30D'],
    'the default window, written out',
  );
  assert.equal((await member(p, 'm-1')).balance, 2800, 'the third moved nothing');

  // the same member, another requester: the member's 800 count (points taken count as much as added)
  const other = await adjust(p, 'm-1', -300, { key: support2 });
  assert.deepEqual(
    [other.status, other.body.memberPointsInWindow, other.body.requesterPointsInWindow],
    [202, 800, 0],
    JSON.stringify(other.body),
  );
  // the first requester, other members: the requester's 800 count
  const elsewhere = await adjust(p, 'm-2', 300);
  assert.deepEqual([elsewhere.status, elsewhere.body.requesterPointsInWindow], [202, 800]);
  // what went to finance is not counted: the second requester on a fresh member is at 0
  const fresh = await adjust(p, 'm-3', 1000, { key: support2 });
  assert.deepEqual([fresh.status, fresh.body.status], [201, 'applied'], 'exactly at the threshold');
  const rows = await pool.query(
    `select member_id, points::int, requested_by, needs_approval, status from manual_adjustments
      where program_id = $1 order by requested_at, adjustment_id`,
    [p],
  );
  assert.equal(rows.rows.filter((r) => !r.needs_approval && r.status === 'applied').length, 3);
  assert.equal(rows.rows.filter((r) => r.needs_approval && r.status === 'pending_approval').length, 3);
});

test('what finance approved is not counted; requests that left the window no longer count', async () => {
  const p = await program({ 'm-1': 5000 }, { approvalWindow: 'P1D' });
  const big = await adjust(p, 'm-1', 3000);
  assert.equal(big.status, 202);
  const ok = await decide(p, big.body.adjustmentId, 'finance', 'approve');
  assert.deepEqual([ok.status, ok.body.status], [200, 'applied'], JSON.stringify(ok.body));
  const small = await adjust(p, 'm-1', 900);
  assert.deepEqual(
    [small.status, small.body.memberPointsInWindow, small.body.approvalWindow],
    [201, 0, 'P1D'],
    'an approved adjustment does not use up the window',
  );
  const crossing = await adjust(p, 'm-1', 200);
  assert.equal(crossing.status, 202, '900 + 200 > 1,000');
  // the 900 requested more than a day ago (the program's window): it no longer counts
  await pool.query(
    `update manual_adjustments set requested_at = now() - interval '25 hours' where adjustment_id = $1`,
    [small.body.adjustmentId],
  );
  const later = await adjust(p, 'm-1', 200);
  assert.deepEqual([later.status, later.body.memberPointsInWindow], [201, 0], JSON.stringify(later.body));
});

test('concurrent requests cannot both slip under: the sum is taken under a lock', async () => {
  const p = await program({ 'm-1': 2000 });
  // a request of 600 recorded in a transaction not yet committed, as the API's would be between its
  // sum and its commit; a second request of 600 for the same member must wait for it, then see it
  const first = await pool.connect();
  try {
    await first.query('begin');
    await first.query('select ll_request_adjustment($1::jsonb)', [
      JSON.stringify({
        programId: p,
        adjustmentId: randomUUID(),
        memberId: 'm-1',
        points: 600,
        reasonCode: 'goodwill',
        comment: null,
        requestedBy: 'test-support',
        idempotencyKey: uniqueId('held'),
        defaultThresholdPoints: 1000,
        defaultWindow: 'P30D',
      }),
    ]);
    let settled = false;
    const second = adjust(p, 'm-1', 600, { key: support2 }).finally(() => (settled = true));
    // without the lock the second answers at once (201: it cannot see the first); with it, it waits
    await eventually(
      'the second request waiting on the lock, or answered',
      async () =>
        settled ||
        (await pool.query(`select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted`))
          .rows[0].n > 0,
    );
    await first.query('commit');
    const r = await second;
    assert.deepEqual([r.status, r.body.memberPointsInWindow], [202, 600], JSON.stringify(r.body));
  } finally {
    first.release();
  }

  // a burst of ten from two requesters on another member: only two of 400 fit under 1,000, in any order
  const q = await program({ 'm-2': 2000 });
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) => adjust(q, 'm-2', 400, { key: i % 2 ? support2 : undefined })),
  );
  const statuses = results.map((x) => x.status).sort();
  assert.deepEqual(statuses, [201, 201, 202, 202, 202, 202, 202, 202, 202, 202], JSON.stringify(statuses));
  assert.equal((await member(q, 'm-2')).balance, 2800);
});

test('a merge moving more than the threshold waits for finance on the adjustment path; the requester cannot approve it', async () => {
  const p = await program({ 'm-1': 2000, 'm-2': 100, 'm-3': 1500, 'm-4': 100 });
  const idem = uniqueId('merge');
  // one person who holds both support and finance
  const dual = await principalKey(pool, ['support', 'finance']);
  const waiting = await merge(p, 'm-1', 'm-2', { key: dual.key, idem });
  assert.equal(waiting.status, 202, JSON.stringify(waiting.body));
  const id = waiting.body.adjustmentId as string;
  assert.deepEqual(
    [waiting.body.status, waiting.body.pointsToMove, waiting.body.workflowId, waiting.body.poll],
    ['pending_approval', 2000, `adjustment:${p}:${id}`, `/v1/programs/${p}/adjustments/${id}`],
  );
  assert.deepEqual([(await member(p, 'm-1')).status, (await member(p, 'm-2')).balance], ['active', 100]);
  const replay = await merge(p, 'm-1', 'm-2', { key: dual.key, idem });
  assert.deepEqual(
    [replay.status, replay.body.adjustmentId, replay.headers.get('idempotent-replayed')],
    [202, id, 'true'],
  );
  const polled = await call('GET', waiting.body.poll, { role: 'finance' });
  assert.deepEqual(
    [polled.body.kind, polled.body.memberId, polled.body.intoMemberId, polled.body.points, polled.body.status],
    ['merge', 'm-1', 'm-2', 2000, 'pending_approval'],
  );

  // segregation of duties: the requester (who holds finance too) cannot decide it; admin is no approver
  const self = await call('POST', `/v1/programs/${p}/adjustments/${id}/approvals`, {
    key: dual.key,
    body: { decision: 'approve' },
  });
  assert.deepEqual([self.status, self.body.error?.code], [403, 'segregation_of_duties']);
  const byAdmin = await decide(p, id, 'admin', 'approve');
  assert.deepEqual([byAdmin.status, byAdmin.body.error?.code], [403, 'forbidden']);
  const ok = await decide(p, id, 'finance', 'approve');
  assert.deepEqual([ok.status, ok.body.status, ok.body.approvedBy], [200, 'applied', 'test-finance']);
  const from = await member(p, 'm-1');
  assert.deepEqual([from.status, from.mergedInto, (await member(p, 'm-2')).balance], ['merged', 'm-2', 2100]);
  const ledger = await pool.query(
    `select member_id, type, points::int, reference, actor from ledger_entries
      where program_id = $1 and type in ('merge_in', 'merge_out') order by entry_id`,
    [p],
  );
  assert.deepEqual(
    ledger.rows.map((r) => [r.member_id, r.type, r.points, r.reference, r.actor]),
    [
      ['m-1', 'merge_out', -2000, 'merge:into:m-2:approved-by:test-finance', dual.principal],
      ['m-2', 'merge_in', 2000, 'merge:from:m-1:approved-by:test-finance', dual.principal],
    ],
  );

  // rejected: nothing moves
  const second = await merge(p, 'm-3', 'm-4');
  assert.equal(second.status, 202, JSON.stringify(second.body));
  const no = await decide(p, second.body.adjustmentId, 'finance', 'reject');
  assert.deepEqual([no.status, no.body.status], [200, 'rejected']);
  assert.deepEqual([(await member(p, 'm-3')).status, (await member(p, 'm-4')).balance], ['active', 100]);
});

test('merges count in the window as the requester’s and both members’ movement; one under it keeps the base answer', async () => {
  const p = await program({ 'm-1': 600, 'm-2': 100, 'm-3': 600, 'm-4': 100, 'm-5': 100 });
  const under = await merge(p, 'm-1', 'm-2');
  assert.equal(under.status, 201, JSON.stringify(under.body));
  assert.deepEqual(Object.keys(under.body).sort(), ['intoMemberId', 'memberId', 'pointsMoved', 'status', 'survivor']);
  assert.deepEqual([under.body.status, under.body.pointsMoved], ['merged', 600]);
  // the survivor's window holds the 600 the merge moved: 500 more for it wait
  const onSurvivor = await adjust(p, 'm-2', 500, { key: support2 });
  assert.deepEqual([onSurvivor.status, onSurvivor.body.memberPointsInWindow], [202, 600]);
  // the requester's window too: a second merge of 600 by the same requester waits
  const again = await merge(p, 'm-3', 'm-4');
  assert.equal(again.status, 202, JSON.stringify(again.body));
  assert.deepEqual([again.body.requesterPointsInWindow, again.body.memberPointsInWindow], [600, 0]);
  // and an adjustment first, then a merge into that member, add up the same way
  assert.equal((await adjust(p, 'm-5', 500, { key: support2 })).status, 201);
  const intoAdjusted = await merge(p, 'm-4', 'm-5', { role: 'admin' });
  assert.equal(intoAdjusted.status, 201, 'm-5 at 500, m-4 moves 100: 600');
  const crossing = await merge(p, 'm-3', 'm-5', { role: 'admin' });
  assert.deepEqual([crossing.status, crossing.body.memberPointsInWindow], [202, 600], '600 + 600 > 1,000');
});
