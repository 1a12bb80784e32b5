/**
 * Close of a big program: `--members` (1,000,000) members and `--entries` (10,000,000) ledger
 * entries over 8 quarters (2024-Q3 to 2026-Q2), bulk-loaded with set-based SQL. The first seven
 * quarters are recorded as locked; the bench times the close of 2026-Q2 from the workflow's start
 * to the moment it waits for approval (freeze, both aggregate queries, the chain ladder, the
 * proposal), against one SELECT that aggregates the same entries by cohort and quarter, in the
 * same run. Rounds alternate; medians.
 *
 *   npm run bench:close -- [--members 1000000] [--entries 10000000] [--rounds 3]
 */
import { recordDecisionRequest } from '../db/approval-requests';
import { newSecret, putKey, type Principal } from '../db/keys';
import { closeWorkflowId } from '../domain/workflow-ids';
import pino from 'pino';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { freePort } from '../cli/stack/process';
import { startTemporalDevServer } from '../cli/stack/temporal-dev-server';
import { migrate } from '../db/migrate';
import { createPool, longQuery } from '../db/pool';
import { startSimulators } from '../simulators';
import { createLoyaltyWorker } from '../workers/worker';
import { closeQuarter, progressQuery } from '../workflows/close';
import {
  benchDatabase,
  intFlag,
  log,
  machineNote,
  markdownTable,
  median,
  onCleanup,
  round,
  runMain,
  workDir,
} from './lib';

const { values: flags } = parseArgs({
  options: { members: { type: 'string' }, entries: { type: 'string' }, rounds: { type: 'string' } },
});
const MEMBERS = intFlag('members', flags.members ?? '1000000');
const ENTRIES = intFlag('entries', flags.entries ?? '10000000');
const ROUNDS = intFlag('rounds', flags.rounds ?? '3');
const PROGRAM = 'bench';
const QUARTERS = ['2024-Q3', '2024-Q4', '2025-Q1', '2025-Q2', '2025-Q3', '2025-Q4', '2026-Q1', '2026-Q2'];
const PERIOD = '2026-Q2';
/** who starts the close: a finance key of its own, as the API would have authenticated it */
const BENCH_FINANCE: Principal = {
  keyId: 'bench-finance',
  name: 'bench-finance',
  kind: 'person',
  roles: ['finance'],
  programs: null,
};

