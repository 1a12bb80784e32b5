/**
 * Figure: accrual ingest through the HTTP API, end to end. Each POST /v1/programs/{p}/accruals
 * carries its own Idempotency-Key; its 201 means the accrual is durably committed and the
 * member's deadline moved. The API runs in a child process (bench/api-server.ts) so the load
 * generator's CPU is not the API's; PostgreSQL is embedded in a temp dir (or DATABASE_URL).
 *
 * Baseline, same run, same PostgreSQL, same concurrency: single-row INSERT ... ON CONFLICT DO
 * NOTHING, one autocommit transaction each, over `concurrency` connections, same row count.
 * Rounds alternate baseline and API; the summary gives medians.
 *
 * `--mode bulk` (issue 17, item 2): the same accruals through POST /v1/programs/{p}/accruals/batch,
 * `--batch-size` items per request (each with its own idempotency key; every item must answer 201),
 * `--concurrency` requests at a time; its baseline is COPY of the same rows, in the same chunks,
 * into a table of the same shape as the INSERT baseline's.
 *
 *   npm run bench:accruals -- [--mode single|bulk] [--accruals 100000] [--members 20000]
 *        [--concurrency 64] [--batch-size 1000] [--rounds 1] [--warmup 2000] [--seed 1]
 *        [--window P365D] [--max-batch N] [--max-in-flight N] [--max-queued N] [--api-pool 20]
 *        [--work-dir /tmp]
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { newSecret, putKey } from '../db/keys';
import { migrate } from '../db/migrate';
import { createPool } from '../db/pool';
import { freePort } from '../cli/stack/process';
import {
  benchDatabase,
  cpuSeconds,
  intFlag,
  log,
  machineNote,
  markdownTable,
  median,
  postmasterPid,
  prng,
  quantile,
  round,
  runMain,
  spawnTsChild,
  workDir,
  postJson as post,
} from './lib';

const GOALS = {
  // issue 17, item 1: single accruals through the API
  single: { rate: 4_000, ratio: 0.3, baseline: 'baseline INSERT' },
  // issue 17, item 2: the bulk endpoint, against COPY of the same rows
  bulk: { rate: 20_000, ratio: null, baseline: 'baseline COPY' },
} as const;
type Mode = keyof typeof GOALS;

interface Load {
  /** member index per operation */
  member: Uint32Array;
  amountMinor: Uint32Array;
  occurredAt: string[];
  distinctMembers: number;
}

/** The round's operations: a random member per accrual (seeded), amounts 1.00..500.00. */
function makeLoad(n: number, members: number, seed: number): Load {
  const rnd = prng(seed);
  const member = new Uint32Array(n);
  const amountMinor = new Uint32Array(n);
  const occurredAt: string[] = new Array(n);
  const base = Date.now() - 24 * 3600_000; // a day ago: never in the future, well inside the window
  const seen = new Uint8Array(members);
  let distinct = 0;
  for (let i = 0; i < n; i++) {
    const m = Math.floor(rnd() * members);
    member[i] = m;
    if (!seen[m]) {
      seen[m] = 1;
      distinct++;
    }
    amountMinor[i] = 100 + Math.floor(rnd() * 49_901);
    occurredAt[i] = new Date(base + i).toISOString();
  }
  return { member, amountMinor, occurredAt, distinctMembers: distinct };
}

interface PhaseResult {
  phase: 'baseline' | 'api' | 'warmup';
  /** bulk: requests made (ops counts the accruals in them) */
  requests?: number;
  round: number;
  ops: number;
  ok: number;
  errors: number;
  errorSamples: string[];
  seconds: number;
  rate: number;
  /** completions between the 10th and 90th percentile of completion time, per second */
  steadyRate: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  cpu: { client: number; api: number | null; postgres: number | null };
  /** API only: sum of the points answered */
  pointsAnswered?: number;
}

interface CpuProbe {
  apiPid: number | null;
  pgPid: number | null;
}

