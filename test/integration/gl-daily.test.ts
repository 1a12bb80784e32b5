import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { Pool } from 'pg';
import type { GlDayResult } from '../../activities/gl-daily';
import { billingClient } from '../../activities/services/billing';
import { glClient } from '../../activities/services/gl';
import { verifyInvariants } from '../../db/verify';
import type { ReconciliationReport } from '../../domain/reconciliation';
import { DAILY_GL_POSTING_SCHEDULE_ID } from '../../domain/workflow-ids';
import type { RunningSimulators } from '../../simulators';
import { ensureGlDailySchedule } from '../../workers/schedules';
import { dailyGlPosting, postProgramDayToGl } from '../../workflows/gl-daily';
import { reconcileProgramDay } from '../../workflows/reconciliation';
import {
  eventually,
  httpClient,
  programBody,
  recordHistory,
  startCloseStack,
  uniqueId,
  type CloseStack,
  type TestWorker,
} from '../helpers/stack';

// The subledger in the GL every day (issue 15, item 5), end to end: the API, a real worker on the
// Temporal dev server, PostgreSQL, the real GL and billing simulators. Every comparison is exact,
// in integer minor units: the GL's side is read from the GL's own entries day by day
// (GET /journal-entries?date=), never from what the ledger recorded posting.
let stack: CloseStack;
let pool: Pool;
let sims: RunningSimulators;
let worker: TestWorker;
let call: ReturnType<typeof httpClient>;
let gl: ReturnType<typeof glClient>;

beforeAll(async () => {
  stack = await startCloseStack(15);
  ({ pool, sims, worker, call } = stack);
  gl = glClient({ baseUrl: sims.glUrl, timeoutMs: 1000 });
});
afterAll(async () => {
  await stack.stop(); // `loyalty verify`'s invariants: every GL posting carries exactly its journals
});

const DAY_MS = 86_400_000;
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const today = dayOf(Date.now());
const yesterday = dayOf(Date.now() - DAY_MS);

async function program(overrides: Record<string, unknown> = {}) {
  const programId = uniqueId('gd');
  const res = await call('POST', '/v1/programs', { body: programBody(programId, overrides) });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return programId;
}
async function accrue(p: string, memberId: string, invoiceId: string, amountMinor: number, occurredAt: string) {
  const res = await call('POST', `/v1/programs/${p}/accruals`, {
    role: 'billing',
    body: { memberId, invoiceId, amountMinor, occurredAt, jurisdiction: 'US-CA' },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

/** Runs one program's day (a fresh run id each time: the workflow id may have run before); `history`: record it for the replay test. */
async function runDay(programId: string, date: string, history?: string): Promise<GlDayResult> {
  const workflowId = `gl-daily:${programId}:${date}:${uniqueId('t')}`;
  const r = await worker.client.workflow.execute(postProgramDayToGl, {
    workflowId,
    taskQueue: worker.taskQueue,
    args: [{ programId, date }],
  });
  if (history) await recordHistory(worker.client, workflowId, history);
  return r;
}

const reconcile = (programId: string, date: string) =>
  worker.client.workflow.execute(reconcileProgramDay, {
    workflowId: `reconciliation:${programId}:${date}:${uniqueId('t')}`,
    taskQueue: worker.taskQueue,
    args: [{ programId, date }],
  }) as Promise<ReconciliationReport>;

/** Every day from `from` to `to` (inclusive). */
function days(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += DAY_MS) out.push(dayOf(t));
  return out;
}

/** The GL's entries of the program dated `from`..`to`, read from the GL day by day. */
async function glEntries(p: string, from: string, to: string) {
  const out = [];
  for (const d of days(from, to))
    out.push(...(await gl.entriesOn(d)).entries.filter((e) => e.entryId.startsWith(`loyalty:${p}:`)));
  return out;
}

/** Debits less credits per account (accounts at zero left out), from lines. */
function net(lines: Array<{ account: string; debitMinor: number; creditMinor: number }>): Record<string, number> {
  const m: Record<string, number> = {};
  for (const l of lines) m[l.account] = (m[l.account] ?? 0) + l.debitMinor - l.creditMinor;
  return Object.fromEntries(Object.entries(m).filter(([, v]) => v !== 0));
}
const glNet = async (p: string, from: string, to: string) =>
  net((await glEntries(p, from, to)).flatMap((e) => e.lines));

/** The subledger's balance per account: every journal line dated before the end of `to` (and from `from`). */
async function subledgerNet(p: string, to: string, from = '2000-01-01'): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ account: string; d: string; c: string }>(
    `select l.account, sum(l.debit_minor)::text as d, sum(l.credit_minor)::text as c
       from journal_entries j join journal_lines l using (journal_entry_id)
      where j.program_id = $1 and j.occurred_at >= $2::date and j.occurred_at < $3::date + 1 group by 1`,
    [p, from, to],
  );
  return net(rows.map((r) => ({ account: r.account, debitMinor: Number(r.d), creditMinor: Number(r.c) })));
}

