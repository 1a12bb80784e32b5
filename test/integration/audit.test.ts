import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PoolClient } from 'pg';
import { afterAll, beforeAll, test } from 'vitest';
import { recordDecisionRequest, type DecisionRequest } from '../../db/approval-requests';
import { createKey, ensurePrincipal, type Principal } from '../../db/keys';
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

/**
 * As a superuser with the triggers off (`client` in replica mode): deletes the audit rows `del`
 * returns (chain, seq) and renumbers and rehashes each chain it touched, so the chain links again
 * and only the completeness check can tell. Returns how many rows went.
 */
async function removeAndRelink(client: PoolClient, del: string, params: unknown[]): Promise<number> {
  const { rows: gone } = await client.query<{ chain: number; seq: string }>(del, params);
  for (const chain of new Set(gone.map((g) => g.chain))) {
    const { rows: left } = await client.query<{ seq: string }>(
      `select seq from audit_log where chain = $1 order by seq`,
      [chain],
    );
    let n = 0;
    for (const r of left) {
      n += 1;
      await client.query(
        `update audit_log a set seq = $3::bigint, hash = ll_audit_hash(a.chain, $3::bigint, a.at, a.actor, a.action, a.program_id, a.member_id,
                a.subject, a.before, a.after, a.idempotency_key,
                coalesce((select b.hash from audit_log b where b.chain = a.chain and b.seq = $3::bigint - 1), ''))
          where a.chain = $1 and a.seq = $2`,
        [chain, r.seq, n],
      );
    }
    await client.query(
      `update audit_chain_heads h set seq = $2, hash = coalesce((select hash from audit_log where chain = $1 and seq = $2), '')
        where chain = $1`,
      [chain, n],
    );
  }
  return gone.length;
}

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
  assert.equal(cli('principals', 'add', 'carol', '--kind', 'person', '--roles', 'support').status, 0);
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
  const person = (keys as Array<{ action: string; actor: string; subject?: string }>).find(
    (r) => r.action === 'principal_created' && r.subject === 'principal:carol',
  );
  assert.match(person?.actor ?? '', /^cli:/, 'the principal is in the trail too');

  const viaApi = await call('GET', `/v1/programs/${p}/audit?memberId=m-1`, { role: 'finance' });
  assert.deepEqual(
    viaApi.body.entries.map((r: { action: string }) => r.action),
    ['earn', 'earn_reversal'],
  );
  assert.equal((await call('GET', `/v1/programs/${p}/audit`, { role: 'support' })).status, 403);
  assert.equal((await call('GET', `/v1/programs/${p}/audit?since=yesterday`, { role: 'finance' })).status, 400);

  assert.deepEqual((await verifyInvariants(db.pool)).violations, []);
  // the app's role may not update it at all; the owner, or a superuser, is stopped by its trigger
  await assert.rejects(db.pool.query('update audit_log set actor = $1', ['mallory']), /permission denied/);
  await assert.rejects(db.adminPool.query('update audit_log set actor = $1', ['mallory']), /append_only/);

  // someone with the database's superuser bypasses the triggers and edits a row: verify names it
  const client = await db.adminPool.connect();
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

