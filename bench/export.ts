/**
 * The export (docs/api.md, "Export"): `--rows` (1,000,000) ledger entries of one program,
 * bulk-loaded with set-based SQL, streamed through the API (bench/api-server.ts in a child process,
 * over HTTP on loopback) as NDJSON and as CSV, against a baseline measured in the same run: the
 * same rows read by the same query through pg-query-stream (db/exports.ts openExport) in this
 * process, without HTTP or formatting. Rows/s of each, the API server's peak RSS while it streams
 * (sampled from /proc every 50 ms) and its RSS before; rounds alternate, medians.
 *
 *   npm run bench:export -- [--rows 1000000] [--rounds 3]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openExport } from '../db/exports';
import { newSecret, putKey } from '../db/keys';
import { migrate } from '../db/migrate';
import { createPool } from '../db/pool';
import { freePort } from '../cli/stack/process';
import {
  benchDatabase,
  intFlag,
  log,
  machineNote,
  markdownTable,
  median,
  mib,
  onCleanup,
  round,
  rssBytes,
  runMain,
  spawnTsChild,
  workDir,
} from './lib';

const { values: flags } = parseArgs({ options: { rows: { type: 'string' }, rounds: { type: 'string' } } });
const ROWS = intFlag('rows', flags.rows ?? '1000000');
const ROUNDS = intFlag('rounds', flags.rounds ?? '3');
const PROGRAM = 'bench';
const FROM = '2026-03-01';
const TO = '2026-03-31';

/** The program and its entries, spread over March 2026, as the owner with the per-row triggers off (history, as bench/close.ts loads it). */
const LOAD = [
  `insert into programs (program_id, name, currency, currency_digits, created_by) values ('${PROGRAM}', 'Bench', 'USD', 2, 'bench')`,
  `insert into program_rule_versions (program_id, version, effective_at, rules, created_by)
   values ('${PROGRAM}', 1, '2024-01-01', '{"pointValueMinor":1,"earn":{"points":1,"perAmountMinor":100},"expectedRedemptionRate":0.8,"expiry":{"policy":"none"},"accounting":{"method":"relative_ssp"},"redemption":{"minPoints":1,"maxInvoiceShare":1,"cohortOrder":"oldest_first"},"chargebackWindow":"P120D"}', 'bench')`,
  `insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key, rule_version)
   select '${PROGRAM}', 'm-' || (i % 100000), case when i % 10 = 0 then 'redeem' else 'earn' end,
          case when i % 10 = 0 then -(i % 500 + 1) else i % 1000 + 1 end,
          '${FROM}T00:00:00Z'::timestamptz + ((i::bigint * 7919) % 2592000) * interval '1 second',
          'invoice:inv-' || i, 'billing-service', 'accrual:inv-' || i, 1
     from generate_series(1, $1::int) i`,
];

/** One export through the API: rows (lines) and seconds, and the server's RSS peak meanwhile. */
async function viaApi(port: number, key: string, accept: string, apiPid: number) {
  let peakRss = rssBytes(apiPid) ?? 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssBytes(apiPid) ?? 0)), 50);
  const t = performance.now();
  const res = await fetch(
    `http://127.0.0.1:${port}/v1/programs/${PROGRAM}/exports/ledger-entries?from=${FROM}&to=${TO}`,
    { headers: { authorization: `Bearer ${key}`, accept } },
  );
  if (res.status !== 200) throw new Error(`export answered ${res.status}: ${await res.text()}`);
  let lines = 0;
  let bytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  }
  const seconds = (performance.now() - t) / 1000;
  clearInterval(sampler);
  const rows = accept === 'text/csv' ? lines - 1 : lines;
  if (rows !== ROWS) throw new Error(`${accept}: ${rows} rows, not ${ROWS}`);
  return { seconds, bytes, peakRss };
}

