import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { Pool } from 'pg';
import { billingClient } from '../../activities/services/billing';
import { glClient } from '../../activities/services/gl';
import { readPeriodBooks } from '../../db/close-report';
import { newSecret, putKey } from '../../db/keys';
import { expireMember } from '../../db/ledger';
import { commitRedemption, holdRedemption } from '../../db/redemptions';
import { chromiumPath } from '../../cli/stack/binaries';
import { formatMinor, type CloseReport } from '../../domain/close-report';
import { quarterOf } from '../../domain/period';
import { QUARTERLY_CLOSE_SCHEDULE_ID } from '../../domain/workflow-ids';
import type { RunningSimulators } from '../../simulators';
import { ensureCloseSchedule } from '../../workers/schedules';
import { scheduledCloses } from '../../workflows/close-schedule';
import {
  principalKey,
  eventually,
  httpClient,
  programBody,
  recordHistory,
  startApi,
  startCloseStack,
  uniqueId,
  type CloseStack,
  type TestWorker,
} from '../helpers/stack';

// The quarterly close end to end: API, a real worker on the dev server, PostgreSQL, the GL simulator.
// History is loaded backdated into 2026-Q1..Q3 (allowed until a quarter is locked), then each
// quarter is closed in turn.
let stack: CloseStack;
let pool: Pool;
let sims: RunningSimulators;
let worker: TestWorker;
let call: ReturnType<typeof httpClient>;
let gl: ReturnType<typeof glClient>;

beforeAll(async () => {
  stack = await startCloseStack(13);
  ({ pool, sims, worker, call } = stack);
  gl = glClient({ baseUrl: sims.glUrl, timeoutMs: 1000 });
});
afterAll(async () => {
  await stack.stop();
});

async function program(overrides: Record<string, unknown> = {}) {
  const programId = uniqueId('c');
  assert.equal(
    (
      await call('POST', '/v1/programs', {
        body: programBody(programId, { expiry: { policy: 'rolling', window: 'P400D' }, ...overrides }),
      })
    ).status,
    201,
  );
  return programId;
}
const accrue = (
  p: string,
  memberId: string,
  invoiceId: string,
  amountMinor: number,
  occurredAt: string,
  jurisdiction = 'US-CA',
) =>
  call('POST', `/v1/programs/${p}/accruals`, {
    role: 'billing',
    body: { memberId, invoiceId, amountMinor, occurredAt, jurisdiction, storeId: `s-${memberId}` },
  });
async function redeem(
  p: string,
  memberId: string,
  invoiceId: string,
  points: number,
  occurredAt: string,
  pointValueMinor = 1,
) {
  const h = await holdRedemption(pool, {
    programId: p,
    invoiceId,
    redemptionId: randomUUID(),
    memberId,
    points,
    invoiceTotalMinor: 10_000_000,
    pointValueMinor,
    minPoints: 1,
    maxInvoiceShareMillionths: '1000000',
    cohortOrder: 'oldest_first',
    occurredAt,
  });
  assert.equal(h.status, 'held');
  await commitRedemption(pool, p, invoiceId, 'test');
}
const start = (
  p: string,
  period: string,
  role: 'finance' | 'admin' = 'finance',
  override?: { rate: number; justification: string },
) =>
  call('POST', `/v1/programs/${p}/closes`, {
    role,
    body: { period, ...(override ? { redemptionRateOverride: override } : {}) },
  });
const status = async (p: string, period: string) =>
  (await call('GET', `/v1/programs/${p}/closes/${period}`, { role: 'controller' })).body;
const awaitingApproval = (p: string, period: string) =>
  eventually(
    `${period} awaiting approval`,
    async () => {
      const s = await status(p, period);
      return s.step === 'awaiting_approval' ? s : null;
    },
    30_000,
  );
const report = async (p: string, period: string) =>
  (await call('GET', `/v1/programs/${p}/closes/${period}/report`, { role: 'finance' })).body as CloseReport;
async function closeQuarter(p: string, period: string, override?: { rate: number; justification: string }) {
  assert.equal((await start(p, period, 'finance', override)).status, 202);
  await awaitingApproval(p, period);
  const approved = await call('POST', `/v1/programs/${p}/closes/${period}/approve`, { role: 'controller' });
  assert.deepEqual([approved.status, approved.body.status], [200, 'locked'], JSON.stringify(approved.body));
  return report(p, period);
}
function assertFoots(r: CloseReport) {
  const l = r.liability;
  assert.equal(
    l.openingMinor + l.issuedMinor - l.recognizedMinor + l.adjustedMinor,
    l.closingMinor,
    `${r.period} liability foots`,
  );
  assert.equal(
    l.recognized.redemptionsMinor + l.recognized.breakageMinor + l.recognized.estimateChangeMinor,
    l.recognizedMinor,
  );
  const p = r.points;
  assert.equal(p.opening + p.issued - p.redeemed - p.expired + p.adjusted, p.closing, `${r.period} points foot`);
  // the contract liability's cohorts add up to it; incremental-cost cohorts to the provision, apart
  const contract = r.cohorts.filter((c) => c.measurement !== 'provision');
  assert.equal(
    contract.reduce((s, c) => s + c.deferredMinor, 0),
    l.closingMinor,
    `${r.period} cohorts add up to the closing liability`,
  );
  const v = r.provision!;
  assert.equal(v.openingMinor + v.issuedMinor - v.recognizedMinor + v.adjustedMinor, v.closingMinor);
  assert.equal(
    r.cohorts.filter((c) => c.measurement === 'provision').reduce((s, c) => s + c.deferredMinor, 0),
    v.closingMinor,
    `${r.period} cohorts add up to the closing provision`,
  );
  assert.equal(
    r.liabilityByJurisdiction.reduce((s, j) => s + j.deferredMinor, 0),
    l.closingMinor,
    `${r.period} jurisdictions add up`,
  );
  assert.equal(
    r.liabilityByStore.reduce((s, j) => s + j.deferredMinor, 0),
    l.closingMinor,
    `${r.period} stores add up`,
  );
}