/** Runs op(i) for i in [0, n) from `concurrency` loops; times each and the whole. */
async function drive(
  n: number,
  concurrency: number,
  label: string,
  probe: CpuProbe,
  op: (i: number, lane: number) => Promise<string | null>,
): Promise<Omit<PhaseResult, 'phase' | 'round'>> {
  const latency = new Float64Array(n);
  const doneAt = new Float64Array(n);
  const errorCounts = new Map<string, number>();
  let next = 0;
  let done = 0;
  const cpu0 = {
    client: process.cpuUsage(),
    api: probe.apiPid ? cpuSeconds(probe.apiPid) : null,
    pg: probe.pgPid ? cpuSeconds(probe.pgPid) : null,
  };
  const t0 = performance.now();
  let lastDone = 0;
  let lastT = t0;
  const progress = setInterval(() => {
    const t = performance.now();
    log(
      `${label}: ${done.toLocaleString('en-US')}/${n.toLocaleString('en-US')} done, ${Math.round(((done - lastDone) * 1000) / (t - lastT))}/s over the last ${((t - lastT) / 1000).toFixed(0)} s`,
    );
    lastDone = done;
    lastT = t;
  }, 5_000);
  progress.unref();
  const lane = async (l: number) => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const s = performance.now();
      let err: string | null;
      try {
        err = await op(i, l);
      } catch (e) {
        err = `exception: ${(e as Error).message}`;
      }
      const e = performance.now();
      latency[i] = e - s;
      doneAt[i] = e - t0;
      done++;
      if (err !== null) errorCounts.set(err, (errorCounts.get(err) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, (_, l) => lane(l)));
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(progress);
  const c = process.cpuUsage(cpu0.client);
  const t10 = quantile(doneAt, 0.1);
  const t90 = quantile(doneAt, 0.9);
  const errors = [...errorCounts.values()].reduce((a, b) => a + b, 0);
  return {
    ops: n,
    ok: n - errors,
    errors,
    errorSamples: [...errorCounts.entries()].slice(0, 5).map(([m, k]) => `${k}x ${m}`),
    seconds: round(seconds, 2),
    rate: round(n / seconds, 0),
    steadyRate: round(t90 > t10 ? (0.8 * n) / ((t90 - t10) / 1000) : NaN, 0),
    p50Ms: round(quantile(latency, 0.5), 2),
    p99Ms: round(quantile(latency, 0.99), 2),
    maxMs: round(quantile(latency, 1), 2),
    cpu: {
      client: round((c.user + c.system) / 1e6, 2),
      api: cpu0.api === null || !probe.apiPid ? null : round(cpuSeconds(probe.apiPid) - cpu0.api, 2),
      postgres: cpu0.pg === null || !probe.pgPid ? null : round(cpuSeconds(probe.pgPid) - cpu0.pg, 2),
    },
  };
}

/**
 * A baseline's table, empty, of the same shape for INSERT and COPY, and `concurrency` connections
 * to load it over; `admin` counts the rows after.
 */
async function baselineTable(url: string, concurrency: number): Promise<{ admin: Client; lanes: Client[] }> {
  const admin = new Client({ connectionString: url });
  await admin.connect();
  await admin.query('drop table if exists bench_baseline');
  await admin.query(
    'create table bench_baseline (invoice_id text primary key, member_id text, amount_minor bigint, occurred_at timestamptz)',
  );
  await admin.query('checkpoint').catch(() => undefined); // not allowed for every role with DATABASE_URL
  const lanes = await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const c = new Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
  return { admin, lanes };
}

/** The baseline: plain single-row inserts, autocommit, one connection per lane. */
async function runBaseline(
  url: string,
  load: Load,
  concurrency: number,
  r: number,
  probe: CpuProbe,
): Promise<PhaseResult> {
  const { admin, lanes } = await baselineTable(url, concurrency);
  const sql =
    'insert into bench_baseline (invoice_id, member_id, amount_minor, occurred_at) values ($1, $2, $3, $4) on conflict do nothing';
  try {
    const res = await drive(load.member.length, concurrency, `round ${r} baseline`, probe, async (i, l) => {
      await lanes[l]!.query({
        name: 'bench_baseline_insert',
        text: sql,
        values: [`inv-${r}-${i}`, `m-${load.member[i]}`, load.amountMinor[i], load.occurredAt[i]],
      });
      return null;
    });
    const rows = Number((await admin.query('select count(*) as n from bench_baseline')).rows[0].n);
    if (rows !== res.ok) {
      res.errorSamples.push(`table has ${rows} rows, ${res.ok} inserts answered`);
      res.errors += Math.abs(res.ok - rows);
    }
    return { phase: 'baseline', round: r, ...res };
  } finally {
    await Promise.all(lanes.map((c) => c.end()));
    await admin.end();
  }
}

