import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import fc from 'fast-check';
import { addDuration } from '../../domain/duration';
import { freshDatabase } from '../helpers/stack';

// One meaning for a duration: what the database computes for a deadline (ll_add_duration, the
// member's expiry) and what the workflows wait (domain/duration.ts addDuration); in any session
// time zone, since ll_add_duration does its calendar arithmetic in UTC.
let db: Awaited<ReturnType<typeof freshDatabase>>;

beforeAll(async () => {
  db = await freshDatabase();
});
afterAll(async () => {
  await db.drop();
});

const isoDuration = fc
  .record({
    y: fc.integer({ min: 0, max: 30 }),
    mo: fc.integer({ min: 0, max: 40 }),
    w: fc.integer({ min: 0, max: 10 }),
    d: fc.integer({ min: 0, max: 800 }),
    h: fc.integer({ min: 0, max: 50 }),
    mi: fc.integer({ min: 0, max: 200 }),
    s: fc.integer({ min: 0, max: 100_000 }),
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
  fc
    .record({
      y: fc.integer({ min: 1990, max: 2060 }),
      m: fc.integer({ min: 0, max: 11 }),
      d: fc.integer({ min: 27, max: 31 }),
    })
    .map(({ y, m, d }) => Date.UTC(y, m, Math.min(d, new Date(Date.UTC(y, m + 1, 0)).getUTCDate()))),
);

const ZONES = ['UTC', 'America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'Asia/Kolkata'];

test('property: addDuration equals ll_add_duration to the millisecond, whatever the session time zone', async () => {
  const client = await db.pool.connect();
  try {
    await fc.assert(
      fc.asyncProperty(instant, isoDuration, fc.constantFrom(...ZONES), async (fromMs, duration, zone) => {
        await client.query(`select set_config('timezone', $1, false)`, [zone]);
        const { rows } = await client.query<{ ms: string }>(
          `select (extract(epoch from ll_add_duration($1::timestamptz, $2::interval)) * 1000)::bigint::text as ms`,
          [new Date(fromMs).toISOString(), duration],
        );
        assert.equal(
          addDuration(fromMs, duration),
          Number(rows[0]!.ms),
          `${new Date(fromMs).toISOString()} + ${duration} in ${zone}`,
        );
      }),
      { numRuns: 500 },
    );
  } finally {
    await client.query(`select set_config('timezone', 'UTC', false)`);
    client.release();
  }
});

test('a session outside UTC is why the database adds durations in UTC: plain timestamptz + interval drifts across DST', async () => {
  const { rows } = await db.pool.query<{ plain: string; utc: string }>(
    `select set_config('timezone', 'America/New_York', true),
            to_char(('2026-03-01T12:00:00Z'::timestamptz + 'P1M'::interval) at time zone 'UTC', 'YYYY-MM-DD HH24:MI') as plain,
            to_char(ll_add_duration('2026-03-01T12:00:00Z', 'P1M') at time zone 'UTC', 'YYYY-MM-DD HH24:MI') as utc`,
  );
  assert.equal(rows[0]!.utc, '2026-04-01 12:00');
  assert.equal(rows[0]!.plain, '2026-04-01 11:00');
});