/**
 * Renders the HTML report in headless Chromium and reads the figures back from the rendered DOM;
 * takes a screenshot too (LOYALTY_SCREENSHOT=<file> keeps it, e.g. docs/close-report.png).
 */
function checkRenderedHtml(html: string, r: CloseReport) {
  const dir = mkdtempSync(join(tmpdir(), 'loyalty-report-'));
  try {
    const page = join(dir, 'report.html');
    writeFileSync(page, html);
    const args = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--window-size=1200,2000'];
    const dom = spawnSync(chromiumPath(), [...args, '--dump-dom', `file://${page}`], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(dom.status, 0, dom.stderr);
    const closing = formatMinor(r.liability.closingMinor, 2);
    assert.match(dom.stdout, new RegExp(`<th>Closing balance</th><td class="num">${closing}</td>`));
    assert.match(dom.stdout, new RegExp(`data-figure="Closing">${closing}<`), 'the chart shows the closing figure');
    assert.match(dom.stdout, new RegExp(`<strong id="status">locked</strong>`));
    assert.equal(
      (dom.stdout.match(/<polyline/g) ?? []).length,
      r.assumptions.cohorts.filter((c) => c.development.length > 0).length,
      'one curve per cohort',
    );
    const png = join(dir, 'report.png');
    const shot = spawnSync(chromiumPath(), [...args, `--screenshot=${png}`, `file://${page}`], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(shot.status, 0, shot.stderr);
    assert.ok(statSync(png).size > 20_000, 'a screenshot with something on it');
    if (process.env.LOYALTY_SCREENSHOT) copyFileSync(png, process.env.LOYALTY_SCREENSHOT);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('quarterly close', () => {
  test('three quarters closed in order: each report foots, each closing is the next opening, the GL holds what the subledger posted', async () => {
    const p = await program();
    await accrue(p, 'm1', 'q1-a', 500_000, '2026-02-01T00:00:00Z'); // 5,000 points in 2026-Q1
    await accrue(p, 'm2', 'q1-b', 300_000, '2026-02-10T00:00:00Z');
    await accrue(p, 'm3', 'q1-c', 100_000, '2026-03-01T00:00:00Z');
    await redeem(p, 'm1', 'r1', 2_000, '2026-03-15T00:00:00Z');
    await accrue(p, 'm4', 'q2-a', 400_000, '2026-05-01T00:00:00Z');
    await redeem(p, 'm2', 'r2', 1_500, '2026-05-15T00:00:00Z');
    await redeem(p, 'm4', 'r3', 1_000, '2026-06-01T00:00:00Z');
    await redeem(p, 'm1', 'r4', 1_000, '2026-08-01T00:00:00Z');
    assert.equal(
      (
        await call('POST', `/v1/programs/${p}/refunds`, {
          role: 'billing',
          body: {
            memberId: 'm3',
            invoiceId: 'q1-c',
            refundId: 'rf-1',
            amountMinor: 50_000,
            occurredAt: '2026-08-10T00:00:00Z',
          },
        })
      ).status,
      201,
    );

    const outOfOrder = await start(p, '2026-Q2');
    assert.deepEqual([outOfOrder.status, outOfOrder.body.error.code], [409, 'period_out_of_order']);
    const notEnded = await start(p, '2026-Q4');
    assert.deepEqual([notEnded.status, notEnded.body.error.code], [409, 'period_not_ended']);

    // Q1: started by someone who also holds the controller role: they cannot approve it
    const dual = await principalKey(pool, ['finance', 'controller']);
    const byDual = await call('POST', `/v1/programs/${p}/closes`, { key: dual.key, body: { period: '2026-Q1' } });
    assert.equal(byDual.status, 202, JSON.stringify(byDual.body));
    const proposed = await awaitingApproval(p, '2026-Q1');
    assert.equal(proposed.status, 'proposed');
    const self = await call('POST', `/v1/programs/${p}/closes/2026-Q1/approve`, { key: dual.key });
    assert.deepEqual([self.status, self.body.error.code], [403, 'segregation_of_duties']);
    const byAdmin = await call('POST', `/v1/programs/${p}/closes/2026-Q1/approve`, { role: 'admin' });
    assert.deepEqual([byAdmin.status, byAdmin.body.error.code], [403, 'forbidden'], 'admin is not a controller');
    const again = await start(p, '2026-Q1');
    assert.deepEqual([again.status, again.body.status], [200, 'proposed'], 'starting again returns the existing close');
    const approved = await call('POST', `/v1/programs/${p}/closes/2026-Q1/approve`, { role: 'controller' });
    assert.deepEqual([approved.status, approved.body.status], [200, 'locked']);
    const q1 = await report(p, '2026-Q1');
    assertFoots(q1);
    assert.deepEqual(
      [q1.status, q1.points.issued, q1.points.redeemed, q1.points.closing],
      ['locked', 9_000, 2_000, 7_000],
    );
    assert.equal(q1.assumptions.approvedBy, 'test-controller');

    // the locked quarter takes no backdated write, and nothing is written
    const before = (await pool.query('select count(*)::int as n from ledger_entries where program_id = $1', [p]))
      .rows[0].n;
    const late = await accrue(p, 'm1', 'late', 10_000, '2026-03-31T00:00:00Z');
    assert.deepEqual([late.status, late.body.error?.code], [409, 'period_locked']);
    const lateRefund = await call('POST', `/v1/programs/${p}/refunds`, {
      role: 'billing',
      body: {
        memberId: 'm1',
        invoiceId: 'q1-a',
        refundId: 'rf-late',
        amountMinor: 1000,
        occurredAt: '2026-03-20T00:00:00Z',
      },
    });
    assert.deepEqual([lateRefund.status, lateRefund.body.error?.code], [409, 'period_locked']);
    const lateRedemption = await call('POST', `/v1/programs/${p}/redemptions`, {
      role: 'billing',
      body: {
        invoiceId: 'late-r',
        memberId: 'm1',
        points: 100,
        invoiceTotalMinor: 1000,
        occurredAt: '2026-03-20T00:00:00Z',
      },
    });
    assert.deepEqual([lateRedemption.status, lateRedemption.body.error?.code], [409, 'period_locked']);
    assert.equal(
      (await pool.query('select count(*)::int as n from ledger_entries where program_id = $1', [p])).rows[0].n,
      before,
    );

    const q2 = await closeQuarter(p, '2026-Q2', {
      rate: 0.97,
      justification: 'member survey: nearly everyone redeems',
    });
    assertFoots(q2);
    assert.equal(q2.liability.openingMinor, q1.liability.closingMinor);
    assert.equal(q2.points.opening, q1.points.closing);
    assert.deepEqual(q2.assumptions.override, { rate: 0.97, justification: 'member survey: nearly everyone redeems' });
    assert.ok(q2.cohorts.every((c) => c.ultimateRedemptionRate === 0.97));
    assert.ok(q2.liability.recognized.estimateChangeMinor !== 0, 'the higher estimate changes recognised revenue');

    const q3 = await closeQuarter(p, '2026-Q3');
    assertFoots(q3);
    assert.equal(q3.liability.openingMinor, q2.liability.closingMinor);
    assert.ok(q3.liability.adjustedMinor < 0, 'the refund reversed part of the allocation');

    // a locked period's report never changes; starting its close again changes nothing
    assert.deepEqual(await report(p, '2026-Q1'), q1);
    const restart = await start(p, '2026-Q1');
    assert.deepEqual([restart.status, restart.body.status], [200, 'locked']);

    // the GL holds exactly what the subledger sent it
    const { rows } = await pool.query(
      `select l.account, sum(l.debit_minor - l.credit_minor)::bigint as net from journal_lines l
         join gl_posted_journals g using (journal_entry_id) join journal_entries j using (journal_entry_id)
        where j.program_id = $1 group by 1 order by 1`,
      [p],
    );
    // each close's own entry and the one for what no daily posting carried (none ran here)
    const glNet = new Map<string, number>();
    for (const period of ['2026-Q1', '2026-Q2', '2026-Q3']) {
      for (const id of [`loyalty:${p}:close:${period}`, `loyalty:${p}:close-rest:${period}`]) {
        const e = await gl.getEntry(id).catch(() => null);
        for (const line of e?.lines ?? [])
          glNet.set(line.account, (glNet.get(line.account) ?? 0) + line.debitMinor - line.creditMinor);
      }
    }
    assert.deepEqual(
      rows.map((r) => [r.account, Number(r.net)]).filter(([, v]) => v !== 0),
      [...glNet.entries()].filter(([, v]) => v !== 0).sort(),
    );

    // the same report as CSV, as HTML, and through the CLI
    const csv = await call('GET', `/v1/programs/${p}/closes/2026-Q3/report?format=csv`, { role: 'finance' });
    assert.match(csv.headers.get('content-type') ?? '', /text\/csv/);
    assert.match(String(csv.body), new RegExp(`liability,closingMinor,${q3.liability.closingMinor}`));
    const html = await call('GET', `/v1/programs/${p}/closes/2026-Q3/report?format=html`, { role: 'controller' });
    assert.match(String(html.body), /<svg[^>]*aria-label="Contract liability roll-forward"/);
    const cli = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(__dirname, '..', '..', 'cli', 'index.ts'),
        'report',
        p,
        '2026-Q3',
        '--format',
        'json',
        '--database-url',
        stack.db.url,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(cli.status, 0, cli.stderr);
    assert.deepEqual(JSON.parse(cli.stdout), q3);
    checkRenderedHtml(String(html.body), q3);
  });

  test('four quarters with an expiry, a merge, a saga redemption and a lost chargeback: every report foots and chains; the GL holds the subledger', async () => {
    // members in DE lose their points 30 days after their last purchase; elsewhere after 400 days
    const p = await program({
      expiry: { policy: 'rolling', window: 'P400D', jurisdictions: { DE: { policy: 'rolling', window: 'P30D' } } },
      chargebackWindow: 'P120D',
      // the merge below moves d's 5,000 points at once (under the threshold: no finance approval to wait for)
      adjustments: { approvalThresholdPoints: 100_000 },
    });
    await accrue(p, 'a', 'q4-a', 300_000, '2025-10-05T00:00:00Z', 'DE');
    await accrue(p, 'b', 'q4-b', 200_000, '2025-12-15T00:00:00Z', 'DE');
    // a's deadline (2025-11-04) passes without a purchase: the points expire in 2025-Q4 (the member
    // workflow may have done it already; either way it is dated at the deadline)
    await expireMember(pool, p, 'a', '2026-01-01T00:00:00Z', 'test');
    await accrue(p, 'c', 'q1-c', 500_000, '2026-02-01T00:00:00Z');
    await expireMember(pool, p, 'b', '2026-02-01T00:00:00Z', 'test');
    await accrue(p, 'd', 'q2-d', 600_000, '2026-05-02T00:00:00Z');
    await redeem(p, 'd', 'q2-r', 1_000, '2026-05-10T00:00:00Z');
    // the saga: a backdated redemption in Q3, then a lost chargeback (its reversal lands in the open period)
    await accrue(p, 'e', 'q3-e', 700_000, '2026-08-01T00:00:00Z');
    const billing = billingClient({ baseUrl: sims.billingUrl, timeoutMs: 1000 });
    const invoiceId = uniqueId('inv');
    await billing.createInvoice(
      { invoiceId, customerId: 'e', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 9000 }] },
      `inv-${invoiceId}`,
    );
    const redeemed = await call('POST', `/v1/programs/${p}/redemptions`, {
      role: 'billing',
      body: { invoiceId, memberId: 'e', points: 3000, invoiceTotalMinor: 9000, occurredAt: '2026-08-15T00:00:00Z' },
    });
    assert.equal(redeemed.body.status, 'applied', JSON.stringify(redeemed.body));
    assert.equal(
      (await call('POST', `/v1/programs/${p}/members/d/merge`, { role: 'support', body: { intoMemberId: 'e' } }))
        .status,
      201,
    );

    const reports: CloseReport[] = [];
    for (const period of ['2025-Q4', '2026-Q1', '2026-Q2']) reports.push(await closeQuarter(p, period));
    assert.equal(
      (
        await call('POST', `/v1/programs/${p}/chargebacks`, {
          role: 'billing',
          body: { invoiceId, chargebackId: 'cb-1', status: 'lost' },
        })
      ).status,
      202,
    );
    await eventually(
      'reversed',
      async () =>
        (await call('GET', `/v1/programs/${p}/redemptions/${invoiceId}`, { role: 'billing' })).body.status ===
        'reversed',
    );
    reports.push(await closeQuarter(p, '2026-Q3'));
    for (const r of reports) assertFoots(r);
    for (let i = 1; i < reports.length; i++) {
      assert.equal(
        reports[i]!.liability.openingMinor,
        reports[i - 1]!.liability.closingMinor,
        `${reports[i]!.period} opens where the quarter before closed`,
      );
      assert.equal(reports[i]!.points.opening, reports[i - 1]!.points.closing);
    }
    assert.deepEqual(
      reports[3]!.liabilityByJurisdiction.map((j) => j.jurisdiction),
      ['US-CA'],
      'nothing outstanding in DE after the expiries',
    );
    assert.deepEqual(
      reports[3]!.liabilityByStore.map((j) => j.storeId),
      ['s-c', 's-d', 's-e'],
      'the stores whose sales made the liability still deferred',
    );
    assert.equal(reports[0]!.points.expired, 3_000, "a's points expired in 2025-Q4");
    assert.equal(reports[1]!.points.expired, 2_000, "b's points expired in 2026-Q1");
    assert.equal(reports[3]!.points.redeemed, 3_000, 'the saga redemption in 2026-Q3');

    // the GL holds exactly what the subledger sent it: the saga's postings and the closes'
    const { rows: posted } = await pool.query(
      `select l.account, sum(l.debit_minor - l.credit_minor)::bigint as net from journal_lines l
         join gl_posted_journals g using (journal_entry_id) join journal_entries j using (journal_entry_id)
        where j.program_id = $1 group by 1 order by 1`,
      [p],
    );
    const glNet = new Map<string, number>();
    for (const { entry_id } of (
      await pool.query<{ entry_id: string }>('select entry_id from gl_postings where program_id = $1', [p])
    ).rows) {
      for (const line of (await gl.getEntry(entry_id)).lines)
        glNet.set(line.account, (glNet.get(line.account) ?? 0) + line.debitMinor - line.creditMinor);
    }
    assert.deepEqual(
      posted.map((r) => [r.account, Number(r.net)]).filter(([, v]) => v !== 0),
      [...glNet.entries()].filter(([, v]) => v !== 0).sort(),
    );
  });

  test("DESIGN.md's worked example at close: raising the estimate to 90% catches up -102.88", async () => {
    const p = await program({ pointValueMinor: 100, earn: { points: 1, perAmountMinor: 1000 } });
    await accrue(p, 'm', 'sale', 4_000_000, '2026-01-15T00:00:00Z'); // 40,000.00 earns 4,000 points worth 1.00 each
    await redeem(p, 'm', 'r', 1000, '2026-02-15T00:00:00Z', 100);
    const r = await closeQuarter(p, '2026-Q1', { rate: 0.9, justification: 'worked example' });
    const cohort = r.cohorts.find((c) => c.cohort === '2026-Q1')!;
    assert.deepEqual([cohort.allocatedMinor, cohort.recognizedMinor], [296_296, 82_305]);
    assert.equal(r.liability.recognized.estimateChangeMinor, -10_288);
    assert.equal(r.liability.recognized.redemptionsMinor, 92_593);
    assertFoots(r);
    await recordHistory(worker.client, `close:${p}:2026-Q1`, 'close-locked');
  });

  test("a program's first close without an override keeps the prior estimate (the one cohort is not fully developed)", async () => {
    const p = await program();
    await accrue(p, 'm', 'sale', 1_000_000, '2026-01-15T00:00:00Z'); // 10,000 points, 80% expected
    await redeem(p, 'm', 'r', 1_000, '2026-02-15T00:00:00Z'); // a tenth
    const r = await closeQuarter(p, '2026-Q1');
    const [a] = r.assumptions.cohorts;
    assert.deepEqual(
      [a!.cohort, a!.method, a!.rate, a!.priorRate, a!.bounded, a!.lowerBound, a!.upperBound, a!.catchUpMinor],
      ['2026-Q1', 'prior', 0.8, 0.8, null, 0.1, 1, 0],
    );
    assert.match(
      a!.reason!,
      /development beyond age 0 not observed: no cohort is older, and no tail factor is approved/,
    );
    assert.deepEqual(r.assumptions.policy, { minCohortsPerFactor: 2, tailFactor: null });
    assert.equal(r.cohorts[0]!.ultimateRedemptionRate, 0.8);
    assert.equal(r.liability.recognized.estimateChangeMinor, 0, 'nothing recognised for a development not observed');
    assertFoots(r);
  });

  test('expired points bound the estimate: an override outside R/N..(R + outstanding)/N is refused (422) and nothing is written; the prior is capped', async () => {
    const p = await program({
      expiry: { policy: 'rolling', window: 'P400D', jurisdictions: { DE: { policy: 'rolling', window: 'P30D' } } },
    });
    await accrue(p, 'de', 'sale-de', 600_000, '2026-01-05T00:00:00Z', 'DE'); // 6,000 points, expire 2026-02-04
    await accrue(p, 'us', 'sale-us', 400_000, '2026-01-10T00:00:00Z'); // 4,000 points
    await expireMember(pool, p, 'de', '2026-03-01T00:00:00Z', 'test'); // (or the member workflow did, at the deadline)
    await redeem(p, 'us', 'r', 1_000, '2026-03-10T00:00:00Z');
    // 2026-Q1: N 10,000, R 1,000, expired 6,000: 0.1 <= u <= 0.4
    const counts = async () =>
      (
        await pool.query(
          `select (select count(*) from closes where program_id = $1)::int as closes,
                  (select count(*) from journal_entries where program_id = $1)::int as journals,
                  (select locked_until from programs where program_id = $1) as locked_until`,
          [p],
        )
      ).rows[0];
    const before = await counts();
    for (const rate of [0.9, 0.05]) {
      const refused = await start(p, '2026-Q1', 'finance', { rate, justification: 'out of bounds' });
      assert.deepEqual([refused.status, refused.body.error?.code], [422, 'override_out_of_bounds']);
      assert.deepEqual(refused.body.error.details.cohorts, [{ cohort: '2026-Q1', lowerBound: 0.1, upperBound: 0.4 }]);
    }
    assert.deepEqual(await counts(), before, 'nothing written');
    await assert.rejects(worker.client.workflow.getHandle(`close:${p}:2026-Q1`).describe(), /not found/i);

    const r = await closeQuarter(p, '2026-Q1');
    const [a] = r.assumptions.cohorts;
    assert.deepEqual(
      [a!.method, a!.rate, a!.priorRate, a!.bounded, a!.lowerBound, a!.upperBound],
      ['prior', 0.4, 0.8, 'upper', 0.1, 0.4],
    );
    assert.match(a!.reason!, /lowered to the share that can still be redeemed, 40\.0000%/);
    assert.equal(r.cohorts[0]!.ultimateRedemptionRate, 0.4);
    assert.ok(r.liability.recognized.estimateChangeMinor > 0, 'the expired points are breakage: recognised now');
    assertFoots(r);
  });

  test('incremental cost: each redemption releases its cost; the close re-measures the provision with the new estimate', async () => {
    const p = await program({
      accounting: {
        method: 'incremental_cost',
        costPerPointMinor: 2,
        notMaterialRight: {
          justification: 'points worth under 1% of spend, no discount beyond what any customer gets',
        },
      },
    });
    await accrue(p, 'm', 'sale', 100_000, '2026-01-10T00:00:00Z'); // 1,000 points, provision 1,000 x 2 x 0.8 = 1,600
    await redeem(p, 'm', 'r', 400, '2026-02-10T00:00:00Z'); // releases 400 x 2 = 800
    const r = await closeQuarter(p, '2026-Q1', { rate: 0.5, justification: 'fewer redeem than planned' });
    // provision left = 2 x (1,000 x 0.5 - 400) = 200: the close releases 600 more; reported as a
    // provision, apart from the contract liability (none)
    assert.deepEqual(
      [
        r.provision!.issuedMinor,
        r.provision!.recognized.redemptionsMinor,
        r.provision!.recognized.estimateChangeMinor,
        r.provision!.closingMinor,
      ],
      [1_600, 800, 600, 200],
    );
    assert.deepEqual(r.liability, {
      openingMinor: 0,
      issuedMinor: 0,
      recognizedMinor: 0,
      recognized: { redemptionsMinor: 0, breakageMinor: 0, estimateChangeMinor: 0 },
      adjustedMinor: 0,
      closingMinor: 0,
    });
    assert.equal(r.cohorts[0]!.measurement, 'provision');
    assertFoots(r);
    const { rows } = await pool.query(
      `select l.account, sum(l.credit_minor - l.debit_minor)::int as net from journal_entries j join journal_lines l using (journal_entry_id)
        where j.program_id = $1 group by 1 order by 1`,
      [p],
    );
    assert.deepEqual(rows, [
      { account: 'loyalty_expense', net: -200 },
      { account: 'loyalty_provision', net: 200 },
    ]);
    // the next quarter releases the opening provision: a provision, never revenue from the opening
    // contract liability (ASC 606-10-50-8(b))
    await redeem(p, 'm', 'r2', 50, '2026-04-10T00:00:00Z'); // releases 50 x 2 = 100 of the Q1 cohort's provision
    const q2 = await closeQuarter(p, '2026-Q2');
    assert.equal(q2.revenueFromOpeningBalanceMinor, 0);
    assert.equal(q2.provision!.openingMinor, 200);
    assert.equal(q2.provision!.recognized.redemptionsMinor, 100);
    assert.equal(q2.liability.openingMinor, 0);
    assert.equal(q2.liability.recognizedMinor, 0);
    assertFoots(q2);
    const csv = await call('GET', `/v1/programs/${p}/closes/2026-Q2/report?format=csv`, { role: 'finance' });
    assert.match(String(csv.body), /provision,openingMinor,200/);
    // no release of the provision ever credits a revenue account
    const credited = await pool.query(
      `select distinct l.account from journal_lines l join journal_entries j using (journal_entry_id)
        where j.program_id = $1 and l.credit_minor > 0
          and exists (select 1 from journal_lines x where x.journal_entry_id = j.journal_entry_id and x.account = 'loyalty_provision')
        order by 1`,
      [p],
    );
    assert.deepEqual(
      credited.rows.map((x) => x.account),
      ['loyalty_expense', 'loyalty_provision'],
    );
    const liab = await call('GET', `/v1/programs/${p}/liability?asOf=2026-06-30T23:59:59Z`, { role: 'finance' });
    assert.equal(liab.status, 200);
    assert.equal(liab.body.deferredRevenueMinor, 0);
    assert.equal(liab.body.provisionMinor, 100);
    assert.equal(liab.body.cohorts[0].provisionMinor, 100);
    assert.equal(liab.body.cohorts[0].deferredRevenueMinor, 0);
  });

  test('no approval in time: escalated, then cancelled; the quarter stays frozen; a new close can start', async () => {
    const p = await program();
    await accrue(p, 'm', 'a', 100_000, '2026-01-10T00:00:00Z');
    // an API whose closes wait 2 s for approval before escalating and 4 s before cancelling
    const hasty = await startApi(pool, async () => true, {
      client: worker.client,
      taskQueue: worker.taskQueue,
      closeApproval: { escalateAfter: 'PT2S', cancelAfter: 'PT4S' },
    });
    try {
      assert.equal(
        (await httpClient(hasty)('POST', `/v1/programs/${p}/closes`, { role: 'finance', body: { period: '2026-Q1' } }))
          .status,
        202,
      );
    } finally {
      await hasty.close();
    }
    await eventually('escalated', async () => (await status(p, '2026-Q1')).step === 'escalated', 20_000);
    await eventually('cancelled', async () => (await status(p, '2026-Q1')).status === 'cancelled', 20_000);
    const frozen = await accrue(p, 'm', 'b', 100_000, '2026-02-10T00:00:00Z');
    assert.deepEqual([frozen.status, frozen.body.error?.code], [409, 'period_locked']);
    const late = await call('POST', `/v1/programs/${p}/closes/2026-Q1/approve`, { role: 'controller' });
    assert.equal(late.status, 409);
    await recordHistory(worker.client, `close:${p}:2026-Q1`, 'close-cancelled');
    await closeQuarter(p, '2026-Q1');
  });

  test('the quarterly schedule starts the closes due and leaves a close started by hand alone', async () => {
    const byHand = await program();
    const due = await program();
    const later = await program();
    await accrue(byHand, 'm', 'a', 100_000, '2025-11-10T00:00:00Z');
    await accrue(due, 'm', 'a', 100_000, '2025-12-10T00:00:00Z');
    await accrue(later, 'm', 'a', 100_000, '2026-01-10T00:00:00Z');
    assert.equal((await start(byHand, '2025-Q4')).status, 202);
    await awaitingApproval(byHand, '2025-Q4');
    const run = await worker.client.workflow.execute(scheduledCloses, {
      workflowId: uniqueId('close-scheduled'),
      taskQueue: worker.taskQueue,
      args: [{ period: '2025-Q4' }],
    });
    assert.ok(
      run.started.includes(due) && !run.started.includes(byHand) && !run.started.includes(later),
      JSON.stringify(run),
    );
    assert.match(run.skipped.find((x) => x.programId === byHand)!.reason, /already proposed/);
    assert.match(run.skipped.find((x) => x.programId === later)!.reason, /no activity in or before the quarter/);
    const scheduled = await awaitingApproval(due, '2025-Q4');
    assert.equal(scheduled.startedBy, 'system:close-schedule');
    assert.equal((await status(byHand, '2025-Q4')).startedBy, 'test-finance');

    assert.equal(
      await ensureCloseSchedule(worker.client, { taskQueue: worker.taskQueue, daysAfterQuarterEnd: 5 }),
      'created',
    );
    const handle = worker.client.schedule.getHandle(QUARTERLY_CLOSE_SCHEDULE_ID);
    try {
      assert.equal(
        await ensureCloseSchedule(worker.client, { taskQueue: worker.taskQueue, daysAfterQuarterEnd: 5 }),
        'exists',
      );
      const next = (await handle.describe()).info.nextActionTimes[0]!;
      assert.deepEqual(
        [next.getUTCDate(), next.getUTCMonth() % 3, next.getUTCHours()],
        [6, 0, 1],
        "the 6th of the quarter's first month, 01:00 UTC",
      );
    } finally {
      await handle.delete();
    }
  });

  test('loyalty close shows the steps until the close awaits approval; starting it again finds it', async () => {
    const p = await program();
    await accrue(p, 'm', 'a', 100_000, '2026-01-10T00:00:00Z');
    // fiona's own finance key: the close is started as the key's principal, through the API
    const fionaKey = newSecret('fiona-key');
    await putKey(pool, { keyId: 'fiona-key', secret: fionaKey, principal: 'fiona', roles: ['finance'] });
    const env = { ...process.env, LOYALTY_API_URL: stack.api.baseUrl, LOYALTY_API_KEY: fionaKey };
    const run = (as = 'fiona') =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            join(__dirname, '..', '..', 'cli', 'index.ts'),
            'close',
            p,
            '2026-Q1',
            '--as',
            as,
            '--wait',
            '60',
          ],
          { env },
        );
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (code) => resolve({ code, out }));
      });
    const first = await run();
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /started as fiona \(workflow close:.*:2026-Q1\)/);
    assert.match(first.out, /freezing the quarter/); // steps shorter than the poll (500 ms) may not show
    assert.match(
      first.out,
      /awaiting a controller's approval[\s\S]*catch-up proposed: -?\d+ \(minor units\) over 1 cohort\(s\)/,
    );
    const second = await run();
    assert.match(second.out, /already proposed, started by fiona/);
    assert.equal((await status(p, '2026-Q1')).startedBy, 'fiona');
    // --as is a check against the key, never a way to be recorded as someone else
    const posing = await run('gabriel');
    assert.equal(posing.code, 1, posing.out);
    assert.doesNotMatch(posing.out, /started as/);
    assert.equal((await status(p, '2026-Q1')).startedBy, 'fiona');
  });

  test('bad requests: 4xx with a stable code', async () => {
    const p = await program();
    const cases: Array<[Promise<{ status: number; body: { error?: { code: string } } }>, number, string]> = [
      [call('POST', `/v1/programs/${p}/closes`, { role: 'billing', body: { period: '2026-Q1' } }), 403, 'forbidden'],
      [
        call('POST', `/v1/programs/${p}/closes`, { role: 'finance', body: { period: '2026-Q5' } }),
        400,
        'validation_failed',
      ],
      [
        call('POST', `/v1/programs/${p}/closes`, {
          role: 'finance',
          body: { period: '2026-Q1', redemptionRateOverride: { rate: 1.5, justification: 'x' } },
        }),
        400,
        'validation_failed',
      ],
      [
        call('POST', `/v1/programs/${p}/closes`, {
          role: 'finance',
          body: { period: '2026-Q1', redemptionRateOverride: { rate: 0.9 } },
        }),
        400,
        'validation_failed',
      ],
      [call('POST', `/v1/programs/${p}/closes/2026-Q1/approve`, { role: 'finance' }), 403, 'forbidden'],
      [call('POST', `/v1/programs/${p}/closes/2026-Q1/approve`, { role: 'controller' }), 404, 'not_found'],
      [
        call('GET', `/v1/programs/${p}/closes/2026-Q1/report?format=pdf`, { role: 'finance' }),
        400,
        'validation_failed',
      ],
    ];
    for (const [req, code, name] of cases) {
      const res = await req;
      assert.deepEqual([res.status, res.body.error?.code], [code, name]);
    }
    assert.equal((await pool.query('select count(*)::int as n from closes where program_id = $1', [p])).rows[0].n, 0);
  });
});

