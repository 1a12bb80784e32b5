import type { Pool, PoolClient } from 'pg';

export interface TransactionOptions {
  /** `set local statement_timeout` for this transaction only (the pool's default is 30 s) */
  statementTimeoutMs?: number;
}

/**
 * Runs `fn` in one transaction on a client of its own: begin, fn(client), commit; any error rolls
 * back and is rethrown as it is (the caller maps it, e.g. db/errors.ts). The only place that says
 * begin, commit or rollback. A rollback that fails means the connection is broken or in a state
 * nobody knows: that client is destroyed instead of going back to the pool for the next caller.
 */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>, o: TransactionOptions = {}): Promise<T> {
  const timeoutMs = o.statementTimeoutMs;
  // interpolated into the statement below (SET takes no parameters): only a plain integer gets there
  if (timeoutMs !== undefined && (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0)) throw new Error(`statementTimeoutMs must be a non-negative integer (got ${timeoutMs})`);
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('begin');
    if (timeoutMs !== undefined) await client.query(`set local statement_timeout = ${timeoutMs}`);
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (e) {
    await client.query('rollback').catch((rollbackError: Error) => { broken = rollbackError; });
    throw e;
  } finally {
    client.release(broken);
  }
}
