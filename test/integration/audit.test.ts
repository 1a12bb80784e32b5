import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, test } from 'vitest';
import { verifyInvariants } from '../../db/verify';
import { freshDatabase, httpClient, programBody, startApi, uniqueId, type TestApi } from '../helpers/stack';

// The audit trail: changes to points, rules, keys and periods, each with its actor and key,
// readable through the CLI and the API; an edited or deleted row is caught by `loyalty verify`.
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

const cli = (...args: string[]) =>
  spawnSync(
    process.execPath,
    ['--import', 'tsx', join(__dirname, '..', '..', 'cli', 'index.ts'), ...args, '--database-url', db.url],
    { encoding: 'utf8' },
  );

test('every change is in the trail with actor and key; the CLI and the API read it; verify catches an edited or deleted row', async () => {
  const call = httpClient(api);
  const p = uniqueId('au');
  assert.equal((await call('POST', '/v1/programs', { body: programBody(p) })).status, 201);
  assert.equal(
    (
      await call('POST', `/v1/programs/${p}/accruals`, {
        role: 'billing',
        body: { memberId: 'm-1', invoiceId: 'inv-1', amountMinor: 10_000, occurredAt: '2026-10-01T00:00:00Z' },
      })
    ).status,
    201,
  );
  assert.equal(
    (
      await call('POST', `/v1/programs/${p}/refunds`, {
        role: 'billing',
        body: {
          memberId: 'm-1',
          invoiceId: 'inv-1',
          refundId: 'r-1',
          amountMinor: 5_000,
          occurredAt: '2026-10-02T00:00:00Z',
        },
      })
    ).status,
    201,
  );
  assert.equal(cli('keys', 'create', '--principal', 'carol', '--roles', 'support').status, 0);

  const trail = cli('audit', '--program', p, '--json');
  assert.equal(trail.status, 0, trail.stderr);
  const rows = JSON.parse(trail.stdout) as Array<{
    action: string;
    actor: string;
    subject: string;
    idempotencyKey: string | null;
    after: Record<string, unknown>;
  }>;
  assert.deepEqual(
    rows.map((r) => r.action),
    ['insert_program', 'rule_version', 'earn', 'earn_reversal'],
  );
  assert.deepEqual(
    [rows[2]!.actor, rows[2]!.idempotencyKey, rows[2]!.after.points],
    ['test-billing', 'accrual:inv-1', 100],
  );
  assert.equal(rows[0]!.actor, 'test-admin');
  const member = cli('audit', '--program', p, '--member', 'm-1');
  assert.match(member.stdout, /test-billing\s+earn\s+ledger_entry:\d+ \{"points":100/);
  const keys = JSON.parse(cli('audit', '--json', '--limit', '1000').stdout) as Array<{
    action: string;
    actor: string;
    after: { principal?: string };
  }>;
  const created = keys.find((r) => r.action === 'key_created' && r.after.principal === 'carol')!;
  assert.match(created.actor, /^cli:/);

  const viaApi = await call('GET', `/v1/programs/${p}/audit?memberId=m-1`, { role: 'finance' });
  assert.deepEqual(
    viaApi.body.entries.map((r: { action: string }) => r.action),
    ['earn', 'earn_reversal'],
  );
  assert.equal((await call('GET', `/v1/programs/${p}/audit`, { role: 'support' })).status, 403);
  assert.equal((await call('GET', `/v1/programs/${p}/audit?since=yesterday`, { role: 'finance' })).status, 400);

  assert.deepEqual((await verifyInvariants(db.pool)).violations, []);
  await assert.rejects(db.pool.query('update audit_log set actor = $1', ['mallory']), /append_only/);

  // someone with the database's superuser bypasses the triggers and edits a row: verify names it
  const client = await db.pool.connect();
  try {
    await client.query('set session_replication_role = replica');
    await client.query(
      `update audit_log set after = jsonb_set(after, '{points}', '1000') where program_id = $1 and action = 'earn'`,
      [p],
    );
    const edited = (await verifyInvariants(db.pool)).violations.find((v) =>
      v.check.startsWith('the audit log is intact'),
    );
    assert.equal(edited?.count, 1);
    const printed = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(__dirname, '..', '..', 'cli', 'index.ts'), 'verify', '--database-url', db.url],
      { encoding: 'utf8' },
    );
    assert.equal(printed.status, 1);
    assert.match(printed.stdout, /VIOLATION the audit log is intact/);
    // ... and deletes one: the gap shows too
    await client.query(`delete from audit_log where program_id = $1 and action = 'earn_reversal'`, [p]);
    const deleted = (await verifyInvariants(db.pool)).violations.find((v) =>
      v.check.startsWith('the audit log is intact'),
    );
    assert.ok(deleted && deleted.count >= 2, JSON.stringify(deleted));
  } finally {
    await client.query('set session_replication_role = origin');
    client.release();
  }
});