/** Accruals through the API; each answer must be 201 with the points. */
async function runApi(
  o: { port: number; billingKey: string; programId: string; concurrency: number; phase: 'api' | 'warmup' },
  load: Load,
  r: number,
  probe: CpuProbe,
): Promise<PhaseResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency });
  const path = `/v1/programs/${o.programId}/accruals`;
  const runId = randomBytes(4).toString('hex');
  let points = 0;
  try {
    const res = await drive(load.member.length, o.concurrency, `round ${r} ${o.phase}`, probe, async (i) => {
      const body = JSON.stringify({
        memberId: `m-${load.member[i]}`,
        invoiceId: `inv-${r}-${i}`,
        amountMinor: load.amountMinor[i],
        occurredAt: load.occurredAt[i],
        storeId: `s-${load.member[i]! % 50}`,
      });
      const answer = await post(agent, o.port, path, body, {
        authorization: `Bearer ${o.billingKey}`,
        'idempotency-key': `bench-${runId}-${i}`,
      });
      if (answer.status !== 201) return `HTTP ${answer.status} ${answer.body.slice(0, 160)}`;
      const p = (JSON.parse(answer.body) as { points?: unknown }).points;
      if (typeof p !== 'number') return `201 without points: ${answer.body.slice(0, 160)}`;
      points += p;
      return null;
    });
    return { phase: o.phase, round: r, ...res, pointsAnswered: points };
  } finally {
    agent.destroy();
  }
}

/**
 * The bulk baseline: COPY of the same rows into a table of the INSERT baseline's shape, in the bulk
 * run's chunks, `concurrency` COPYs at a time, each its own transaction.
 */
async function runCopyBaseline(
  url: string,
  load: Load,
  concurrency: number,
  batchSize: number,
  r: number,
  probe: CpuProbe,
): Promise<PhaseResult> {
  const { admin, lanes } = await baselineTable(url, concurrency);
  const n = load.member.length;
  const chunks = Math.ceil(n / batchSize);
  try {
    const res = await drive(chunks, concurrency, `round ${r} COPY baseline`, probe, async (k, l) => {
      const lines: string[] = [];
      for (let i = k * batchSize; i < Math.min(n, (k + 1) * batchSize); i++)
        lines.push(`inv-${r}-${i}\tm-${load.member[i]}\t${load.amountMinor[i]}\t${load.occurredAt[i]}\n`);
      await pipeline(
        Readable.from([lines.join('')]),
        lanes[l]!.query(copyFrom('copy bench_baseline (invoice_id, member_id, amount_minor, occurred_at) from stdin')),
      );
      return null;
    });
    const rows = Number((await admin.query('select count(*) as n from bench_baseline')).rows[0].n);
    const out = asItems({ phase: 'baseline', round: r, ...res }, n, batchSize);
    if (rows !== n) {
      out.errorSamples.push(`table has ${rows} rows, ${n} copied`);
      out.errors += Math.abs(n - rows);
    }
    return out;
  } finally {
    await Promise.all(lanes.map((c) => c.end()));
    await admin.end();
  }
}

/** A phase driven in chunks, restated per item: ops and rates count rows, latencies stay per request. */
function asItems(p: PhaseResult, items: number, batchSize: number): PhaseResult {
  const requests = p.ops;
  const failedItems = Math.min(items, p.errors * batchSize);
  return {
    ...p,
    requests,
    ops: items,
    ok: items - failedItems,
    rate: round(items / p.seconds, 0),
    steadyRate: round((p.steadyRate * items) / requests, 0),
  };
}

