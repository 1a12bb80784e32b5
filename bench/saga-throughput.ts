/**
 * Saga throughput: redemption sagas completed per second through the API at a fixed concurrency,
 * against a baseline workflow that runs as many local activities as the saga (five, in sequence,
 * with the same options) that do nothing (bench/workflows/noop-saga.ts, its own worker and task
 * queue), started with the client at the same concurrency, on the same Temporal dev server in the
 * same run. Rounds alternate saga and baseline; the summary gives medians.
 *
 * A saga counts when the API has answered 201 `applied` (all five steps done). The program's
 * chargeback window is PT1S, so each saga closes about a second after it started: its window
 * timer and last workflow task fall inside the round (but for the last second's sagas), and every
 * saga has closed before the next phase starts. A baseline workflow counts when
 * `client.workflow.execute` has returned (the workflow completed).
 *
 *   npm run bench:saga-throughput -- [--sagas 1000] [--concurrency 50] [--rounds 3] [--members 200]
 *        [--warmup 50] [--work-dir /tmp]
 */
import pino from 'pino';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { billingClient } from '../activities/services/billing';
import { freePort } from '../cli/stack/process';
import { startTemporalDevServer } from '../cli/stack/temporal-dev-server';
import { migrate } from '../db/migrate';
import { createPool } from '../db/pool';
import { startSimulators } from '../simulators';
import { createLoyaltyWorker } from '../workers/worker';
import {
  benchDatabase,
  cpuSeconds,
  intFlag,
  log,
  machineNote,
  markdownTable,
  median,
  onCleanup,
  postmasterPid,
  quantile,
  round,
  runMain,
  sleep,
  workDir,
} from './lib';
import { startNoopSagaWorker } from './noop-worker';
import { startBenchApi } from './saga-api';
import { NOOP_SAGA_STEPS, noopSaga } from './workflows/noop-saga';

const GOAL_RATIO = 0.5;
const CHARGEBACK_WINDOW = 'PT1S';
const PROGRAM = 'bench';
const SAGA_QUEUE = 'bench-saga';
const NOOP_QUEUE = 'bench-noop-saga';
const POINTS = 2500;

const { values: flags } = parseArgs({
  options: {
    sagas: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    members: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '50' },
    'work-dir': { type: 'string' },
  },
});
const N = intFlag('sagas', flags.sagas);
const C = intFlag('concurrency', flags.concurrency);
const ROUNDS = intFlag('rounds', flags.rounds);
const MEMBERS = intFlag('members', flags.members);
const WARMUP = intFlag('warmup', flags.warmup, 0);

interface PhaseResult {
  round: number;
  phase: 'saga' | 'baseline' | 'warmup-saga' | 'warmup-baseline';
  n: number;
  ok: number;
  errors: number;
  errorSamples: string[];
  seconds: number;
  /** completed per second: ok / seconds */
  rate: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU seconds during the phase: the dev server, PostgreSQL (embedded only), this process (API, both workers, simulators, load) */
  cpu: { temporal: number; postgres: number; bench: number };
}

/** Runs fn(0..n-1) from `concurrency` callers; fn throws on a failure. */
async function callers(
  n: number,
  concurrency: number,
  fn: (i: number) => Promise<void>,
): Promise<{ latencies: number[]; errors: string[] }> {
  const latencies: number[] = [];
  const errors: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        const s = performance.now();
        try {
          await fn(i);
          latencies.push(performance.now() - s);
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
    }),
  );
  return { latencies, errors };
}

