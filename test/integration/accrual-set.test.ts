import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Pool } from 'pg';
import { afterAll, beforeAll, test } from 'vitest';
import { accrueBatch, type AccrualItem } from '../../db/ledger';
import { verifyInvariants } from '../../db/verify';
import { freshDatabase, uniqueId } from '../helpers/stack';

// The set-based accrual batch (db/functions/ll_accrue_set.sql) against the item-by-item one
// (ll_accrue through ll_accrue_batch): the same batches, in two programs set up alike, must leave
// the same answers and the same rows in every table the accrual writes. The batches mix what the
// set path must leave to the item path (replays, a key reused with another body, an invoice twice,
// a purchase after the deadline, an archived member, a stale estimate) with what it takes.

let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
});
afterAll(async () => {
  await db?.drop();
});

const DAY = 86_400_000;
const BASE = Date.parse('2026-01-01T00:00:00Z');
const EXPIRY = {
  policy: 'rolling',
  window: 'P90D',
  jurisdictions: { DE: { policy: 'none' }, 'US-CA': { policy: 'rolling', window: 'P30D' } },
};

interface Spec {
  member: string;
  invoice: string;
  key: string;
  body: number;
  day: number;
  points: number;
  allocated: number;
  jurisdiction: string | null;
  cohort: string;
  stale: boolean;
}

const spec: fc.Arbitrary<Spec> = fc.record({
  member: fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom('m1', 'm2', 'm3', 'm4', 'm5', 'm6') },
    { weight: 1, arbitrary: fc.constant('gone') },
  ),
  invoice: fc.integer({ min: 1, max: 40 }).map((n) => `i${n}`),
  key: fc.oneof(
    { weight: 8, arbitrary: fc.constant('same') },
    { weight: 1, arbitrary: fc.constantFrom('k1', 'k2', 'k3') },
  ),
  body: fc.constantFrom(0, 0, 0, 1),
  day: fc.integer({ min: 0, max: 400 }),
  points: fc.integer({ min: 0, max: 500 }),
  allocated: fc.integer({ min: 0, max: 400 }),
  jurisdiction: fc.constantFrom(null, null, 'US-CA', 'DE'),
  cohort: fc.constantFrom('2026-Q1', '2026-Q2'),
  stale: fc.integer({ min: 0, max: 19 }).map((n) => n === 0), // one item in 20: fast-check's own randomness, so a seed replays it
});

const at = (member: string, invoice: string, day: number, jurisdiction: string | null): Spec => ({
  member,
  invoice,
  key: 'same',
  body: 0,
  day,
  points: 100,
  allocated: 79,
  jurisdiction,
  cohort: '2026-Q1',
  stale: false,
});

function item(programId: string, s: Spec, ids: Map<string, string>, logical: string): AccrualItem {
  const accrualId = randomUUID();
  ids.set(accrualId, logical);
  return {
    programId,
    idemKey: s.key === 'same' ? s.invoice : s.key,
    requestHash: `${s.invoice}-${s.body}`,
    accrualId,
    memberId: s.member,
    invoiceId: s.invoice,
    amountMinor: String(s.points * 10 + 1),
    points: String(s.points),
    allocatedMinor: String(s.allocated),
    allocatedMicro: String(BigInt(s.allocated) * 1_000_000n),
    cohort: s.cohort,
    occurredAt: new Date(BASE + s.day * DAY).toISOString(),
    ...(s.jurisdiction ? { jurisdiction: s.jurisdiction } : {}),
    expiry: EXPIRY,
    expectedRedemptionRate: 0.8,
    rateClose: s.stale ? '2025-Q4' : null,
    ruleVersion: 1,
    debitAccount: 'revenue',
    creditAccount: 'loyalty_contract_liability',
    actor: 'set-test',
  };
}