/** A redemption through the API and the saga (billing's invoice first); answers the invoice id. */
async function sagaRedeem(p: string, memberId: string, points: number, occurredAt: string): Promise<string> {
  const billing = billingClient({ baseUrl: sims.billingUrl, timeoutMs: 1000 });
  const invoiceId = uniqueId('inv');
  await billing.createInvoice(
    { invoiceId, customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 8000 }] },
    `inv-${invoiceId}`,
  );
  const res = await call('POST', `/v1/programs/${p}/redemptions`, {
    role: 'billing',
    body: { invoiceId, memberId, points, invoiceTotalMinor: 8000, occurredAt },
  });
  assert.deepEqual([res.status, res.body.status], [201, 'applied'], JSON.stringify(res.body));
  return invoiceId;
}

async function fault(rule: Record<string, unknown>) {
  const res = await fetch(`${sims.glUrl}/admin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(rule),
  });
  assert.ok(res.ok);
}
const faultsInjected = async () =>
  ((await (await fetch(`${sims.glUrl}/admin/faults`)).json()) as { injected: number }).injected;

describe('the subledger in the GL every day', () => {
  let p: string;
  const D = yesterday;
  const dayStart = Date.parse(`${D}T00:00:00Z`);
  const oldDay = dayOf(dayStart - 30 * DAY_MS); // the first accrual's

  test("a day of accruals, a refund, an expiry and a saga's redemption: one summary entry, the GL equals the subledger, a second run posts nothing", async () => {
    p = await program({ expiry: { policy: 'rolling', window: 'P30D' } });
    const at = (hours: number) => new Date(dayStart + hours * 3_600_000).toISOString();
    // an accrual 30 days before D: its points expire at D 12:00 (the member's workflow expires them)
    await accrue(p, 'm-exp', 'inv-old', 120_000, new Date(dayStart - 30 * DAY_MS + 12 * 3_600_000).toISOString());
    await accrue(p, 'm-1', 'inv-1', 500_000, at(9));
    await accrue(p, 'm-2', 'inv-2', 250_000, at(10));
    const refund = await call('POST', `/v1/programs/${p}/refunds`, {
      role: 'billing',
      body: { memberId: 'm-2', invoiceId: 'inv-2', refundId: 'rf-1', amountMinor: 100_000, occurredAt: at(11) },
    });
    assert.equal(refund.status, 201, JSON.stringify(refund.body));
    await eventually(
      'the expiry at D 12:00',
      async () => (await call('GET', `/v1/programs/${p}/members/m-exp`, { role: 'billing' })).body.balance === 0,
      30_000,
    );
    // a redemption through the saga, dated D: its GL entry is its own, the daily entry leaves it out
    const invoiceId = await sagaRedeem(p, 'm-1', 1000, at(14));

    // the journal of the day has every kind: accruals, a refund, expiry and redemption recognition
    const kinds = (
      await pool.query<{ kind: string }>(
        `select distinct kind from journal_entries where program_id = $1 and occurred_at::date = $2::date order by 1`,
        [p, D],
      )
    ).rows.map((r) => r.kind);
    assert.deepEqual(kinds, ['accrual', 'recognition', 'refund']);

    // the day before the old accrual's day posts it; D posts the rest but the saga's own
    await runDay(p, oldDay);
    const first = await runDay(p, D);
    assert.equal(first.postedEntryId, `loyalty:${p}:daily:${D}`);
    assert.equal(first.created, true);
    const entries = await glEntries(p, D, D);
    assert.deepEqual(entries.map((e) => e.entryId).sort(), [
      `loyalty:${p}:daily:${D}`,
      `loyalty:${p}:redeem:${invoiceId}`,
    ]);
    const daily = entries.find((e) => e.entryId.endsWith(`:daily:${D}`))!;
    assert.equal(daily.date, D);
    assert.equal(new Set(daily.lines.map((l) => l.account)).size, daily.lines.length, 'one net line per account');
    assert.ok(daily.lines.every((l) => !l.cohort));

    // the GL's loyalty accounts equal the subledger's at the day's end, to the minor unit
    assert.deepEqual(await glNet(p, oldDay, D), await subledgerNet(p, D));
    assert.ok(Object.keys(await subledgerNet(p, D)).length >= 3);

    // the run twice, and the daily Schedule's workflow (yesterday, every program): nothing new
    const again = await runDay(p, D);
    assert.deepEqual([again.created, again.journalCount, again.lines], [false, first.journalCount, first.lines]);
    const scheduledId = `gl-daily:scheduled:${uniqueId('t')}`;
    const all = await worker.client.workflow.execute(dailyGlPosting, {
      workflowId: scheduledId,
      taskQueue: worker.taskQueue,
      args: [{}],
    });
    await recordHistory(worker.client, scheduledId, 'gl-daily-all-programs');
    assert.deepEqual(
      all.find((s) => s.programId === p),
      { programId: p, date: D, postedEntryId: `loyalty:${p}:daily:${D}`, journalCount: first.journalCount },
    );
    assert.deepEqual(
      (await glEntries(p, oldDay, D)).map((e) => e.entryId).sort(),
      [`loyalty:${p}:daily:${oldDay}`, `loyalty:${p}:daily:${D}`, `loyalty:${p}:redeem:${invoiceId}`].sort(),
    );
    assert.deepEqual(await glNet(p, oldDay, D), await subledgerNet(p, D));
  });

  test('a back-dated entry and adjustments go in the next run; the GL refusing twice, then taking it: posted exactly once', async () => {
    // recorded after D's run, dated D: D's entry is fixed, it waits for the next day's run
    await accrue(p, 'm-3', 'inv-late', 70_000, `${D}T20:00:00Z`);
    const late = await runDay(p, D);
    assert.equal(late.created, false);
    const before = await reconcile(p, D);
    assert.equal(before.balanceCheck!.differenceCount, 0, 'what is not yet in the GL explains the difference');
    const liability = before.balanceCheck!.accounts.find((a) => a.account === 'loyalty_contract_liability')!;
    assert.ok(liability.notYetInGlMinor < 0 && liability.differenceMinor === liability.notYetInGlMinor);

    // today: manual adjustments (dated when applied) and an accrual
    for (const [i, points] of [300, -50].entries()) {
      const res = await call('POST', `/v1/programs/${p}/adjustments`, {
        role: 'support',
        idem: `adj-${i}`,
        body: { memberId: 'm-1', points, reasonCode: 'goodwill' },
      });
      assert.ok([200, 201].includes(res.status), JSON.stringify(res.body));
    }
    await accrue(p, 'm-1', 'inv-today', 40_000, new Date(Date.now() - 60_000).toISOString());

    await fault({ operation: 'post_entry', failNext: 2 });
    const injected = await faultsInjected();
    const next = await runDay(p, today, 'gl-daily-program-day');
    assert.equal((await faultsInjected()) - injected, 2, 'the GL refused twice, the activity retried');
    assert.equal(next.postedEntryId, `loyalty:${p}:daily:${today}`);
    const carried = await pool.query(
      `select g.gl_entry_id from gl_posted_journals g join journal_entries j using (journal_entry_id)
        where j.program_id = $1 and j.idempotency_key = 'accrual:inv-late'`,
      [p],
    );
    // (on the first day of a quarter, D is the last of the one before: the late accrual waits for that
    // quarter's close, below)
    const quarter = (d: string) => `${d.slice(0, 4)}-${Math.ceil(Number(d.slice(5, 7)) / 3)}`;
    assert.deepEqual(
      carried.rows,
      quarter(D) === quarter(today) ? [{ gl_entry_id: `loyalty:${p}:daily:${today}` }] : [],
      'the back-dated accrual, in the next run',
    );
    const todays = await glEntries(p, today, today);
    assert.deepEqual(
      todays.map((e) => e.entryId),
      [`loyalty:${p}:daily:${today}`],
      'one entry, posted once',
    );
    assert.deepEqual(await glNet(p, oldDay, today), await subledgerNet(p, today));
    assert.equal((await runDay(p, today)).created, false);

    // the reconciliation's balance check: no difference; the monthly view: each month's movement agrees
    const clean = await reconcile(p, today);
    assert.deepEqual(clean.balanceCheck!.differences, []);
    assert.ok(clean.balanceCheck!.accounts.every((a) => a.differenceMinor === 0 && a.notYetInGlMinor === 0));
    const sub = await subledgerNet(p, today);
    for (const a of clean.balanceCheck!.accounts) assert.equal(a.subledgerMinor, sub[a.account] ?? 0, a.account);
    assert.equal(clean.monthly!.length, Number(today.slice(5, 7)));
    for (const m of clean.monthly!) {
      assert.equal(m.differenceCount, 0, m.month);
      const movement = await subledgerNet(p, m.through, `${m.month}-01`);
      assert.deepEqual(
        Object.fromEntries(m.accounts.map((a) => [a.account, a.subledgerMovementMinor])),
        movement,
        m.month,
      );
      assert.deepEqual(
        Object.fromEntries(m.accounts.map((a) => [a.account, a.glMovementMinor])),
        await glNet(p, `${m.month}-01`, m.through),
        m.month,
      );
    }

    // the GL tampered with: a stray entry under the program's prefix shows, with both figures
    await gl.postEntry(
      {
        entryId: `loyalty:${p}:stray`,
        date: today,
        description: 'typed in by hand',
        lines: [
          { account: 'loyalty_contract_liability', debitMinor: 7, creditMinor: 0 },
          { account: 'revenue', debitMinor: 0, creditMinor: 7 },
        ],
      },
      `stray-${p}`,
    );
    const tampered = await reconcile(p, today);
    assert.deepEqual(
      tampered.balanceCheck!.differences.map((d) => [d.account, d.subledgerMinor - d.glMinor, d.differenceMinor]),
      [
        ['loyalty_contract_liability', -7, -7],
        ['revenue', 7, 7],
      ],
    );
    const liab = tampered.balanceCheck!.differences[0]!;
    assert.equal(liab.subledgerMinor, sub.loyalty_contract_liability);
    assert.equal(liab.glMinor, sub.loyalty_contract_liability! + 7);
    const month = tampered.monthly!.at(-1)!;
    assert.equal(month.differenceCount, 2);
    assert.ok(
      tampered.differences.some((d) => d.reason === 'unknown_in_subledger' && d.entryId === `loyalty:${p}:stray`),
    );
    // the CLI prints the balances and the differences with both figures, and exits 1
    const printed = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(__dirname, '..', '..', 'cli', 'index.ts'),
        'reconciliation',
        p,
        today,
        '--database-url',
        stack.db.url,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(printed.status, 1, printed.stdout + printed.stderr);
    assert.match(printed.stdout, /balance differences: 2/);
    assert.match(
      printed.stdout,
      new RegExp(`revenue\\s+subledger ${sub.revenue}, GL ${sub.revenue! - 7}, difference 7`),
    );
    // the stored report and the API say the same
    const stored = await call('GET', `/v1/programs/${p}/reconciliations/${today}`, { role: 'finance' });
    assert.deepEqual(stored.body.balanceCheck, tampered.balanceCheck);
    assert.deepEqual(stored.body.monthly, tampered.monthly);
  });
});

describe('a call in doubt', () => {
  test('the GL takes the day after the worker gave up on the call: the retry sends the same entry, posted once', async () => {
    const p = await program();
    await accrue(p, 'm-1', 'inv-may', 90_000, '2026-05-05T10:00:00Z');
    const slowed = async () =>
      ((await (await fetch(`${sims.glUrl}/admin/faults`)).json()) as { delayed: number }).delayed;
    const before = await slowed();
    await fault({ operation: 'post_entry', latencyMs: 2500 }); // the worker's GL client gives up after 1 s
    const run = runDay(p, '2026-05-05');
    await eventually('the first attempt slowed', async () => (await slowed()) > before, 30_000);
    await fetch(`${sims.glUrl}/admin/faults`, { method: 'DELETE' });
    const r = await run;
    assert.equal(r.postedEntryId, `loyalty:${p}:daily:2026-05-05`);
    const entries = await glEntries(p, '2026-05-05', '2026-05-05');
    assert.deepEqual(
      entries.map((e) => e.entryId),
      [`loyalty:${p}:daily:2026-05-05`],
    );
    assert.deepEqual(await glNet(p, '2026-05-05', '2026-05-05'), await subledgerNet(p, '2026-05-05'));
  });
});

describe('what a daily batch reads', () => {
  test('a run after days without one still finds what was recorded before the last run but dated after it', async () => {
    const p = await program();
    await accrue(p, 'm-1', 'inv-jun1', 60_000, '2026-06-01T10:00:00Z');
    await accrue(p, 'm-1', 'inv-jun3', 30_000, '2026-06-03T10:00:00Z');
    assert.equal((await runDay(p, '2026-06-01')).journalCount, 1);
    // the June 3 accrual was recorded days before the last batch was planned (a catch-up after an
    // outage): set its record time back, the append-only trigger bypassed as the owner
    await stack.db.adminPool.query('alter table journal_entries disable trigger journal_entries_append_only');
    try {
      await stack.db.adminPool.query(
        `update journal_entries set recorded_at = now() - interval '3 days' where program_id = $1 and idempotency_key = 'accrual:inv-jun3'`,
        [p],
      );
    } finally {
      await stack.db.adminPool.query('alter table journal_entries enable trigger journal_entries_append_only');
    }
    await accrue(p, 'm-1', 'inv-jun1-late', 10_000, '2026-06-01T20:00:00Z'); // back-dated, recorded now
    const r = await runDay(p, '2026-06-03');
    assert.equal(r.journalCount, 2, 'the June 3 accrual and the late one');
    assert.deepEqual(await glNet(p, '2026-06-01', '2026-06-03'), await subledgerNet(p, '2026-06-03'));
  });

  test("an entry of the quarter before, recorded after that quarter's last day ran, waits for that quarter's close: the next quarter's days leave it", async () => {
    const p = await program();
    await accrue(p, 'm-1', 'inv-mar30', 20_000, '2026-03-30T10:00:00Z');
    assert.equal((await runDay(p, '2026-03-31')).journalCount, 1);
    // a purchase of Mar 31 23:58, reported after the run of Mar 31
    await accrue(p, 'm-1', 'inv-mar31-late', 10_000, '2026-03-31T23:58:00Z');
    await accrue(p, 'm-1', 'inv-apr1', 5_000, '2026-04-01T10:00:00Z');
    const apr1 = await runDay(p, '2026-04-01');
    assert.equal(apr1.journalCount, 1, 'April 1 carries its own accrual only');
    const unclaimed = await pool.query(
      `select j.idempotency_key from journal_entries j
        where j.program_id = $1 and not exists (select 1 from gl_batch_journals c where c.journal_entry_id = j.journal_entry_id)`,
      [p],
    );
    assert.deepEqual(
      unclaimed.rows.map((r) => r.idempotency_key),
      ['accrual:inv-mar31-late'],
      "left to Q1's close (its close-rest batch)",
    );
    // the GL at Q1's end lacks it until then: the reconciliation says it is not yet in the GL
    assert.deepEqual(await glNet(p, '2026-04-01', '2026-04-01'), await subledgerNet(p, '2026-04-01', '2026-04-01'));
  });
});

describe('the close posts only what it books itself', () => {
  const closeQuarter = async (p: string, period: string) => {
    const started = await call('POST', `/v1/programs/${p}/closes`, {
      role: 'finance',
      body: { period, redemptionRateOverride: { rate: 0.9, justification: 'a survey says more will redeem' } },
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    await eventually(
      `${period} awaiting approval`,
      async () =>
        (await call('GET', `/v1/programs/${p}/closes/${period}`, { role: 'controller' })).body.step ===
        'awaiting_approval',
      30_000,
    );
    const approved = await call('POST', `/v1/programs/${p}/closes/${period}/approve`, { role: 'controller' });
    assert.deepEqual([approved.status, approved.body.status], [200, 'locked'], JSON.stringify(approved.body));
  };
  /** The close's own catch-ups, net per account, from the journal. */
  const catchUps = async (p: string, period: string) => {
    const { rows } = await pool.query<{ account: string; d: string; c: string }>(
      `select l.account, sum(l.debit_minor)::text as d, sum(l.credit_minor)::text as c from journal_entries j
         join journal_lines l using (journal_entry_id) where j.program_id = $1 and j.reference = $2 group by 1`,
      [p, `close:${period}`],
    );
    return net(rows.map((r) => ({ account: r.account, debitMinor: Number(r.d), creditMinor: Number(r.c) })));
  };
  const book = async (p: string) => {
    await accrue(p, 'm-1', 'inv-jan', 300_000, '2026-01-10T10:00:00Z');
    await accrue(p, 'm-2', 'inv-feb', 200_000, '2026-02-14T10:00:00Z');
    await accrue(p, 'm-1', 'inv-mar', 100_000, '2026-03-31T22:00:00Z');
    // a redemption (its saga posts its own entry): recognised at the old estimate, caught up at the new
    return sagaRedeem(p, 'm-1', 2000, '2026-02-20T10:00:00Z');
  };

  test('every day posted first: the close posts exactly its catch-up, nothing else, and the GL equals the subledger at the quarter end', async () => {
    const p = await program({ expiry: { policy: 'rolling', window: 'P400D' }, chargebackWindow: 'PT1S' });
    const invoiceId = await book(p);
    for (const d of ['2026-01-10', '2026-02-14', '2026-03-31']) assert.ok((await runDay(p, d)).postedEntryId);
    await closeQuarter(p, '2026-Q1');
    const quarter = await glEntries(p, '2026-01-01', '2026-03-31');
    assert.deepEqual(quarter.map((e) => e.entryId).sort(), [
      `loyalty:${p}:close:2026-Q1`,
      `loyalty:${p}:daily:2026-01-10`,
      `loyalty:${p}:daily:2026-02-14`,
      `loyalty:${p}:daily:2026-03-31`,
      `loyalty:${p}:redeem:${invoiceId}`,
    ]);
    const own = quarter.find((e) => e.entryId === `loyalty:${p}:close:2026-Q1`)!;
    const expected = await catchUps(p, '2026-Q1');
    assert.ok(Object.keys(expected).length > 0, 'the raised estimate catches up');
    assert.deepEqual(net(own.lines), expected, "the close's entry is exactly its catch-up");
    assert.equal(own.date, '2026-03-31');
    assert.deepEqual(await glNet(p, '2026-01-01', '2026-03-31'), await subledgerNet(p, '2026-03-31'));
    const r = await reconcile(p, '2026-03-31');
    assert.deepEqual([r.balanceCheck!.differenceCount, r.monthly!.map((m) => m.differenceCount)], [0, [0, 0, 0]]);
    const feb = r.monthly![1]!;
    assert.deepEqual(
      Object.fromEntries(feb.accounts.map((a) => [a.account, a.glMovementMinor])),
      await subledgerNet(p, '2026-02-28', '2026-02-01'),
    );
    // the true-up of what happened after the quarter is dated now: the day's run carries it
    assert.ok((await runDay(p, today)).journalCount >= 0);
    assert.deepEqual(await glNet(p, '2026-01-01', today), await subledgerNet(p, today));
  });

  test('a day the daily posting has not run: the close carries it in an entry of its own, then its catch-up; nothing lost, nothing twice', async () => {
    const p = await program({ expiry: { policy: 'rolling', window: 'P400D' }, chargebackWindow: 'PT1S' });
    const invoiceId = await book(p);
    await runDay(p, '2026-01-10'); // February and March never ran
    await closeQuarter(p, '2026-Q1');
    const quarter = await glEntries(p, '2026-01-01', '2026-03-31');
    assert.deepEqual(quarter.map((e) => e.entryId).sort(), [
      `loyalty:${p}:close-rest:2026-Q1`,
      `loyalty:${p}:close:2026-Q1`,
      `loyalty:${p}:daily:2026-01-10`,
      `loyalty:${p}:redeem:${invoiceId}`,
    ]);
    assert.deepEqual(
      net(quarter.find((e) => e.entryId === `loyalty:${p}:close:2026-Q1`)!.lines),
      await catchUps(p, '2026-Q1'),
    );
    // the rest, the close's own and the saga's entry are February and March, to the minor unit
    assert.deepEqual(
      net(
        quarter
          .filter((e) =>
            ['close-rest:2026-Q1', 'close:2026-Q1', `redeem:${invoiceId}`].includes(
              e.entryId.split(`loyalty:${p}:`)[1]!,
            ),
          )
          .flatMap((e) => e.lines),
      ),
      await subledgerNet(p, '2026-03-31', '2026-02-01'),
    );
    assert.deepEqual(await glNet(p, '2026-01-01', '2026-03-31'), await subledgerNet(p, '2026-03-31'));
    // `loyalty verify` catches a batch whose lines are not its journal entries' (the trigger bypassed)
    const tamper = async (sql: string) => {
      await stack.db.adminPool.query('alter table gl_batches disable trigger gl_batches_append_only');
      try {
        await stack.db.adminPool.query(sql, [`loyalty:${p}:close-rest:2026-Q1`]);
      } finally {
        await stack.db.adminPool.query('alter table gl_batches enable trigger gl_batches_append_only');
      }
    };
    await tamper(
      `update gl_batches set lines = lines || '[{"account":"revenue","debitMinor":1,"creditMinor":0}]'::jsonb where entry_id = $1`,
    );
    const broken = await verifyInvariants(pool);
    assert.ok(
      broken.violations.some(
        (v) => v.check === "every GL batch's lines are its journal entries' lines net per account",
      ),
      JSON.stringify(broken.violations),
    );
    await tamper(`update gl_batches set lines = lines - (jsonb_array_length(lines) - 1) where entry_id = $1`);
    assert.deepEqual((await verifyInvariants(pool)).violations, []);
    // the days' runs afterwards find nothing of the quarter left
    assert.equal((await runDay(p, '2026-03-31')).journalCount, 0);
    assert.deepEqual(await glNet(p, '2026-01-01', '2026-03-31'), await subledgerNet(p, '2026-03-31'));
  });

  test('the Schedule: created once, daily at 00:10 UTC, every run buffered, seven days of catch-up', async () => {
    assert.equal(
      await ensureGlDailySchedule(worker.client, { taskQueue: worker.taskQueue, hourUtc: 0, minuteUtc: 10 }),
      'created',
    );
    const handle = worker.client.schedule.getHandle(DAILY_GL_POSTING_SCHEDULE_ID);
    try {
      assert.equal(
        await ensureGlDailySchedule(worker.client, { taskQueue: worker.taskQueue, hourUtc: 0, minuteUtc: 10 }),
        'exists',
      );
      const d = await handle.describe();
      const next = d.info.nextActionTimes[0]!;
      assert.deepEqual([next.getUTCHours(), next.getUTCMinutes()], [0, 10]);
      assert.equal(d.policies.overlap, 'BUFFER_ALL');
      assert.equal(d.policies.catchupWindow, 7 * DAY_MS);
      assert.equal(d.action.type, 'startWorkflow');
      assert.match(String(d.memo?.summary), /daily at 00:10 UTC/);
      // a run the Schedule starts posts the day before the time it was due
      const p = await program();
      await accrue(p, 'm-1', 'inv-y', 50_000, `${yesterday}T12:00:00Z`);
      await handle.trigger();
      const started = await eventually(
        'the triggered run',
        async () => (await handle.describe()).info.recentActions[0]?.action.workflow.workflowId,
        30_000,
      );
      const run = await worker.client.workflow.getHandle<typeof dailyGlPosting>(started).result();
      assert.ok(run.length > 0 && run.every((r) => r.date === yesterday), JSON.stringify(run));
      assert.equal(run.find((r) => r.programId === p)?.postedEntryId, `loyalty:${p}:daily:${yesterday}`);
      assert.deepEqual(await glNet(p, yesterday, yesterday), await subledgerNet(p, yesterday));
    } finally {
      await handle.delete();
    }
  });
});
