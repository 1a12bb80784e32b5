import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { PoolClient } from 'pg';
import { commitRedemption, holdRedemption } from '../../db/redemptions';
import { eventually, programBody, startCloseStack, uniqueId, type CloseStack } from '../helpers/stack';

// `loyalty verify` exits 0 on a sound ledger and 1, naming the broken invariant, on a tampered one.
// The books are real (accruals, a redemption, goodwill points, two quarters closed, approved, posted
// to the GL and locked); each tampering is direct SQL, bypassing the append-only and locked-period
// triggers where it must (session_replication_role = replica), and is undone after its check so the
// next one starts from sound books.
let stack: CloseStack;
let p: string;

beforeAll(async () => {
  stack = await startCloseStack(29);
  p = uniqueId('v');
  const { call, pool } = stack;
  assert.equal((await call('POST', '/v1/programs', { body: programBody(p, { pointValueMinor: 100 }) })).status, 201);
  const accrue = async (
    memberId: string,
    invoiceId: string,
    amountMinor: number,
    occurredAt: string,
    storeId: string,
  ) =>
    assert.equal(
      (
        await call('POST', `/v1/programs/${p}/accruals`, {
          role: 'billing',
          body: { memberId, invoiceId, amountMinor, occurredAt, storeId },
        })
      ).status,
      201,
    );
  await accrue('m', 'i-1', 10_000, '2026-01-10T00:00:00Z', 's-1');
  await accrue('m2', 'i-2', 20_000, '2026-02-10T00:00:00Z', 's-2');
  await accrue('m', 'i-3', 30_000, '2026-04-10T00:00:00Z', 's-1');
  const h = await holdRedemption(pool, {
    programId: p,
    invoiceId: 'r-1',
    redemptionId: randomUUID(),
    memberId: 'm',
    points: 50,
    invoiceTotalMinor: 100_000,
    pointValueMinor: 100,
    minPoints: 1,
    maxInvoiceShareMillionths: '1000000',
    cohortOrder: 'oldest_first',
    occurredAt: '2026-05-01T00:00:00Z',
  });
  assert.equal(h.status, 'held');
  await commitRedemption(pool, p, 'r-1', 'test');
  const goodwill = await call('POST', `/v1/programs/${p}/adjustments`, {
    role: 'support',
    body: { memberId: 'm2', points: 40, reasonCode: 'goodwill' },
  });
  assert.equal(goodwill.status, 201, JSON.stringify(goodwill.body));
  for (const period of ['2026-Q1', '2026-Q2']) {
    assert.equal((await call('POST', `/v1/programs/${p}/closes`, { role: 'finance', body: { period } })).status, 202);
    await eventually(
      `${period} awaiting approval`,
      async () =>
        (await call('GET', `/v1/programs/${p}/closes/${period}`, { role: 'controller' })).body.step ===
        'awaiting_approval',
      30_000,
    );
    const approved = await call('POST', `/v1/programs/${p}/closes/${period}/approve`, { role: 'controller' });
    assert.deepEqual([approved.status, approved.body.status], [200, 'locked'], JSON.stringify(approved.body));
  }
});
afterAll(async () => {
  // not stack.stop(): its final verify belongs to the checks below, which tamper on purpose
  await stack.api.close();
  await stack.worker.stop();
  await stack.sims.close();
  await stack.db.drop();
});

const verify = () =>
  spawnSync(
    process.execPath,
    ['--import', 'tsx', join(__dirname, '..', '..', 'cli', 'index.ts'), 'verify', '--database-url', stack.db.url],
    { encoding: 'utf8' },
  );

/** Runs `sql` on one session with the triggers off (replica), the way a hand edit would bypass them. */
async function asReplica(sql: string, params: unknown[] = []): Promise<void> {
  const client: PoolClient = await stack.db.adminPool.connect();
  try {
    await client.query('set session_replication_role = replica');
    await client.query(sql, params);
  } finally {
    await client.query('reset session_replication_role');
    client.release();
  }
}

/** Tampers, expects `loyalty verify` to exit 1 naming `check`, undoes the tampering, expects it clean again. */
async function caught(check: string, tamper: string, undo: string, params: unknown[] = []): Promise<string> {
  await asReplica(tamper, params);
  let out: string;
  try {
    const broken = verify();
    out = broken.stdout;
    assert.equal(broken.status, 1, broken.stdout + broken.stderr);
    assert.ok(broken.stdout.includes(`VIOLATION ${check}:`), `expected "${check}" in:\n${broken.stdout}`);
  } finally {
    await asReplica(undo, params);
  }
  const clean = verify();
  assert.equal(clean.status, 0, clean.stdout + clean.stderr);
  return out;
}

