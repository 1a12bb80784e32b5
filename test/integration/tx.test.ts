import assert from 'node:assert/strict';
import { afterAll, beforeAll, test } from 'vitest';
import { inTransaction, inTransactionOn } from '../../db/tx';
import { freshDatabase } from '../helpers/stack';

// db/tx.ts, the one transaction helper, on a real database.
let db: Awaited<ReturnType<typeof freshDatabase>>;

beforeAll(async () => {
  db = await freshDatabase();
  // the app role makes no tables (docs/deploy.md): the probe is the superuser's, written by the app
  await db.adminPool.query('create table tx_probe (id int primary key)');
  await db.adminPool.query(`grant select, insert on tx_probe to ${process.env.LOYALTY_TEST_APP_ROLE}`);
});
afterAll(async () => {
  await db.drop();
});

const count = async () => Number((await db.pool.query<{ n: string }>('select count(*) as n from tx_probe')).rows[0]!.n);

test('commits what fn wrote and returns its value; an error rolls all of it back and is rethrown as it was', async () => {
  assert.equal(
    await inTransaction(
      db.pool,
      async (c) => (await c.query('insert into tx_probe values (1), (2) returning id')).rowCount,
    ),
    2,
  );
  assert.equal(await count(), 2);
  const boom = new Error('boom');
  await assert.rejects(
    inTransaction(db.pool, async (c) => {
      await c.query('insert into tx_probe values (3)');
      throw boom;
    }),
    (e) => e === boom,
  );
  // a database error too: the first insert of the transaction is gone with it
  await assert.rejects(
    inTransaction(db.pool, async (c) => {
      await c.query('insert into tx_probe values (4)');
      await c.query('insert into tx_probe values (1)');
    }),
    (e: { code?: string }) => e.code === '23505',
  );
  assert.equal(await count(), 2);
});

test('statementTimeoutMs holds for that transaction only; a bad value is refused before anything runs', async () => {
  await assert.rejects(
    inTransaction(db.pool, (c) => c.query('select pg_sleep(2)'), { statementTimeoutMs: 50 }),
    (e: { code?: string }) => e.code === '57014',
  );
  const { rows } = await db.pool.query<{ statement_timeout: string }>('show statement_timeout');
  assert.equal(rows[0]!.statement_timeout, '30s');
  await assert.rejects(
    inTransaction(db.pool, async () => 1, { statementTimeoutMs: 1.5 }),
    /non-negative integer/,
  );
  await assert.rejects(
    inTransaction(db.pool, async () => 1, { statementTimeoutMs: -1 }),
    /non-negative integer/,
  );
});

test('a connection that dies inside the transaction is not given back to the pool, and does not end the process', async () => {
  await db.pool.query('select 1'); // at least one idle client
  const pidsBefore = new Set<number>();
  await assert.rejects(
    inTransaction(db.pool, async (c) => {
      pidsBefore.add((await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
      await c.query('select pg_terminate_backend(pg_backend_pid())');
    }),
  );
  // every client the pool hands out now answers: the dead one was destroyed, not reused
  for (let i = 0; i < 5; i++) {
    const { rows } = await db.pool.query<{ pid: number }>('select pg_backend_pid() as pid');
    assert.ok(!pidsBefore.has(rows[0]!.pid));
  }
});

test('inTransactionOn keeps the work on the client the caller holds (a session-level lock stays held across transactions)', async () => {
  const client = await db.pool.connect();
  try {
    await client.query('select pg_advisory_lock(42)');
    await inTransactionOn(client, (c) => c.query('insert into tx_probe values (10)'));
    await assert.rejects(
      inTransactionOn(client, async (c) => {
        await c.query('insert into tx_probe values (11)');
        throw new Error('no');
      }),
      /no/,
    );
    const { rows } = await client.query<{ held: boolean }>(
      `select exists (select 1 from pg_locks where locktype = 'advisory' and objid = 42 and pid = pg_backend_pid()) as held`,
    );
    assert.equal(rows[0]!.held, true);
    await client.query('select pg_advisory_unlock(42)');
  } finally {
    client.release();
  }
  const { rows } = await db.pool.query<{ id: number }>('select id from tx_probe where id >= 10');
  assert.deepEqual(
    rows.map((r) => r.id),
    [10],
  );
});
