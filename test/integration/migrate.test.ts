// The migrator (db/migrate.ts, db/migrate-functions.ts): the real migrations from empty, twice and
// two at once; the function files' rules, on a scratch directory of small functions (a changed file
// applied again, an unchanged one skipped, a changed signature, a trigger or a file taken out); and
// a database migrated before 001-016 were squashed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { dropDatabase, ensureDatabase } from '../../db/databases';
import { migrate, SQUASHED } from '../../db/migrate';
import { parseFunctionFile, readFunctionFiles } from '../../db/migrate-functions';
import { createPool } from '../../db/pool';
import { SCHEMA_FILE, schemaText } from '../../db/schema-dump';
import { freshDatabase } from '../helpers/stack';

const DB_DIR = join(__dirname, '../../db');

/** An empty database on the test server (freshDatabase's are migrated already), with its pools. */
async function emptyDatabase(): Promise<{ pool: () => Pool; drop: () => Promise<void> }> {
  const server = process.env.LOYALTY_TEST_PG_SERVER_URL;
  if (!server)
    throw new Error('LOYALTY_TEST_PG_SERVER_URL is not set: run the tests through vitest (test/global-setup.ts)');
  const name = `loyalty_m_${randomBytes(6).toString('hex')}`;
  const url = await ensureDatabase(server, name);
  const pools: Pool[] = [];
  return {
    pool: () => {
      const p = createPool({ connectionString: url, maxConnections: 2, applicationName: 'test-migrate' });
      pools.push(p);
      return p;
    },
    drop: async () => {
      for (const p of pools) await p.end();
      await dropDatabase(server, name);
    },
  };
}

test('from empty: two migrators at once apply everything once, a third finds nothing, and the schema is db/schema.sql', async () => {
  const db = await emptyDatabase();
  try {
    const [a, b] = await Promise.all([migrate(db.pool()), migrate(db.pool())]);
    const all = [...a, ...b];
    assert.equal(new Set(all).size, all.length, 'nothing applied twice');
    assert.ok(all.includes('001_baseline.sql'));
    assert.equal(
      all.filter((x) => x.startsWith('db/functions/')).length,
      readdirSync(join(DB_DIR, 'functions')).length,
    );
    assert.deepEqual(await migrate(db.pool()), []);
    assert.equal(await schemaText(db.pool()), readFileSync(SCHEMA_FILE, 'utf8'), 'run npm run db:schema');
  } finally {
    await db.drop();
  }
});

test("a migrator waits for another however long it holds the lock (not the pool's lock_timeout), and gives its client back with the pool's limits", async () => {
  const db = await emptyDatabase();
  const server = new URL(process.env.LOYALTY_TEST_PG_SERVER_URL!);
  const { Pool: PgPool } = await import('pg');
  // a pool whose sessions give up on a lock after 200 ms, as the real ones do after 10 s
  const url = (await db.pool().query<{ d: string }>('select current_database() as d')).rows[0]!.d;
  server.pathname = `/${url}`;
  const strict = new PgPool({
    connectionString: server.toString(),
    max: 1,
    options: '-c lock_timeout=200 -c statement_timeout=5000',
  });
  const holder = db.pool();
  const held = await holder.connect();
  try {
    await held.query('select pg_advisory_lock(7344001)');
    const running = migrate(strict);
    await new Promise((r) => setTimeout(r, 1000)); // five lock timeouts
    await held.query('select pg_advisory_unlock(7344001)');
    assert.ok((await running).includes('001_baseline.sql'));
    const { rows } = await strict.query<{ lock_timeout: string; statement_timeout: string }>(
      "select current_setting('lock_timeout') as lock_timeout, current_setting('statement_timeout') as statement_timeout",
    );
    assert.deepEqual(rows[0], { lock_timeout: '200ms', statement_timeout: '5s' });
  } finally {
    held.release();
    await strict.end();
    await db.drop();
  }
});

test('db/functions: one function a file, every name it uses has a file, and the numbered migrations call none', () => {
  const files = readFunctionFiles(join(DB_DIR, 'functions'));
  assert.equal(new Set(files.map((f) => f.name)).size, files.length);
  for (const m of readdirSync(join(DB_DIR, 'migrations'))) {
    // they run before db/functions on a fresh database, where no ll_ function exists yet
    const code = readFileSync(join(DB_DIR, 'migrations', m), 'utf8')
      .split('\n')
      .filter((l) => !/^\s*--/.test(l))
      .join('\n');
    assert.deepEqual(code.match(/\bll_[a-z0-9_]+/g) ?? [], [], `${m} names a function of db/functions`);
  }
});

