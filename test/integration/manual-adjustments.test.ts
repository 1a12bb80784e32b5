import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import type { Pool } from 'pg';
import { verifyInvariants } from '../../db/verify';
import {
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
  o: { role?: 'support' | 'admin' | 'billing'; idem?: string } = {},
) =>
  call('POST', `/v1/programs/${p}/adjustments`, {
    role: o.role ?? 'support',
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
    { account: 'loyalty_contract_liability', d: 0, c: 400 }, // 500 points x 1 x 0.8
    { account: 'loyalty_expense', d: 400, c: 0 },
  ]);
  const minus = await adjust(p, { points: -200, reasonCode: 'correction' });
  assert.deepEqual([minus.status, minus.body.status], [201, 'applied']);
  assert.equal(await balance(p), 2300);
  const tooMuch = await adjust(p, { points: -999, reasonCode: 'fraud' });
  assert.equal(tooMuch.status, 201, 'still within the threshold and the available points');
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
      ['adjust', -999, 'test-support'],
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

  // one person holding both roles (admin) cannot approve their own request
  const own = await adjust(p, { points: 3000 }, { role: 'admin' });
  const self = await approve('admin', own.body.adjustmentId);
  assert.deepEqual([self.status, self.body.error.code], [403, 'segregation_of_duties']);
  const rejected = await approve('finance', own.body.adjustmentId, 'reject');
  assert.deepEqual([rejected.body.status, rejected.body.approvedBy], ['rejected', 'test-finance']);
  assert.equal(await balance(p), 7000);
  const read = await call('GET', `/v1/programs/${p}/adjustments/${own.body.adjustmentId}`, { role: 'finance' });
  assert.deepEqual([read.body.status, read.body.requestedBy], ['rejected', 'test-admin']);
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
