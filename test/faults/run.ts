/**
 * `npm run test:faults`: the fault-injection suite. Brings up the real stack on its own (see
 * stack.ts), drives a seeded workload through the HTTP API while a seeded schedule kills and
 * restarts the pieces under it, lets everything drain, then checks the invariants, the
 * reconciliation, Temporal, and the ledger against the workload's own model (checks.ts).
 * docs/faults.md says what it does and how to reproduce a run.
 *
 *   LOYALTY_FAULTS_SEED      the seed of the workload and of the fault schedule (default 20240611)
 *   LOYALTY_FAULTS_SECONDS   how long the workload and the faults run (default 150)
 *   LOYALTY_FAULTS_LONG_SLOWDOWNS    1 (default): two slowdowns longer than the saga's retry budget; 0 leaves them out
 *   LOYALTY_FAULTS_KEEP=1    keep the run's directory (logs, Temporal's SQLite file, PostgreSQL's data) even when it passes
 *   DATABASE_URL             use that PostgreSQL (its restarts are then skipped) instead of an embedded one
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callsInDoubtSettled, drain, runChecks, type CheckContext, type CheckResult } from './checks';
import { LedgerClient } from './http';
import { Model, programs, type OpKind } from './model';
import { Rng, sleep } from './rng';
import { buildSchedule, FaultRunner } from './schedule';
import { FaultStack, TASK_QUEUE } from './stack';
import { dbQuery, Workload } from './workload';

const DEFAULT_SEED = 20240611;
const DEFAULT_SECONDS = 150;
/** concurrent billing/support agents */
const AGENTS = 6;
/** after the faults stop: how long everything may take to settle */
const DRAIN_MS = 120_000;

function intFromEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`${name} must be an integer in [${min}, ${max}], not ${raw}`);
  return n;
}

const seed = intFromEnv('LOYALTY_FAULTS_SEED', DEFAULT_SEED, 0, 0xffff_ffff);
const seconds = intFromEnv('LOYALTY_FAULTS_SECONDS', DEFAULT_SECONDS, 20, 3600);
const longSlowdowns = intFromEnv('LOYALTY_FAULTS_LONG_SLOWDOWNS', 1, 0, 1) === 1;
const keepWorkDir = intFromEnv('LOYALTY_FAULTS_KEEP', 0, 0, 1) === 1;
const reproduce =
  `LOYALTY_FAULTS_SEED=${seed} LOYALTY_FAULTS_SECONDS=${seconds}${longSlowdowns ? '' : ' LOYALTY_FAULTS_LONG_SLOWDOWNS=0'}` +
  `${process.env.DATABASE_URL ? ' DATABASE_URL=...' : ''} npm run test:faults`;
/** the whole run, stack to teardown; past it the suite stops and fails */
const HARD_LIMIT_MS = seconds * 1000 + 6 * 60_000;

const started = Date.now();
/** when the workload and the faults began (the times printed count from it; before it, from the start) */
let t0: number | null = null;
const stamp = () =>
  t0 === null
    ? `[setup ${((Date.now() - started) / 1000).toFixed(1)}s]`
    : `[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s]`;
const note = (line: string) => process.stdout.write(`${stamp()} ${line}\n`);

async function main(): Promise<number> {
  process.stdout.write(`# fault suite: seed ${seed}, ${seconds} s of workload and faults (reproduce: ${reproduce})\n`);
  const work = mkdtempSync(join(tmpdir(), 'loyalty-faults-'));
  const stack = new FaultStack({ work, seed, databaseUrl: process.env.DATABASE_URL, note });
  let ok = false;
  const watchdog = setTimeout(() => {
    process.stdout.write(
      `\nFAILED: the suite went past its limit of ${HARD_LIMIT_MS / 1000} s; logs in ${work}\nreproduce: ${reproduce}\n`,
    );
    void Promise.race([stack.stop(), sleep(20_000)]).finally(() => process.exit(1));
  }, HARD_LIMIT_MS);
  watchdog.unref();
  try {
    await stack.start();
    if (!stack.pgRestartable)
      note(
        'PostgreSQL is the server of DATABASE_URL: the suite cannot restart it, so the postgres_restart faults are skipped',
      );
    const model = new Model();
    const specs = programs();
    const api = new LedgerClient(stack.apiUrl, stack.keys);
    const workload = new Workload({
      api,
      billingUrl: stack.simDirect.billing,
      pool: stack.pool,
      temporal: stack.client,
      model,
      programs: specs,
    });
    const rng = new Rng(seed);
    await workload.createPrograms(rng.fork('programs'));
    const schedule = buildSchedule(rng.fork('faults'), seconds * 1000, { longSlowdowns });
    note(
      `schedule: ${schedule.filter((f) => f.lane === 'infra').length} process faults, ${schedule.filter((f) => f.lane === 'sim').length} simulator fault rules`,
    );

    const faults = new FaultRunner(stack, schedule, note);
    t0 = Date.now();
    note('workload and faults begin');
    const endAt = t0 + seconds * 1000;
    faults.start(t0);
    const ticker = setInterval(
      () => note(`progress: ${opsLine(model)}; worker ${stack.worker.running ? 'up' : 'down'}`),
      15_000,
    );
    const agents = workload.run(rng.fork('workload'), AGENTS, endAt);
    while (Date.now() < endAt) await sleep(Math.min(500, endAt - Date.now()));
    // The quiet period: no new faults, those under way undone, every rule cleared, every piece up;
    // the agents finish the requests they have begun (each bounded by its retry budget).
    note('workload time is up: faults stop, agents finish what they began');
    await faults.stop();
    await stack.clearSimFaults();
    await stack.ensureAllUp();
    await agents;
    clearInterval(ticker);
    const workloadSeconds = (Date.now() - t0) / 1000;
    note(`agents done: ${opsLine(model)}; draining (at most ${DRAIN_MS / 1000} s)`);
    const ctx: CheckContext = {
      pool: stack.pool,
      temporal: stack.client,
      taskQueue: TASK_QUEUE,
      billingUrl: stack.simDirect.billing,
      model,
      programs: specs,
      rng: rng.fork('checks'),
    };
    const drainStarted = Date.now();
    const left = await drain(ctx, DRAIN_MS, note);
    const drainSeconds = (Date.now() - drainStarted) / 1000;
    await faults.readSimInjected();
    note('checking');
    const results = await runChecks(ctx, left);
    const observations: string[] = [];
    const ledgerStats = await dbQuery<{ program_id: string; status: string; n: number }>(
      stack.pool,
      `select program_id, status, count(*)::int as n from redemptions group by 1, 2
       union all select program_id, 'expire entries', count(*)::int from ledger_entries where type = 'expire' group by 1 order by 1, 2`,
    );
    const settled = await callsInDoubtSettled(ctx);
    ok = summary({ model, faults, stack, results, observations, ledgerStats, settled, workloadSeconds, drainSeconds });
    if (!ok || keepWorkDir) process.stdout.write(`\nlogs of the stack: ${work}\n`);
    return ok ? 0 : 1;
  } finally {
    clearTimeout(watchdog);
    await Promise.race([stack.stop(), sleep(30_000)]);
    if (ok && !keepWorkDir) rmSync(work, { recursive: true, force: true });
  }
}