describe("the liability's store weights follow each refund's reversal, cohort by cohort", () => {
  // Review finding: the weights took a refund's whole reversal off the refunded invoice's own
  // accrual. A refund whose points were spent revokes the member's points from other cohorts and
  // reverses the allocation there (ll_refund): the invoice's cohort kept weights below its
  // allocation, the other cohort above it, and the wrong store lost the weight.
  test("a refund taking points from another cohort lowers the member's stores there, exactly; each cohort's weights add up to its allocation", async () => {
    const p = await program();
    const sale = (memberId: string, invoiceId: string, amountMinor: number, occurredAt: string, storeId: string) =>
      call('POST', `/v1/programs/${p}/accruals`, {
        role: 'billing',
        body: { memberId, invoiceId, amountMinor, occurredAt, storeId },
      });
    for (const [m, inv, amount, at, store] of [
      ['m', 'q1-a', 100_000, '2026-01-10T00:00:00Z', 's-a'], // 1,000 points in 2026-Q1
      ['m2', 'q1-c', 50_000, '2026-02-10T00:00:00Z', 's-c'],
      ['m', 'q2-b', 140_000, '2026-04-10T00:00:00Z', 's-b'], // m's 2026-Q2 points from two stores
      ['m', 'q2-e', 60_000, '2026-04-20T00:00:00Z', 's-e'],
      ['m3', 'q2-d', 40_000, '2026-05-10T00:00:00Z', 's-d'],
    ] as const)
      assert.equal((await sale(m, inv, amount, at, store)).status, 201);
    await redeem(p, 'm', 'r-1', 1000, '2026-05-01T00:00:00Z'); // oldest first: m's 2026-Q1 points, all spent
    // the 2026-Q1 sale refunded in full: its own cohort has none of m's points left, so the 1,000
    // come from m's 2026-Q2 points (earned at s-b and s-e) and the allocation is reversed there
    const refund = await call('POST', `/v1/programs/${p}/refunds`, {
      role: 'billing',
      body: {
        refundId: 'rf-1',
        invoiceId: 'q1-a',
        memberId: 'm',
        amountMinor: 100_000,
        occurredAt: '2026-06-01T00:00:00Z',
      },
    });
    assert.equal(refund.status, 201, JSON.stringify(refund.body));
    const lines = (
      await pool.query(
        `select l.cohort, sum(l.debit_minor)::int as reversed from journal_entries j join journal_lines l using (journal_entry_id)
          where j.program_id = $1 and j.idempotency_key = 'refund:rf-1' and l.account = 'loyalty_contract_liability' group by 1`,
        [p],
      )
    ).rows;
    assert.deepEqual(
      lines.map((l) => l.cohort),
      ['2026-Q2'],
      'the reversal came off 2026-Q2, not the invoice cohort',
    );
    const reversed = lines[0].reversed as number;
    assert.ok(reversed > 0);

    const books = await readPeriodBooks(pool, p, '2026-Q2');
    const weights = (cohort: string) =>
      Object.fromEntries(
        books.allocatedByStore.filter((w) => w.cohort === cohort).map((w) => [w.key, Number(w.weight)]),
      );
    const allocation = async (invoiceId: string) =>
      Number(
        (
          await pool.query('select allocated_minor from accruals where program_id = $1 and invoice_id = $2', [
            p,
            invoiceId,
          ])
        ).rows[0].allocated_minor,
      );
    // 2026-Q1 lost nothing: the refunded sale's spent points stay there with their allocation
    assert.deepEqual(weights('2026-Q1'), { 's-a': await allocation('q1-a'), 's-c': await allocation('q1-c') });
    // 2026-Q2: m's two stores give up the reversal in proportion to their allocation, m3's none
    const [b, e] = [await allocation('q2-b'), await allocation('q2-e')];
    const fromB = Math.round((reversed * b) / (b + e));
    assert.deepEqual(weights('2026-Q2'), {
      's-b': b - fromB,
      's-e': e - (reversed - fromB),
      's-d': await allocation('q2-d'),
    });
    // exact: per cohort the weights add up to its allocation net of refunds as of the end
    const addsUp = (b: typeof books) => {
      for (const c of b.cohorts.filter((c) => !c.cohort.endsWith('-goodwill')))
        assert.equal(
          b.allocatedByStore.filter((w) => w.cohort === c.cohort).reduce((s, w) => s + Number(w.weight), 0),
          Number(c.allocatedMinor),
          c.cohort,
        );
    };
    addsUp(books);
    // points taken back by hand reverse their share of the cohort too (now, so in this quarter's books)
    const taken = await call('POST', `/v1/programs/${p}/adjustments`, {
      role: 'support',
      body: { memberId: 'm', points: -300, reasonCode: 'correction' },
    });
    assert.equal(taken.status, 201, JSON.stringify(taken.body));
    addsUp(await readPeriodBooks(pool, p, quarterOf(new Date())));
  });
});
