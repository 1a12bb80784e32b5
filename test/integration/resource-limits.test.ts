import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import type { Pool, PoolClient } from 'pg';
import { billingClient } from '../../activities/services/billing';
import { buildApi, DEFAULT_BATCHER } from '../../api/server';
import { createPool, longQuery } from '../../db/pool';
import { startSimulators, type RunningSimulators } from '../../simulators';
import { correlationClientInterceptor } from '../../temporal/correlation';
import { dataConverter } from '../../temporal/settings';
import {
  eventually,
  freshDatabase,
  httpClient,
  programBody,
  ruleChangeRules,
  roleKeys,
  silentLog,
  startWorker,
  uniqueId,
  type TestApi,
  type TestWorker,
} from '../helpers/stack';

// Resource limits (issue 14, item 8) on the real stack: reports and liability on a pool of their
// own, so that a slow one never takes the connections writes need; and a request that waits on a
// workflow answers 202 with where to poll when no worker answers, the outcome showing there once
// one runs.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let reportPool: Pool;
let sims: RunningSimulators;
let temporal: { client: TemporalClient; connection: Connection };
let api: TestApi;
let call: ReturnType<typeof httpClient>;
let worker: TestWorker | undefined;
const taskQueue = uniqueId('tq-stopped');

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  // one connection: the test holds it to stand for a report that runs long
  reportPool = createPool({
    connectionString: db.url,
    maxConnections: 1,
    statementTimeoutMs: 1_000,
    capLongQueries: true,
    applicationName: 'test-reports',
  });
  sims = await startSimulators({ billing: 0, gl: 0, tax: 0 }, 11);
  const connection = await Connection.connect({ address: process.env.LOYALTY_TEST_TEMPORAL_ADDRESS! });
  temporal = {
    connection,
    client: new TemporalClient({
      connection,
      namespace: 'default',
      dataConverter: dataConverter({}),
      interceptors: { workflow: [correlationClientInterceptor] },
    }),
  };
  // no worker polls taskQueue until a test starts one: the workflows never answer
  const app = await buildApi({
    pool,
    reportPool,
    logger: silentLog,
    batcher: DEFAULT_BATCHER,
    bodyLimitBytes: 64 * 1024,
    temporalReachable: async () => true,
    temporal: { client: temporal.client, taskQueue },
    workflowWaitMs: 500,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  api = { app, baseUrl: `http://127.0.0.1:${port}`, keys: await roleKeys(pool), close: () => app.close() };
  call = httpClient(api);
});
afterAll(async () => {
  await api?.close();
  await worker?.stop();
  await temporal?.connection.close();
  await sims?.close();
  await reportPool?.end();
  await db?.drop();
});

async function program(): Promise<string> {
  const programId = uniqueId('rl');
  const res = await call('POST', '/v1/programs', {
    body: programBody(programId, { ruleChanges: { requiredRoles: ['finance'], noticePeriod: 'PT1S' } }),
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return programId;
}
const accrue = (programId: string, invoiceId: string) =>
  call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    body: { memberId: 'm-1', invoiceId, amountMinor: 500_000, occurredAt: new Date().toISOString() },
  });

describe('reports on their own pool', () => {
  test('with every report connection busy, an accrual still succeeds, and the liability waits its turn', async () => {
    const programId = await program();
    assert.equal((await accrue(programId, uniqueId('inv'))).status, 201);
    const held: PoolClient = await reportPool.connect();
    let answered = false;
    const liability = call('GET', `/v1/programs/${programId}/liability`, { role: 'finance' }).then((r) => {
      answered = true;
      return r;
    });
    try {
      const accrual = await accrue(programId, uniqueId('inv'));
      assert.equal(accrual.status, 201, JSON.stringify(accrual.body));
      assert.equal(answered, false, 'the liability runs on the report pool, which the test holds');
    } finally {
      held.release();
    }
    const r = await liability;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.outstandingPoints, 10_000);
  });

  test("the report pool's statement timeout holds for the close's long queries too", async () => {
    await assert.rejects(longQuery(reportPool, 'select pg_sleep(3)', []), /statement timeout/);
    // the main pool's long queries keep the close's timeout
    const { rows } = await longQuery(pool, 'select pg_sleep(1.5) as slept', []);
    assert.equal(rows.length, 1);
  });
});

