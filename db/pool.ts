import { Pool, types } from 'pg';

// int8 (bigint) columns arrive as strings by default; we parse them explicitly where read.
// timestamptz arrive as Date. All sessions run in UTC.
types.setTypeParser(types.builtins.NUMERIC, (v) => v);

export interface PoolOptions {
  connectionString: string;
  /** upper bound on connections this process opens */
  maxConnections: number;
  applicationName: string;
}

export function createPool(o: PoolOptions): Pool {
  const pool = new Pool({
    connectionString: o.connectionString,
    max: o.maxConnections,
    application_name: o.applicationName,
    options: '-c timezone=UTC -c statement_timeout=30000 -c lock_timeout=10000',
    connectionTimeoutMillis: 10_000,
  });
  // An idle client's error (e.g. PostgreSQL restarted) must not crash the process; the pool drops it.
  pool.on('error', () => undefined);
  return pool;
}