async function program(): Promise<string> {
  const programId = uniqueId('set');
  await pool.query(
    `insert into programs (program_id, name, currency, currency_digits, created_by) values ($1, 'Set', 'USD', 2, 'test')`,
    [programId],
  );
  // an archived member (its accruals are refused) and a webhook that takes the accruals' events
  await pool.query(`insert into members (program_id, member_id, status) values ($1, 'gone', 'archived')`, [programId]);
  await pool.query(
    `insert into webhooks (webhook_id, program_id, url, events, secret, created_by)
     values ($1, $2, 'https://example.test/hook', '{points.earned}', repeat('s', 32), 'test')`,
    [randomUUID(), programId],
  );
  return programId;
}

/** Would ll_accrue_set take this batch? Asked in a transaction rolled back. */
async function takesSetPath(items: AccrualItem[]): Promise<boolean> {
  const c = await pool.connect();
  try {
    await c.query('begin');
    const { rows } = await c.query(
      'select ll_accrue_set($1::jsonb, ll_lock_batch_members($1::jsonb)) is not null as set',
      [JSON.stringify(items)],
    );
    return rows[0].set;
  } catch {
    return false; // it would abort (a closed period, a concurrent duplicate): the item path runs
  } finally {
    await c.query('rollback');
    c.release();
  }
}

// the two programs' rows differ only in their ids: accrual ids, and the entry id an expiry's key ends with
const norm = (v: unknown, ids: Map<string, string>) =>
  JSON.parse(JSON.stringify(v), (_k, x) =>
    typeof x !== 'string' ? x : ids.has(x) ? ids.get(x) : x.startsWith('expire:') ? x.replace(/\d+\]/, 'N]') : x,
  );

async function tables(programId: string, ids: Map<string, string>) {
  const q = async (sql: string) => norm((await pool.query(sql, [programId])).rows, ids);
  return {
    members: await q(
      `select member_id, status, balance, held, last_purchase_at, expires_at, jurisdiction from members where program_id = $1 order by member_id`,
    ),
    wakeups: await q(`select member_id from member_wakeups where program_id = $1 order by member_id`),
    memberCohorts: await q(`select member_id, cohort, points from member_cohorts where program_id = $1 order by 1, 2`),
    cohorts: await q(
      `select cohort, ultimate_redemption_rate, liability_account, recognized_minor from cohorts where program_id = $1 order by 1`,
    ),
    stripes: await q(
      `select cohort, stripe, points_issued, allocated_minor, allocated_micro, points_revoked, allocated_reversed_minor,
              points_redeemed, points_expired from cohort_stripes where program_id = $1 order by 1, 2`,
    ),
    ledger: await q(
      `select e.member_id, e.type, e.points, e.occurred_at, e.reference, e.actor, e.idempotency_key, e.rule_version,
              j.idempotency_key as journal_key,
              (select json_agg(json_build_array(c.cohort, c.points) order by c.cohort) from ledger_entry_cohorts c where c.entry_id = e.entry_id) as cohorts
         from ledger_entries e left join journal_entries j on j.journal_entry_id = e.journal_entry_id
        where e.program_id = $1 order by e.idempotency_key`,
    ),
    journal: await q(
      `select j.kind, j.occurred_at, j.reference, j.actor, j.idempotency_key, j.debit_minor, j.credit_minor,
              (select json_agg(json_build_array(l.line_no, l.account, l.debit_minor, l.credit_minor, l.cohort) order by l.line_no)
                 from journal_lines l where l.journal_entry_id = j.journal_entry_id) as lines
         from journal_entries j where j.program_id = $1 order by j.idempotency_key`,
    ),
    accruals: await q(
      `select invoice_id, accrual_id, member_id, credited_member_id, amount_minor, points, allocated_minor, allocated_micro, cohort,
              occurred_at, store_id, jurisdiction, rule_version, request_hash, response, redemption_rate, rate_close
         from accruals where program_id = $1 order by invoice_id`,
    ),
    keys: await q(
      `select idem_key, request_hash, status_code, response from idempotency_keys where scope = $1 order by idem_key`,
    ),
    audit: await q(
      `select a.actor, a.action, a.member_id, a.after, a.idempotency_key from audit_log a
        where a.program_id = $1 and a.subject like 'ledger_entry:%' order by a.idempotency_key, a.action`,
    ),
    events: await q(
      `select e.type, e.member_id, e.occurred_at, e.data, (select count(*)::int from webhook_deliveries d where d.event_id = e.event_id) as deliveries
         from webhook_events e where e.program_id = $1 order by e.data->>'invoiceId', e.recorded_at`,
    ),
  };
}

