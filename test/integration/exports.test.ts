import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, test } from 'vitest';
import { JOURNAL_LINE_COLUMNS, LEDGER_ENTRY_COLUMNS } from '../../domain/export-format';
import {
  eventually,
  freshDatabase,
  httpClient,
  principalKey,
  programBody,
  startApi,
  uniqueId,
  type TestApi,
  type TestDatabase,
} from '../helpers/stack';

// The exports (issue 15, item 3; docs/api.md, "Export") through the real API on a real listening
// server and a real database: a few rows written through the API and exported exactly, then
// 1,000,000 ledger entries (and 200,000 journal lines) bulk-loaded as the owner and streamed as
// NDJSON and CSV, counted, checked in order and field by field, with the process's heap staying
// within a bound; a client that goes away and a database connection that dies mid-stream.
let db: TestDatabase;
let api: TestApi;
let call: ReturnType<typeof httpClient>;

beforeAll(async () => {
  db = await freshDatabase();
  api = await startApi(db.pool);
  call = httpClient(api);
});
afterAll(async () => {
  await api.close();
  await db.drop();
});

/**
 * The live heap (after a full collection) may grow by at most this while 1,000,000 rows (about 200
 * MB of NDJSON) stream through the server and the test's reader in this process: a memory bound,
 * not a timing one. An export held in memory would grow it by hundreds of MB.
 */
const HEAP_GROWTH_LIMIT_BYTES = 64 * 1024 * 1024;
const BULK_ROWS = 1_000_000;
const BULK_JOURNAL_ENTRIES = 100_000;
const NDJSON = 'application/x-ndjson';
/** every this many chunks (of about 64 KiB), a full collection and a reading of the live heap */
const HEAP_SAMPLE_CHUNKS = 512;
// a full collection on demand, to read the live heap rather than garbage not yet collected
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const liveHeap = () => {
  gc();
  return process.memoryUsage().heapUsed;
};
const CSV = 'text/csv';

async function program(): Promise<string> {
  const p = uniqueId('ex');
  const res = await call('POST', '/v1/programs', { body: programBody(p) });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return p;
}

const exportUrl = (p: string, kind: string, from: string, to: string) =>
  `${api.baseUrl}/v1/programs/${p}/exports/${kind}?from=${from}&to=${to}`;

/** A streamed GET: the answer's head, and its body read chunk by chunk as text. */
async function open(
  url: string,
  o: { accept?: string; role?: 'finance' | 'controller' | 'admin'; signal?: AbortSignal },
) {
  const headers: Record<string, string> = { authorization: `Bearer ${api.keys[o.role ?? 'finance']}` };
  if (o.accept !== undefined) headers.accept = o.accept;
  const res = await fetch(url, { headers, signal: o.signal });
  return res;
}

async function* textChunks(res: Response): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
    yield decoder.decode(chunk, { stream: true });
  const rest = decoder.decode();
  if (rest) yield rest;
}

/** A streaming RFC 4180 reader: records as they complete, quoted fields across chunks, "" as a quote. */
function csvReader(onRecord: (fields: string[]) => void): (chunk: string) => void {
  let field = '';
  let rec: string[] = [];
  let inQuotes = false;
  let afterQuote = false;
  return (chunk) => {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (inQuotes) {
        if (c === '"') {
          inQuotes = false;
          afterQuote = true;
        } else field += c;
        continue;
      }
      if (afterQuote && c === '"') {
        field += '"';
        inQuotes = true;
        afterQuote = false;
        continue;
      }
      afterQuote = false;
      if (c === ',') {
        rec.push(field);
        field = '';
      } else if (c === '\r') {
        assert.equal(chunk[i + 1] ?? '\n', '\n', 'a CR outside quotes only ends a record');
      } else if (c === '\n') {
        rec.push(field);
        onRecord(rec);
        rec = [];
        field = '';
      } else if (c === '"') {
        assert.equal(field, '', 'a quote opens a field only at its start');
        inQuotes = true;
      } else field += c;
    }
  };
}

