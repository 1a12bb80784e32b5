/**
 * Figure: N live member workflows on one Temporal dev server and one worker. N members each get
 * one accrual (straight through ll_accrue_batch), which queues N wake-ups in member_wakeups; then
 * one worker (bench/worker-process.ts, a child of its own) and the wake-up relay (in this process)
 * start them all. Measured: time until every workflow is started (relay delivered) and armed
 * (members.armed_deadline set), the start rate, and the resident memory of the worker process and
 * of the dev server. The program's rolling window (P365D) keeps every workflow live, asleep on
 * its timer.
 *
 * Baseline (optional, --baseline-starts, default N/10, 0 skips): plain client.workflow.start of
 * workflows that find no member and end, from as many concurrent callers as the relay uses.
 *
 *   npm run bench:workflows -- [--members 20000] [--relay-batch 200] [--relay-concurrency 16]
 *        [--max-cached 2000] [--max-activities 50] [--worker-pool 20] [--baseline-starts N] [--settle-s 10]
 *        [--timeout-s 14400] [--stall-s 300] [--work-dir DIR] [--temporal-dir DIR] [--seed-batch 500]
 *        [--rearm-window P180D [--stream-rate 20] [--stream-alone-s 60]]
 *
 * With --rearm-window, once all are armed and settled: the expiry window changes to it and every
 * workflow is re-armed on its new deadline while an accrual stream runs (bench/rearm-phase.ts).
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { Pool } from 'pg';
import pino from 'pino';
import { buildApi, DEFAULT_BATCHER } from '../api/server';
import { newSecret, putKey } from '../db/keys';
import { migrate } from '../db/migrate';
import { createPool } from '../db/pool';
import { countPendingWakeups } from '../db/wakeups';
import { freePort } from '../cli/stack/process';
import { startTemporalDevServer } from '../cli/stack/temporal-dev-server';
import { WakeupRelay } from '../workers/wakeup-relay';
import { BUNDLE_OPTIONS } from '../workers/worker';
import { memberLifecycle } from '../workflows/member';
import { measureRearm, type RearmResult } from './rearm-phase';
import {
  benchDatabase,
  cpuSeconds,
  intFlag,
  log,
  machineNote,
  markdownTable,
  mib,
  onCleanup,
  peakRssBytes,
  postmasterPid,
  round,
  rssBytes,
  runMain,
  sleep,
  spawnTsChild,
  treeRssBytes,
  workDir,
} from './lib';

const PROGRAM = 'bench-wf';

function programBody(window: string) {
  return {
    programId: PROGRAM,
    name: 'Bench workflows',
    currency: 'USD',
    pointValueMinor: 1,
    earn: { points: 1, perAmountMinor: 100 },
    expectedRedemptionRate: 0.8,
    expiry: { policy: 'rolling', window },
    accounting: { method: 'relative_ssp' },
    redemption: { minPoints: 100, maxInvoiceShare: 1.0, cohortOrder: 'oldest_first' },
    chargebackWindow: 'P120D',
  };
}

/**
 * The program and one accrual per member, through the API's own code (in this process, with
 * app.inject): the accrual batcher sends them to ll_accrue_batch in batches of up to batchSize.
 */