const answer = (r: unknown, ids: Map<string, string>) =>
  r instanceof Error ? { error: (r as { code?: string }).code ?? r.message } : norm(r, ids);

test('set-based batches leave what item-by-item batches leave: the answers and every table', async () => {
  let setBatches = 0;
  let itemBatches = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(spec, { minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 4 }),
      async (batches) => {
        const [a, b] = [await program(), await program()];
        const [idsA, idsB] = [new Map<string, string>(), new Map<string, string>()];
        for (const [n, batch] of batches.entries()) {
          const itemsA = batch.map((s, i) => item(a, s, idsA, `b${n}i${i}`));
          const itemsB = batch.map((s, i) => item(b, s, idsB, `b${n}i${i}`));
          if (await takesSetPath(itemsA)) setBatches++;
          else itemBatches++;
          const got = (await accrueBatch(pool, itemsA)).map((r) => answer(r, idsA));
          // the item-by-item path: ll_accrue in a subtransaction per item
          const { rows } = await pool.query('select ll_accrue_batch($1::jsonb) as r', [JSON.stringify(itemsB)]);
          const want = (rows[0].r as Array<Record<string, unknown>>).map((r) =>
            'error' in r ? { error: (r.error as { code: string }).code } : norm(r, idsB),
          );
          assert.deepEqual(got, want, `batch ${n}`);
        }
        assert.deepEqual(await tables(a, idsA), await tables(b, idsB));
      },
    ),
    {
      numRuns: 60,
      examples: [
        // a member's later item without a jurisdiction takes the one an earlier item set (its window)
        [[[at('m1', 'i1', 0, 'US-CA'), at('m1', 'i2', 5, null), at('m2', 'i3', 5, null)]]],
        // several items of a member, in a batch after one that left them a deadline
        [[[at('m1', 'i1', 0, null)], [at('m1', 'i2', 20, null), at('m1', 'i3', 10, null), at('m3', 'i4', 1, 'DE')]]],
      ],
    },
  );
  // the comparison is worth something only if both paths ran
  assert.ok(setBatches >= 20, `set-based batches: ${setBatches}`);
  assert.ok(itemBatches >= 20, `item-by-item batches: ${itemBatches}`);
  const { violations } = await verifyInvariants(pool);
  assert.deepEqual(violations, []);
});

test('a batch of new accruals takes the set path; a replay in it sends the whole batch item by item', async () => {
  const programId = await program();
  const ids = new Map<string, string>();
  const fresh = (invoice: string, member: string): Spec => ({
    member,
    invoice,
    key: 'same',
    body: 0,
    day: 10,
    points: 100,
    allocated: 79,
    jurisdiction: null,
    cohort: '2026-Q1',
    stale: false,
  });
  const first = [fresh('i1', 'm1'), fresh('i2', 'm1'), fresh('i3', 'm2')].map((s, i) =>
    item(programId, s, ids, `a${i}`),
  );
  assert.equal(await takesSetPath(first), true);
  const results = await accrueBatch(pool, first);
  assert.deepEqual(
    results.map((r) => (r as unknown as { body: { balance: number } }).body.balance),
    [100, 200, 100],
  );
  const again = [fresh('i1', 'm1'), fresh('i4', 'm3')].map((s, i) => item(programId, s, ids, `b${i}`));
  assert.equal(await takesSetPath(again), false);
  const [replay, created] = await accrueBatch(pool, again);
  assert.equal((replay as { replayed: boolean }).replayed, true);
  assert.equal((created as { status: number }).status, 201);
});
