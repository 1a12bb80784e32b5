import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, test } from 'vitest';
import { billingClient } from '../../activities/services/billing';
import { glClient } from '../../activities/services/gl';
import { redemptionWorkflowId } from '../../domain/workflow-ids';
import { startSimulators, type RunningSimulators } from '../../simulators';
import {
  eventually,
  freshDatabase,
  httpClient,
  programBody,
  checkAgreementThenStop,
  recordHistory,
  startApi,
  startWorker,
  startWorkerProcess,
  uniqueId,
  type TestApi,
  type TestWorker,
} from '../helpers/stack';

// A call to billing or the GL that the saga gave up on, which the service did all the same: its
// answer came after the adapter's timeout, or the worker that made it died. The saga's compensation
// must find what was done and undo it (workflows/redemption.ts, patch saga-settles-calls-in-doubt).
// Without that, billing keeps a live credit for a declined redemption and the GL an entry the
// subledger compensated; the after hook's reconciliation reports both.
const SERVICE_TIMEOUT_MS = 1000;
/**
 * above the adapters' timeout: every call is done, and its answer comes too late; by 2 s, so that a
 * worker's event loop held up under load (CI, 2 cores) still fires the adapter's timeout first
 */
const LATE_MS = 3000;

let db: Awaited<ReturnType<typeof freshDatabase>>;
let sims: RunningSimulators;
let worker: TestWorker;
let api: TestApi;
let call: ReturnType<typeof httpClient>;
const billing = () => billingClient({ baseUrl: sims.billingUrl, timeoutMs: 5000 });
const gl = () => glClient({ baseUrl: sims.glUrl, timeoutMs: 5000 });
const children: ChildProcess[] = [];

beforeAll(async () => {
  db = await freshDatabase();
  sims = await startSimulators({ billing: 0, gl: 0, tax: 0 }, 13);
  worker = await startWorker(db.pool, {
    services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: SERVICE_TIMEOUT_MS },
  });
  api = await startApi(db.pool, async () => true, { client: worker.client, taskQueue: worker.taskQueue });
  call = httpClient(api);
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await checkAgreementThenStop(db.pool, worker, [
    () => api.close(),
    () => worker.stop(),
    () => sims.close(),
    () => db.drop(),
  ]);
});