describe('a request that waits on a workflow has a deadline', () => {
  let changeProgram: string;
  const decisionKey = uniqueId('idem');
  const decision = () =>
    call('POST', `/v1/programs/${changeProgram}/rule-changes/c-1/approvals`, {
      role: 'finance',
      body: { decision: 'approve' },
      idem: decisionKey,
    });

  test('a rule-change decision with no worker: 202 with workflowId and poll', async () => {
    changeProgram = await program();
    const rules = ruleChangeRules({
      ruleChanges: { requiredRoles: ['finance'], noticePeriod: 'PT1S' },
      expiry: { policy: 'rolling', window: 'P400D' },
    });
    const proposed = await call('POST', `/v1/programs/${changeProgram}/rule-changes`, {
      role: 'program_owner',
      body: { changeId: 'c-1', effectiveAt: new Date().toISOString(), rules, comment: 'test' },
    });
    assert.equal(proposed.status, 202, JSON.stringify(proposed.body));
    const res = await decision();
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual(
      [res.body.status, res.body.workflowId, res.body.poll],
      ['in_progress', `rule-change:${changeProgram}:c-1`, `/v1/programs/${changeProgram}/rule-changes/c-1`],
    );
  });

  test("an adjustment's approval with no worker: 202 with workflowId and poll", async () => {
    const programId = await program();
    assert.equal((await accrue(programId, uniqueId('earn'))).status, 201);
    const requested = await call('POST', `/v1/programs/${programId}/adjustments`, {
      role: 'support',
      body: { memberId: 'm-1', points: 5000, reasonCode: 'goodwill' },
    });
    assert.equal(requested.status, 202, JSON.stringify(requested.body)); // above the threshold: finance decides
    const adjustmentId = requested.body.adjustmentId as string;
    const res = await call('POST', `/v1/programs/${programId}/adjustments/${adjustmentId}/approvals`, {
      role: 'finance',
      body: { decision: 'approve' },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual(
      [res.body.status, res.body.workflowId, res.body.poll],
      [
        'in_progress',
        `adjustment:${programId}:${adjustmentId}`,
        `/v1/programs/${programId}/adjustments/${adjustmentId}`,
      ],
    );
  });

  test('a redemption with no worker: 202 with workflowId and poll; the outcome shows there once a worker runs', async () => {
    const programId = await program();
    assert.equal((await accrue(programId, uniqueId('earn'))).status, 201);
    const invoiceId = uniqueId('inv');
    await billingClient({ baseUrl: sims.billingUrl, timeoutMs: 1000 }).createInvoice(
      { invoiceId, customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 8000 }] },
      `inv-${invoiceId}`,
    );
    const idem = uniqueId('idem');
    const body = {
      invoiceId,
      memberId: 'm-1',
      points: 2500,
      invoiceTotalMinor: 8000,
      occurredAt: new Date().toISOString(),
    };
    const res = await call('POST', `/v1/programs/${programId}/redemptions`, { role: 'billing', body, idem });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const poll = `/v1/programs/${programId}/redemptions/${invoiceId}`;
    assert.deepEqual(
      [res.body.status, res.body.workflowId, res.body.poll],
      ['in_progress', `redemption:${programId}:${invoiceId}`, poll],
    );
    assert.equal((await call('GET', poll, { role: 'billing' })).status, 404, 'nothing held without a worker');

    worker = await startWorker(pool, {
      taskQueue,
      services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 1000 },
    });
    const done = await eventually('the redemption applied', async () => {
      const r = await call('GET', poll, { role: 'billing' });
      return r.status === 200 && r.body.status === 'applied' ? r : null;
    });
    assert.equal(done!.body.pointsApplied, 2500);
    // the 202 was not stored: the same request under its key answers the outcome, the base contract's 201
    // (on a loaded machine the saga may not answer within the short wait: asked again until it does)
    const again = await eventually('the outcome under the key', async () => {
      const r = await call('POST', `/v1/programs/${programId}/redemptions`, { role: 'billing', body, idem });
      assert.ok(r.status === 201 || r.status === 202, JSON.stringify(r.body));
      return r.status === 201 ? r : null;
    });
    assert.equal(again.body.status, 'applied');
  });

  test("a close's approval with its worker stopped: 202 with workflowId and poll; locked once a worker runs", async () => {
    const programId = await program();
    const accrual = await call('POST', `/v1/programs/${programId}/accruals`, {
      role: 'billing',
      body: { memberId: 'm-1', invoiceId: uniqueId('q1'), amountMinor: 50_000, occurredAt: '2026-02-10T00:00:00Z' },
    });
    assert.equal(accrual.status, 201, JSON.stringify(accrual.body));
    const path = `/v1/programs/${programId}/closes/2026-Q1`;
    const started = await call('POST', `/v1/programs/${programId}/closes`, {
      role: 'finance',
      body: { period: '2026-Q1' },
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    await eventually(
      'the close awaiting approval',
      async () => {
        const r = await call('GET', path, { role: 'controller' });
        return r.body.step === 'awaiting_approval' ? r : null;
      },
      30_000,
    );
    await worker!.stop();
    worker = undefined;
    const idem = uniqueId('idem');
    const approve = () => call('POST', `${path}/approve`, { role: 'controller', idem });
    const res = await approve();
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual(
      [res.body.status, res.body.workflowId, res.body.poll],
      ['in_progress', `close:${programId}:2026-Q1`, path],
    );
    worker = await startWorker(pool, {
      taskQueue,
      services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 1000 },
    });
    const locked = await eventually(
      'the close locked',
      async () => {
        const r = await call('GET', path, { role: 'controller' });
        return r.body.status === 'locked' ? r : null;
      },
      30_000,
    );
    assert.equal(locked.body.approvedBy, 'test-controller');
    // a locked close's report is the stored one: it answers with every report connection held
    const held = await reportPool.connect();
    try {
      const r = await call('GET', `${path}/report`, { role: 'finance' });
      assert.deepEqual([r.status, r.body.status], [200, 'locked'], JSON.stringify(r.body).slice(0, 300));
    } finally {
      held.release();
    }
    // the 202 was not stored: sent again under its key, the approval answers what it is now
    const again = await approve();
    assert.deepEqual([again.status, again.body.status], [200, 'locked'], JSON.stringify(again.body));
  });

  test('the decision, sent again under its key once a worker runs, counts; the poll shows it', async () => {
    const path = `/v1/programs/${changeProgram}/rule-changes/c-1`;
    await eventually('the change awaiting approvals', async () => {
      const r = await call('GET', path, { role: 'finance' });
      return r.body.status !== 'assessing' ? r : null;
    });
    const res = await eventually('the decision answered', async () => {
      const r = await decision();
      return r.status === 202 ? null : r;
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const c = (await call('GET', path, { role: 'finance' })).body;
    assert.ok(
      JSON.stringify(c.approvals).includes('test-finance'),
      `the approval shows at the poll path: ${JSON.stringify(c)}`,
    );
  });
});
