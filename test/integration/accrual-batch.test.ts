import assert from 'node:assert/strict';
import type { Pool } from 'pg';
import { afterAll, beforeAll, test } from 'vitest';
import { verifyInvariants } from '../../db/verify';
import {
  freshDatabase,
  httpClient,
  principalKey,
  programBody,
  startApi,
  uniqueId,
  type TestApi,
} from '../helpers/stack';

// POST /v1/programs/{programId}/accruals/batch (API.md, "Integration surface"; issue 17, item 2):
// up to 1,000 accruals, each with its own idempotency key and the single accrual's semantics, a
// result per item in order; one bad item fails no other. Against the real API and PostgreSQL; the
// ledger's invariants are verified at the end.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let api: TestApi;
let call: ReturnType<typeof httpClient>;
let programId: string;

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  api = await startApi(pool);
  call = httpClient(api);
  programId = uniqueId('batch');
  assert.equal((await call('POST', '/v1/programs', { body: programBody(programId) })).status, 201);
});
afterAll(async () => {
  const result = await verifyInvariants(pool);
  await api.close();
  await db.drop();
  assert.deepEqual(result.violations, []);
});

const at = '2026-11-02T10:00:00Z';
const item = (n: string, o: Record<string, unknown> = {}) => ({
  idempotencyKey: `key-${n}`,
  memberId: `m-${n}`,
  invoiceId: `inv-${n}`,
  amountMinor: 10_000,
  occurredAt: at,
  ...o,
});
const batch = (accruals: unknown[], o: { key?: string; role?: 'billing' | 'finance' } = {}) =>
  call('POST', `/v1/programs/${programId}/accruals/batch`, {
    body: { accruals },
    idem: null,
    ...(o.key ? { key: o.key } : { role: o.role ?? 'billing' }),
  });
const balance = async (memberId: string) =>
  (await call('GET', `/v1/programs/${programId}/members/${memberId}`, { role: 'support' })).body.balance;

test('each item answered as the accrual alone would be, in order; the bad ones fail no other', async () => {
  const res = await batch([
    item('a'),
    { ...item('b'), amountMinor: -5 },
    item('c', { occurredAt: '2099-01-01T00:00:00Z' }),
    { memberId: 'm-d' },
    item('e', { storeId: 'store-1', jurisdiction: 'US-CA' }),
    'not an object',
  ]);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const [a, b, c, d, e, f] = res.body.results;
  assert.deepEqual([a.status, a.memberId, a.points], [201, 'm-a', 100]);
  assert.deepEqual([b.status, b.error.code], [400, 'validation_failed']);
  assert.ok(b.error.details.issues.some((i: { path: string }) => i.path === 'amountMinor'));
  assert.deepEqual([c.status, c.error.code], [422, 'occurred_at_in_future']);
  assert.deepEqual([d.status, d.error.code], [400, 'validation_failed']);
  assert.ok(d.error.details.issues.some((i: { path: string }) => i.path === 'idempotencyKey'));
  assert.equal(e.status, 201);
  assert.equal(f.status, 400);
  assert.deepEqual([await balance('m-a'), await balance('m-e')], [100, 100]);
  // the bad ones wrote nothing
  const members = await pool.query('select member_id from members where program_id = $1 order by 1', [programId]);
  assert.deepEqual(
    members.rows.map((r) => r.member_id),
    ['m-a', 'm-e'],
  );
});

test('the same keys again replay their first answers; a key with another body is refused; keys replay across the single route too', async () => {
  const first = await batch([item('r1'), item('r2')]);
  const again = await batch([item('r1'), item('r2', { amountMinor: 20_000 }), item('r3')]);
  const [r1, r2, r3] = again.body.results;
  assert.deepEqual({ ...r1 }, { ...first.body.results[0], status: 201, replayed: true });
  assert.deepEqual(
    [r2.status, r2.error.code, r2.error.details.idempotencyKey],
    [409, 'idempotency_key_reused', 'key-r2'],
  );
  assert.equal(r3.status, 201);
  assert.equal(await balance('m-r2'), 100);
  // a key sent to POST .../accruals replays in a batch with the same body, and the other way round
  const single = await call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    idem: 'key-s1',
    body: { memberId: 'm-s1', invoiceId: 'inv-s1', amountMinor: 10_000, occurredAt: at },
  });
  assert.equal(single.status, 201);
  const viaBatch = (await batch([item('s1')])).body.results[0];
  assert.deepEqual([viaBatch.status, viaBatch.replayed, viaBatch.accrualId], [201, true, single.body.accrualId]);
  const back = await call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    idem: 'key-r3',
    body: { memberId: 'm-r3', invoiceId: 'inv-r3', amountMinor: 10_000, occurredAt: at },
  });
  assert.deepEqual([back.status, back.headers.get('idempotent-replayed')], [201, 'true']);
  // an invoice that earned already, under another key: the natural key, as the single route answers it
  const dup = (await batch([item('r1', { idempotencyKey: 'another-key' })])).body.results[0];
  assert.deepEqual([dup.status, dup.replayed], [200, true]);
  const otherBilling = await principalKey(pool, ['billing']);
  const stranger = (await batch([item('r1', { idempotencyKey: 'k-x' })], { key: otherBilling.key })).body.results[0];
  assert.deepEqual([stranger.status, stranger.error.code], [409, 'invoice_already_accrued']);
  assert.equal(await balance('m-r1'), 100);
});

test('1,000 accruals in one request, all written; 1,001 is refused whole; the batch is billing’s and the program must exist', async () => {
  const items = Array.from({ length: 1000 }, (_, i) => item(`bulk-${i}`, { memberId: `bulk-m-${i % 100}` }));
  const res = await batch(items);
  assert.equal(res.status, 200);
  assert.equal(res.body.results.length, 1000);
  assert.deepEqual(
    res.body.results.map((r: { status: number }) => r.status),
    items.map(() => 201),
  );
  assert.deepEqual(
    res.body.results.map((r: { memberId: string }) => r.memberId),
    items.map((i) => i.memberId),
  );
  assert.equal(await balance('bulk-m-7'), 1000);
  const over = await batch([...items, item('one-more')]);
  assert.deepEqual([over.status, over.body.error.code], [400, 'validation_failed']);
  const empty = await batch([]);
  assert.equal(empty.status, 400);
  assert.equal((await batch([item('f1')], { role: 'finance' })).status, 403);
  const none = await call('POST', `/v1/programs/no-such-program/accruals/batch`, {
    role: 'billing',
    idem: null,
    body: { accruals: [item('n1')] },
  });
  assert.equal(none.status, 404);
});
