/**
 * Saga latency: request to the API's answer for redemptions with healthy simulators, against the
 * same service calls made directly in sequence without Temporal (the activity functions called
 * one after the other), measured in the same run at the same concurrency.
 *
 *   npm run bench:redemptions -- [--redemptions 2000] [--concurrency 20] [--members 200]
 */
import pino from 'pino';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createRedemptionActivities } from '../activities/redemption';
import { billingClient } from '../activities/services/billing';
import { glClient } from '../activities/services/gl';
import { taxClient } from '../activities/services/tax';
import { freePort } from '../cli/stack/process';
import { startTemporalDevServer } from '../cli/stack/temporal-dev-server';
import { migrate } from '../db/migrate';
import { createPool } from '../db/pool';
import { startSimulators } from '../simulators';
import { createLoyaltyWorker } from '../workers/worker';
import { startNoopSagaWorker } from './noop-worker';
import { startBenchApi } from './saga-api';
import { noopSaga } from './workflows/noop-saga';
import {
  benchDatabase,
  intFlag,
  log,
  machineNote,
  markdownTable,
  onCleanup,
  quantile,
  round,
  runMain,
  workDir,
} from './lib';

const { values: flags } = parseArgs({
  options: {
    redemptions: { type: 'string' },
    concurrency: { type: 'string' },
    members: { type: 'string' },
    'sqlite-pragma': { type: 'string', multiple: true },
    'in-memory': { type: 'boolean' },
  },
});
const N = intFlag('redemptions', flags.redemptions ?? '2000');
const C = intFlag('concurrency', flags.concurrency ?? '20');
const MEMBERS = intFlag('members', flags.members ?? '200');

async function pool_<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