async function fault(url: string, rule: Record<string, unknown>) {
  const res = await fetch(`${url}/admin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(rule),
  });
  assert.equal(res.status, 200);
}
const clearFaults = () =>
  Promise.all([sims.billingUrl, sims.glUrl, sims.taxUrl].map((u) => fetch(`${u}/admin/faults`, { method: 'DELETE' })));

/**
 * Whether the saga has given up on its forward step and scheduled the compensation `activityType`
 * (from its history). The faults stay until then: a count of slowed calls is not the saga's attempt
 * count (a workflow task that timed out under load runs its local activity again from attempt 1, and
 * that extra attempt, faults cleared, would succeed).
 */
async function compensationScheduled(workflowId: string, activityType: string): Promise<boolean> {
  // not found until the API has started it
  const history = await worker.client.workflow
    .getHandle(workflowId)
    .fetchHistory()
    .catch(() => null);
  const events = history?.events;
  return (events ?? []).some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType);
}

/** How many calls a simulator received on a path (its request log, GET /admin/requests). */
async function callsTo(url: string, path: string): Promise<number> {
  const { requests } = (await (await fetch(`${url}/admin/requests`)).json()) as {
    requests: Array<{ method: string; url: string }>;
  };
  return requests.filter((r) => r.method === 'POST' && r.url === path).length;
}

async function setup() {
  const programId = uniqueId('doubt');
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
      jurisdiction: 'US-CA',
    },
  });
  await billing().createInvoice(
    { invoiceId, customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 8000 }] },
    `inv-${invoiceId}`,
  );
  const redeem = () =>
    call('POST', `/v1/programs/${programId}/redemptions`, {
      role: 'billing',
      body: { invoiceId, memberId: 'm-1', points: 2500, invoiceTotalMinor: 8000, occurredAt: new Date().toISOString() },
    });
  const member = async () => (await call('GET', `/v1/programs/${programId}/members/m-1`, { role: 'support' })).body;
  return { programId, invoiceId, redeem, member };
}

test('billing applies the credit after the saga gave up on it: the compensation finds it and reverses it', async () => {
  const { programId, invoiceId, redeem, member } = await setup();
  await fault(sims.billingUrl, { operation: 'apply_credit', latencyMs: LATE_MS });
  const answer = redeem();
  // The saga's attempts all time out; each lands in billing afterwards (the first applies, the
  // others are replays). Once the saga has given up, billing answers in time again, so the
  // compensation can settle the doubt.
  const workflowId = redemptionWorkflowId(programId, invoiceId);
  await eventually(
    'the saga gives up on the credit',
    () => compensationScheduled(workflowId, 'settleAndReverseCreditInBilling'),
    60_000,
  );
  assert.ok((await callsTo(sims.billingUrl, `/invoices/${invoiceId}/credits`)) >= 5, 'five apply attempts or more');
  await clearFaults();
  const res = await answer;
  assert.equal(res.status, 201);
  assert.deepEqual([res.body.status, res.body.reason], ['declined', 'service_unavailable']);
  const credits = (await billing().getInvoice(invoiceId)).credits;
  assert.equal(credits.length, 1, 'billing applied the credit once');
  assert.ok(credits[0]!.reversedAt, 'and the compensation reversed it');
  assert.equal((await billing().getInvoice(invoiceId)).amountDueMinor, 8000);
  assert.deepEqual([(await member()).balance, (await member()).held], [5000, 0]);
  await worker.client.workflow.getHandle(res.body.workflowId).result();
  await recordHistory(worker.client, res.body.workflowId, 'redemption-credit-in-doubt');
});

test('the GL takes the entry after the saga gave up on it: the reversal follows it there', async () => {
  const { programId, invoiceId, redeem, member } = await setup();
  await fault(sims.glUrl, { operation: 'post_entry', latencyMs: LATE_MS });
  const answer = redeem();
  const entryId = `loyalty:${programId}:redeem:${invoiceId}`;
  await eventually(
    'the saga gives up on the GL',
    () => compensationScheduled(redemptionWorkflowId(programId, invoiceId), 'settleAndReverseJournalInGl'),
    60_000,
  );
  await clearFaults();
  const res = await answer;
  assert.equal(res.status, 201);
  assert.deepEqual([res.body.status, res.body.reason], ['declined', 'service_unavailable']);
  assert.deepEqual([(await member()).balance, (await member()).held], [5000, 0]);
  assert.ok((await billing().getInvoice(invoiceId)).credits[0]!.reversedAt, 'the credit is reversed');
  const original = await gl().getEntry(entryId);
  const reversal = await gl().getEntry(`loyalty:${programId}:redeem-reversal:${invoiceId}`);
  const total = (e: typeof original, side: 'debitMinor' | 'creditMinor') => e.lines.reduce((s, l) => s + l[side], 0);
  assert.equal(total(original, 'debitMinor'), total(reversal, 'creditMinor'), 'the GL nets to zero');
  const { rows } = await db.pool.query(
    'select journal_key from gl_postings where program_id = $1 order by journal_key',
    [programId],
  );
  assert.deepEqual(
    rows.map((r) => r.journal_key),
    [`redeem-reversal:${invoiceId}`, `redeem:${invoiceId}`],
    'both recorded as posted',
  );
  await worker.client.workflow.getHandle(res.body.workflowId).result();
  await recordHistory(worker.client, res.body.workflowId, 'redemption-gl-in-doubt');
});

/**
 * A redemption on a worker process of its own task queue, SIGKILLed while `slowed` (a service's
 * operation, its answer late) holds the saga's call to `path`; then tax refuses its next request,
 * and a new worker process takes over. Answers the API's final answer (a 503 while no worker ran is
 * sent again, as billing does).
 */
async function killWorkerDuringCall(
  programId: string,
  invoiceId: string,
  slowed: { url: string; operation: string; path: string },
) {
  const taskQueue = uniqueId('doubt-kill');
  const env = {
    LOYALTY_BILLING_URL: sims.billingUrl,
    LOYALTY_GL_URL: sims.glUrl,
    LOYALTY_TAX_URL: sims.taxUrl,
    LOYALTY_SERVICE_TIMEOUT_MS: String(SERVICE_TIMEOUT_MS),
  };
  const first = await startWorkerProcess({ databaseUrl: db.url, taskQueue, env });
  children.push(first);
  const own = await startApi(db.pool, async () => true, { client: worker.client, taskQueue });
  const ownCall = httpClient(own);
  try {
    await fault(slowed.url, { operation: slowed.operation, latencyMs: LATE_MS });
    const body = {
      invoiceId,
      memberId: 'm-1',
      points: 2500,
      invoiceTotalMinor: 8000,
      occurredAt: new Date().toISOString(),
    };
    const before = await callsTo(slowed.url, slowed.path); // the earlier tests' calls
    const answer = ownCall('POST', `/v1/programs/${programId}/redemptions`, { role: 'billing', body });
    await eventually(
      `the call to ${slowed.path}`,
      async () => (await callsTo(slowed.url, slowed.path)) > before,
      60_000,
      20,
    );
    first.kill('SIGKILL');
    await clearFaults();
    await fault(sims.taxUrl, { operation: 'get_treatment', failNext: 1, failStatus: 422 });
    children.push(await startWorkerProcess({ databaseUrl: db.url, taskQueue, env }));
    let res = await answer;
    for (let i = 0; res.status === 503 && i < 5; i++)
      res = await ownCall('POST', `/v1/programs/${programId}/redemptions`, { role: 'billing', body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  } finally {
    await clearFaults();
    await own.close();
  }
}

test('a worker dies while billing applies its credit; the next run declines at tax: the credit is reversed', async () => {
  const { programId, invoiceId, member } = await setup();
  // The next run may replay its hold from history or find it again; either way tax refuses it, and
  // it declines before the credit step that the dead worker had reached.
  const outcome = await killWorkerDuringCall(programId, invoiceId, {
    url: sims.billingUrl,
    operation: 'apply_credit',
    path: `/invoices/${invoiceId}/credits`,
  });
  assert.deepEqual([outcome.status, outcome.reason], ['declined', 'injected_failure']);
  const credits = (await billing().getInvoice(invoiceId)).credits;
  assert.equal(credits.length, 1, "billing applied the dead worker's credit");
  assert.ok(credits[0]!.reversedAt, 'and the compensation reversed it');
  assert.deepEqual([(await member()).balance, (await member()).held], [5000, 0]);
});

test('a worker dies while the GL takes the entry of a committed redemption; the next run only finishes the GL step', async () => {
  const { programId, invoiceId, member } = await setup();
  // The next run finds its own redemption applied in the ledger. Tax would refuse it now: the run
  // must not ask again (nor release a hold that is spent), only finish the GL step.
  const outcome = await killWorkerDuringCall(programId, invoiceId, {
    url: sims.glUrl,
    operation: 'post_entry',
    path: '/journal-entries',
  });
  assert.equal(outcome.status, 'applied', JSON.stringify(outcome));
  const credits = (await billing().getInvoice(invoiceId)).credits;
  assert.deepEqual(
    credits.map((c) => c.reversedAt),
    [null],
    'one live credit',
  );
  assert.deepEqual([(await member()).balance, (await member()).held], [2500, 0]);
  await gl().getEntry(`loyalty:${programId}:redeem:${invoiceId}`);
});