// Each member's entries cycle through ten kinds: six earns (one per quarter Q0..Q5, 100 points of
// that quarter's cohort), three redemptions of 50 (in Q6, Q7, Q7, from cohorts Q0, Q1, Q2) and an
// expiry of the Q3 cohort's 100 (in Q7). Journal entries: one per ten earns (the allocation) and
// one per ten redemptions (the recognition), with cohort lines, as the write paths post them.
type Param = 'quarters' | 'starts' | 'members' | 'entries';
const LOAD: Array<{ sql: string; params: Param[] }> = [
  {
    sql: `insert into programs (program_id, name, currency, currency_digits, created_by) values ('${PROGRAM}', 'Bench', 'USD', 2, 'bench')`,
    params: [],
  },
  {
    sql: `insert into program_rule_versions (program_id, version, effective_at, rules, created_by)
   values ('${PROGRAM}', 1, '2024-01-01', '{"pointValueMinor":1,"earn":{"points":1,"perAmountMinor":100},"expectedRedemptionRate":0.8,"expiry":{"policy":"none"},"accounting":{"method":"relative_ssp"},"redemption":{"minPoints":1,"maxInvoiceShare":1,"cohortOrder":"oldest_first"},"chargebackWindow":"P120D"}', 'bench')`,
    params: [],
  },
  {
    sql: `insert into cohorts (program_id, cohort, ultimate_redemption_rate) select '${PROGRAM}', q, 0.8 from unnest($1::text[]) q`,
    params: ['quarters'],
  },
  {
    sql: `insert into members (program_id, member_id, balance) select '${PROGRAM}', 'm-' || i, 0 from generate_series(0, $1 - 1) i`,
    params: ['members'],
  },
  // k = entry number; member k % M; kind (k / M) % 10
  {
    sql: `insert into ledger_entries (entry_id, program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
   select k + 1, '${PROGRAM}', 'm-' || (k % $2),
          case when r < 6 then 'earn' when r < 9 then 'redeem' else 'expire' end,
          case when r < 6 then 100 when r < 9 then -50 else -100 end,
          (($1::text[])[case when r < 6 then r + 1 when r = 6 then 7 else 8 end] || '')::text::timestamptz,
          'bench', 'bench', 'bench:' || k
     from (select k, (k / $2) % 10 as r from generate_series(0, $3 - 1) k) g`,
    params: ['starts', 'members', 'entries'],
  },
  {
    sql: `insert into ledger_entry_cohorts (entry_id, cohort, points)
   select e.entry_id, ($1::text[])[case when r < 6 then r + 1 when r = 6 then 1 when r = 7 then 2 when r = 8 then 3 else 4 end], e.points
     from (select entry_id, points, ((entry_id - 1) / $2) % 10 as r from ledger_entries where program_id = '${PROGRAM}') e`,
    params: ['quarters', 'members'],
  },
  {
    sql: `insert into journal_entries (journal_entry_id, program_id, kind, occurred_at, reference, actor, idempotency_key, debit_minor, credit_minor)
   select b + 1, '${PROGRAM}', case when r < 6 then 'accrual' else 'recognition' end, ($1::text[])[case when r < 6 then r + 1 when r = 6 then 7 else 8 end]::timestamptz,
          'bench', 'bench', 'bench-j:' || b, case when r < 6 then 794 else 496 end, case when r < 6 then 794 else 496 end
     from (select b, ((b * 10) / $2) % 10 as r from generate_series(0, $3 / 10 - 1) b) g where r < 9`,
    params: ['starts', 'members', 'entries'],
  },
  {
    sql: `insert into journal_lines (journal_entry_id, line_no, account, debit_minor, credit_minor, cohort)
   select j.journal_entry_id, n, case when j.kind = 'accrual' then (case when n = 1 then 'revenue' else 'loyalty_contract_liability' end)
                                      else (case when n = 1 then 'loyalty_contract_liability' else 'loyalty_revenue' end) end,
          case when n = 1 then j.debit_minor else 0 end, case when n = 2 then j.credit_minor else 0 end,
          ($1::text[])[case when r < 6 then r + 1 when r = 6 then 1 when r = 7 then 2 else 3 end]
     from (select journal_entry_id, kind, debit_minor, credit_minor, (((journal_entry_id - 1) * 10) / $2) % 10 as r from journal_entries where program_id = '${PROGRAM}') j,
          generate_series(1, 2) n`,
    params: ['quarters', 'members'],
  },
  {
    sql: `insert into cohort_stripes (program_id, cohort, stripe, points_issued, points_redeemed, points_expired, allocated_minor, allocated_micro)
   select '${PROGRAM}', c.cohort, 0,
          sum(case when e.type = 'earn' then c.points else 0 end), -sum(case when e.type = 'redeem' then c.points else 0 end),
          -sum(case when e.type = 'expire' then c.points else 0 end), 0, 0
     from ledger_entries e join ledger_entry_cohorts c using (entry_id) group by c.cohort`,
    params: [],
  },
  {
    sql: `update cohort_stripes s set allocated_minor = a.alloc, allocated_micro = a.alloc * 1000000
     from (select l.cohort, sum(l.credit_minor) as alloc from journal_lines l join journal_entries j using (journal_entry_id)
            where j.kind = 'accrual' and l.account = 'loyalty_contract_liability' group by 1) a where s.cohort = a.cohort`,
    params: [],
  },
  {
    sql: `update members m set balance = b.total from (select member_id, sum(points) as total from ledger_entries group by 1) b where m.member_id = b.member_id`,
    params: [],
  },
];

