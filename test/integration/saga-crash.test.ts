import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, test } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { billingClient } from '../../activities/services/billing';
import { verifyInvariants } from '../../db/verify';
import { startSimulators, type RunningSimulators } from '../../simulators';
import {
  eventually,
  freshDatabase,
  httpClient,
  programBody,
  reconcileEverything,
  startApi,
  startWorkerProcess,
  uniqueId,
  type TestApi,
} from '../helpers/stack';

// A worker process SIGKILLed in the middle of 200 concurrent sagas, then restarted: every saga
// ends applied or declined exactly once; billing, the ledger and the invariants agree.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let sims: RunningSimulators;
let api: TestApi;
let connection: Connection;
const taskQueue = uniqueId('saga-crash');
const children: ChildProcess[] = [];

async function startWorker(): Promise<ChildProcess> {
  const child = await startWorkerProcess({
    databaseUrl: db.url,
    taskQueue,
    env: { LOYALTY_BILLING_URL: sims.billingUrl, LOYALTY_GL_URL: sims.glUrl, LOYALTY_TAX_URL: sims.taxUrl },
  });
  children.push(child);
  return child;
}

beforeAll(async () => {
  db = await freshDatabase();
  sims = await startSimulators({ billing: 0, gl: 0, tax: 0 }, 5);
  connection = await Connection.connect({ address: process.env.LOYALTY_TEST_TEMPORAL_ADDRESS! });
  api = await startApi(db.pool, async () => true, { client: new Client({ connection }), taskQueue });
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await api.close();
  await connection.close();
  await sims.close();
  await db.drop();
});

test('SIGKILL in the middle of 200 concurrent sagas: all complete exactly once after restart', async () => {
  const call = httpClient(api);
  const billing = billingClient({ baseUrl: sims.billingUrl, timeoutMs: 2000 });
  const programId = uniqueId('sc');
  assert.equal(
    (await call('POST', '/v1/programs', { body: programBody(programId, { chargebackWindow: 'PT1S' }) })).status,
    201,
  );
  const members = Array.from({ length: 20 }, (_, i) => `m-${i}`);
  for (const m of members) {
    await call('POST', `/v1/programs/${programId}/accruals`, {
      role: 'billing',
      body: { memberId: m, invoiceId: `earn-${m}`, amountMinor: 10_000_000, occurredAt: new Date().toISOString() },
    });
  }
  const invoices = Array.from({ length: 200 }, (_, i) => ({
    invoiceId: `${programId}-inv-${i}`,
    memberId: members[i % members.length]!,
  }));
  for (const inv of invoices) {
    await billing.createInvoice(
      {
        invoiceId: inv.invoiceId,
        customerId: inv.memberId,
        currency: 'USD',
        lines: [{ description: 'Plan', amountMinor: 8000 }],
      },
      `c-${inv.invoiceId}`,
    );
  }

  const first = await startWorker();
  // As billing does: a 503 (the API gave up waiting while no worker ran) is retried with the same
  // invoice, and finds the saga that is already under way; a 202 (the saga is still at work past the
  // API's deadline, with 200 of them behind a restarting worker) is asked again under its key and
  // body, which answers the outcome once there is one.
  const redeem = async (inv: { invoiceId: string; memberId: string }) => {
    const body = {
      invoiceId: inv.invoiceId,
      memberId: inv.memberId,
      points: 2500,
      invoiceTotalMinor: 8000,
      occurredAt: new Date().toISOString(),
    };
    const idempotencyKey = `redeem-${inv.invoiceId}`;
    // asked again for up to 5 minutes, a short pause after a 202 (an update call that failed while
    // the worker was down answers 202 at once: counting attempts would give up before the restart)
    const deadline = Date.now() + 5 * 60_000;
    for (let attempt = 1; ; attempt++) {
      const res = await call('POST', `/v1/programs/${programId}/redemptions`, {
        role: 'billing',
        body,
        idem: idempotencyKey,
      });
      const giveUp = Date.now() > deadline;
      if (res.status === 202 && !giveUp) {
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (res.status !== 503 || giveUp) return res;
      console.log(`${inv.invoiceId}: 503 ${res.body.error?.details?.cause ?? ''}, retried`);
    }
  };
  const answers = Promise.all(invoices.map(redeem));
  const settled = async () =>
    (
      await db.pool.query(`select count(*)::int as n from redemptions where program_id = $1 and status <> 'held'`, [
        programId,
      ])
    ).rows[0].n as number;
  await eventually('sagas under way', async () => (await settled()) >= 20, 60_000, 20);
  first.kill('SIGKILL');
  console.log(`worker killed after ${await settled()} of 200 sagas had settled`);
  await startWorker();

  const results = await answers;
  assert.ok(
    results.every((r) => r.status === 201 && ['applied', 'declined'].includes(r.body.status)),
    JSON.stringify(results.filter((r) => r.status !== 201).slice(0, 3)),
  );
  for (const [i, r] of results.entries()) {
    const inv = await billing.getInvoice(invoices[i]!.invoiceId);
    assert.equal(
      inv.credits.filter((c) => !c.reversedAt).length,
      r.body.status === 'applied' ? 1 : 0,
      invoices[i]!.invoiceId,
    );
  }
  const applied = results.filter((r) => r.body.status === 'applied').length;
  const { rows } = await db.pool.query(
    `select sum(balance)::int as balance, sum(held)::int as held, (select count(*)::int from ledger_entries where program_id = $1 and type = 'redeem') as redeems
       from members where program_id = $1`,
    [programId],
  );
  assert.deepEqual([rows[0].balance, rows[0].held], [20 * 100_000 - applied * 2500, 0]);
  // every applied saga spent its points once; a compensated one has its reversal beside its redeem
  assert.equal(
    rows[0].redeems -
      (
        await db.pool.query(
          `select count(*)::int as n from ledger_entries where program_id = $1 and type = 'redeem_reversal'`,
          [programId],
        )
      ).rows[0].n,
    applied,
  );
  assert.deepEqual((await verifyInvariants(db.pool)).violations, []);
  assert.deepEqual(
    await reconcileEverything(db.pool, { client: new Client({ connection }), taskQueue }),
    [],
    'ledger, billing and GL agree',
  );
});
