import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, test } from 'vitest';
import { dropDatabase, ensureDatabase } from '../../db/databases';
import { migrate } from '../../db/migrate';
import { createPool } from '../../db/pool';
import { provisionDatabase } from '../../db/provision';
import { privilegeProblems } from '../../db/roles';
import { verifyInvariants } from '../../db/verify';
import { freshDatabase, httpClient, programBody, startApi, uniqueId, type TestApi } from '../helpers/stack';

// Issue 14: the API and workers connect as a role that is not a superuser, owns nothing, cannot run
// DDL, disable triggers, or update or delete the append-only tables (db/roles.ts, db/grants.sql).
// freshDatabase's pool is that role, as every integration test's is; here each clause is checked
// on its own, by the error PostgreSQL gives: 42501 insufficient_privilege, not the append-only
// trigger's LL900 (which a superuser or the owner would get, and could switch off).
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

const refused = (sql: string) =>
  assert.rejects(db.pool.query(sql), (e: { code?: string; message: string }) => {
    assert.equal(e.code, '42501', `${sql}: ${e.message}`);
    return true;
  });

test('the app role is not a superuser, has no power over the cluster, and owns nothing', async () => {
  const { rows } = await db.pool.query(
    `select rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication from pg_roles where rolname = current_user`,
  );
  assert.deepEqual(rows, [
    { rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false, rolreplication: false },
  ]);
  const owned = await db.pool.query(
    `with me as (select oid from pg_roles where rolname = current_user)
     select 'class ' || relname as what from pg_class where relowner = (select oid from me)
     union all select 'function ' || proname from pg_proc where proowner = (select oid from me)
     union all select 'schema ' || nspname from pg_namespace where nspowner = (select oid from me)
     union all select 'type ' || typname from pg_type where typowner = (select oid from me)
     union all select 'database ' || datname from pg_database where datdba = (select oid from me)`,
  );
  assert.deepEqual(owned.rows, []);
  // nor is it a member of a role that owns them (pg_has_role follows membership)
  assert.deepEqual(await privilegeProblems(db.pool), []);
  // and the check the API and workers run at start (db/roles.ts checkAppConnection) tells the two apart
  assert.ok((await privilegeProblems(db.adminPool)).some((p) => p.endsWith(' is a superuser')));
});

test('the app role cannot run DDL', async () => {
  await refused('create table intruder (id int)');
  await refused('create view intruder as select 1 as one');
  await refused('alter table ledger_entries add column intruder int');
  await refused('drop table programs');
  await refused('create index intruder on ledger_entries (program_id)');
  await refused(`create function ll_intruder() returns int language sql as $$ select 1 $$`);
  await refused(
    `create or replace function ll_forbid_change() returns trigger language plpgsql as $$ begin return new; end $$`,
  );
  await refused('drop function ll_forbid_change() cascade');
  await refused('create schema intruder');
});

test('the app role cannot turn the append-only triggers off', async () => {
  await refused('alter table ledger_entries disable trigger ledger_entries_append_only');
  await refused('alter table audit_log disable trigger all');
  await refused('drop trigger audit_log_append_only on audit_log');
  await refused('set session_replication_role = replica');
});

test('every append-only table (found by its refusing triggers: ll_forbid_change, ll_decision_request_final, ll_principal_kept) refuses the app role the changes its triggers forbid, and TRUNCATE', async () => {
  const { rows } = await db.pool.query<{ table: string; update: boolean; delete: boolean }>(
    `select c.relname as table, bool_or(g.tgtype & 16 <> 0) as update, bool_or(g.tgtype & 8 <> 0) as delete
       from pg_trigger g join pg_class c on c.oid = g.tgrelid
      where g.tgfoid = any (array['ll_forbid_change', 'll_decision_request_final', 'll_principal_kept']::regproc[])
      group by c.relname order by c.relname`,
  );
  const tables = rows.map((r) => r.table);
  for (const t of [
    'ledger_entries',
    'journal_entries',
    'journal_lines',
    'audit_log',
    'manual_adjustments',
    'decision_requests',
    'principals',
  ])
    assert.ok(tables.includes(t), `${t} among ${tables.join(', ')}`);
  for (const r of rows) {
    // `where false`: privileges are checked before a row is looked at, so nothing needs to exist
    if (r.update)
      await refused(`update ${r.table} set ${await firstColumn(r.table)} = ${await firstColumn(r.table)} where false`);
    if (r.delete) await refused(`delete from ${r.table} where false`);
    await refused(`truncate ${r.table}`);
  }
});

async function firstColumn(table: string): Promise<string> {
  const { rows } = await db.pool.query<{ attname: string }>(
    `select attname from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped order by attnum limit 1`,
    [table],
  );
  return rows[0]!.attname;
}

test('while the normal write path works as the app role: a program, an accrual, its ledger entry and audit row', async () => {
  const call = httpClient(api);
  const p = uniqueId('lp');
  assert.equal((await call('POST', '/v1/programs', { body: programBody(p) })).status, 201);
  const accrual = await call('POST', `/v1/programs/${p}/accruals`, {
    role: 'billing',
    body: { memberId: 'm-1', invoiceId: 'inv-1', amountMinor: 10_000, occurredAt: '2026-10-01T00:00:00Z' },
  });
  assert.equal(accrual.status, 201, JSON.stringify(accrual.body));
  const { rows } = await db.pool.query(
    `select (select count(*)::int from ledger_entries where program_id = $1) as entries,
            (select count(*)::int from audit_log where program_id = $1 and action = 'earn') as audited`,
    [p],
  );
  assert.deepEqual(rows, [{ entries: 1, audited: 1 }]);
  assert.deepEqual((await verifyInvariants(db.pool)).violations, []);
});

test("a database made before the roles (npm start's .data from an older checkout) is adopted: the owner's, served as the app role", async () => {
  const server = process.env.LOYALTY_TEST_PG_SERVER_URL!;
  const name = `loyalty_old_${randomBytes(6).toString('hex')}`;
  const roles = { owner: process.env.LOYALTY_TEST_OWNER_ROLE!, app: process.env.LOYALTY_TEST_APP_ROLE! };
  // as before this change: made and migrated by the superuser, which owns everything in it
  const oldUrl = await ensureDatabase(server, name);
  const old = createPool({ connectionString: oldUrl, maxConnections: 1, applicationName: 'test-old' });
  try {
    await migrate(old);
    const made = await provisionDatabase({
      serverUrl: server,
      name,
      roles,
      appPassword: process.env.LOYALTY_TEST_APP_PASSWORD!,
    });
    const notOwners = await old.query(
      `select relname from pg_class where relnamespace = 'public'::regnamespace and relowner <> $1::regrole
       union all select proname from pg_proc where pronamespace = 'public'::regnamespace and proowner <> $1::regrole
       union all select datname from pg_database where datname = current_database() and datdba <> $1::regrole`,
      [roles.owner],
    );
    assert.deepEqual(notOwners.rows, []);
    const app = createPool({ connectionString: made.appUrl, maxConnections: 1, applicationName: 'test-old-app' });
    try {
      assert.deepEqual(await privilegeProblems(app), []);
      await assert.rejects(app.query('delete from audit_log where false'), /permission denied/);
      assert.equal((await app.query('select count(*)::int as n from programs')).rows[0].n, 0);
    } finally {
      await app.end();
    }
  } finally {
    await old.end();
    await dropDatabase(server, name);
  }
});