test('a function file is refused unless it creates one replaceable function named after it, and its triggers replaceably', () => {
  assert.throws(
    () => parseFunctionFile('ll_a.sql', 'create function ll_a() returns int language sql as $$ select 1 $$;'),
    /create or replace function ll_a/,
  );
  assert.throws(
    () =>
      parseFunctionFile('ll_a.sql', 'create or replace function ll_b() returns int language sql as $$ select 1 $$;'),
    /found ll_b/,
  );
  assert.throws(
    () =>
      parseFunctionFile(
        'll_a.sql',
        [
          'create or replace function ll_a() returns int language sql as $$ select 1 $$;',
          'create or replace function ll_a(p int) returns int language sql as $$ select p $$;',
        ].join('\n'),
      ),
    /exactly one/,
  );
  assert.throws(
    () =>
      parseFunctionFile(
        'll_a.sql',
        [
          'create or replace function ll_a() returns trigger language plpgsql as $$ begin return new; end $$;',
          'create trigger t_a before insert on t for each row execute function ll_a();',
        ].join('\n'),
      ),
    /create or replace trigger t_a/,
  );
  const f = parseFunctionFile(
    'll_a.sql',
    [
      '-- called by ll_b: a comment is not a dependency (a function that names its caller would make a cycle)',
      'create or replace function ll_a() returns trigger language plpgsql as $$ begin perform ll_c(); -- not ll_d',
      'return new; end $$;',
      'create or replace trigger t_a before insert or update on public.t for each row execute function ll_a();',
    ].join('\n'),
  );
  assert.deepEqual(f.names, ['ll_c']);
  assert.deepEqual(f.triggers, [{ name: 't_a', table: 't' }]);
});

