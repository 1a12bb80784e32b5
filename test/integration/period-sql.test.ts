import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import fc from 'fast-check';
import { invoiceAdjustmentKey } from '../../domain/ledger-keys';
import { quarterOf } from '../../domain/period';
import { freshDatabase } from '../helpers/stack';

// A quarter has two homes because both sides name one: the API names an accrual's cohort
// (domain/period.ts quarterOf), the database a manual adjustment's cohort and the close's
// redemption triangle (ll_quarter_of). They must agree on every instant, the boundaries above all.
let db: Awaited<ReturnType<typeof freshDatabase>>;

beforeAll(async () => {
  db = await freshDatabase();
});
afterAll(async () => {
  await db.drop();
});

const boundary = fc
  .record({
    y: fc.integer({ min: 1971, max: 2200 }),
    q: fc.integer({ min: 0, max: 3 }),
    offsetMs: fc.integer({ min: -2, max: 1 }),
  })
  .map(({ y, q, offsetMs }) => Date.UTC(y, q * 3, 1) + offsetMs);
const anyInstant = fc.integer({ min: Date.UTC(1971, 0, 1), max: Date.UTC(2200, 0, 1) });

test('property: quarterOf equals ll_quarter_of on any instant, in any session time zone', async () => {
  const client = await db.pool.connect();
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(boundary, anyInstant),
        fc.constantFrom('UTC', 'Pacific/Kiritimati', 'America/Los_Angeles'),
        async (ms, zone) => {
          await client.query(`select set_config('timezone', $1, false)`, [zone]);
          const at = new Date(ms).toISOString();
          const { rows } = await client.query<{ q: string }>('select ll_quarter_of($1::timestamptz) as q', [at]);
          assert.equal(rows[0]!.q, quarterOf(new Date(ms)), at);
        },
      ),
      { numRuns: 500 },
    );
  } finally {
    await client.query(`select set_config('timezone', 'UTC', false)`);
    client.release();
  }
});

// An adjustment's key part is built by the database (ll_adjust_redemption's ledger entry and
// journals) and by the saga (the GL entry it posts for them): both must write the same key, and no
// two (invoice, adjustment) pairs may share one.
const printable = fc.string({ unit: fc.constantFrom('a', 'b', ':', '1', '-', '~'), minLength: 1, maxLength: 6 });

test('property: invoiceAdjustmentKey equals ll_adjustment_key, and no two id pairs share a key', async () => {
  const seen = new Map<string, string>();
  await fc.assert(
    fc.asyncProperty(printable, printable, async (invoiceId, adjustmentId) => {
      const { rows } = await db.pool.query<{ k: string }>('select ll_adjustment_key($1, $2) as k', [
        invoiceId,
        adjustmentId,
      ]);
      const key = invoiceAdjustmentKey(invoiceId, adjustmentId);
      assert.equal(rows[0]!.k, key);
      const pair = JSON.stringify([invoiceId, adjustmentId]);
      assert.ok(!seen.has(key) || seen.get(key) === pair, `${pair} and ${seen.get(key)} share ${key}`);
      seen.set(key, pair);
    }),
    { numRuns: 500 },
  );
  // the collision the colon-free form had
  assert.notEqual(invoiceAdjustmentKey('a:b', 'c'), invoiceAdjustmentKey('a', 'b:c'));
  assert.equal(invoiceAdjustmentKey('inv-1', 'adj-1'), 'inv-1:adj-1', 'colon-free ids keep their key');
});
