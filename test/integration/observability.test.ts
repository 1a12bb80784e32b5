import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, test } from 'vitest';
import pino from 'pino';
import type { Pool } from 'pg';
import { billingClient } from '../../activities/services/billing';
import { freePort } from '../../cli/stack/process';
import { startSimulators, type RunningSimulators } from '../../simulators';
import { startWorkerTelemetry } from '../../workers/telemetry';
import type { WorkerMetrics } from '../../workers/metrics';
import {
  freshDatabase,
  httpClient,
  programBody,
  startApi,
  startWorker,
  uniqueId,
  type TestApi,
  type TestWorker,
} from '../helpers/stack';

// Observability: a correlation id from the API through the saga's workflow and activities into
// the simulators' request logs; the API's ledger metrics; the worker's metrics with the SDK's own.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: Pool;
let sims: RunningSimulators;
let worker: TestWorker;
let api: TestApi;
let call: ReturnType<typeof httpClient>;
let metrics: WorkerMetrics;
let workerMetricsUrl: string;
let server: import('node:http').Server | null;
const workerLog: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  db = await freshDatabase();
  pool = db.pool;
  // before the first worker connection of this process: the SDK's exporter is part of the runtime
  const port = await freePort();
  const telemetry = await startWorkerTelemetry(
    { metricsPort: port, metricsHost: '127.0.0.1', sdkMetricsPort: await freePort() },
    pino({ level: 'silent' }),
  );
  ({ metrics, server } = telemetry);
  workerMetricsUrl = `http://127.0.0.1:${port}/metrics`;
  sims = await startSimulators({ billing: 0, gl: 0, tax: 0 }, 13);
  const sink = new Writable({
    write(chunk, _enc, done) {
      workerLog.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  worker = await startWorker(pool, {
    services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 1000 },
    log: pino({ level: 'info' }, sink),
    metrics,
  });
  api = await startApi(pool, async () => true, { client: worker.client, taskQueue: worker.taskQueue });
  call = httpClient(api);
});
afterAll(async () => {
  await api.close();
  await worker.stop();
  await sims.close();
  server?.close();
  await db.drop();
});

async function redeemable(programId: string, memberId: string, invoiceId: string) {
  assert.equal(
    (
      await call('POST', `/v1/programs/${programId}/accruals`, {
        role: 'billing',
        body: {
          memberId,
          invoiceId: `${invoiceId}-earn`,
          amountMinor: 500_000,
          occurredAt: new Date().toISOString(),
          jurisdiction: 'US-CA',
        },
      })
    ).status,
    201,
  );
  await billingClient({ baseUrl: sims.billingUrl, timeoutMs: 1000 }).createInvoice(
    { invoiceId, customerId: 'c-1', currency: 'USD', lines: [{ description: 'Plan', amountMinor: 8000 }] },
    `inv-${invoiceId}`,
  );
}
const redeem = (programId: string, memberId: string, invoiceId: string, headers: Record<string, string> = {}) =>
  call('POST', `/v1/programs/${programId}/redemptions`, {
    role: 'billing',
    headers,
    body: { invoiceId, memberId, points: 2000, invoiceTotalMinor: 8000, occurredAt: new Date().toISOString() },
  });
const requestsWith = async (url: string, correlationId: string) =>
  (
    (await (await fetch(`${url}/admin/requests?correlationId=${encodeURIComponent(correlationId)}`)).json()) as {
      requests: Array<{ url: string }>;
    }
  ).requests;
/** A metric's value from Prometheus text: the sample whose name and labels match. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const line = text
    .split('\n')
    .find((l) =>
      l.startsWith(`${name}{`) || l.startsWith(`${name} `)
        ? Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))
        : false,
    );
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
}

test('a correlation id follows a redemption from the API through the workflow and activities into billing, tax and the GL', async () => {
  const programId = uniqueId('obs');
  assert.equal(
    (await call('POST', '/v1/programs', { body: programBody(programId, { chargebackWindow: 'PT1S' }) })).status,
    201,
  );
  const invoiceId = uniqueId('inv');
  await redeemable(programId, 'm-1', invoiceId);
  const correlationId = uniqueId('corr');
  const res = await redeem(programId, 'm-1', invoiceId, { 'x-correlation-id': correlationId });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.headers.get('x-correlation-id'), correlationId, 'the answer carries it back');
  for (const [service, url] of [
    ['billing', sims.billingUrl],
    ['tax', sims.taxUrl],
    ['gl', sims.glUrl],
  ] as const) {
    assert.ok(
      (await requestsWith(url, correlationId)).length >= 1,
      `${service} received calls with the correlation id`,
    );
  }
  const lines = workerLog.filter((l) => l.correlationId === correlationId);
  for (const activity of [
    'holdPoints',
    'getTaxTreatment',
    'applyCreditInBilling',
    'commitPointsAndJournal',
    'postJournalToGl',
  ]) {
    assert.ok(
      lines.some((l) => l.activity === activity && l.outcome === 'completed' && l.workflowId === res.body.workflowId),
      `worker log: ${activity}`,
    );
  }
  const fresh = await call('GET', '/healthz', { headers: { 'x-correlation-id': 'not a valid id!' } });
  assert.match(
    fresh.headers.get('x-correlation-id') ?? '',
    /^[0-9a-f-]{36}$/,
    'a malformed id is replaced, not echoed',
  );
});

test('metrics: the ledger on the API, activities and compensations on the worker, and the SDK metrics beside them', async () => {
  const programId = uniqueId('obsm');
  assert.equal(
    (await call('POST', '/v1/programs', { body: programBody(programId, { chargebackWindow: 'PT1S' }) })).status,
    201,
  );
  const applied = uniqueId('inv');
  await redeemable(programId, 'm-1', applied);
  assert.equal((await redeem(programId, 'm-1', applied)).body.status, 'applied');
  const refused = uniqueId('inv');
  await redeemable(programId, 'm-1', refused);
  await fetch(`${sims.glUrl}/admin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ operation: 'post_entry', failNext: 1, failStatus: 422 }),
  });
  assert.equal((await redeem(programId, 'm-1', refused)).body.status, 'declined', 'the GL refused: compensated');
  await fetch(`${sims.glUrl}/admin/faults`, { method: 'DELETE' });

  const apiText = await (await fetch(`${api.baseUrl}/metrics`)).text();
  assert.ok(sample(apiText, 'loyalty_accruals_total', { outcome: 'accepted' }) >= 2);
  assert.ok(sample(apiText, 'loyalty_redemptions_total', { status: 'applied' }) >= 1);
  assert.ok(sample(apiText, 'loyalty_redemptions_total', { status: 'declined' }) >= 1);
  const balance = (await call('GET', `/v1/programs/${programId}/members/m-1`, { role: 'support' })).body.balance;
  assert.equal(
    sample(apiText, 'loyalty_outstanding_points', { program: programId }),
    balance,
    'the gauge reads the ledger',
  );

  const workerText = await (await fetch(workerMetricsUrl)).text();
  assert.ok(
    sample(workerText, 'loyalty_worker_activity_seconds_count', {
      activity: 'applyCreditInBilling',
      outcome: 'completed',
    }) >= 2,
  );
  assert.ok(
    sample(workerText, 'loyalty_compensations_total', { activity: 'reverseCreditInBilling' }) >= 1,
    'the GL refusal reversed the credit',
  );
  assert.match(workerText, /^temporal_\w+/m, "the SDK's own metrics are served too");
});