runMain(async () => {
  const work = workDir('loyalty-bench-saga-tp-', flags['work-dir']);
  const machine = machineNote(work);
  log(`work dir ${work} (${machine.fsType}), ${machine.cpus} CPUs, load ${machine.loadavg1m}`);
  const db = await benchDatabase(work, 'loyalty_bench_saga_tp');
  const pool = createPool({ connectionString: db.url, maxConnections: 30, applicationName: 'bench-saga-tp' });
  onCleanup('pool', () => pool.end());
  await migrate(pool);
  const temporal = await startTemporalDevServer({
    dbFile: join(work, 'temporal.sqlite'),
    port: await freePort(),
    uiPort: null,
    logFile: join(work, 'temporal.log'),
    namespace: 'default',
  });
  onCleanup('temporal', temporal.stop);
  const sims = await startSimulators({ billing: 0, gl: 0, tax: 0 });
  onCleanup('simulators', sims.close);
  const services = { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 2000 };
  const temporalPid = temporal.child.pid!;
  const pgPid = postmasterPid(db.dataDir);
  log(
    `PostgreSQL ${db.embedded ? 'embedded' : 'from DATABASE_URL'}, Temporal dev server at ${temporal.address} (pid ${temporalPid})`,
  );

  // The saga's worker, as in bench/redemption-latency.ts.
  const sagaNative = await NativeConnection.connect({ address: temporal.address });
  const sagaWorker = await createLoyaltyWorker({
    connection: sagaNative,
    namespace: 'default',
    taskQueue: SAGA_QUEUE,
    pool,
    maxConcurrentActivities: 100,
    maxCachedWorkflows: 1000,
    services,
    log: pino({ level: 'warn' }),
  });
  const sagaRunning = sagaWorker.run();
  onCleanup('saga worker', async () => {
    sagaWorker.shutdown();
    await sagaRunning;
    await sagaNative.close();
  });

  // The baseline's worker: its own bundle, task queue and connection, the same worker settings.
  const noopWorker = await startNoopSagaWorker(temporal.address, NOOP_QUEUE);
  onCleanup('baseline worker', noopWorker.stop);

  const connection = await Connection.connect({ address: temporal.address });
  onCleanup('client', () => connection.close());
  const client = new Client({ connection, namespace: 'default' });

  const { post } = await startBenchApi(pool, client, SAGA_QUEUE);

  const created = await post('/v1/programs', {
    programId: PROGRAM,
    name: 'Bench',
    currency: 'USD',
    pointValueMinor: 1,
    earn: { points: 1, perAmountMinor: 1 },
    expectedRedemptionRate: 0.8,
    expiry: { policy: 'none' },
    accounting: { method: 'relative_ssp' },
    redemption: { minPoints: 1, maxInvoiceShare: 1, cohortOrder: 'oldest_first' },
    chargebackWindow: CHARGEBACK_WINDOW,
  });
  if (created.status !== 201)
    throw new Error(`creating the program: HTTP ${created.status} ${JSON.stringify(created.body)}`);
  const members = Array.from({ length: MEMBERS }, (_, i) => `m-${i}`);
  log(`${MEMBERS} members, 10,000,000 points each`);
  for (const m of members) {
    const r = await post(`/v1/programs/${PROGRAM}/accruals`, {
      memberId: m,
      invoiceId: `earn-${m}`,
      amountMinor: 10_000_000,
      occurredAt: new Date().toISOString(),
      jurisdiction: 'US-CA',
    });
    if (r.status !== 201) throw new Error(`accrual for ${m}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  }
  const invoiceId = (prefix: string, i: number) => `${prefix}-saga-${i}`;
  const memberOf = (i: number) => members[i % MEMBERS]!;
  const billing = billingClient({ baseUrl: sims.billingUrl, timeoutMs: 2000 });
  const prefixes: Array<[string, number]> = [
    ['warm', WARMUP],
    ...Array.from({ length: ROUNDS }, (_, r) => [`r${r + 1}`, N] as [string, number]),
  ];
  const toCreate = prefixes.flatMap(([p, n]) =>
    Array.from({ length: n }, (_, i) => ({ invoiceId: invoiceId(p, i), memberId: memberOf(i) })),
  );
  log(`creating ${toCreate.length} invoices in billing`);
  const made = await callers(toCreate.length, 20, async (i) => {
    const inv = toCreate[i]!;
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
  if (made.errors.length > 0) throw new Error(`creating invoices: ${made.errors.slice(0, 3).join('; ')}`);

  const redeem = (prefix: string) => async (i: number) => {
    const r = await post(`/v1/programs/${PROGRAM}/redemptions`, {
      invoiceId: invoiceId(prefix, i),
      memberId: memberOf(i),
      points: POINTS,
      invoiceTotalMinor: 8000,
      occurredAt: new Date().toISOString(),
    });
    if (r.status !== 201 || r.body.status !== 'applied')
      throw new Error(`redemption ${invoiceId(prefix, i)}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  };
  const baseline = (prefix: string) => async (i: number) => {
    const steps = await client.workflow.execute(noopSaga, {
      workflowId: `noop-saga:${prefix}-${i}`,
      taskQueue: NOOP_QUEUE,
      args: [],
    });
    if (steps !== NOOP_SAGA_STEPS) throw new Error(`noopSaga ${prefix}-${i} returned ${steps}`);
  };

  const measure = async (
    roundNo: number,
    phase: PhaseResult['phase'],
    n: number,
    fn: (i: number) => Promise<void>,
  ): Promise<PhaseResult> => {
    const cpu0 = {
      temporal: cpuSeconds(temporalPid),
      postgres: pgPid ? cpuSeconds(pgPid) : NaN,
      bench: process.cpuUsage(),
    };
    const t0 = performance.now();
    const { latencies, errors } = await callers(n, C, fn);
    const seconds = (performance.now() - t0) / 1000;
    const benchCpu = process.cpuUsage(cpu0.bench);
    const ok = latencies.length;
    const r: PhaseResult = {
      round: roundNo,
      phase,
      n,
      ok,
      errors: errors.length,
      errorSamples: errors.slice(0, 3),
      seconds: round(seconds, 2),
      rate: round(ok / seconds, 1),
      p50Ms: round(quantile(latencies, 0.5)),
      p99Ms: round(quantile(latencies, 0.99)),
      cpu: {
        temporal: round(cpuSeconds(temporalPid) - cpu0.temporal, 2),
        postgres: pgPid ? round(cpuSeconds(pgPid) - cpu0.postgres, 2) : NaN,
        bench: round((benchCpu.user + benchCpu.system) / 1e6, 2),
      },
    };
    log(
      `round ${roundNo} ${phase}: ${ok}/${n} in ${r.seconds} s, ${r.rate}/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.errors} errors${r.errors ? `: ${r.errorSamples.join('; ')}` : ''}`,
    );
    return r;
  };

  /** Waits until no saga is running (their chargeback windows closed), so a phase does not carry load into the next. */
  const drainSagas = async () => {
    const t0 = performance.now();
    for (;;) {
      let running: number;
      try {
        running = (
          await client.workflow.count(
            `WorkflowType = "redemptionSaga" AND ExecutionStatus = "Running" AND TaskQueue = "${SAGA_QUEUE}"`,
          )
        ).count;
      } catch (e) {
        log(`counting running sagas failed (${(e as Error).message}); waiting out the chargeback window instead`);
        await sleep(3000);
        return;
      }
      if (running === 0) break;
      if (performance.now() - t0 > 120_000) {
        log(`${running} sagas still running after 120 s; going on`);
        break;
      }
      await sleep(250);
    }
    log(`every saga closed ${round((performance.now() - t0) / 1000, 1)} s after the phase ended`);
  };

  if (WARMUP > 0) {
    await measure(0, 'warmup-saga', WARMUP, redeem('warm'));
    await drainSagas();
    await measure(0, 'warmup-baseline', WARMUP, baseline('warm'));
  }
  const results: PhaseResult[] = [];
  const checks: Array<{ round: number; applied: number; expected: number }> = [];
  for (let r = 1; r <= ROUNDS; r++) {
    const s = await measure(r, 'saga', N, redeem(`r${r}`));
    results.push(s);
    await drainSagas();
    const { rows } = await pool.query<{ n: number }>(
      `select count(*)::int as n from redemptions where program_id = $1 and status = 'applied' and invoice_id like $2`,
      [PROGRAM, `r${r}-saga-%`],
    );
    checks.push({ round: r, applied: rows[0]!.n, expected: s.ok });
    results.push(await measure(r, 'baseline', N, baseline(`r${r}`)));
  }

  // The size of each kind of history, for reading the ratio.
  const historyEvents = async (workflowId: string) =>
    ((await client.workflow.getHandle(workflowId).fetchHistory()).events ?? []).length;
  const events = {
    saga: await historyEvents(`redemption:${PROGRAM}:${invoiceId(`r${ROUNDS}`, 0)}`).catch(() => NaN),
    baseline: await historyEvents(`noop-saga:r${ROUNDS}-0`).catch(() => NaN),
  };

  const sagaRuns = results.filter((x) => x.phase === 'saga');
  const baseRuns = results.filter((x) => x.phase === 'baseline');
  const sagaRate = median(sagaRuns.map((x) => x.rate));
  const baseRate = median(baseRuns.map((x) => x.rate));
  const ratio = round(sagaRate / baseRate, 3);
  const errors = sagaRuns.reduce((s, x) => s + x.errors, 0);
  const baselineErrors = baseRuns.reduce((s, x) => s + x.errors, 0);
  const correct = checks.every((c) => c.applied === c.expected);
  const cpuMsPer = (runs: PhaseResult[], f: (x: PhaseResult) => number) =>
    round(median(runs.map((x) => (f(x) * 1000) / Math.max(x.ok, 1))), 2);

  const out: string[] = [];
  out.push(`## Saga throughput: ${N.toLocaleString('en-US')} per round, concurrency ${C}, ${ROUNDS} round(s)`);
  out.push('');
  out.push(
    `${machine.cpus} CPUs, load ${machine.loadavg1m} at start; ${machine.fsType}; PostgreSQL ${db.embedded ? 'embedded' : 'DATABASE_URL'}. API, both workers, simulators and load in one process; dev server and PostgreSQL beside it.`,
  );
  out.push(
    `Saga: counted when POST /v1/programs/{p}/redemptions answered 201 \`applied\` (all ${NOOP_SAGA_STEPS} local activities done); ` +
      `the saga then waits out its ${CHARGEBACK_WINDOW} chargeback window and closes (inside the round but for the last second's sagas; all closed before the next phase). ` +
      `Baseline: \`noopSaga\`, ${NOOP_SAGA_STEPS} no-op local activities with the saga's options, own worker and task queue, counted when client.workflow.execute returned. Warm-up: ${WARMUP} of each, not counted.`,
  );
  out.push('');
  out.push(
    markdownTable(
      [
        'round',
        'phase',
        'workflows',
        'time s',
        'per s',
        'p50 ms',
        'p99 ms',
        'errors',
        'CPU s dev server',
        'CPU s PG',
        'CPU s bench process',
      ],
      results.map((x) => [
        x.round,
        x.phase === 'saga' ? 'saga via API' : 'baseline noopSaga',
        x.n,
        x.seconds,
        x.rate,
        x.p50Ms,
        x.p99Ms,
        x.errors,
        x.cpu.temporal,
        x.cpu.postgres,
        x.cpu.bench,
      ]),
    ),
  );
  out.push('');
  out.push(
    markdownTable(
      ['figure (median over rounds)', 'value', 'goal', 'met'],
      [
        ['sagas applied / s', sagaRate, '', ''],
        ['baseline workflows / s', baseRate, '', ''],
        ['ratio saga / baseline', ratio, `>= ${GOAL_RATIO}`, ratio >= GOAL_RATIO ? 'yes' : 'NO'],
        [
          'dev server CPU ms per saga / per baseline workflow',
          `${cpuMsPer(sagaRuns, (x) => x.cpu.temporal)} / ${cpuMsPer(baseRuns, (x) => x.cpu.temporal)}`,
          '',
          '',
        ],
        [
          'bench process CPU ms per saga / per baseline workflow',
          `${cpuMsPer(sagaRuns, (x) => x.cpu.bench)} / ${cpuMsPer(baseRuns, (x) => x.cpu.bench)}`,
          '',
          '',
        ],
        ['history events per saga / per baseline workflow', `${events.saga} / ${events.baseline}`, '', ''],
        [
          'errors (all rounds): saga / baseline',
          `${errors} / ${baselineErrors}`,
          '0 / 0',
          errors + baselineErrors === 0 ? 'yes' : 'NO',
        ],
        ['redemptions applied in the ledger = API answers', correct ? 'ok' : 'FAILED', 'ok', correct ? 'yes' : 'NO'],
      ],
    ),
  );
  for (const x of results) if (x.errors) out.push(`\n${x.phase} round ${x.round} errors: ${x.errorSamples.join('; ')}`);
  for (const c of checks)
    if (c.applied !== c.expected)
      out.push(`\nround ${c.round}: ${c.applied} redemptions applied in the ledger, the API answered ${c.expected}`);
  process.stdout.write(`\n${out.join('\n')}\n\n`);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'saga-throughput',
      sagas: N,
      concurrency: C,
      rounds: ROUNDS,
      members: MEMBERS,
      warmup: WARMUP,
      chargebackWindow: CHARGEBACK_WINDOW,
      counted: { saga: 'API answered applied', baseline: 'workflow completed' },
      postgres: db.embedded ? 'embedded' : 'DATABASE_URL',
      fsType: machine.fsType,
      cpus: machine.cpus,
      loadavg1mAtStart: machine.loadavg1m,
      sagasPerSec: sagaRate,
      baselinePerSec: baseRate,
      ratio,
      goalRatio: GOAL_RATIO,
      historyEvents: events,
      errors,
      baselineErrors,
      correct,
      runs: results,
      checks,
    })}\n`,
  );
  return errors === 0 && baselineErrors === 0 && correct ? 0 : 1;
});
