import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import fc from 'fast-check';
import { addDuration } from '../../domain/duration';
import { freshDatabase } from '../helpers/stack';

// One meaning for a duration: what PostgreSQL computes for `timestamptz + interval` in UTC (the
// member's expiry deadline) and what the workflows wait (domain/duration.ts addDuration).
let db: Awaited<ReturnType<typeof freshDatabase>>;

beforeAll(async () => {
  db = await freshDatabase();
});
afterAll(async () => {
  await db.drop();
});

const isoDuration = fc
  .record({
    y: fc.integer({ min: 0, max: 30 }), mo: fc.integer({ min: 0, max: 40 }), w: fc.integer({ min: 0, max: 10 }),
    d: fc.integer({ min: 0, max: 800 }), h: fc.integer({ min: 0, max: 50 }), mi: fc.integer({ min: 0, max: 200 }), s: fc.integer({ min: 0, max: 100_000 }),
  })
  .map(({ y, mo, w, d, h, mi, s }) => {
    const date = `${y ? `${y}Y` : ''}${mo ? `${mo}M` : ''}${w ? `${w}W` : ''}${d ? `${d}D` : ''}`;
    const time = `${h ? `${h}H` : ''}${mi ? `${mi}M` : ''}${s ? `${s}S` : ''}`;
    const iso = `P${date}${time ? `T${time}` : ''}`;
    return iso === 'P' ? 'P1D' : iso;
  });

// Instants from 1990 to 2060, often on a month's last days and at midnight, where calendar arithmetic differs.
const instant = fc.oneof(
  fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2060, 0, 1) }),
  fc.record({ y: fc.integer({ min: 1990, max: 2060 }), m: fc.integer({ min: 0, max: 11 }), d: fc.integer({ min: 27, max: 31 }) })
    .map(({ y, m, d }) => Date.UTC(y, m, Math.min(d, new Date(Date.UTC(y, m + 1, 0)).getUTCDate()))),
);

test('property: addDuration equals PostgreSQL timestamptz + interval in UTC, to the millisecond', async () => {
  await fc.assert(
    fc.asyncProperty(instant, isoDuration, async (fromMs, duration) => {
      const { rows } = await db.pool.query<{ ms: string }>(
        `select (extract(epoch from ($1::timestamptz + $2::interval)) * 1000)::bigint::text as ms`, [new Date(fromMs).toISOString(), duration]);
      assert.equal(addDuration(fromMs, duration), Number(rows[0]!.ms), `${new Date(fromMs).toISOString()} + ${duration}`);
    }),
    { numRuns: 500 },
  );
});