/** Reads the whole body line by line (NDJSON) or record by record (CSV), sampling the live heap. */
async function readAll(res: Response, format: 'ndjson' | 'csv', onRow: (row: string[] | string) => void) {
  const heapBefore = liveHeap();
  let peak = heapBefore;
  let chunks = 0;
  let rest = '';
  const csv = csvReader(onRow);
  for await (const text of textChunks(res)) {
    if (format === 'csv') csv(text);
    else {
      const lines = (rest + text).split('\n');
      rest = lines.pop()!;
      for (const l of lines) onRow(l);
    }
    if (++chunks % HEAP_SAMPLE_CHUNKS === 0) peak = Math.max(peak, liveHeap());
  }
  assert.equal(rest, '', 'the NDJSON body ends with a newline');
  return { heapGrowth: peak - heapBefore, chunks, rss: process.memoryUsage().rss };
}

/** Checked-out connections of the API's pool (the tests' API runs its reports on it). */
const checkedOut = () => db.pool.totalCount - db.pool.idleCount;
/** Backends of the app's pool still inside an export's transaction or query. */
async function exportBackends(): Promise<number> {
  const { rows } = await db.adminPool.query(
    `select count(*)::int as n from pg_stat_activity
      where datname = current_database() and application_name = 'test' and pid <> pg_backend_pid()
        and state <> 'idle'`,
  );
  return rows[0].n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- a few rows written through the API, exported exactly ------------------------------------------

test('rows written through the API export with their exact values, in order, within the inclusive range, as NDJSON and CSV', async () => {
  const p = await program();
  // ids may hold commas and quotes (printable ASCII): the CSV must quote them
  const accruals = [
    { memberId: 'm,1', invoiceId: 'inv-"a",1', amountMinor: 12_345, occurredAt: '2026-11-01T00:00:00Z' },
    { memberId: 'm-2', invoiceId: 'inv-b', amountMinor: 500, occurredAt: '2026-11-30T23:59:59.999Z' },
    { memberId: 'm-2', invoiceId: 'inv-c', amountMinor: 700, occurredAt: '2026-11-15T12:00:00Z' },
    // just outside the range, at both ends
    { memberId: 'm-3', invoiceId: 'inv-before', amountMinor: 900, occurredAt: '2026-10-31T23:59:59.999Z' },
    { memberId: 'm-3', invoiceId: 'inv-after', amountMinor: 900, occurredAt: '2026-12-01T00:00:00Z' },
  ];
  for (const a of accruals) {
    const res = await call('POST', `/v1/programs/${p}/accruals`, { role: 'billing', body: a });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
  // what the API's own views say about these entries, and their idempotency keys
  const views = [];
  for (const m of ['m,1', 'm-2']) {
    const res = await call('GET', `/v1/programs/${p}/members/${encodeURIComponent(m)}/ledger`, { role: 'finance' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const e of res.body.entries) views.push({ memberId: m, ...e });
  }
  assert.equal(views.length, 3);
  const { rows: keys } = await db.pool.query(
    'select entry_id::text as id, idempotency_key from ledger_entries where program_id = $1',
    [p],
  );
  const idemOf = new Map(keys.map((k) => [k.id as string, k.idempotency_key as string]));
  const expected = views
    .sort((a, b) => a.occurredAt.localeCompare(b.occurredAt) || Number(a.entryId) - Number(b.entryId))
    .map((v) => ({
      entryId: v.entryId,
      memberId: v.memberId,
      type: v.type,
      points: v.points,
      occurredAt: v.occurredAt,
      recordedAt: v.recordedAt,
      reference: v.reference,
      actor: v.actor,
      idempotencyKey: idemOf.get(v.entryId),
      ruleVersion: v.ruleVersion,
      journalEntryId: v.journalEntryId,
    }));
  assert.deepEqual(
    expected.map((e) => e.occurredAt),
    ['2026-11-01T00:00:00.000Z', '2026-11-15T12:00:00.000Z', '2026-11-30T23:59:59.999Z'],
  );
  assert.ok(expected.every((e) => e.journalEntryId !== null && e.points > 0 && e.actor === 'test-billing'));

  const nd = await open(exportUrl(p, 'ledger-entries', '2026-11-01', '2026-11-30'), {});
  assert.equal(nd.status, 200);
  assert.equal(nd.headers.get('content-type'), 'application/x-ndjson; charset=utf-8');
  assert.match(
    nd.headers.get('content-disposition')!,
    new RegExp(`${p}-ledger-entries-2026-11-01-2026-11-30\\.ndjson`),
  );
  const text = await nd.text();
  assert.ok(text.endsWith('\n'));
  assert.deepEqual(
    text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l)),
    expected,
  );

  const csv = await open(exportUrl(p, 'ledger-entries', '2026-11-01', '2026-11-30'), {
    accept: CSV,
    role: 'controller',
  });
  assert.equal(csv.status, 200);
  assert.equal(csv.headers.get('content-type'), 'text/csv; charset=utf-8; header=present');
  const csvText = await csv.text();
  const first = expected[0]!;
  // the quoting itself, as bytes: RFC 4180, CRLF records
  assert.ok(csvText.startsWith(`${LEDGER_ENTRY_COLUMNS.map((c) => c.name).join(',')}\r\n`));
  assert.ok(
    csvText.includes(`\r\n${first.entryId},"m,1",earn,${first.points},2026-11-01T00:00:00.000Z,`),
    csvText.slice(0, 400),
  );
  assert.ok(
    csvText.includes(`,"invoice:inv-""a"",1",test-billing,"accrual:inv-""a"",1",1,`),
    JSON.stringify(csvText.slice(0, 600)),
  );
  const records: string[][] = [];
  csvReader((r) => records.push(r))(csvText);
  assert.deepEqual(records, [
    LEDGER_ENTRY_COLUMNS.map((c) => c.name),
    ...expected.map((e) => Object.values(e).map((v) => (v === null ? '' : String(v)))),
  ]);

  // the journal lines of the same entries, as the database holds them
  const { rows: lines } = await db.pool.query(
    `select l.journal_entry_id::text as "journalEntryId", l.line_no as "lineNo", j.kind, ll_ts(j.occurred_at) as "occurredAt",
            ll_ts(j.recorded_at) as "recordedAt", j.reference, j.actor, l.account, l.debit_minor::int as "debitMinor",
            l.credit_minor::int as "creditMinor", l.cohort
       from journal_entries j join journal_lines l using (journal_entry_id)
      where j.program_id = $1 and j.journal_entry_id = any($2::bigint[])
      order by j.occurred_at, j.journal_entry_id, l.line_no`,
    [p, expected.map((e) => e.journalEntryId)],
  );
  assert.ok(lines.length >= 6, 'each accrual posts a journal entry of at least two lines');
  const jl = await open(exportUrl(p, 'journal-lines', '2026-11-01', '2026-11-30'), { accept: `${NDJSON}` });
  assert.equal(jl.status, 200);
  const jlRows = (await jl.text())
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(jlRows, lines);
  assert.deepEqual(
    Object.keys(jlRows[0]),
    JOURNAL_LINE_COLUMNS.map((c) => c.name),
  );
  const sums = jlRows.reduce((s, l) => [s[0] + l.debitMinor, s[1] + l.creditMinor], [0, 0]);
  assert.equal(sums[0], sums[1], 'the lines balance');
});

test('Accept: NDJSON when absent or */*, CSV for text/csv or text/*, the higher weight wins; anything else 406 with the types offered', async () => {
  const p = await program();
  const url = exportUrl(p, 'ledger-entries', '2026-11-01', '2026-11-01');
  const type = async (accept?: string) => {
    const res = await open(url, { accept });
    const body = await res.text();
    return [res.status, res.headers.get('content-type'), body];
  };
  // an empty range: an empty NDJSON body, a CSV of its header alone
  assert.deepEqual(await type(undefined), [200, 'application/x-ndjson; charset=utf-8', '']);
  assert.deepEqual(await type('*/*'), [200, 'application/x-ndjson; charset=utf-8', '']);
  const header = `${LEDGER_ENTRY_COLUMNS.map((c) => c.name).join(',')}\r\n`;
  assert.deepEqual(await type('text/csv'), [200, 'text/csv; charset=utf-8; header=present', header]);
  assert.deepEqual(await type('text/*'), [200, 'text/csv; charset=utf-8; header=present', header]);
  assert.deepEqual(await type(`${NDJSON};q=0.2, text/csv;q=0.9`), [
    200,
    'text/csv; charset=utf-8; header=present',
    header,
  ]);
  assert.deepEqual(await type(`*/*, text/csv;q=0`), [200, 'application/x-ndjson; charset=utf-8', '']);
  for (const accept of ['application/json', 'text/html', `${NDJSON};q=0, text/csv;q=0`, 'nonsense']) {
    const res = await open(url, { accept });
    assert.equal(res.status, 406, accept);
    const body = (await res.json()) as { error: { code: string; details: { offered: string[] } } };
    assert.deepEqual(body.error.code, 'not_acceptable');
    assert.deepEqual(body.error.details.offered, [NDJSON, CSV]);
  }
  const jl = await open(exportUrl(p, 'journal-lines', '2026-11-01', '2026-11-30'), { accept: CSV });
  assert.equal(await jl.text(), `${JOURNAL_LINE_COLUMNS.map((c) => c.name).join(',')}\r\n`);
});

test('bad dates are 400 validation_failed, a range over 366 days 422, other roles 403, an unknown program 404, another program’s key 403', async () => {
  const p = await program();
  const get = (path: string, o: { role?: 'billing' | 'support' | 'legal' | 'finance'; key?: string } = {}) =>
    call('GET', `/v1/programs/${path}`, { role: o.role ?? 'finance', key: o.key });
  for (const q of [
    '',
    '?from=2026-01-01',
    '?to=2026-01-01',
    '?from=2026-02-30&to=2026-03-01',
    '?from=2026-1-1&to=2026-01-02',
    '?from=2026-01-01&to=2026-01-02&limit=10',
  ]) {
    const res = await get(`${p}/exports/ledger-entries${q}`);
    assert.deepEqual(
      [res.status, res.body.error?.code],
      [400, 'validation_failed'],
      `${q}: ${JSON.stringify(res.body)}`,
    );
  }
  // 366 days, both ends counted, is the most one export covers: a rule between two parameters,
  // which the query's schema cannot state, so 422, not 400
  assert.equal((await get(`${p}/exports/ledger-entries?from=2025-01-01&to=2026-01-01`)).status, 200);
  const tooLong = await get(`${p}/exports/journal-lines?from=2024-01-01&to=2025-01-01`);
  assert.deepEqual(
    [tooLong.status, tooLong.body.error?.code],
    [422, 'export_range_too_long'],
    '2024 is a leap year: 367 days',
  );
  assert.equal(tooLong.body.error.details.maxDays, 366);
  // from after to: an empty range, nothing exported (as the lists: not a refusal)
  const empty = await open(exportUrl(p, 'ledger-entries', '2026-02-01', '2026-01-31'), { accept: NDJSON });
  assert.deepEqual([empty.status, await empty.text()], [200, '']);
  for (const role of ['billing', 'support', 'legal'] as const) {
    const res = await get(`${p}/exports/ledger-entries?from=2026-01-01&to=2026-01-02`, { role });
    assert.deepEqual([res.status, res.body.error?.code], [403, 'forbidden'], role);
  }
  const unknown = await get('no-such-program/exports/journal-lines?from=2026-01-01&to=2026-01-02');
  assert.deepEqual([unknown.status, unknown.body.error?.code], [404, 'not_found']);
  const other = await principalKey(db.pool, ['finance'], { programs: [await program()] });
  const scoped = await get(`${p}/exports/ledger-entries?from=2026-01-01&to=2026-01-02`, { key: other.key });
  assert.deepEqual([scoped.status, scoped.body.error?.code], [403, 'program_not_allowed']);
});

// ---- 1,000,000 rows ------------------------------------------------------------------------------

/**
 * Bulk history as the owner, in one statement a table: the per-row audit and rule-version triggers
 * would take the better part of an hour for a million rows (each entry hashes into its audit
 * chain), so they are off for the load (session_replication_role, as bench/close.ts loads its
 * history); the constraints (checks, unique keys) hold, and every row is valid as the write paths
 * would make it: a program that exists, a rule version set, balanced journal entries.
 */
async function bulkLoad(p: string): Promise<void> {
  const c = await db.adminPool.connect();
  try {
    await c.query('set statement_timeout = 0');
    await c.query('set session_replication_role = replica');
    await c.query(
      `insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key, rule_version)
       select $1, 'b-' || (i % 1000), case when i % 10 = 0 then 'redeem' else 'earn' end,
              case when i = 1 then 9007199254740993 when i % 10 = 0 then -(i % 500 + 1) else i % 1000 + 1 end,
              '2026-03-01T00:00:00Z'::timestamptz + ((i::bigint * 7919) % 500000) * interval '1 second',
              'r-' || i || case when i % 100000 = 0 then E'\\nsecond line, "quoted"' else '' end,
              'bulk-loader', 'bulk:' || i, 1
         from generate_series(1, $2::int) i`,
      [p, BULK_ROWS],
    );
    await c.query(
      `insert into journal_entries (program_id, kind, occurred_at, reference, actor, idempotency_key, debit_minor, credit_minor)
       select $1, 'accrual', '2026-03-01T00:00:00Z'::timestamptz + ((i::bigint * 7919) % 50000) * interval '1 second',
              'j-' || i, 'bulk-loader', 'bulk-j:' || i, i, i
         from generate_series(1, $2::int) i`,
      [p, BULK_JOURNAL_ENTRIES],
    );
    await c.query(
      `insert into journal_lines (journal_entry_id, line_no, account, debit_minor, credit_minor, cohort)
       select j.journal_entry_id, n, case when n = 1 then 'revenue' else 'loyalty_contract_liability' end,
              case when n = 1 then j.debit_minor else 0 end, case when n = 2 then j.credit_minor else 0 end,
              case when n = 2 then '2026-Q1' end
         from journal_entries j, generate_series(1, 2) n where j.program_id = $1`,
      [p],
    );
  } finally {
    await c.query('set session_replication_role = origin').catch(() => undefined);
    c.release();
  }
  await db.adminPool.query('analyze ledger_entries, journal_entries, journal_lines');
}

/** The fields bulk row i was loaded with (bulkLoad), as the export writes them (text). */
function bulkRow(i: number) {
  const off = ((i * 7919) % 500000) * 1000;
  return {
    memberId: `b-${i % 1000}`,
    type: i % 10 === 0 ? 'redeem' : 'earn',
    points: i === 1 ? '9007199254740993' : String(i % 10 === 0 ? -((i % 500) + 1) : (i % 1000) + 1),
    occurredAt: new Date(Date.UTC(2026, 2, 1) + off).toISOString(),
    reference: `r-${i}${i % 100000 === 0 ? '\nsecond line, "quoted"' : ''}`,
    actor: 'bulk-loader',
    idempotencyKey: `bulk:${i}`,
    ruleVersion: '1',
  };
}

/** The rows whose every field is checked (all are counted and checked in order): the big number's, the quoted references', and every 97th. */
const sampled = (i: number) => i === 1 || i % 97 === 0 || i % 100000 === 0;

let bulk: string;

test('1,000,000 ledger entries stream as NDJSON and as CSV: every row once, in order, each field as loaded, the heap within its bound', async () => {
  bulk = await program();
  const t0 = Date.now();
  await bulkLoad(bulk);
  console.log(
    `bulk load: ${BULK_ROWS} ledger entries, ${BULK_JOURNAL_ENTRIES * 2} journal lines in ${Date.now() - t0} ms`,
  );
  const url = exportUrl(bulk, 'ledger-entries', '2026-03-01', '2026-03-31');

  // NDJSON: each line a JSON object; the big number's digits as the database holds them
  {
    const res = await open(url, {});
    assert.equal(res.status, 200);
    let n = 0;
    let sumI = 0;
    let prev: [string, bigint] = ['', -1n];
    let bigSeen = false;
    let fields = 0;
    const t = Date.now();
    const { heapGrowth, chunks, rss } = await readAll(res, 'ndjson', (line) => {
      const o = JSON.parse(line as string);
      const i = Number(/^r-(\d+)/.exec(o.reference)![1]);
      const key: [string, bigint] = [o.occurredAt, BigInt(o.entryId)];
      assert.ok(key[0] > prev[0] || (key[0] === prev[0] && key[1] > prev[1]), `row ${n} after ${prev.join(' ')}`);
      prev = key;
      if (sampled(i)) {
        const want = bulkRow(i);
        if (i === 1) {
          assert.ok((line as string).includes(`"points":9007199254740993,`), line as string);
          bigSeen = true;
        }
        assert.match(o.recordedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.deepEqual(
          { ...o, entryId: undefined, recordedAt: undefined, points: i === 1 ? want.points : String(o.points) },
          { ...want, entryId: undefined, recordedAt: undefined, ruleVersion: 1, journalEntryId: null },
        );
        fields++;
      }
      n++;
      sumI += i;
    });
    console.log(
      `NDJSON: ${n} rows in ${Date.now() - t} ms, live heap growth ${(heapGrowth / 2 ** 20).toFixed(1)} MiB over ${chunks} chunks, RSS ${(rss / 2 ** 20).toFixed(0)} MiB (bound ${HEAP_GROWTH_LIMIT_BYTES / 2 ** 20} MiB)`,
    );
    assert.equal(n, BULK_ROWS);
    assert.equal(sumI, (BULK_ROWS * (BULK_ROWS + 1)) / 2, 'every row once');
    assert.ok(bigSeen);
    assert.ok(fields > BULK_ROWS / 100, `${fields} rows checked field by field`);
    assert.ok(heapGrowth < HEAP_GROWTH_LIMIT_BYTES, `heap grew by ${heapGrowth} bytes`);
  }

  // CSV: a header, then one record per entry; the references with a line break, a comma and quotes come back whole
  {
    const res = await open(url, { accept: CSV, role: 'controller' });
    assert.equal(res.status, 200);
    let n = -1;
    let sumI = 0;
    let quoted = 0;
    let prevAt = '';
    const t = Date.now();
    const { heapGrowth, chunks, rss } = await readAll(res, 'csv', (rec) => {
      const r = rec as string[];
      if (n++ === -1)
        return assert.deepEqual(
          r,
          LEDGER_ENTRY_COLUMNS.map((c) => c.name),
        );
      assert.equal(r.length, LEDGER_ENTRY_COLUMNS.length);
      const i = Number(/^r-(\d+)/.exec(r[6]!)![1]);
      if (sampled(i)) {
        const w = bulkRow(i);
        assert.deepEqual(r.slice(1, 11), [
          w.memberId,
          w.type,
          w.points,
          w.occurredAt,
          r[5],
          w.reference,
          w.actor,
          w.idempotencyKey,
          w.ruleVersion,
          '', // no journal entry: an empty field
        ]);
        if (w.reference.includes('\n')) quoted++;
      }
      assert.ok(r[4]! >= prevAt, 'by business time');
      prevAt = r[4]!;
      sumI += i;
    });
    console.log(
      `CSV: ${n} rows in ${Date.now() - t} ms, live heap growth ${(heapGrowth / 2 ** 20).toFixed(1)} MiB over ${chunks} chunks, RSS ${(rss / 2 ** 20).toFixed(0)} MiB`,
    );
    assert.equal(n, BULK_ROWS);
    assert.equal(sumI, (BULK_ROWS * (BULK_ROWS + 1)) / 2);
    assert.equal(quoted, BULK_ROWS / 100000);
    assert.ok(heapGrowth < HEAP_GROWTH_LIMIT_BYTES, `heap grew by ${heapGrowth} bytes`);
  }

  // the journal lines: two a journal entry, in order, balanced
  {
    const res = await open(exportUrl(bulk, 'journal-lines', '2026-03-01', '2026-03-31'), { accept: CSV });
    let n = -1;
    let debit = 0n;
    let credit = 0n;
    let prev = '';
    await readAll(res, 'csv', (rec) => {
      const r = rec as string[];
      if (n++ === -1) return;
      const key = `${r[3]} ${r[0]!.padStart(12, '0')} ${r[1]}`;
      assert.ok(key > prev, `${key} after ${prev}`);
      prev = key;
      debit += BigInt(r[8]!);
      credit += BigInt(r[9]!);
      assert.equal(r[10], r[1] === '2' ? '2026-Q1' : '');
    });
    assert.equal(n, BULK_JOURNAL_ENTRIES * 2);
    assert.equal(debit, credit);
    assert.equal(debit, BigInt((BULK_JOURNAL_ENTRIES * (BULK_JOURNAL_ENTRIES + 1)) / 2));
  }
  await eventually(
    'the connections back in the pool',
    async () => checkedOut() === 0 && (await exportBackends()) === 0,
  );
});

test('a client that goes away mid-stream gives the connection back; at most two exports at a time, the third 429', async () => {
  assert.ok(bulk, 'after the 1,000,000-row test');
  const url = exportUrl(bulk, 'ledger-entries', '2026-03-01', '2026-03-31');
  const idleBefore = db.pool.idleCount;
  for (let round = 0; round < 3; round++) {
    const ac = new AbortController();
    const res = await open(url, { signal: ac.signal });
    assert.equal(res.status, 200);
    let chunks = 0;
    for await (const _ of textChunks(res)) if (++chunks === 5) break;
    ac.abort();
    await eventually(
      'the export connection back in the pool, idle',
      async () => checkedOut() === 0 && (await exportBackends()) === 0,
    );
  }
  assert.ok(db.pool.idleCount >= Math.min(idleBefore, 1), 'given back, not discarded');

  // two exports held open (their clients not reading), and a third refused
  const held = [new AbortController(), new AbortController()];
  for (const ac of held) assert.equal((await open(url, { signal: ac.signal })).status, 200);
  const third = await call('GET', `/v1/programs/${bulk}/exports/journal-lines?from=2026-03-01&to=2026-03-31`, {
    role: 'finance',
  });
  assert.deepEqual([third.status, third.body.error?.code], [429, 'too_many_exports']);
  assert.equal(third.headers.get('retry-after'), '5');
  // HEAD answers the headers and opens no export: not refused while two run
  const head = await fetch(url, {
    method: 'HEAD',
    headers: { authorization: `Bearer ${api.keys.finance}`, accept: CSV },
  });
  assert.deepEqual([head.status, head.headers.get('content-type')], [200, 'text/csv; charset=utf-8; header=present']);
  assert.equal(checkedOut(), 2, 'the two held exports only');
  for (const ac of held) ac.abort();
  await eventually('both back', async () => checkedOut() === 0 && (await exportBackends()) === 0);
  // and the count came down: exports run again
  const again = await open(exportUrl(bulk, 'ledger-entries', '2026-03-02', '2026-03-02'), { accept: CSV });
  assert.equal(again.status, 200);
  assert.ok((await again.text()).split('\r\n').length > 2);
});

test('a database connection that dies mid-stream aborts the response: the body never ends cleanly', async () => {
  const res = await open(exportUrl(bulk, 'ledger-entries', '2026-03-01', '2026-03-31'), {});
  assert.equal(res.status, 200);
  const chunks = textChunks(res);
  let rows = 0;
  for (let i = 0; i < 3; i++) rows += ((await chunks.next()).value as string).split('\n').length - 1;
  const { rows: killed } = await db.adminPool.query(
    `select pg_terminate_backend(pid) as ok from pg_stat_activity
      where datname = current_database() and application_name = 'test' and query ilike '%from ledger_entries e%'
        and pid <> pg_backend_pid()`,
  );
  assert.equal(killed.length, 1, 'the export had its connection');
  let failed: Error | undefined;
  try {
    for (;;) {
      const next = await chunks.next();
      if (next.done) break;
      rows += (next.value as string).split('\n').length - 1;
      await sleep(0);
    }
  } catch (e) {
    failed = e as Error;
  }
  assert.ok(failed, `the body ended cleanly after ${rows} rows`);
  assert.ok(rows < BULK_ROWS);
  await eventually('the dead connection discarded', async () => checkedOut() === 0);
  // and the next export runs
  const again = await open(exportUrl(bulk, 'ledger-entries', '2026-03-02', '2026-03-02'), {});
  assert.equal(again.status, 200);
  assert.ok((await again.text()).length > 0);
});