runMain(async () => {
  const work = workDir('loyalty-bench-export-');
  const db = await benchDatabase(work, 'loyalty_bench_export');
  const pool = createPool({ connectionString: db.url, maxConnections: 4, applicationName: 'bench-export' });
  onCleanup('pool', () => pool.end());
  await migrate(pool);
  const t0 = performance.now();
  const client = await pool.connect();
  try {
    await client.query('set session_replication_role = replica');
    await client.query('set statement_timeout = 0');
    await client.query(LOAD[0]!);
    await client.query(LOAD[1]!);
    await client.query(LOAD[2]!, [ROWS]);
    await client.query('set session_replication_role = origin');
    await client.query('analyze ledger_entries');
  } finally {
    client.release();
  }
  log(`loaded ${ROWS} ledger entries in ${round((performance.now() - t0) / 1000, 1)} s`);
  const keyId = 'bench-finance';
  const key = newSecret(keyId);
  await putKey(pool, { keyId, secret: key, principal: 'bench-finance', roles: ['finance'] });

  const port = await freePort();
  const api = await spawnTsChild(
    join(__dirname, 'api-server.ts'),
    ['--database-url', db.url, '--port', String(port), '--pool-size', '4'],
    'api server',
  );
  const apiPid = api.child.pid!;
  const rssIdle = rssBytes(apiPid) ?? 0;

  const results = { baseline: [] as number[], ndjson: [] as number[], csv: [] as number[] };
  const peaks = { ndjson: [] as number[], csv: [] as number[] };
  const sizes = { ndjson: 0, csv: 0 };
  for (let r = 1; r <= ROUNDS; r++) {
    // the baseline: the same query, the same portal and batch size, rows counted and dropped
    const t = performance.now();
    const stream = await openExport(
      pool,
      'ledger-entries',
      { programId: PROGRAM, from: FROM, to: TO },
      { timeoutMs: 15 * 60_000, batchRows: 1000 },
    );
    let n = 0;
    for await (const _row of stream) n++;
    if (n !== ROWS) throw new Error(`baseline: ${n} rows, not ${ROWS}`);
    results.baseline.push(ROWS / ((performance.now() - t) / 1000));
    log(`round ${r} baseline (pg-query-stream, no HTTP): ${round(results.baseline.at(-1)!, 0)} rows/s`);
    for (const [name, accept] of [
      ['ndjson', 'application/x-ndjson'],
      ['csv', 'text/csv'],
    ] as const) {
      const x = await viaApi(port, key, accept, apiPid);
      results[name].push(ROWS / x.seconds);
      peaks[name].push(x.peakRss);
      sizes[name] = x.bytes;
      log(`round ${r} API ${name}: ${round(results[name].at(-1)!, 0)} rows/s, API RSS peak ${mib(x.peakRss)} MiB`);
    }
  }

  const base = median(results.baseline);
  const row = (name: 'ndjson' | 'csv', label: string) => [
    label,
    Math.round(median(results[name])),
    round(median(results[name]) / base, 2),
    mib(Math.max(...peaks[name])),
    round(sizes[name] / ROWS, 0),
  ];
  const m = machineNote(work);
  console.log(
    `\n### Export: ${ROWS.toLocaleString('en-US')} ledger entries (${new Date().toISOString().slice(0, 10)})\n\n` +
      `\`npm run bench:export -- --rows ${ROWS} --rounds ${ROUNDS}\`; medians of ${ROUNDS} rounds; ${m.cpus} CPUs, load ${m.loadavg1m} at the end, ${db.embedded ? 'embedded PostgreSQL' : 'DATABASE_URL'} on ${m.fsType}.\n\n` +
      markdownTable(
        ['read', 'rows/s', 'ratio to baseline', 'API peak RSS (MiB)', 'bytes/row'],
        [
          ['baseline: pg-query-stream loop, no HTTP, no formatting', Math.round(base), 1, '-', '-'],
          row('ndjson', 'API, NDJSON (Accept: application/x-ndjson)'),
          row('csv', 'API, CSV (Accept: text/csv)'),
        ],
      ) +
      `\nThe API process's RSS was ${mib(rssIdle)} MiB before the first export; the peak is the highest /proc reading (every 50 ms) while an export streamed.\n`,
  );
  console.log(
    JSON.stringify({
      bench: 'export',
      rows: ROWS,
      rounds: ROUNDS,
      baselineRowsPerSecond: results.baseline.map(Math.round),
      ndjsonRowsPerSecond: results.ndjson.map(Math.round),
      csvRowsPerSecond: results.csv.map(Math.round),
      medians: {
        baseline: Math.round(base),
        ndjson: Math.round(median(results.ndjson)),
        csv: Math.round(median(results.csv)),
      },
      apiRssBytes: { idle: rssIdle, ndjsonPeak: Math.max(...peaks.ndjson), csvPeak: Math.max(...peaks.csv) },
      bytesPerRow: { ndjson: sizes.ndjson / ROWS, csv: sizes.csv / ROWS },
      machine: m,
    }),
  );
  return 0;
});