runMain(async () => {
  const work = workDir('loyalty-bench-close-');
  const db = await benchDatabase(work, 'loyalty_bench_close');
  const pool = createPool({ connectionString: db.url, maxConnections: 10, applicationName: 'bench-close' });
  onCleanup('pool', () => pool.end());
  await migrate(pool);

  const starts = QUARTERS.map(
    (q) => `${q.slice(0, 4)}-${String((Number(q.slice(-1)) - 1) * 3 + 1).padStart(2, '0')}-15T12:00:00Z`,
  );
  const t0 = performance.now();
  const client = await pool.connect();
  try {
    await client.query('set session_replication_role = replica'); // the loader writes history: no triggers, no FK checks
    await client.query('set statement_timeout = 0');
    const values: Record<Param, unknown> = { quarters: QUARTERS, starts, members: MEMBERS, entries: ENTRIES };
    for (const { sql, params } of LOAD) {
      const s = performance.now();
      await client.query(
        sql,
        params.map((p) => values[p]),
      );
      log(`loaded: ${sql.trim().split('\n')[0]!.slice(0, 70)}... ${round((performance.now() - s) / 1000, 1)} s`);
    }
    // the first seven quarters are closed
    await client.query(`update programs set locked_until = $2 where program_id = $1`, [
      PROGRAM,
      '2026-04-01T00:00:00Z',
    ]);
    await client.query(
      `insert into closes (program_id, period, status, workflow_id, started_by, approved_by, approved_at, booked_at, report)
       select $1, q, 'locked', 'close:bench:' || q, 'bench-finance', 'bench-controller', now(), now(), '{}' from unnest($2::text[]) q`,
      [PROGRAM, QUARTERS.slice(0, 7)],
    );
    await client.query('set session_replication_role = origin');
    await client.query('analyze');
  } finally {
    client.release();
  }
  const { rows: counts } =
    await pool.query(`select (select count(*) from ledger_entries)::int as entries, (select count(*) from members)::int as members,
    (select count(*) from journal_lines)::int as lines`);
  log(
    `loaded ${counts[0].entries} entries, ${counts[0].members} members, ${counts[0].lines} journal lines in ${round((performance.now() - t0) / 1000, 1)} s`,
  );

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
  const native = await NativeConnection.connect({ address: temporal.address });
  const worker = await createLoyaltyWorker({
    log: pino({ level: 'warn' }),
    connection: native,
    namespace: 'default',
    taskQueue: 'bench-close',
    pool,
    maxConcurrentActivities: 10,
    maxCachedWorkflows: 100,
    services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 5000 },
  });
  const running = worker.run();
  onCleanup('worker', async () => {
    worker.shutdown();
    await running;
    await native.close();
  });
  const connection = await Connection.connect({ address: temporal.address });
  onCleanup('client', () => connection.close());
  const temporalClient = new Client({ connection, namespace: 'default' });

  await putKey(pool, {
    keyId: BENCH_FINANCE.keyId,
    secret: newSecret(BENCH_FINANCE.keyId),
    principal: BENCH_FINANCE.name,
    roles: ['finance'],
  });
  const baselineSql = `select c.cohort, to_char(e.occurred_at at time zone 'UTC', 'YYYY-"Q"Q') as quarter, e.type, sum(c.points), count(*)
                         from ledger_entries e join ledger_entry_cohorts c using (entry_id) where e.program_id = $1 group by 1, 2, 3`;
  const baseline: number[] = [];
  const close: number[] = [];
  let proposal: unknown = null;
  for (let r = 1; r <= ROUNDS; r++) {
    let s = performance.now();
    await longQuery(pool, baselineSql, [PROGRAM]);
    baseline.push((performance.now() - s) / 1000);
    log(`round ${r} baseline SELECT: ${round(baseline.at(-1)!, 2)} s`);

    const workflowId = `close:${PROGRAM}:${PERIOD}:r${r}`;
    s = performance.now();
    // as the API does: a start request of a finance key, which the workflow verifies (workflows/close.ts)
    const startRequestId = await recordDecisionRequest(pool, BENCH_FINANCE, {
      kind: 'close_start',
      programId: PROGRAM,
      subject: PERIOD,
      workflowId: closeWorkflowId(PROGRAM, PERIOD),
      decision: 'request',
      comment: null,
      detail: { override: null },
    });
    const handle = await temporalClient.workflow.start(closeQuarter, {
      workflowId,
      taskQueue: 'bench-close',
      args: [
        {
          programId: PROGRAM,
          period: PERIOD,
          startedBy: 'bench-finance',
          startRequestId,
          override: null,
          escalateAfter: 'P3D',
          cancelAfter: 'P7D',
        },
      ],
    });
    for (;;) {
      const p = await handle.query(progressQuery).catch(() => null);
      if (p?.step === 'awaiting_approval') {
        proposal = p.proposal;
        break;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    close.push((performance.now() - s) / 1000);
    log(`round ${r} close to the approval wait: ${round(close.at(-1)!, 2)} s`);
    // undo the freeze so the next round closes the same quarter again
    await handle.terminate('bench round over');
    await pool.query(`delete from closes where program_id = $1 and period = $2`, [PROGRAM, PERIOD]);
    await pool.query(`update programs set locked_until = '2026-04-01T00:00:00Z' where program_id = $1`, [PROGRAM]);
  }

  const closeS = round(median(close), 2);
  const baseS = round(median(baseline), 2);
  const ratio = round(median(close) / median(baseline), 2);
  const note = machineNote(work);
  process.stdout.write(
    `\n## Close of ${counts[0].members.toLocaleString('en-US')} members, ${counts[0].entries.toLocaleString('en-US')} ledger entries, 8 quarters\n\n`,
  );
  process.stdout.write(
    `2 CPUs, load ${note.loadavg1m} at start; ${db.embedded ? 'embedded PostgreSQL' : 'PostgreSQL of DATABASE_URL'}; ${counts[0].lines.toLocaleString('en-US')} journal lines.\n\n`,
  );
  process.stdout.write(
    markdownTable(
      ['round', 'close to the approval wait s', 'baseline SELECT s'],
      close.map((c, i) => [i + 1, round(c, 2), round(baseline[i]!, 2)]),
    ),
  );
  process.stdout.write(
    `\n${markdownTable(
      ['figure (median)', 'value', 'goal', 'met'],
      [
        ['close to the approval wait, s', closeS, '<= 60', closeS <= 60 ? 'yes' : 'NO'],
        ['baseline SELECT, s', baseS, '', ''],
        ['close / baseline SELECT', ratio, '<= 4', ratio <= 4 ? 'yes' : 'NO'],
      ],
    )}\n`,
  );
  process.stdout.write(
    JSON.stringify({
      bench: 'close',
      members: counts[0].members,
      entries: counts[0].entries,
      closeSeconds: close,
      baselineSeconds: baseline,
      ratio,
      proposal,
    }) + '\n',
  );
  return 0;
});