test("every change has its audit row: an adjustment's request and rejection are in the chain; a row removed and the chain rehashed is caught", async () => {
  // a database of its own: the test above leaves its chain tampered with
  const db = await freshDatabase();
  const api = await startApi(db.pool);
  const cli = (...args: string[]) =>
    spawnSync(
      process.execPath,
      ['--import', 'tsx', join(__dirname, '..', '..', 'cli', 'index.ts'), ...args, '--database-url', db.url],
      { encoding: 'utf8' },
    );
  const call = httpClient(api);
  const p = uniqueId('ac');
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
  // a pending adjustment (populated from JSON: the columns later migrations add take their values
  // from it), then rejected by finance as the workflow's decision does
  const id = randomUUID();
  await db.pool.query(
    `insert into manual_adjustments select * from jsonb_populate_record(null::manual_adjustments, $1::jsonb)`,
    [
      JSON.stringify({
        program_id: p,
        adjustment_id: id,
        member_id: 'm-1',
        points: 5_000,
        reason_code: 'goodwill',
        requested_by: 'sup-1',
        requested_at: new Date().toISOString(),
        status: 'pending_approval',
        idempotency_key: `adjust:${id}`,
        kind: 'adjustment',
        needs_approval: true,
      }),
    ],
  );
  await db.pool.query(`select ll_decide_adjustment($1, 'rejected', 'fin-1', 'not justified')`, [id]);
  const rows = JSON.parse(cli('audit', '--program', p, '--member', 'm-1', '--json').stdout) as Array<{
    action: string;
    actor: string;
    subject: string;
    after: Record<string, unknown>;
  }>;
  assert.deepEqual(
    rows.filter((r) => r.subject === `adjustment:${p}:${id}`).map((r) => [r.action, r.actor, r.after.status]),
    [
      ['adjustment_requested', 'sup-1', 'pending_approval'],
      ['adjustment_rejected', 'fin-1', 'rejected'],
    ],
  );
  const completeness = async () =>
    (await verifyInvariants(db.pool)).violations.find((v) => v.check.startsWith('every ledger entry, key change'));
  assert.equal(await completeness(), undefined);

  // a superuser removes the rejection's row and the accrual's, and rehashes the chain so it links again
  const client = await db.adminPool.connect();
  try {
    await client.query('set session_replication_role = replica');
    const gone = await removeAndRelink(
      client,
      `delete from audit_log where program_id = $1 and action in ('adjustment_rejected', 'earn') returning chain, seq`,
      [p],
    );
    assert.equal(gone, 2);
    const violations = (await verifyInvariants(db.pool)).violations;
    assert.equal(
      violations.find((v) => v.check.startsWith('the audit log is intact')),
      undefined,
      'the chain links again',
    );
    const missing = await completeness();
    assert.deepEqual(
      (missing?.sample as Array<{ kind: string; action: string }>).map((r) => [r.kind, r.action]).sort(),
      [
        ['adjustment', 'adjustment_rejected'],
        ['ledger_entry', 'earn'],
      ],
    );
  } finally {
    await client.query('set session_replication_role = origin');
    client.release();
    await api.close();
    await db.drop();
  }
});

test('migration 010 gives adjustments made before their audit rows their request and decision rows, and the chain still verifies', async () => {
  const db = await freshDatabase();
  try {
    const api = await startApi(db.pool);
    const p = uniqueId('mg');
    assert.equal((await httpClient(api)('POST', '/v1/programs', { body: programBody(p) })).status, 201);
    await api.close();
    // as before 010: no trigger on manual_adjustments
    await db.adminPool.query('drop trigger manual_adjustments_audit on manual_adjustments');
    const ids = [randomUUID(), randomUUID()];
    for (const [i, id] of ids.entries())
      await db.pool.query(
        `insert into manual_adjustments select * from jsonb_populate_record(null::manual_adjustments, $1::jsonb)`,
        [
          JSON.stringify({
            program_id: p,
            adjustment_id: id,
            member_id: `m-${i}`,
            points: 5_000,
            reason_code: 'goodwill',
            requested_by: 'sup-1',
            requested_at: new Date().toISOString(),
            status: 'pending_approval',
            idempotency_key: `adjust:${id}`,
            kind: 'adjustment',
            needs_approval: true,
          }),
        ],
      );
    await db.pool.query(`select ll_decide_adjustment($1, 'rejected', 'fin-1', null)`, [ids[0]]);
    const missing = async () =>
      (await verifyInvariants(db.pool)).violations.find((v) => v.check.startsWith('every ledger entry, key change'));
    assert.equal((await missing())?.count, 3, 'two requests and a rejection without rows');
    await db.adminPool.query(
      readFileSync(join(__dirname, '..', '..', 'db', 'migrations', '010_audit_anchors.sql'), 'utf8'),
    );
    assert.deepEqual((await verifyInvariants(db.pool)).violations, []);
    const { rows } = await db.pool.query(
      `select action, actor, after->>'backfilled' as b from audit_log where subject like 'adjustment:%' order by action, actor`,
    );
    assert.deepEqual(
      rows.map((r) => [r.action, r.actor, r.b]),
      [
        ['adjustment_rejected', 'fin-1', 'true'],
        ['adjustment_requested', 'sup-1', 'true'],
        ['adjustment_requested', 'sup-1', 'true'],
      ],
    );
  } finally {
    await db.drop();
  }
});