function opsLine(m: Model): string {
  return (Object.keys(m.stats) as OpKind[]).map((k) => `${k} ${m.stats[k].sent}`).join(', ');
}

function summary(o: {
  model: Model;
  faults: FaultRunner;
  stack: FaultStack;
  results: CheckResult[];
  observations: string[];
  ledgerStats: Array<{ program_id: string; status: string; n: number }>;
  settled: { billingCredits: number; glEntries: number };
  workloadSeconds: number;
  drainSeconds: number;
}): boolean {
  const { model, faults, stack, results } = o;
  const out: string[] = ['', `== fault suite summary (seed ${seed}) ==`];
  out.push(
    `duration: workload ${o.workloadSeconds.toFixed(1)} s (faults for ${seconds} s), drain ${o.drainSeconds.toFixed(1)} s, total ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  out.push(
    'operations through the API: sent / accepted / refused / unresolved; ambiguous: answered after an attempt whose effect was unknown; retries',
  );
  for (const k of Object.keys(model.stats) as OpKind[]) {
    const s = model.stats[k];
    out.push(
      `  ${k.padEnd(11)} ${String(s.sent).padStart(5)} / ${String(s.accepted).padStart(5)} / ${String(s.refused).padStart(4)} / ${String(s.unresolved).padStart(3)}  (${s.ambiguous} ambiguous)  retries ${s.retries}`,
    );
  }
  out.push(
    `  billing invoices created ${model.invoicesCreated}; declined redemptions by reason: ${[...model.declineReasons.entries()].map(([r, n]) => `${r} ${n}`).join(', ') || 'none'}`,
  );
  out.push(`  in the ledger: ${o.ledgerStats.map((r) => `${r.program_id} ${r.status} ${r.n}`).join(', ')}`);
  out.push(
    `  calls in doubt the compensations found done and undid: ${o.settled.billingCredits} billing credits of declined redemptions, ${o.settled.glEntries} GL entries of compensated ones`,
  );
  const c = faults.counts;
  out.push(
    `faults injected: ${
      Object.entries(c.injected)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || 'none'
    }`,
  );
  if (Object.keys(c.skipped).length > 0)
    out.push(
      `faults skipped: ${Object.entries(c.skipped)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
  out.push(
    `  the simulators answered ${c.simInjected} calls with an injected failure or timeout; the worker was started ${stack.worker.starts} times (${stack.worker.exitsOnItsOwn} exits on its own)`,
  );
  if (c.errors.length > 0) out.push(`  faults that could not be injected or undone: ${c.errors.join('; ')}`);
  const failed = results.filter((r) => r.problems.length > 0);
  out.push(`checks: ${results.length - failed.length} passed, ${failed.length} failed`);
  for (const r of results) {
    out.push(`  ${r.problems.length === 0 ? 'ok  ' : 'FAIL'} ${r.name}`);
    for (const p of r.problems.slice(0, 8)) out.push(`         - ${p}`);
    if (r.problems.length > 8) out.push(`         ... and ${r.problems.length - 8} more`);
  }
  for (const obs of o.observations) out.push(`note: ${obs}`);
  const ok = failed.length === 0 && c.errors.length === 0;
  out.push(ok ? `PASSED (seed ${seed})` : `FAILED (seed ${seed}); reproduce: ${reproduce}`);
  process.stdout.write(out.join('\n') + '\n');
  return ok;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stdout.write(`\nFAILED: ${(e as Error).stack ?? String(e)}\nreproduce: ${reproduce}\n`);
    process.exit(1);
  },
);
