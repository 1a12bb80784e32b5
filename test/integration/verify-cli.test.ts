import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, test } from 'vitest';
import { freshDatabase, httpClient, programBody, startApi, uniqueId, type TestApi } from '../helpers/stack';

// `loyalty verify` exits 0 on a sound ledger and 1, naming the broken invariant, on a tampered one.
let db: Awaited<ReturnType<typeof freshDatabase>>;
let api: TestApi;

beforeAll(async () => {
  db = await freshDatabase();
  api = await startApi(db.pool);
});
afterAll(async () => {
  await api.close();
  await db.drop();
});

const verify = () =>
  spawnSync(
    process.execPath,
    ['--import', 'tsx', join(__dirname, '..', '..', 'cli', 'index.ts'), 'verify', '--database-url', db.url],
    { encoding: 'utf8' },
  );

test('loyalty verify: clean, then a tampered balance and an append-only violation attempt', async () => {
  const call = httpClient(api);
  const programId = uniqueId('v');
  await call('POST', '/v1/programs', { body: programBody(programId) });
  await call('POST', `/v1/programs/${programId}/accruals`, {
    role: 'billing',
    body: { memberId: 'm', invoiceId: 'i', amountMinor: 10_000, occurredAt: '2026-10-01T00:00:00Z' },
  });

  const clean = verify();
  assert.equal(clean.status, 0, clean.stdout + clean.stderr);
  assert.match(clean.stdout, /invariants hold/);

  await assert.rejects(db.pool.query(`update ledger_entries set points = points + 1`), /append_only/);
  await assert.rejects(db.pool.query(`delete from journal_lines`), /append_only/);

  await db.pool.query(`update members set balance = balance + 5 where program_id = $1`, [programId]);
  const broken = verify();
  assert.equal(broken.status, 1);
  assert.match(broken.stdout, /VIOLATION member balance equals the sum of its ledger entries: 1 row/);
});
