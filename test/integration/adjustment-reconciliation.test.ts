import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { Pool } from 'pg';
import { billingClient } from '../../activities/services/billing';
import { glClient } from '../../activities/services/gl';
import { DAILY_RECONCILIATION_SCHEDULE_ID } from '../../domain/workflow-ids';
import { startSimulators, type RunningSimulators } from '../../simulators';
import { ensureReconciliationSchedule } from '../../workers/schedules';
import {
  eventually,
  freshDatabase,
  httpClient,
  programBody,
  recordHistory,
  checkAgreementThenStop,
  startApi,
  startWorker,
  uniqueId,
  type TestApi,
  type TestWorker,
} from '../helpers/stack';

// Invoice adjustments (the excess points of a lowered invoice go back) and the daily reconciliation
// (API, CLI, schedule), against the real dev server, PostgreSQL and the simulators.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let sims: RunningSimulators;
let worker: TestWorker;
let api: TestApi;
let call: ReturnType<typeof httpClient>;
let billing: ReturnType<typeof billingClient>;
let gl: ReturnType<typeof glClient>;
/** programs this file breaks on purpose (a credit reversed behind the ledger's back) */
const broken: string[] = [];
const today = () => new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  sims = await startSimulators({ billing: 0, gl: 0, tax: 0 }, 11);
  worker = await startWorker(pool, {
    services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 1000 },
  });
  api = await startApi(pool, async () => true, { client: worker.client, taskQueue: worker.taskQueue });
  call = httpClient(api);
  billing = billingClient({ baseUrl: sims.billingUrl, timeoutMs: 1000 });
  gl = glClient({ baseUrl: sims.glUrl, timeoutMs: 1000 });
});
afterAll(() =>
  checkAgreementThenStop(
    pool,
    worker,
    [() => api.close(), () => worker.stop(), () => sims.close(), () => db.drop()],
    broken,
  ),
);

/** A program, a member with 5,000 points, and an 80.00 invoice (60.00 + 20.00) redeemed with `points`. */
async function redeemed(points: number) {
  const programId = uniqueId('ar');
  assert.equal(
    (await call('POST', '/v1/programs', { body: programBody(programId, { chargebackWindow: 'PT1S' }) })).status,
    201,
  );
  const invoiceId = uniqueId('inv');
  await call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    body: {
      memberId: 'm-1',
      invoiceId: `${invoiceId}-earn`,
      amountMinor: 500_000,
      occurredAt: new Date().toISOString(),
    },
  });
  await billing.createInvoice(
    {
      invoiceId,
      customerId: 'c-1',
      currency: 'USD',
      lines: [
        { description: 'Plan', amountMinor: 6000 },
        { description: 'Add-on', amountMinor: 2000 },
      ],
    },
    `inv-${invoiceId}`,
  );
  const res = await call('POST', `/v1/programs/${programId}/redemptions`, {
    role: 'billing',
    body: { invoiceId, memberId: 'm-1', points, invoiceTotalMinor: 8000, occurredAt: new Date().toISOString() },
  });
  assert.equal(res.body.status, 'applied', JSON.stringify(res.body));
  return { programId, invoiceId, redemptionId: res.body.redemptionId as string };
}
const adjust = (
  programId: string,
  invoiceId: string,
  body: Record<string, unknown>,
  role: 'billing' | 'finance' = 'billing',
) =>
  call('POST', `/v1/programs/${programId}/redemptions/${invoiceId}/adjustments`, {
    role,
    body: { occurredAt: new Date().toISOString(), ...body },
  });
const balance = async (programId: string) =>
  (await call('GET', `/v1/programs/${programId}/members/m-1`, { role: 'support' })).body.balance as number;
const cli = (...args: string[]) =>
  spawnSync(
    process.execPath,
    ['--import', 'tsx', join(__dirname, '..', '..', 'cli', 'index.ts'), ...args, '--database-url', db.url],
    { encoding: 'utf8' },
  );