/** A balanced journal entry of the program, dated `at`, with the given lines; returns a statement and its undo. */
const journalEntry = (key: string, at: string, lines: Array<[string, number, number, string | null]>) => {
  const total = lines.reduce((s, l) => s + l[1], 0);
  const values = lines
    .map(
      ([account, d, c, cohort], i) =>
        `(${i + 1}, '${account}', ${d}, ${c}, ${cohort === null ? 'null' : `'${cohort}'`})`,
    )
    .join(', ');
  return {
    tamper: `with j as (insert into journal_entries (program_id, kind, occurred_at, reference, actor, idempotency_key, debit_minor, credit_minor)
                        values ($1, 'accrual', '${at}', 'tamper', 'test', '${key}', ${total}, ${total}) returning journal_entry_id)
             insert into journal_lines (journal_entry_id, line_no, account, debit_minor, credit_minor, cohort)
             select j.journal_entry_id, v.* from j, (values ${values}) v(line_no, account, debit_minor, credit_minor, cohort)`,
    undo: `with j as (select journal_entry_id from journal_entries where program_id = $1 and idempotency_key = '${key}'),
                d as (delete from journal_lines where journal_entry_id in (select journal_entry_id from j))
           delete from journal_entries where journal_entry_id in (select journal_entry_id from j)`,
  };
};