/** Accruals through POST .../accruals/batch, `batchSize` a request; every item must answer 201 with its points. */
async function runBulk(
  o: { port: number; billingKey: string; programId: string; concurrency: number; batchSize: number },
  load: Load,
  r: number,
  probe: CpuProbe,
): Promise<PhaseResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency });
  const path = `/v1/programs/${o.programId}/accruals/batch`;
  const runId = randomBytes(4).toString('hex');
  const n = load.member.length;
  const chunks = Math.ceil(n / o.batchSize);
  let points = 0;
  try {
    const res = await drive(chunks, o.concurrency, `round ${r} bulk`, probe, async (k) => {
      const accruals = [];
      for (let i = k * o.batchSize; i < Math.min(n, (k + 1) * o.batchSize); i++)
        accruals.push({
          idempotencyKey: `bench-${runId}-${i}`,
          memberId: `m-${load.member[i]}`,
          invoiceId: `inv-${r}-${i}`,
          amountMinor: load.amountMinor[i],
          occurredAt: load.occurredAt[i],
          storeId: `s-${load.member[i]! % 50}`,
        });
      const answer = await post(agent, o.port, path, JSON.stringify({ accruals }), {
        authorization: `Bearer ${o.billingKey}`,
      });
      if (answer.status !== 200) return `HTTP ${answer.status} ${answer.body.slice(0, 160)}`;
      const results = (JSON.parse(answer.body) as { results: Array<{ status: number; points?: number }> }).results;
      const bad = results.filter((x) => x.status !== 201 || typeof x.points !== 'number');
      if (results.length !== accruals.length || bad.length)
        return `${bad.length} of ${accruals.length} items not 201: ${JSON.stringify(bad[0]).slice(0, 160)}`;
      for (const x of results) points += x.points!;
      return null;
    });
    return { ...asItems({ phase: 'api', round: r, ...res }, n, o.batchSize), pointsAnswered: points };
  } finally {
    agent.destroy();
  }
}

interface Check {
  ok: boolean;
  earnEntries: number;
  accrualRows: number;
  balanceSum: number;
  pointsAnswered: number;
  members: number;
  membersExpected: number;
  wrongDeadlines: number;
  problems: string[];
}

/** After an API round: the ledger has what the API answered. */
async function checkProgram(
  url: string,
  programId: string,
  sent: number,
  pointsAnswered: number,
  membersExpected: number,
  window: string,
): Promise<Check> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query(
      `select (select count(*) from ledger_entries where program_id = $1 and type = 'earn') as earn,
              (select count(*) from accruals where program_id = $1) as accruals,
              (select coalesce(sum(balance), 0) from members where program_id = $1) as balance,
              (select count(*) from members where program_id = $1) as members,
              (select count(*) from members m
                 left join (select credited_member_id, max(occurred_at) as last from accruals where program_id = $1 group by 1) a
                   on a.credited_member_id = m.member_id
                where m.program_id = $1 and m.expires_at is distinct from a.last + $2::interval) as wrong_deadlines`,
      [programId, window],
    );
    const r = rows[0];
    const out: Check = {
      ok: true,
      earnEntries: Number(r.earn),
      accrualRows: Number(r.accruals),
      balanceSum: Number(r.balance),
      pointsAnswered,
      members: Number(r.members),
      membersExpected,
      wrongDeadlines: Number(r.wrong_deadlines),
      problems: [],
    };
    if (out.earnEntries !== sent) out.problems.push(`${out.earnEntries} earn entries for ${sent} accruals sent`);
    if (out.accrualRows !== sent) out.problems.push(`${out.accrualRows} accrual rows for ${sent} accruals sent`);
    if (out.balanceSum !== pointsAnswered)
      out.problems.push(`balances sum to ${out.balanceSum}, the API answered ${pointsAnswered} points`);
    if (out.members !== membersExpected) out.problems.push(`${out.members} members, expected ${membersExpected}`);
    if (out.wrongDeadlines !== 0)
      out.problems.push(`${out.wrongDeadlines} members whose deadline is not last purchase + ${window}`);
    out.ok = out.problems.length === 0;
    return out;
  } finally {
    await c.end();
  }
}

