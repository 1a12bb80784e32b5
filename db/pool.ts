import { Pool, types } from 'pg';

// int8 (bigint) columns arrive as strings by default; we parse them explicitly where read.
// timestamptz arrive as Date. All sessions run in UTC.
types.setTypeParser(types.builtins.NUMERIC, (v) => v);

export interface PoolOptions {
  connectionString: string;
  /** upper bound on connections this process opens */
  maxConnections: number;
  applicationName: string;
  /** who this process acts as, for audit rows of writes that do not carry an actor themselves (keys) */
  actor?: string;
}

export function createPool(o: PoolOptions): Pool {
  const pool = new Pool({
    connectionString: o.connectionString,
    max: o.maxConnections,
    application_name: o.applicationName,
    options: `-c timezone=UTC -c statement_timeout=30000 -c lock_timeout=10000${o.actor ? ` -c ll.actor=${o.actor.replace(/[^\w:.@-]/g, '_')}` : ''}`,
    connectionTimeoutMillis: 10_000,
  });
  // An idle client's error (e.g. PostgreSQL restarted) must not crash the process; the pool drops it.
  pool.on('error', () => undefined);
  return pool;
}

/** The statement timeout of the close's set-based queries over a whole program (the pool's default is 30 s). */
export const LONG_STATEMENT_TIMEOUT_MS = 15 * 60_000;

/** One query with a longer statement timeout (for set-based work over a whole program, e.g. the close). */
export async function longQuery<R extends Record<string, unknown> = Record<string, any>>( // eslint-disable-line @typescript-eslint/no-explicit-any
  pool: Pool, sql: string, params: unknown[],
): Promise<{ rows: R[] }> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query(`set local statement_timeout = ${LONG_STATEMENT_TIMEOUT_MS}`);
    const res = await client.query<R>(sql, params);
    await client.query('commit');
    return { rows: res.rows };
  } catch (e) {
    await client.query('rollback').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}