describe('function files on a scratch directory', () => {
  let db: Awaited<ReturnType<typeof emptyDatabase>>;
  let pool: Pool;
  const migrations = mkdtempSync(join(tmpdir(), 'loyalty-migrations-'));
  const functions = mkdtempSync(join(tmpdir(), 'loyalty-functions-'));
  const put = (name: string, text: string) => writeFileSync(join(functions, `${name}.sql`), text);
  const run = () => migrate(pool, { migrationsDir: migrations, functionsDir: functions });
  const one = async (sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows[0];
  const signatures = async (name: string) =>
    (
      await pool.query<{ s: string }>(
        `select oid::regprocedure::text || ' -> ' || pg_get_function_result(oid) as s from pg_proc where proname = $1 order by 1`,
        [name],
      )
    ).rows.map((r) => r.s);
  const triggers = async () =>
    (
      await pool.query<{ t: string }>(
        `select tgname || ' on ' || tgrelid::regclass || ' -> ' || tgfoid::regproc as t from pg_trigger where not tgisinternal order by 1`,
      )
    ).rows.map((r) => r.t);

  beforeAll(async () => {
    db = await emptyDatabase();
    pool = db.pool();
    writeFileSync(
      join(migrations, '001_items.sql'),
      'create table t_items (id int primary key, touched int not null default 0);',
    );
    // a SQL function is checked when it is created: ll_t_a_calls must come after ll_t_z_base, its name notwithstanding
    put(
      'll_t_a_calls',
      'create or replace function ll_t_a_calls(p int) returns int language sql as $$ select ll_t_z_base(p) * 10 $$;\n',
    );
    put(
      'll_t_z_base',
      'create or replace function ll_t_z_base(p int) returns int language sql immutable as $$ select p + 1 $$;\n',
    );
    put('ll_t_solo', 'create or replace function ll_t_solo() returns int language sql as $$ select 7 $$;\n');
    put(
      'll_t_touch',
      [
        'create or replace function ll_t_touch() returns trigger language plpgsql as $$ begin new.touched := new.touched + 1; return new; end $$;',
        'create or replace trigger t_items_touch_insert before insert on t_items for each row execute function ll_t_touch();',
        'create or replace trigger t_items_touch_update before update on t_items for each row execute function ll_t_touch();',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(migrations, { recursive: true, force: true });
    rmSync(functions, { recursive: true, force: true });
  });

  test('applied in dependency order, then skipped while unchanged', async () => {
    const applied = await run();
    assert.deepEqual(applied, [
      '001_items.sql',
      'db/functions/ll_t_solo.sql',
      'db/functions/ll_t_touch.sql',
      'db/functions/ll_t_z_base.sql',
      'db/functions/ll_t_a_calls.sql',
    ]);
    assert.equal((await one('select ll_t_a_calls(1) as v')).v, 20);
    assert.deepEqual(await run(), []);
    const sha = (await one(`select sha256 from schema_functions where name = 'll_t_solo'`)).sha256;
    assert.equal(
      sha,
      parseFunctionFile('ll_t_solo.sql', readFileSync(join(functions, 'll_t_solo.sql'), 'utf8')).sha256,
    );
  });

  test('a changed file is applied again, and only that one', async () => {
    put(
      'll_t_a_calls',
      'create or replace function ll_t_a_calls(p int) returns int language sql as $$ select ll_t_z_base(p) * 100 $$;\n',
    );
    assert.deepEqual(await run(), ['db/functions/ll_t_a_calls.sql']);
    assert.equal((await one('select ll_t_a_calls(1) as v')).v, 200);
  });

  test('a new argument type replaces the old overload; a new result type, which create or replace refuses, too', async () => {
    put(
      'll_t_z_base',
      'create or replace function ll_t_z_base(p bigint) returns int language sql immutable as $$ select (p + 2)::int $$;\n',
    );
    put('ll_t_solo', `create or replace function ll_t_solo() returns text language sql as $$ select 'seven' $$;\n`);
    assert.deepEqual(await run(), ['db/functions/ll_t_solo.sql', 'db/functions/ll_t_z_base.sql']);
    assert.deepEqual(await signatures('ll_t_z_base'), ['ll_t_z_base(bigint) -> integer']);
    assert.deepEqual(await signatures('ll_t_solo'), ['ll_t_solo() -> text']);
    assert.equal((await one('select ll_t_a_calls(1) as v')).v, 300);
  });

  test('a trigger taken out of its function file is dropped; a function dropped by hand is made again', async () => {
    assert.deepEqual(await triggers(), [
      't_items_touch_insert on t_items -> ll_t_touch',
      't_items_touch_update on t_items -> ll_t_touch',
    ]);
    put(
      'll_t_touch',
      readFileSync(join(functions, 'll_t_touch.sql'), 'utf8').replace(
        /^create or replace trigger t_items_touch_update.*\n/m,
        '',
      ),
    );
    assert.deepEqual(await run(), ['db/functions/ll_t_touch.sql']);
    assert.deepEqual(await triggers(), ['t_items_touch_insert on t_items -> ll_t_touch']);
    await pool.query('drop function ll_t_solo()');
    assert.deepEqual(await run(), ['db/functions/ll_t_solo.sql']);
    assert.equal((await one('select ll_t_solo() as v')).v, 'seven');
  });

  test('a file taken out drops its function (and a trigger function its triggers); one still named elsewhere is refused', async () => {
    rmSync(join(functions, 'll_t_z_base.sql'));
    await assert.rejects(run(), /ll_t_a_calls\.sql names ll_t_z_base, which has no file/);
    rmSync(join(functions, 'll_t_a_calls.sql'));
    rmSync(join(functions, 'll_t_touch.sql'));
    assert.deepEqual(await run(), ['dropped ll_t_a_calls', 'dropped ll_t_touch', 'dropped ll_t_z_base']);
    assert.deepEqual(await signatures('ll_t_z_base'), []);
    assert.deepEqual(await triggers(), []);
    assert.deepEqual((await pool.query('select name from schema_functions order by name')).rows, [
      { name: 'll_t_solo' },
    ]);
  });
});

test('a database migrated before 001-016 were squashed is recorded as the baseline, its functions applied again and ll_quarter dropped', async () => {
  const db = await freshDatabase();
  try {
    // the migrations after the baseline stay recorded: such a database had them applied after it
    await db.adminPool.query(`delete from schema_migrations where version = '001_baseline.sql'`);
    await db.adminPool.query('drop table schema_functions');
    await db.adminPool.query(`insert into schema_migrations (version) select unnest($1::text[])`, [
      SQUASHED.slice(0, 15),
    ]);
    await assert.rejects(migrate(db.adminPool), /migrated by an older checkout, up to 015_wakeup_leases\.sql/);
    await db.adminPool.query(`insert into schema_migrations (version) values ($1)`, [SQUASHED[15]]);
    await db.adminPool.query(
      `create function ll_quarter(p timestamptz) returns text language sql immutable as $$ select to_char(p, 'YYYY') $$`,
    );
    const applied = await migrate(db.adminPool);
    assert.equal(
      applied.filter((x) => x.startsWith('db/functions/')).length,
      readdirSync(join(DB_DIR, 'functions')).length,
    );
    assert.deepEqual(
      applied.filter((x) => !x.startsWith('db/functions/')),
      ['dropped ll_quarter'],
    );
    assert.deepEqual(
      (await db.adminPool.query('select version from schema_migrations order by version')).rows.map((r) => r.version),
      readdirSync(join(DB_DIR, 'migrations'))
        .filter((f) => f.endsWith('.sql'))
        .sort(),
    );
    assert.equal(await schemaText(db.adminPool), readFileSync(SCHEMA_FILE, 'utf8'));
  } finally {
    await db.drop();
  }
});