describe('loyalty verify', () => {
  test('clean books pass; a tampered balance fails; the append-only triggers refuse UPDATE and DELETE', async () => {
    const clean = verify();
    assert.equal(clean.status, 0, clean.stdout + clean.stderr);
    assert.match(clean.stdout, /invariants hold/);

    // the app role may not at all (test/integration/least-privilege.test.ts); the owner or a superuser meets the triggers
    await assert.rejects(stack.pool.query(`update ledger_entries set points = points + 1`), /permission denied/);
    await assert.rejects(stack.db.adminPool.query(`update ledger_entries set points = points + 1`), /append_only/);
    await assert.rejects(stack.db.adminPool.query(`delete from journal_lines`), /append_only/);

    await caught(
      'member balance equals the sum of its ledger entries',
      `update members set balance = balance + 5 where program_id = $1 and member_id = 'm'`,
      `update members set balance = balance - 5 where program_id = $1 and member_id = 'm'`,
      [p],
    );
  });

  test('a liability below zero in the journal is caught, per cohort', async () => {
    const e = journalEntry('tamper:negative', '2026-12-01T00:00:00Z', [
      ['loyalty_contract_liability', 1_000_000, 0, '2026-Q1'],
      ['revenue', 0, 1_000_000, null],
    ]);
    await caught(
      'no liability is negative in the journal: per cohort, credits less debits on the contract liability and the provision are >= 0',
      e.tamper,
      e.undo,
      [p],
    );
  });

  test('a cohort that recognised more than its posted allocation is caught in the cohort figures', async () => {
    await caught(
      'no liability is negative in the cohort figures: per cohort, allocation posted less reversed less recognised is >= 0',
      `update cohorts set recognized_minor = recognized_minor + 1000000 where program_id = $1 and cohort = '2026-Q1'`,
      `update cohorts set recognized_minor = recognized_minor - 1000000 where program_id = $1 and cohort = '2026-Q1'`,
      [p],
    );
  });

  test('a cohort the stripes never saw, recognising what nobody allocated, is caught by the journal-equals-figures check', async () => {
    await caught(
      'liability (or provision) per cohort equals allocated less reversed less recognised',
      `insert into cohorts (program_id, cohort, ultimate_redemption_rate, recognized_minor) values ($1, '2025-Q1', 0.8, 5)`,
      `delete from cohorts where program_id = $1 and cohort = '2025-Q1'`,
      [p],
    );
  });

  test("a cohort's liability booked on an account not its own is caught (the figures on its own account still agree)", async () => {
    const e = journalEntry('tamper:account', '2026-12-01T00:00:00Z', [
      ['revenue', 700, 0, null],
      ['loyalty_provision', 0, 700, '2026-Q1'],
    ]);
    const out = await caught(
      "the journal holds each cohort's liability on the cohort's own account only, every liability line naming a known cohort",
      e.tamper,
      e.undo,
      [p],
    );
    assert.doesNotMatch(out, /VIOLATION liability \(or provision\) per cohort equals/);
  });

  test("a locked close's stored roll-forward that does not foot is caught", async () => {
    await caught(
      "every locked close's stored roll-forward foots (liability, provision, points)",
      `update closes set report = jsonb_set(report, '{liability,issuedMinor}', to_jsonb((report->'liability'->>'issuedMinor')::bigint + 3))
        where program_id = $1 and period = '2026-Q2'`,
      `update closes set report = jsonb_set(report, '{liability,issuedMinor}', to_jsonb((report->'liability'->>'issuedMinor')::bigint - 3))
        where program_id = $1 and period = '2026-Q2'`,
      [p],
    );
  });

  test('a period that does not open where the previous one closed is caught, even when each report foots', async () => {
    const shift = (d: number) =>
      `update closes set report = jsonb_set(jsonb_set(report, '{points,opening}', to_jsonb((report->'points'->>'opening')::bigint + ${d})),
                                            '{points,issued}', to_jsonb((report->'points'->>'issued')::bigint - ${d}))
        where program_id = $1 and period = '2026-Q2'`;
    const out = await caught(
      'each locked period opens where the previous locked period closed (liability, provision, points), with no quarter skipped',
      shift(2),
      shift(-2),
      [p],
    );
    assert.doesNotMatch(out, /VIOLATION every locked close's stored roll-forward foots/);
  });

  test('an entry written into a locked period (the lock bypassed) is caught: the stored closing no longer is the books', async () => {
    const e = journalEntry('tamper:backdated', '2026-02-15T00:00:00Z', [
      ['revenue', 900, 0, null],
      ['loyalty_contract_liability', 0, 900, '2026-Q1'],
    ]);
    await caught(
      "every locked close's stored closing equals the journal and the ledger as of the period's end",
      e.tamper,
      e.undo,
      [p],
    );
  });

  test('a GL posting whose recorded lines differ from the journals it carries, or that was never recorded, is caught', async () => {
    const { rows } = await stack.pool.query(
      `select entry_id, lines from gl_postings
        where entry_id = (select gl_entry_id from closes where program_id = $1 and period = '2026-Q1')`,
      [p],
    );
    assert.equal(rows.length, 1, 'the close of 2026-Q1 posted to the GL');
    const entryId: string = rows[0].entry_id;
    await caught(
      'every journal marked posted to the GL is in a recorded GL posting (gl_postings) with the same lines',
      `update gl_postings set lines = lines || '[{"account":"revenue","debitMinor":1,"creditMinor":0}]'::jsonb where entry_id = $1`,
      `update gl_postings set lines = lines - (jsonb_array_length(lines) - 1) where entry_id = $1`,
      [entryId],
    );
    await caught(
      'every journal marked posted to the GL is in a recorded GL posting (gl_postings) with the same lines',
      `update gl_postings set entry_id = entry_id || ':gone' where entry_id = $1`,
      `update gl_postings set entry_id = $1 where entry_id = $1 || ':gone'`,
      [entryId],
    );
  });

  test('purchased points in a goodwill cohort, and goodwill allocation in a purchased cohort, are caught', async () => {
    const goodwill = (
      await stack.pool.query(`select cohort from cohorts where program_id = $1 and cohort like '%-goodwill'`, [p])
    ).rows[0]?.cohort as string;
    assert.ok(goodwill, 'the adjustment made a goodwill cohort');
    await caught(
      'goodwill cohorts carry no purchased points or allocation (no accrual, earn, refund or invoice journal in them)',
      `update accruals set cohort = $2 where program_id = $1 and invoice_id = 'i-2'`,
      `update accruals set cohort = '2026-Q1' where program_id = $1 and invoice_id = 'i-2' and cohort = $2`,
      [p, goodwill],
    );
    // the goodwill grant's value moved into the purchased cohort as if it were allocation
    await caught(
      'purchased cohorts issue and allocate exactly what their accruals did (goodwill never changes their per-point allocation)',
      `update cohort_stripes set points_issued = points_issued + 40 where program_id = $1 and cohort = '2026-Q1'
          and stripe = (select min(stripe) from cohort_stripes where program_id = $1 and cohort = '2026-Q1')`,
      `update cohort_stripes set points_issued = points_issued - 40 where program_id = $1 and cohort = '2026-Q1'
          and stripe = (select min(stripe) from cohort_stripes where program_id = $1 and cohort = '2026-Q1')`,
      [p],
    );
  });
});