describe('invoice adjustments', () => {
  test('an invoice lowered below its credit: the excess points come back, the credit shrinks, the GL gets the recomputed revenue; once', async () => {
    const { programId, invoiceId } = await redeemed(4000);
    assert.equal(await balance(programId), 1000);
    await billing.adjustInvoice(
      invoiceId,
      [{ description: 'Plan (downgraded)', amountMinor: 2000 }],
      `adj-${invoiceId}`,
    );
    const res = await adjust(programId, invoiceId, { adjustmentId: 'adj-1', invoiceTotalMinor: 2000 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(
      [res.body.status, res.body.pointsReversed, res.body.creditReversedMinor, res.body.workflowId],
      ['done', 2000, 2000, `invoice-adjustment:${programId}:${invoiceId}:adj-1`],
    );
    assert.equal(await balance(programId), 3000);
    const inv = await billing.getInvoice(invoiceId);
    assert.deepEqual([inv.credits[0]!.amountMinor, inv.amountDueMinor], [2000, 0]);
    const entry = await gl.getEntry(res.body.glEntryId);
    assert.equal(entry.entryId, `loyalty:${programId}:redeem-adjust:${invoiceId}:adj-1`);

    const again = await adjust(programId, invoiceId, { adjustmentId: 'adj-1', invoiceTotalMinor: 2000 });
    assert.deepEqual(
      [again.status, again.body.pointsReversed],
      [200, 2000],
      'the same adjustment answers the same, and acts once',
    );
    assert.equal(await balance(programId), 3000);
    const conflict = await adjust(programId, invoiceId, { adjustmentId: 'adj-1', invoiceTotalMinor: 1000 });
    assert.deepEqual([conflict.status, conflict.body.error.code], [409, 'adjustment_exists']);
    const higher = await adjust(programId, invoiceId, { adjustmentId: 'adj-2', invoiceTotalMinor: 7000 });
    assert.deepEqual(
      [higher.status, higher.body.pointsReversed],
      [200, 0],
      'a total the credit still fits gives nothing back',
    );

    await recordHistory(worker.client, res.body.workflowId, 'invoice-adjustment');
    const read = await call('GET', `/v1/programs/${programId}/redemptions/${invoiceId}`, { role: 'billing' });
    assert.deepEqual(
      [
        read.body.status,
        read.body.pointsApplied,
        read.body.pointsReversed,
        read.body.creditReversedMinor,
        read.body.ruleVersion,
      ],
      ['applied', 4000, 2000, 2000, 1],
    );
  });

  test('bad adjustments: 4xx with a stable code, nothing written', async () => {
    const { programId, invoiceId } = await redeemed(1000);
    const cases: Array<[string, Record<string, unknown>, number, string, 'billing' | 'finance']> = [
      ['unknown invoice', { adjustmentId: 'x', invoiceTotalMinor: 10 }, 404, 'not_found', 'billing'],
      ['negative total', { adjustmentId: 'x', invoiceTotalMinor: -1 }, 400, 'validation_failed', 'billing'],
      ['fractional total', { adjustmentId: 'x', invoiceTotalMinor: 1.5 }, 400, 'validation_failed', 'billing'],
      ['unknown field', { adjustmentId: 'x', invoiceTotalMinor: 10, points: 5 }, 400, 'validation_failed', 'billing'],
      ['wrong role', { adjustmentId: 'x', invoiceTotalMinor: 10 }, 403, 'forbidden', 'finance'],
    ];
    for (const [what, body, status, code, role] of cases) {
      const res = await adjust(programId, what === 'unknown invoice' ? 'nope' : invoiceId, body, role);
      assert.deepEqual([res.status, res.body.error?.code], [status, code], what);
    }
    const { rows } = await pool.query('select count(*)::int as n from redemption_adjustments where program_id = $1', [
      programId,
    ]);
    assert.equal(rows[0].n, 0);
    assert.equal(await balance(programId), 4000);
  });
});

describe('daily reconciliation', () => {
  test('a clean day: zero differences through the API and the CLI', async () => {
    const { programId } = await redeemed(2500);
    const run = await call('POST', `/v1/programs/${programId}/reconciliations`, {
      role: 'finance',
      body: { date: today() },
    });
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.deepEqual(
      [run.body.redemptionsChecked, run.body.creditsChecked, run.body.glEntriesChecked, run.body.differenceCount],
      [1, 1, 2, 0],
    );
    const read = await call('GET', `/v1/programs/${programId}/reconciliations/${today()}`, { role: 'controller' });
    assert.deepEqual([read.status, read.body.runId], [200, run.body.runId]);
    await recordHistory(worker.client, run.body.workflowId, 'reconciliation-program-day');
    const printed = cli('reconciliation', programId, today());
    assert.equal(printed.status, 0, printed.stdout + printed.stderr);
    assert.match(printed.stdout, /differences: 0/);
    assert.match(printed.stdout, /checked: 1 redemptions, 1 billing credits, 2 GL entries/);
  });

  test('a credit billing reversed on its own and a GL entry the ledger never posted: each a difference with its invoice and reason', async () => {
    const { programId, invoiceId, redemptionId } = await redeemed(2500);
    broken.push(programId);
    await billing.reverseCredit(invoiceId, redemptionId, 'manual fix in billing', `rogue-${invoiceId}`);
    await gl.postEntry(
      {
        entryId: `loyalty:${programId}:redeem:ghost-1`,
        date: today(),
        description: 'typed in by hand',
        lines: [
          { account: 'loyalty_contract_liability', debitMinor: 100, creditMinor: 0 },
          { account: 'loyalty_revenue', debitMinor: 0, creditMinor: 100 },
        ],
      },
      `rogue-gl-${programId}`,
    );
    const run = await call('POST', `/v1/programs/${programId}/reconciliations`, {
      role: 'finance',
      body: { date: today() },
    });
    assert.equal(run.body.differenceCount, 2, JSON.stringify(run.body));
    const reasons = run.body.differences
      .map((d: { reason: string; invoiceId: string; check: string }) => [d.check, d.reason, d.invoiceId])
      .sort();
    assert.deepEqual(reasons, [
      ['billing', 'reversed_in_billing_only', invoiceId],
      ['gl', 'unknown_in_subledger', 'ghost-1'],
    ]);
    const printed = cli('reconciliation', programId, today());
    assert.equal(printed.status, 1);
    assert.match(printed.stdout, new RegExp(`reversed_in_billing_only\\s+invoice ${invoiceId}`));
    const none = cli('reconciliation', programId, '2020-01-01');
    assert.equal(none.status, 3);
    assert.match(none.stderr, /no reconciliation/);
  });

  test('bad requests: 4xx with a stable code', async () => {
    const { programId } = await redeemed(1000);
    const checks: Array<[Promise<{ status: number; body: { error?: { code: string } } }>, number, string]> = [
      [
        call('POST', `/v1/programs/${programId}/reconciliations`, { role: 'billing', body: { date: today() } }),
        403,
        'forbidden',
      ],
      [
        call('POST', `/v1/programs/${programId}/reconciliations`, { role: 'finance', body: { date: '2026-02-30' } }),
        400,
        'validation_failed',
      ],
      [
        call('POST', `/v1/programs/${programId}/reconciliations`, {
          role: 'finance',
          body: { date: today(), extra: 1 },
        }),
        400,
        'validation_failed',
      ],
      [call('GET', `/v1/programs/${programId}/reconciliations/2020-01-01`, { role: 'finance' }), 404, 'not_found'],
      [
        call('GET', `/v1/programs/${programId}/reconciliations/yesterday`, { role: 'finance' }),
        400,
        'validation_failed',
      ],
      [call('GET', `/v1/programs/nope/reconciliations/${today()}`, { role: 'finance' }), 404, 'not_found'],
    ];
    for (const [p, status, code] of checks) {
      const res = await p;
      assert.deepEqual([res.status, res.body.error?.code], [status, code]);
    }
  });

  test('the Temporal Schedule: created once, and a triggered run reconciles the day before for every program', async () => {
    assert.equal(
      await ensureReconciliationSchedule(worker.client, { taskQueue: worker.taskQueue, hourUtc: 0, minuteUtc: 30 }),
      'created',
    );
    const handle = worker.client.schedule.getHandle(DAILY_RECONCILIATION_SCHEDULE_ID);
    try {
      assert.equal(
        await ensureReconciliationSchedule(worker.client, { taskQueue: worker.taskQueue, hourUtc: 0, minuteUtc: 30 }),
        'exists',
      );
      await handle.trigger();
      const action = await eventually(
        'a run started by the schedule',
        async () => (await handle.describe()).info.recentActions[0],
      );
      const summaries = await worker.client.workflow.getHandle(action.action.workflow.workflowId).result();
      const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
      const { rows } = await pool.query<{ n: number }>('select count(*)::int as n from programs');
      assert.equal(summaries.length, rows[0]!.n);
      assert.ok(
        summaries.every(
          (s: { date: string; differenceCount: number }) => s.date === yesterday && s.differenceCount === 0,
        ),
      );
      await recordHistory(worker.client, action.action.workflow.workflowId, 'reconciliation-daily');
    } finally {
      await handle.delete();
    }
  });
});