async function createProgram(port: number, adminKey: string, programId: string, window: string): Promise<void> {
  const agent = new http.Agent({ keepAlive: false });
  const body = JSON.stringify({
    programId,
    name: `Bench ${programId}`,
    currency: 'USD',
    pointValueMinor: 1,
    earn: { points: 1, perAmountMinor: 100 },
    expectedRedemptionRate: 0.8,
    expiry: { policy: 'rolling', window },
    accounting: { method: 'relative_ssp' },
    redemption: { minPoints: 100, maxInvoiceShare: 1.0, cohortOrder: 'oldest_first' },
    chargebackWindow: 'P120D',
  });
  const res = await post(agent, port, '/v1/programs', body, {
    authorization: `Bearer ${adminKey}`,
    'idempotency-key': `bench-program-${programId}`,
  });
  if (res.status !== 201) throw new Error(`creating program ${programId}: HTTP ${res.status} ${res.body}`);
}

/** Median CPU milliseconds per operation, by process. */
function cpuPerOp(runs: PhaseResult[], withApi = true): string {
  const per = (f: (x: PhaseResult) => number | null) =>
    round(median(runs.map((x) => ((f(x) ?? NaN) * 1000) / x.ops)), 2);
  const parts = [per((x) => x.cpu.client), ...(withApi ? [per((x) => x.cpu.api)] : []), per((x) => x.cpu.postgres)];
  return parts.map((p) => (Number.isFinite(p) ? String(p) : 'n/a')).join(' / ');
}

function cpuCeiling(runs: PhaseResult[], cpus: number): number {
  return round(
    median(runs.map((x) => (cpus * x.ops) / (x.cpu.client + (x.cpu.api ?? NaN) + (x.cpu.postgres ?? NaN)))),
    0,
  );
}