test('every decision request is in the chain when written; one whose row was removed is caught; migration 016 gives those made before theirs', async () => {
  const db = await freshDatabase();
  const client = await db.adminPool.connect();
  try {
    const api = await startApi(db.pool);
    const p = uniqueId('dr');
    assert.equal((await httpClient(api)('POST', '/v1/programs', { body: programBody(p) })).status, 201);
    await api.close();
    await ensurePrincipal(db.pool, { principalId: 'fay', roles: ['finance', 'program_owner'], kind: 'person' });
    const { key } = await createKey(db.pool, { principal: 'fay', roles: ['finance', 'program_owner'] });
    const fay: Principal = {
      keyId: key.keyId,
      name: 'fay',
      kind: 'person',
      roles: ['finance', 'program_owner'],
      programs: null,
    };
    const ask = (r: Partial<DecisionRequest>) =>
      recordDecisionRequest(db.pool, fay, {
        kind: 'adjustment_approval',
        programId: p,
        subject: randomUUID(),
        workflowId: 'adjustment:x',
        decision: 'approve',
        comment: null,
        ...r,
      });
    const approval = await ask({ comment: 'ok' });
    const withdrawal = await ask({ kind: 'rule_change_withdrawal', subject: 'c-1', decision: 'withdraw' });
    // a withdrawal is never an approval, nor an approval a withdrawal
    await assert.rejects(ask({ kind: 'rule_change_withdrawal', decision: 'approve' }), /decision_check/);
    await assert.rejects(ask({ decision: 'withdraw' }), /decision_check/);
    const { rows } = await db.pool.query(
      `select subject, actor, after->>'kind' as kind, after->>'decision' as decision, after->>'keyId' as key
         from audit_log where action = 'decision_requested' order by seq`,
    );
    assert.deepEqual(rows, [
      {
        subject: `decision_request:${approval}`,
        actor: 'fay',
        kind: 'adjustment_approval',
        decision: 'approve',
        key: key.keyId,
      },
      {
        subject: `decision_request:${withdrawal}`,
        actor: 'fay',
        kind: 'rule_change_withdrawal',
        decision: 'withdraw',
        key: key.keyId,
      },
    ]);
    assert.deepEqual((await verifyInvariants(db.pool)).violations, []);

    // a superuser removes the withdrawal's row and relinks the chain: verify names the request
    await client.query('set session_replication_role = replica');
    const gone = await removeAndRelink(client, `delete from audit_log where subject = $1 returning chain, seq`, [
      `decision_request:${withdrawal}`,
    ]);
    await client.query('set session_replication_role = origin');
    assert.equal(gone, 1);
    const violations = (await verifyInvariants(db.pool)).violations;
    assert.equal(
      violations.find((v) => v.check.startsWith('the audit log is intact')),
      undefined,
      'linked again',
    );
    const missing = violations.find((v) => v.check.startsWith('every ledger entry, key change'));
    assert.deepEqual(missing?.sample, [
      { kind: 'decision_request', program_id: p, id: withdrawal, action: 'rule_change_withdrawal' },
    ]);

    // migration 016 on a database whose requests predate it: each without a row gets one, once
    await db.adminPool.query(
      readFileSync(join(__dirname, '..', '..', 'db', 'migrations', '016_decision_request_audit.sql'), 'utf8'),
    );
    assert.deepEqual((await verifyInvariants(db.pool)).violations, []);
    const after = await db.pool.query(
      `select subject, after->>'backfilled' as b from audit_log where action = 'decision_requested' order by seq`,
    );
    assert.deepEqual(
      after.rows.map((r) => [r.subject, r.b]),
      [
        [`decision_request:${approval}`, null],
        [`decision_request:${withdrawal}`, 'true'],
      ],
    );
  } finally {
    client.release();
    await db.drop();
  }
});