runMain(async () => {
  const work = workDir('loyalty-bench-redeem-');
  const db = await benchDatabase(work, 'loyalty_bench_redeem');
  const pool = createPool({ connectionString: db.url, maxConnections: 30, applicationName: 'bench-redeem' });
  onCleanup('pool', () => pool.end());
  await migrate(pool);
  const temporal = await startTemporalDevServer({
    dbFile: flags['in-memory'] ? null : join(work, 'temporal.sqlite'),
    port: await freePort(),
    uiPort: null,
    logFile: join(work, 'temporal.log'),
    namespace: 'default',
    sqlitePragmas: flags['sqlite-pragma'],
  });
  onCleanup('temporal', temporal.stop);
  const sims = await startSimulators({ billing: 0, gl: 0, tax: 0 });
  onCleanup('simulators', sims.close);
  const services = { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 2000 };

  const taskQueue = 'bench-redeem';
  const native = await NativeConnection.connect({ address: temporal.address });
  const worker = await createLoyaltyWorker({
    connection: native,
    namespace: 'default',
    taskQueue,
    pool,
    maxConcurrentActivities: 100,
    maxCachedWorkflows: 1000,
    services,
    log: pino({ level: 'warn' }),
  });
  const running = worker.run();
  onCleanup('worker', async () => {
    worker.shutdown();
    await running;
    await native.close();
  });
  const noopWorker = await startNoopSagaWorker(temporal.address, 'bench-noop-saga');
  onCleanup('no-op worker', noopWorker.stop);
  const connection = await Connection.connect({ address: temporal.address });
  onCleanup('client', () => connection.close());
  const client = new Client({ connection, namespace: 'default' });

  const { post } = await startBenchApi(pool, client, taskQueue);

  const programId = 'bench';
  await post('/v1/programs', {
    programId,
    name: 'Bench',
    currency: 'USD',
    pointValueMinor: 1,
    earn: { points: 1, perAmountMinor: 1 },
    expectedRedemptionRate: 0.8,
    expiry: { policy: 'none' },
    accounting: { method: 'relative_ssp' },
    redemption: { minPoints: 1, maxInvoiceShare: 1, cohortOrder: 'oldest_first' },
    chargebackWindow: 'PT1S',
  });
  const members = Array.from({ length: MEMBERS }, (_, i) => `m-${i}`);
  for (const m of members)
    await post(`/v1/programs/${programId}/accruals`, {
      memberId: m,
      invoiceId: `earn-${m}`,
      amountMinor: 10_000_000,
      occurredAt: new Date().toISOString(),
      jurisdiction: 'US-CA',
    });
  const billing = billingClient({ baseUrl: sims.billingUrl, timeoutMs: 2000 });
  const invoices = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({ invoiceId: `${prefix}-${i}`, memberId: members[i % MEMBERS]! }));
  const warm = invoices('warm', 50);
  const direct = invoices('direct', N);
  const saga = invoices('saga', N);
  log(`creating ${warm.length + 2 * N} invoices in billing`);
  await pool_([...warm, ...direct, ...saga], 20, async (inv) => {
    await billing.createInvoice(
      {
        invoiceId: inv.invoiceId,
        customerId: inv.memberId,
        currency: 'USD',
        lines: [
          { description: 'Plan', amountMinor: 6000 },
          { description: 'Add-on', amountMinor: 2000 },
        ],
      },
      `inv-${inv.invoiceId}`,
    );
  });

  const redeem = async (inv: { invoiceId: string; memberId: string }) => {
    const r = await post(`/v1/programs/${programId}/redemptions`, {
      invoiceId: inv.invoiceId,
      memberId: inv.memberId,
      points: 2500,
      invoiceTotalMinor: 8000,
      occurredAt: new Date().toISOString(),
    });
    if (r.status !== 201 || r.body.status !== 'applied')
      throw new Error(`redemption ${inv.invoiceId}: ${JSON.stringify(r.body)}`);
  };
  log('warm-up: 50 sagas');
  await pool_(warm, C, redeem);

  const acts = createRedemptionActivities({
    pool,
    billing,
    gl: glClient({ baseUrl: sims.glUrl, timeoutMs: 2000 }),
    tax: taxClient({ baseUrl: sims.taxUrl, timeoutMs: 2000 }),
  });
  const measure = async (name: string, items: typeof direct, fn: (inv: (typeof direct)[number]) => Promise<void>) => {
    const latencies: number[] = [];
    const t0 = performance.now();
    await pool_(items, C, async (inv) => {
      const s = performance.now();
      await fn(inv);
      latencies.push(performance.now() - s);
    });
    const seconds = (performance.now() - t0) / 1000;
    const r = {
      name,
      n: items.length,
      seconds: round(seconds, 2),
      rate: Math.round(items.length / seconds),
      p50: round(quantile(latencies, 0.5)),
      p99: round(quantile(latencies, 0.99)),
    };
    log(`${name}: ${r.rate}/s, p50 ${r.p50} ms, p99 ${r.p99} ms`);
    return r;
  };
  const baseline = await measure('direct calls in sequence (no Temporal)', direct, async (inv) => {
    const ref = { programId, invoiceId: inv.invoiceId, redemptionId: randomUUID() };
    const occurredAt = new Date().toISOString();
    const hold = await acts.holdPoints({
      ...ref,
      memberId: inv.memberId,
      points: 2500,
      invoiceTotalMinor: 8000,
      pointValueMinor: 1,
      minPoints: 1,
      maxInvoiceShareMillionths: '1000000',
      cohortOrder: 'oldest_first',
      occurredAt,
    });
    if (hold.status !== 'held') throw new Error(`hold ${inv.invoiceId}: ${JSON.stringify(hold)}`);
    await acts.getTaxTreatment({ ...ref, memberId: inv.memberId, jurisdiction: null, creditMinor: 2500 });
    await acts.applyCreditInBilling({ ...ref, points: 2500, creditMinor: 2500 });
    await acts.commitPointsAndJournal(ref);
    await acts.postJournalToGl({ ...ref, reversal: false, occurredAt });
  });
  const sagaRun = await measure('saga through the API (update-with-start)', saga, redeem);
  // What the dev server itself allows at this concurrency: a workflow with as many no-op local activities.
  const noopRun = await measure('no-op workflow, 5 local activities (client)', direct, async (inv) => {
    await client.workflow.execute(noopSaga, { workflowId: `noop:${inv.invoiceId}`, taskQueue: 'bench-noop-saga' });
  });

  const ratio = round(sagaRun.p99 / baseline.p99, 2);
  const note = machineNote(work);
  process.stdout.write(`\n## Redemption saga latency: ${N} redemptions, concurrency ${C}\n\n`);
  process.stdout.write(
    `2 CPUs, load ${note.loadavg1m} at start; API, worker, simulators and load in one process; dev server and PostgreSQL beside it.\n\n`,
  );
  process.stdout.write(
    markdownTable(
      ['path', 'redemptions', 'time s', 'per s', 'p50 ms', 'p99 ms'],
      [baseline, sagaRun, noopRun].map((r) => [r.name, r.n, r.seconds, r.rate, r.p50, r.p99]),
    ),
  );
  process.stdout.write(
    `\n${markdownTable(
      ['figure', 'value', 'goal', 'met'],
      [
        ['saga p99 ms', sagaRun.p99, '<= 300', sagaRun.p99 <= 300 ? 'yes' : 'NO'],
        ['saga p99 / direct p99', ratio, '<= 3', ratio <= 3 ? 'yes' : 'NO'],
        ['no-op workflow p99 ms (the dev server floor)', noopRun.p99, '', ''],
      ],
    )}\n`,
  );
  process.stdout.write(
    JSON.stringify({
      bench: 'redemption-latency',
      redemptions: N,
      concurrency: C,
      baseline,
      saga: sagaRun,
      noopWorkflow: noopRun,
      ratio,
    }) + '\n',
  );
  return 0;
});