async function seedMembers(url: string, window: string, members: number, batchSize: number): Promise<void> {
  const pool = createPool({ connectionString: url, maxConnections: 4, applicationName: 'bench-seed' });
  const adminKey = newSecret('bench-admin');
  const billingKey = newSecret('bench-billing');
  await putKey(pool, { keyId: 'bench-admin', secret: adminKey, principal: 'bench-admin', roles: ['admin'] });
  await putKey(pool, { keyId: 'bench-billing', secret: billingKey, principal: 'bench-billing', roles: ['billing'] });
  const app = await buildApi({
    pool,
    logger: pino({ level: 'warn' }, pino.destination(2)),
    batcher: { ...DEFAULT_BATCHER, maxBatch: batchSize, maxQueued: Math.max(DEFAULT_BATCHER.maxQueued, batchSize * 2) },
    bodyLimitBytes: 64 * 1024,
    temporalReachable: async () => true,
  });
  try {
    const created = await app.inject({
      method: 'POST',
      url: '/v1/programs',
      payload: programBody(window),
      headers: { authorization: `Bearer ${adminKey}`, 'idempotency-key': 'bench-program' },
    });
    if (created.statusCode !== 201) throw new Error(`creating the program: HTTP ${created.statusCode} ${created.body}`);
    const occurredAt = new Date(Date.now() - 3600_000).toISOString();
    let next = 0;
    let lastLog = Date.now();
    await Promise.all(
      Array.from({ length: Math.min(batchSize, members) }, async () => {
        for (;;) {
          const i = next++;
          if (i >= members) return;
          const res = await app.inject({
            method: 'POST',
            url: `/v1/programs/${PROGRAM}/accruals`,
            payload: { memberId: `m-${i}`, invoiceId: `seed-inv-${i}`, amountMinor: 10_000, occurredAt },
            headers: { authorization: `Bearer ${billingKey}`, 'idempotency-key': `seed-${i}` },
          });
          if (res.statusCode !== 201) throw new Error(`seeding member ${i}: HTTP ${res.statusCode} ${res.body}`);
          if (Date.now() - lastLog > 5_000) {
            log(`seeded ${i.toLocaleString('en-US')}/${members.toLocaleString('en-US')} members`);
            lastLog = Date.now();
          }
        }
      }),
    );
  } finally {
    await app.close();
    await pool.end();
  }
}

async function armedCount(pool: Pool): Promise<number> {
  const { rows } = await pool.query(
    'select count(*)::int as n from members where program_id = $1 and armed_deadline is not null',
    [PROGRAM],
  );
  return rows[0].n;
}

interface Peaks {
  worker: number;
  temporal: number;
}