/** Migrates and makes one billing and one admin key. */
async function setupDatabase(url: string): Promise<{ billingKey: string; adminKey: string }> {
  const pool = createPool({ connectionString: url, maxConnections: 1, applicationName: 'bench-setup' });
  try {
    await migrate(pool);
    const billingKey = newSecret('bench-billing');
    const adminKey = newSecret('bench-admin');
    await putKey(pool, { keyId: 'bench-billing', secret: billingKey, principal: 'bench-billing', roles: ['billing'] });
    await putKey(pool, { keyId: 'bench-admin', secret: adminKey, principal: 'bench-admin', roles: ['admin'] });
    return { billingKey, adminKey };
  } finally {
    await pool.end();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      mode: { type: 'string', default: 'single' },
      'batch-size': { type: 'string', default: '1000' },
      accruals: { type: 'string', default: '100000' },
      members: { type: 'string', default: '20000' },
      concurrency: { type: 'string', default: '64' },
      rounds: { type: 'string', default: '1' },
      warmup: { type: 'string', default: '2000' },
      seed: { type: 'string', default: '1' },
      window: { type: 'string', default: 'P365D' },
      'max-batch': { type: 'string' },
      'max-in-flight': { type: 'string' },
      'max-queued': { type: 'string' },
      'api-pool': { type: 'string', default: '20' },
      'work-dir': { type: 'string' },
      // measures what the audit trail costs: the same run with the ledger's audit trigger off
      'without-audit': { type: 'boolean', default: false },
    },
  });
  const mode = values.mode as Mode;
  if (!(mode in GOALS)) throw new Error(`--mode: single or bulk (got ${values.mode})`);
  const goal = GOALS[mode];
  const batchSize = intFlag('batch-size', values['batch-size']);
  if (batchSize > 1000) throw new Error('--batch-size: at most 1,000 (the endpoint takes no more)');
  const n = intFlag('accruals', values.accruals);
  const members = intFlag('members', values.members);
  const concurrency = intFlag('concurrency', values.concurrency);
  const rounds = intFlag('rounds', values.rounds);
  const warmup = intFlag('warmup', values.warmup, 0);
  const seed = intFlag('seed', values.seed, 0);
  const window = values.window!;
  if (!/^P(\d+D|T\d+[HMS])/.test(window))
    throw new Error(`--window: an ISO 8601 duration such as P365D (got ${window})`);

  const work = workDir('loyalty-bench-accruals-', values['work-dir']);
  const machine = machineNote(work);
  log(`work dir ${work} (${machine.fsType}), ${machine.cpus} CPUs, load ${machine.loadavg1m}`);
  const db = await benchDatabase(work, 'loyalty_bench');
  const keys = await setupDatabase(db.url);
  log(`PostgreSQL ${db.embedded ? 'embedded' : 'from DATABASE_URL'} ready, migrated`);
  if (values['without-audit']) {
    const admin = new Client({ connectionString: db.url });
    await admin.connect();
    await admin.query('alter table ledger_entries disable trigger ledger_entries_audit');
    await admin.end();
    log('the ledger audit trigger is OFF for this run (--without-audit)');
  }

  const port = await freePort();
  const apiArgs = ['--database-url', db.url, '--port', String(port), '--pool-size', values['api-pool']!];
  for (const f of ['max-batch', 'max-in-flight', 'max-queued'] as const)
    if (values[f]) apiArgs.push(`--${f}`, values[f]!);
  const api = await spawnTsChild(join(__dirname, 'api-server.ts'), apiArgs, 'api server');
  const batcher = JSON.parse(api.ready.split(' ').slice(2).join(' ')) as Record<string, number>;
  log(`API on 127.0.0.1:${port} (pid ${api.child.pid}), batcher ${JSON.stringify(batcher)}`);
  const probe: CpuProbe = { apiPid: api.child.pid ?? null, pgPid: postmasterPid(db.dataDir) };

  if (warmup > 0) {
    await createProgram(port, keys.adminKey, 'bench-warmup', window);
    const w = await runApi(
      { port, billingKey: keys.billingKey, programId: 'bench-warmup', concurrency, phase: 'warmup' },
      makeLoad(warmup, Math.min(members, warmup), seed + 1000),
      0,
      probe,
    );
    log(
      `warm-up: ${w.ops} accruals, ${w.rate}/s, ${w.errors} errors${w.errors ? `: ${w.errorSamples.join('; ')}` : ''}`,
    );
  }

  const results: PhaseResult[] = [];
  const checks: Check[] = [];
  for (let r = 1; r <= rounds; r++) {
    const load = makeLoad(n, members, seed + r);
    const base =
      mode === 'bulk'
        ? await runCopyBaseline(db.url, load, concurrency, batchSize, r, probe)
        : await runBaseline(db.url, load, concurrency, r, probe);
    results.push(base);
    log(`round ${r} baseline: ${base.rate} rows/s, p50 ${base.p50Ms} ms, p99 ${base.p99Ms} ms, ${base.errors} errors`);

    const programId = `bench-r${r}`;
    await createProgram(port, keys.adminKey, programId, window);
    const admin = new Client({ connectionString: db.url });
    await admin.connect();
    await admin.query('checkpoint').catch(() => undefined);
    await admin.end();
    const res =
      mode === 'bulk'
        ? await runBulk({ port, billingKey: keys.billingKey, programId, concurrency, batchSize }, load, r, probe)
        : await runApi({ port, billingKey: keys.billingKey, programId, concurrency, phase: 'api' }, load, r, probe);
    results.push(res);
    log(`round ${r} API: ${res.rate} accruals/s, p50 ${res.p50Ms} ms, p99 ${res.p99Ms} ms, ${res.errors} errors`);
    const check = await checkProgram(db.url, programId, n, res.pointsAnswered ?? 0, load.distinctMembers, window);
    checks.push(check);
    log(`round ${r} check: ${check.ok ? 'ok' : check.problems.join('; ')}`);
  }

  const apiRuns = results.filter((x) => x.phase === 'api');
  const baseRuns = results.filter((x) => x.phase === 'baseline');
  const apiRate = median(apiRuns.map((x) => x.rate));
  const baseRate = median(baseRuns.map((x) => x.rate));
  const ratio = apiRate / baseRate;
  const errors = apiRuns.reduce((s, x) => s + x.errors, 0);
  const baselineErrors = baseRuns.reduce((s, x) => s + x.errors, 0);
  const correct = checks.every((c) => c.ok);

  const out: string[] = [];
  out.push(
    `## Accrual ingest${mode === 'bulk' ? `, bulk (${batchSize} a request)` : ''}: ${n.toLocaleString('en-US')} accruals over ${members.toLocaleString('en-US')} members, concurrency ${concurrency}, ${rounds} round(s)`,
  );
  out.push('');
  out.push(
    `PostgreSQL ${db.embedded ? 'embedded' : 'DATABASE_URL'} on ${machine.fsType}; ${machine.cpus} CPUs, load ${machine.loadavg1m} at start; API batcher ${JSON.stringify(batcher)}, API pool ${values['api-pool']}; expiry rolling ${window}.`,
  );
  out.push('');
  out.push(
    markdownTable(
      [
        'round',
        'phase',
        'ops',
        'time s',
        'ops/s',
        'ops/s 10-90%',
        'p50 ms',
        'p99 ms',
        'max ms',
        'errors',
        'CPU s client',
        'CPU s API',
        'CPU s PG',
      ],
      results.map((x) => [
        x.round,
        x.phase === 'api' ? (mode === 'bulk' ? 'API bulk accruals' : 'API accruals') : goal.baseline,
        x.ops,
        x.seconds,
        x.rate,
        x.steadyRate,
        x.p50Ms,
        x.p99Ms,
        x.maxMs,
        x.errors,
        x.cpu.client,
        x.cpu.api ?? NaN,
        x.cpu.postgres ?? NaN,
      ]),
    ),
  );
  out.push('');
  out.push(
    markdownTable(
      ['figure (median over rounds)', 'value', 'goal', 'met'],
      [
        [
          'API accruals/s',
          round(apiRate, 0),
          `>= ${goal.rate.toLocaleString('en-US')}`,
          apiRate >= goal.rate ? 'yes' : 'NO',
        ],
        [`${goal.baseline} rows/s`, round(baseRate, 0), '', ''],
        [
          `ratio accruals/s / ${goal.baseline} rows/s`,
          round(ratio, 3),
          goal.ratio === null ? '(reported)' : `>= ${goal.ratio}`,
          goal.ratio === null ? '' : ratio >= goal.ratio ? 'yes' : 'NO',
        ],
        [
          mode === 'bulk' ? 'API p50 latency ms (a request)' : 'API p50 latency ms',
          median(apiRuns.map((x) => x.p50Ms)),
          '',
          '',
        ],
        ['API p99 latency ms', median(apiRuns.map((x) => x.p99Ms)), '', ''],
        ['API total time s', median(apiRuns.map((x) => x.seconds)), '', ''],
        ['API errors (all rounds)', errors, '0', errors === 0 ? 'yes' : 'NO'],
        ['CPU ms per accrual: client / API / PostgreSQL', cpuPerOp(apiRuns), '', ''],
        ['CPU ms per baseline row: client / PostgreSQL', cpuPerOp(baseRuns, false), '', ''],
        [
          `CPU-bound ceiling, accruals/s (${machine.cpus} CPUs / CPU per accrual, all three)`,
          cpuCeiling(apiRuns, machine.cpus),
          '',
          '',
        ],
        ['ledger check (earn entries, balances, deadlines)', correct ? 'ok' : 'FAILED', 'ok', correct ? 'yes' : 'NO'],
      ],
    ),
  );
  for (const x of results) if (x.errors) out.push(`\n${x.phase} round ${x.round} errors: ${x.errorSamples.join('; ')}`);
  for (const [i, c] of checks.entries()) if (!c.ok) out.push(`\nround ${i + 1} check failed: ${c.problems.join('; ')}`);
  process.stdout.write(`${out.join('\n')}\n\n`);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'accrual-ingest',
      mode,
      batchSize: mode === 'bulk' ? batchSize : null,
      accruals: n,
      members,
      concurrency,
      rounds,
      window,
      batcher,
      apiPool: Number(values['api-pool']),
      postgres: db.embedded ? 'embedded' : 'DATABASE_URL',
      fsType: machine.fsType,
      cpus: machine.cpus,
      loadavg1mAtStart: machine.loadavg1m,
      accrualsPerSec: apiRate,
      baselineRowsPerSec: baseRate,
      ratio: round(ratio, 3),
      goalRatio: goal.ratio,
      goalRate: goal.rate,
      p50Ms: median(apiRuns.map((x) => x.p50Ms)),
      p99Ms: median(apiRuns.map((x) => x.p99Ms)),
      errors,
      baselineErrors,
      correct,
      runs: results,
      checks,
    })}\n`,
  );
  return errors === 0 && baselineErrors === 0 && correct ? 0 : 1;
}

runMain(main);
