import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from 'vitest';
import type { Pool } from 'pg';
import { billingClient } from '../../activities/services/billing';
import { glClient } from '../../activities/services/gl';
import { startSimulators, type RunningSimulators } from '../../simulators';
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

// The redemption saga end to end: the API, a real worker on the dev server, PostgreSQL and the
// billing, GL and tax simulators, with injected faults.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let sims: RunningSimulators;
let worker: TestWorker;
let api: TestApi;
let call: ReturnType<typeof httpClient>;
let billing: ReturnType<typeof billingClient>;
let gl: ReturnType<typeof glClient>;

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  sims = await startSimulators({ billing: 0, gl: 0, tax: 0 }, 7);
  worker = await startWorker(pool, {
    services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 1000 },
  });
  api = await startApi(pool, async () => true, { client: worker.client, taskQueue: worker.taskQueue });
  call = httpClient(api);
  billing = billingClient({ baseUrl: sims.billingUrl, timeoutMs: 1000 });
  gl = glClient({ baseUrl: sims.glUrl, timeoutMs: 1000 });
});
afterAll(() =>
  checkAgreementThenStop(pool, worker, [() => api.close(), () => worker.stop(), () => sims.close(), () => db.drop()]),
);

async function fault(url: string, rule: Record<string, unknown>) {
  await fetch(`${url}/admin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(rule),
  });
}
const clearFaults = () =>
  Promise.all([sims.billingUrl, sims.glUrl, sims.taxUrl].map((u) => fetch(`${u}/admin/faults`, { method: 'DELETE' })));

async function setup(o: { chargebackWindow?: string; earnMinor?: number; expiryWindow?: string } = {}) {
  const programId = uniqueId('rs');
  const res = await call('POST', '/v1/programs', {
    body: programBody(programId, {
      chargebackWindow: o.chargebackWindow ?? 'PT2S',
      ...(o.expiryWindow ? { expiry: { policy: 'rolling', window: o.expiryWindow } } : {}),
    }),
  });
  assert.equal(res.status, 201);
  const invoiceId = uniqueId('inv');
  await call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    body: {
      memberId: 'm-1',
      invoiceId: `${invoiceId}-earn`,
      amountMinor: o.earnMinor ?? 500_000,
      occurredAt: new Date().toISOString(),
      jurisdiction: 'US-CA',
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
  return { programId, invoiceId };
}

const redeem = (programId: string, invoiceId: string, points: number, memberId = 'm-1') =>
  call('POST', `/v1/programs/${programId}/redemptions`, {
    role: 'billing',
    body: { invoiceId, memberId, points, invoiceTotalMinor: 8000, occurredAt: new Date().toISOString() },
  });
const record = (workflowId: string, name: string) => recordHistory(worker.client, workflowId, name);
const member = async (programId: string) =>
  (await call('GET', `/v1/programs/${programId}/members/m-1`, { role: 'billing' })).body;

describe('redemption saga', () => {
  test('applied: hold, tax, billing credit, points spent and revenue booked, GL posted; the saga ends after the window', async () => {
    const { programId, invoiceId } = await setup();
    const res = await redeem(programId, invoiceId, 2500);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(
      [res.body.status, res.body.pointsApplied, res.body.creditMinor, res.body.workflowId],
      ['applied', 2500, 2500, `redemption:${programId}:${invoiceId}`],
    );
    assert.equal((await billing.getInvoice(invoiceId)).amountDueMinor, 5500);
    const m = await member(programId);
    assert.deepEqual([m.balance, m.held], [2500, 0]);
    const entries = (await gl.entriesOn(new Date().toISOString().slice(0, 10), 'loyalty_revenue')).entries;
    assert.ok(entries.some((e) => e.entryId === `loyalty:${programId}:redeem:${invoiceId}`));
    const read = await call('GET', `/v1/programs/${programId}/redemptions/${invoiceId}`, { role: 'support' });
    assert.equal(read.body.status, 'applied');
    const handle = worker.client.workflow.getHandle(res.body.workflowId);
    assert.equal((await handle.result()).status, 'applied');
    await record(res.body.workflowId, 'redemption-applied');
  });

  test('the same invoice, 50 requests at once: one redemption', async () => {
    const { programId, invoiceId } = await setup({ chargebackWindow: 'PT1S' });
    const answers = await Promise.all(Array.from({ length: 50 }, () => redeem(programId, invoiceId, 1000)));
    assert.ok(
      answers.every((a) => a.status === 201 && a.body.status === 'applied'),
      JSON.stringify(answers.map((a) => a.body)),
    );
    assert.equal(new Set(answers.map((a) => a.body.redemptionId)).size, 1);
    // after the first run has closed, the same request for the invoice (a new key) reports what it
    // decided; one with other points is 409 redemption_exists, never the first outcome as its own
    await worker.client.workflow.getHandle(answers[0]!.body.workflowId).result();
    const later = await redeem(programId, invoiceId, 1000);
    assert.deepEqual(
      [later.body.status, later.body.redemptionId, later.body.pointsApplied],
      ['applied', answers[0]!.body.redemptionId, 1000],
    );
    const more = await redeem(programId, invoiceId, 3000);
    assert.deepEqual([more.status, more.body.error?.code], [409, 'redemption_exists']);
    assert.equal((await member(programId)).balance, 4000);
    assert.equal((await billing.getInvoice(invoiceId)).credits.length, 1);
  });

  test('declined before any step: not enough points, unknown member; nothing written', async () => {
    const { programId, invoiceId } = await setup({ earnMinor: 5_000 });
    const few = await redeem(programId, invoiceId, 1000);
    assert.deepEqual([few.body.status, few.body.reason], ['declined', 'insufficient_points']);
    const ghost = await redeem(programId, `${invoiceId}-2`, 1000, 'ghost');
    assert.deepEqual([ghost.body.status, ghost.body.reason], ['declined', 'unknown_member']);
    const { rows } = await pool.query('select count(*)::int as n from redemptions where program_id = $1', [programId]);
    assert.equal(rows[0].n, 0);
  });

  test('billing refuses the credit: the hold is released', async () => {
    const { programId, invoiceId } = await setup();
    await fault(sims.billingUrl, { operation: 'apply_credit', failNext: 1, failStatus: 422 });
    const res = await redeem(programId, invoiceId, 2500);
    assert.deepEqual([res.body.status, res.body.reason], ['declined', 'injected_failure']);
    const m = await member(programId);
    assert.deepEqual([m.balance, m.held], [5000, 0]);
    assert.equal((await billing.getInvoice(invoiceId)).credits.length, 0);
    await clearFaults();
  });

  test('the GL refuses the entry: points back, credit reversed, in reverse order', async () => {
    const { programId, invoiceId } = await setup();
    await fault(sims.glUrl, { operation: 'post_entry', failNext: 1, failStatus: 422 });
    const res = await redeem(programId, invoiceId, 2500);
    assert.equal(res.body.status, 'declined');
    const m = await member(programId);
    assert.deepEqual([m.balance, m.held], [5000, 0]);
    const inv = await billing.getInvoice(invoiceId);
    assert.equal(inv.amountDueMinor, 8000);
    assert.ok(inv.credits[0]!.reversedAt);
    const ledger = (await call('GET', `/v1/programs/${programId}/members/m-1/ledger`, { role: 'support' })).body
      .entries;
    assert.deepEqual(
      ledger.map((e: { type: string }) => e.type),
      ['earn', 'redeem', 'redeem_reversal'],
    );
    await clearFaults();
    await worker.client.workflow.getHandle(res.body.workflowId).result();
    await record(res.body.workflowId, 'redemption-compensated');
  });

  test('an invoice id too long for a GL entry id: the entries are named by a digest, posted, reversed and reconciled', async () => {
    const programId = uniqueId('rs');
    assert.equal(
      (await call('POST', '/v1/programs', { body: programBody(programId, { chargebackWindow: 'PT30S' }) })).status,
      201,
    );
    const invoiceId = `${uniqueId('inv')}-${'x'.repeat(128)}`.slice(0, 128);
    await call('POST', `/v1/programs/${programId}/accruals`, {
      role: 'billing',
      body: { memberId: 'm-1', invoiceId: 'earn-1', amountMinor: 500_000, occurredAt: new Date().toISOString() },
    });
    await billing.createInvoice(
      { invoiceId, customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 8000 }] },
      `inv-${invoiceId}`,
    );
    const res = await redeem(programId, invoiceId, 2500);
    assert.deepEqual([res.body.status, res.body.reason], ['applied', null], JSON.stringify(res.body));
    assert.equal(
      (
        await call('POST', `/v1/programs/${programId}/chargebacks`, {
          role: 'billing',
          body: { invoiceId, chargebackId: 'cb-1', status: 'lost' },
        })
      ).status,
      202,
    );
    assert.equal((await worker.client.workflow.getHandle(res.body.workflowId).result()).status, 'reversed');
    const { rows } = await pool.query('select entry_id from gl_postings where program_id = $1 order by journal_key', [
      programId,
    ]);
    assert.equal(rows.length, 2, 'the redemption and its reversal are in the GL');
    for (const r of rows) {
      assert.ok(r.entry_id.length <= 128 && r.entry_id.startsWith(`loyalty:${programId}:h:`), r.entry_id);
      await gl.getEntry(r.entry_id);
    }
  });

  test('transient failures at every service are retried', async () => {
    const { programId, invoiceId } = await setup();
    for (const [url, operation] of [
      [sims.billingUrl, 'apply_credit'],
      [sims.glUrl, 'post_entry'],
      [sims.taxUrl, 'get_treatment'],
    ] as const) {
      await fault(url, { operation, failNext: 2 });
    }
    const res = await redeem(programId, invoiceId, 2500);
    assert.equal(res.body.status, 'applied');
    await clearFaults();
  });

  test('30% of calls failing at every service: every saga ends applied or declined, none doubled', async () => {
    const programId = uniqueId('rs');
    assert.equal(
      (await call('POST', '/v1/programs', { body: programBody(programId, { chargebackWindow: 'PT1S' }) })).status,
      201,
    );
    const invoices = Array.from({ length: 20 }, (_, i) => ({ invoiceId: uniqueId(`t${i}`), memberId: `m-${i % 5}` }));
    for (const m of ['m-0', 'm-1', 'm-2', 'm-3', 'm-4']) {
      await call('POST', `/v1/programs/${programId}/accruals`, {
        role: 'billing',
        body: {
          memberId: m,
          invoiceId: `${programId}-${m}`,
          amountMinor: 1_000_000,
          occurredAt: new Date().toISOString(),
          jurisdiction: 'DE',
        },
      });
    }
    for (const inv of invoices) {
      await billing.createInvoice(
        {
          invoiceId: inv.invoiceId,
          customerId: inv.memberId,
          currency: 'EUR',
          lines: [{ description: 'Plan', amountMinor: 8000 }],
        },
        `inv-${inv.invoiceId}`,
      );
    }
    const ops: Array<[string, string]> = [
      [sims.billingUrl, 'apply_credit'],
      [sims.billingUrl, 'reverse_credit'],
      [sims.billingUrl, 'get_invoice'],
      [sims.glUrl, 'post_entry'],
      [sims.glUrl, 'reverse_entry'],
      [sims.taxUrl, 'get_treatment'],
    ];
    for (const [url, operation] of ops) await fault(url, { operation, failRate: 0.3, seed: 11 });
    const answers = await Promise.all(invoices.map((inv) => redeem(programId, inv.invoiceId, 1500, inv.memberId)));
    await clearFaults();
    for (const [i, a] of answers.entries()) {
      assert.equal(a.status, 201);
      assert.ok(['applied', 'declined'].includes(a.body.status), JSON.stringify(a.body));
      const inv = await billing.getInvoice(invoices[i]!.invoiceId);
      const live = inv.credits.filter((c) => !c.reversedAt).length;
      assert.equal(
        live,
        a.body.status === 'applied' ? 1 : 0,
        `${invoices[i]!.invoiceId}: ${a.body.status} with ${live} live credits`,
      );
    }
    const applied = answers.filter((a) => a.body.status === 'applied').length;
    const { rows } = await pool.query(
      `select coalesce(sum(balance), 0)::int as b, coalesce(sum(held), 0)::int as h from members where program_id = $1`,
      [programId],
    );
    assert.deepEqual(rows[0], { b: 5 * 10_000 - applied * 1500, h: 0 });
  });

  test('a lost chargeback reverses the redemption once and claws back the points earned on the invoice', async () => {
    const { programId, invoiceId } = await setup({ chargebackWindow: 'PT60S' });
    await call('POST', `/v1/programs/${programId}/accruals`, {
      role: 'billing',
      body: { memberId: 'm-1', invoiceId, amountMinor: 8000, occurredAt: new Date().toISOString() },
    }); // the cash part of the same invoice earned 80 points
    const res = await redeem(programId, invoiceId, 2500);
    assert.equal(res.body.status, 'applied');
    const cb = (status: string) =>
      call('POST', `/v1/programs/${programId}/chargebacks`, {
        role: 'billing',
        body: { invoiceId, chargebackId: 'cb-1', status },
      });
    assert.equal((await cb('opened')).status, 202);
    for (let i = 0; i < 3; i++) assert.equal((await cb('lost')).status, 202);
    const result = await worker.client.workflow.getHandle(res.body.workflowId).result();
    assert.deepEqual([result.status, result.reason], ['reversed', 'chargeback_lost:cb-1']);
    const m = await member(programId);
    assert.equal(m.balance, 5000, 'the 2,500 redeemed came back; the 80 earned on the invoice were clawed back');
    assert.equal((await billing.getInvoice(invoiceId)).amountDueMinor, 8000);
    const reversals = await eventually('GL reversal', async () =>
      (await gl.entriesOn(new Date().toISOString().slice(0, 10))).entries.filter((e) =>
        e.entryId.startsWith(`loyalty:${programId}:redeem-reversal:${invoiceId}`),
      ),
    );
    assert.equal(reversals.length, 1);
    const late = await cb('lost');
    assert.equal(late.status, 409);
    await record(res.body.workflowId, 'redemption-chargeback-lost');
  });

  test('a lost chargeback after the deadline passed: the points given back expire at once, through the member workflow', async () => {
    const { programId, invoiceId } = await setup({ chargebackWindow: 'PT60S', expiryWindow: 'PT3S' });
    const res = await redeem(programId, invoiceId, 5000); // the whole balance
    assert.equal(res.body.status, 'applied');
    const row = async () =>
      (
        await pool.query(`select balance::int, ll_ts(expires_at) as expires_at from members where program_id = $1`, [
          programId,
        ])
      ).rows[0];
    const expiries = async () =>
      (
        await pool.query(`select points::int from ledger_entries where program_id = $1 and type = 'expire'`, [
          programId,
        ])
      ).rows.map((r) => r.points);
    // the deadline passes with nothing available: the expiry takes nothing and clears the deadline
    await eventually('the deadline passed', async () => {
      const r = await row();
      return r.balance === 0 && r.expires_at === null;
    });
    assert.deepEqual(await expiries(), []);
    const lost = await call('POST', `/v1/programs/${programId}/chargebacks`, {
      role: 'billing',
      body: { invoiceId, chargebackId: 'cb-late', status: 'lost' },
    });
    assert.equal(lost.status, 202);
    const result = await worker.client.workflow.getHandle(res.body.workflowId).result();
    assert.equal(result.status, 'reversed');
    await eventually('the points given back expired', async () => (await expiries()).length === 1);
    assert.deepEqual(await expiries(), [-5000]);
    assert.deepEqual(await row(), { balance: 0, expires_at: null });
  });
});