function sample(peaks: Peaks, workerPid: number, temporalPid: number): { worker: number; temporal: number } {
  const w = rssBytes(workerPid) ?? 0;
  const t = treeRssBytes(temporalPid);
  peaks.worker = Math.max(peaks.worker, w);
  peaks.temporal = Math.max(peaks.temporal, t);
  return { worker: w, temporal: t };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      members: { type: 'string', default: '20000' },
      window: { type: 'string', default: 'P365D' },
      'seed-batch': { type: 'string', default: '500' },
      'relay-batch': { type: 'string', default: '200' },
      'relay-concurrency': { type: 'string', default: '16' },
      'max-cached': { type: 'string', default: '2000' },
      'max-activities': { type: 'string', default: '50' },
      'worker-pool': { type: 'string', default: '20' },
      'baseline-starts': { type: 'string' },
      'settle-s': { type: 'string', default: '10' },
      'timeout-s': { type: 'string', default: '14400' },
      'stall-s': { type: 'string', default: '300' },
      'temporal-dir': { type: 'string' },
      'sample-ms': { type: 'string', default: '500' },
      'work-dir': { type: 'string' },
      'rearm-window': { type: 'string' },
      'stream-rate': { type: 'string', default: '20' },
      'stream-alone-s': { type: 'string', default: '60' },
    },
  });
  const n = intFlag('members', values.members);
  const window = values.window!;
  const seedBatch = intFlag('seed-batch', values['seed-batch']);
  const relayBatch = intFlag('relay-batch', values['relay-batch']);
  const relayConcurrency = intFlag('relay-concurrency', values['relay-concurrency']);
  const baselineStarts =
    values['baseline-starts'] === undefined
      ? Math.round(n / 10)
      : intFlag('baseline-starts', values['baseline-starts'], 0);
  const settleMs = intFlag('settle-s', values['settle-s'], 0) * 1000;
  const timeoutMs = intFlag('timeout-s', values['timeout-s']) * 1000;
  const stallMs = intFlag('stall-s', values['stall-s']) * 1000;
  const sampleMs = intFlag('sample-ms', values['sample-ms'], 50);

  const work = workDir('loyalty-bench-workflows-', values['work-dir']);
  const machine = machineNote(work);
  log(`work dir ${work} (${machine.fsType}), ${machine.cpus} CPUs, load ${machine.loadavg1m}`);

  // --- the stack
  const db = await benchDatabase(work, 'loyalty_bench');
  const pool = createPool({ connectionString: db.url, maxConnections: 4, applicationName: 'bench-relay' });
  onCleanup('pool', () => pool.end());
  await migrate(pool);
  log(`PostgreSQL ${db.embedded ? 'embedded' : 'from DATABASE_URL'} ready, migrated`);
  const temporal = await startTemporalDevServer({
    dbFile: join(
      values['temporal-dir'] ? workDir('loyalty-bench-temporal-', values['temporal-dir']) : work,
      'temporal.sqlite',
    ),
    port: await freePort(),
    uiPort: null,
    logFile: join(work, 'temporal.log'),
    namespace: 'default',
  });
  onCleanup('temporal dev server', temporal.stop);
  const temporalPid = temporal.child.pid!;
  log(`Temporal dev server at ${temporal.address} (pid ${temporalPid})`);
  const bundle = await bundleWorkflowCode({ ...BUNDLE_OPTIONS, logger: quietLogger });
  const bundlePath = join(work, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);

  // --- N members, N wake-ups queued
  const seedT0 = performance.now();
  await seedMembers(db.url, window, n, seedBatch);
  const seedSeconds = (performance.now() - seedT0) / 1000;
  const queued = await countPendingWakeups(pool);
  log(
    `${n.toLocaleString('en-US')} members seeded in ${seedSeconds.toFixed(1)} s; ${queued.toLocaleString('en-US')} wake-ups queued`,
  );
  if (queued !== n) throw new Error(`expected ${n} wake-ups queued, found ${queued}`);

  // --- one worker (child process), the relay (here)
  const taskQueue = `bench-${randomUUID().slice(0, 8)}`;
  const worker = await spawnTsChild(
    join(__dirname, 'worker-process.ts'),
    [
      '--address',
      temporal.address,
      '--database-url',
      db.url,
      '--task-queue',
      taskQueue,
      '--bundle',
      bundlePath,
      '--max-cached',
      values['max-cached']!,
      '--max-activities',
      values['max-activities']!,
      '--pool-size',
      values['worker-pool']!,
    ],
    'worker',
  );
  const workerPid = worker.child.pid!;
  log(`worker pid ${workerPid} on task queue ${taskQueue}; RSS ${mib(rssBytes(workerPid))} MiB idle`);
  const connection = await Connection.connect({ address: temporal.address });
  onCleanup('temporal client', () => connection.close());
  const client = new TemporalClient({ connection, namespace: 'default' });
  const relay = new WakeupRelay({
    pool,
    client,
    taskQueue,
    log: pino({ level: 'warn' }, pino.destination(2)),
    batchSize: relayBatch,
    concurrency: relayConcurrency,
    idleMs: 200,
    maxBackoffMs: 5000,
    searchAttributes: true,
  });

  const peaks: Peaks = { worker: 0, temporal: 0 };
  const idle = sample(peaks, workerPid, temporalPid);
  const pgPid = postmasterPid(db.dataDir);
  const cpu0 = {
    worker: cpuSeconds(workerPid),
    temporal: cpuSeconds(temporalPid),
    pg: pgPid ? cpuSeconds(pgPid) : NaN,
    self: process.cpuUsage(),
  };
  const t0 = performance.now();
  relay.start();
  onCleanup('relay', () => relay.stop());

  let startedS = NaN;
  let armedS = NaN;
  let armed: number;
  let lastLog = t0;
  let lastArmed = 0;
  let progressAt = t0;
  let progressKey = '';
  for (;;) {
    await sleep(sampleMs);
    const now = performance.now();
    sample(peaks, workerPid, temporalPid);
    armed = await armedCount(pool);
    if (Number.isNaN(startedS) && relay.delivered >= n) startedS = (now - t0) / 1000;
    if (Number.isNaN(armedS) && armed >= n) armedS = (now - t0) / 1000;
    if (now - lastLog >= 5_000) {
      log(
        `${((now - t0) / 1000).toFixed(0)} s: ${relay.delivered.toLocaleString('en-US')} started, ${armed.toLocaleString('en-US')} armed (${Math.round(((armed - lastArmed) * 1000) / (now - lastLog))}/s); RSS worker ${mib(rssBytes(workerPid))} MiB, dev server ${mib(treeRssBytes(temporalPid))} MiB`,
      );
      lastLog = now;
      lastArmed = armed;
    }
    if (!Number.isNaN(startedS) && !Number.isNaN(armedS)) break;
    if (worker.child.exitCode !== null || worker.child.signalCode !== null)
      throw new Error('the worker process exited');
    if (`${relay.delivered}/${armed}` !== progressKey) {
      progressKey = `${relay.delivered}/${armed}`;
      progressAt = now;
    }
    if (now - t0 > timeoutMs || now - progressAt > stallMs) {
      log(
        `${now - t0 > timeoutMs ? `timed out after ${timeoutMs / 1000} s` : `no progress for ${stallMs / 1000} s`}: ${relay.delivered} started, ${armed} armed`,
      );
      break;
    }
  }
  const cpu = {
    worker: round(cpuSeconds(workerPid) - cpu0.worker, 1),
    temporal: round(cpuSeconds(temporalPid) - cpu0.temporal, 1),
    pg: pgPid ? round(cpuSeconds(pgPid) - cpu0.pg, 1) : NaN,
    relay: round((process.cpuUsage(cpu0.self).user + process.cpuUsage(cpu0.self).system) / 1e6, 1),
  };

  // --- settle: all asleep on their timers; memory at rest
  const settleEnd = performance.now() + settleMs;
  while (performance.now() < settleEnd) {
    await sleep(sampleMs);
    sample(peaks, workerPid, temporalPid);
  }
  const atRest = sample(peaks, workerPid, temporalPid);
  const workerHwm = peakRssBytes(workerPid);
  const temporalHwm = peakRssBytes(temporalPid);
  let running: number | null = null;
  try {
    running = (
      await client.workflow.count(
        `WorkflowType = "memberLifecycle" AND ExecutionStatus = "Running" AND TaskQueue = "${taskQueue}"`,
      )
    ).count;
  } catch (e) {
    log(`counting running workflows failed: ${(e as Error).message}`);
  }

  // --- optional: an expiry-window change re-arms every workflow under an accrual stream
  let rearm: RearmResult | null = null;
  if (values['rearm-window']) {
    rearm = await measureRearm({
      pool,
      databaseUrl: db.url,
      relay,
      programId: PROGRAM,
      members: n,
      window: values['rearm-window'],
      streamRate: intFlag('stream-rate', values['stream-rate']),
      streamAloneSeconds: intFlag('stream-alone-s', values['stream-alone-s']),
      timeoutMs,
      apiPort: await freePort(),
    });
  }

  // --- baseline: plain starts
  let baseline: { starts: number; seconds: number; rate: number; errors: number } | null = null;
  if (baselineStarts > 0) {
    let next = 0;
    let errors = 0;
    const b0 = performance.now();
    await Promise.all(
      Array.from({ length: Math.min(relayConcurrency, baselineStarts) }, async () => {
        for (;;) {
          const i = next++;
          if (i >= baselineStarts) return;
          try {
            await client.workflow.start(memberLifecycle, {
              workflowId: `bench-baseline-${i}`,
              taskQueue,
              args: [{ programId: 'bench-baseline', memberId: `b-${i}` }],
            });
          } catch {
            errors++;
          }
        }
      }),
    );
    const seconds = (performance.now() - b0) / 1000;
    baseline = { starts: baselineStarts, seconds: round(seconds, 2), rate: round(baselineStarts / seconds, 0), errors };
    log(`baseline: ${baselineStarts} plain starts in ${seconds.toFixed(1)} s (${baseline.rate}/s), ${errors} errors`);
  }

  const ok = armed >= n && relay.delivered >= n && (running === null || running >= n) && (rearm === null || rearm.ok);
  const startRate = round(n / startedS, 0);
  const armRate = round(n / armedS, 0);
  const out: string[] = [];
  out.push(`## Member workflows: ${n.toLocaleString('en-US')} live workflows, one dev server, one worker`);
  out.push('');
  out.push(
    `PostgreSQL ${db.embedded ? 'embedded' : 'DATABASE_URL'} on ${machine.fsType}; ${machine.cpus} CPUs, load ${machine.loadavg1m} at start; relay batch ${relayBatch} x ${relayConcurrency} in flight; worker maxCachedWorkflows ${values['max-cached']}, maxConcurrentActivities ${values['max-activities']}; expiry rolling ${window}.`,
  );
  out.push('');
  out.push(
    markdownTable(
      ['figure', 'value'],
      [
        ['members (= workflows)', n],
        ['seeding through the API code s (not part of the figures)', round(seedSeconds, 1)],
        ['time until all started (relay delivered) s', round(startedS, 1)],
        ['start rate, workflows/s', startRate],
        ['time until all armed (armed_deadline set) s', round(armedS, 1)],
        ['armed rate, workflows/s', armRate],
        ['running workflows (Temporal visibility)', running ?? NaN],
        ['worker RSS idle MiB', mib(idle.worker)],
        ['worker RSS peak MiB (sampled / kernel VmHWM)', `${mib(peaks.worker)} / ${mib(workerHwm)}`],
        ['worker RSS at rest MiB (after settle)', mib(atRest.worker)],
        ['dev server RSS idle MiB', mib(idle.temporal)],
        ['dev server RSS peak MiB (sampled / kernel VmHWM)', `${mib(peaks.temporal)} / ${mib(temporalHwm)}`],
        ['dev server RSS at rest MiB (after settle)', mib(atRest.temporal)],
        [
          'CPU s until all armed: worker / dev server / PostgreSQL / relay+bench',
          `${cpu.worker} / ${cpu.temporal} / ${Number.isNaN(cpu.pg) ? 'n/a' : cpu.pg} / ${cpu.relay}`,
        ],
        ...(baseline
          ? [
              [
                `baseline: plain workflow.start x ${baseline.starts.toLocaleString('en-US')}, starts/s`,
                baseline.rate,
              ] as [string, number],
              ['ratio start rate / plain start rate', round(startRate / baseline.rate, 3)] as [string, number],
            ]
          : []),
        ...(rearm ? rearmRows(rearm, values['rearm-window']!, intFlag('stream-rate', values['stream-rate'])) : []),
        ['all started and armed' + (rearm ? ', and re-armed' : ''), ok ? 'yes' : 'NO'],
      ],
    ),
  );
  process.stdout.write(`${out.join('\n')}\n\n`);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'member-workflows',
      members: n,
      window,
      relayBatch,
      relayConcurrency,
      maxCachedWorkflows: Number(values['max-cached']),
      maxConcurrentActivities: Number(values['max-activities']),
      postgres: db.embedded ? 'embedded' : 'DATABASE_URL',
      fsType: machine.fsType,
      cpus: machine.cpus,
      loadavg1mAtStart: machine.loadavg1m,
      seedSeconds: round(seedSeconds, 2),
      startedSeconds: round(startedS, 2),
      startRate,
      armedSeconds: round(armedS, 2),
      armRate,
      running,
      workerRssMiB: {
        idle: mib(idle.worker),
        peakSampled: mib(peaks.worker),
        peakHwm: mib(workerHwm),
        atRest: mib(atRest.worker),
      },
      devServerRssMiB: {
        idle: mib(idle.temporal),
        peakSampled: mib(peaks.temporal),
        peakHwm: mib(temporalHwm),
        atRest: mib(atRest.temporal),
      },
      cpuSeconds: cpu,
      baseline,
      rearm,
      ok,
    })}\n`,
  );
  return ok ? 0 : 1;
}

function rearmRows(r: RearmResult, window: string, rate: number): Array<[string, string | number]> {
  return [
    [`re-arm to ${window}: deadlines recomputed (members moved by the re-arm)`, r.moved],
    ['re-arm: recompute s (db/rearm.ts, batches of 1,000)', r.recomputeSeconds],
    ['re-arm: time until every workflow armed on its new deadline s', r.armedSeconds],
    ['re-arm: signals delivered (re-arm and stream wake-ups)', r.signals],
    ['re-arm: peak signal rate /s (1-s windows) / mean', `${r.peakSignalsPerSecond} / ${r.meanSignalsPerSecond}`],
    [
      `accrual stream ${rate}/s alone: p50 / p99 / max ms (errors)`,
      `${r.alone.p50Ms} / ${r.alone.p99Ms} / ${r.alone.maxMs} (${r.alone.errors})`,
    ],
    [
      `accrual stream ${rate}/s during the re-arm: p50 / p99 / max ms (errors)`,
      `${r.during.p50Ms} / ${r.during.p99Ms} / ${r.during.maxMs} (${r.during.errors})`,
    ],
    [
      `accrual stream ${rate}/s alone again after: p50 / p99 / max ms (errors)`,
      `${r.aloneAfter.p50Ms} / ${r.aloneAfter.p99Ms} / ${r.aloneAfter.maxMs} (${r.aloneAfter.errors})`,
    ],
    ['ratio p99 during / the lower p99 alone (goal <= 3)', r.ratioP99],
  ];
}

const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} };

runMain(main);
