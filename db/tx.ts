import type { Pool, PoolClient } from 'pg';

export interface TransactionOptions {
  /** `set local statement_timeout` for this transaction only (the pool's default is 30 s) */
  statementTimeoutMs?: number;
  /**
   * A dry run: everything `fn` did is rolled back, and its result returned all the same (the quotes,
   * db/quotes.ts, run the real write functions this way so that they write nothing).
   */
  rollBack?: boolean;
}

/**
 * Runs `fn` in one transaction on a client of its own: begin, fn(client), commit; any error rolls
 * back and is rethrown as it is (the caller maps it, e.g. db/errors.ts). This file is the only
 * place that says begin, commit or rollback. A rollback that fails means the connection is broken
 * or in a state nobody knows: that client is destroyed instead of going back to the pool for the
 * next caller.
 */
export async function inTransaction<T>(
  pool: Pool,
  fn: (client: PoolClient) => Promise<T>,
  o: TransactionOptions = {},
): Promise<T> {
  checkOptions(o);
  const client = await pool.connect();
  let broken: Error | undefined;
  const markBroken = (e: Error) => {
    broken ??= e;
  };
  // A checked-out client has no 'error' listener (the pool's is for idle clients): a connection that
  // dies between queries (a terminated backend, a restarted server) would otherwise be an uncaught
  // exception that ends the process. It stays attached to a broken client, which may emit again.
  client.on('error', markBroken);
  try {
    return await onClient(client, fn, o, markBroken);
  } finally {
    if (!broken) client.removeListener('error', markBroken);
    client.release(broken);
  }
}

/**
 * The same on a client the caller holds (and releases): for work that must stay on one session
 * across several transactions, such as the migrator under its advisory lock. The original error is
 * what the caller sees; if the rollback failed too, the client is unusable and the caller's next
 * query on it fails.
 */
export async function inTransactionOn<T>(
  client: PoolClient,
  fn: (client: PoolClient) => Promise<T>,
  o: TransactionOptions = {},
): Promise<T> {
  checkOptions(o);
  let died: Error | undefined;
  const onError = (e: Error) => {
    died ??= e;
  };
  client.on('error', onError); // as in inTransaction: a dying connection must not end the process
  try {
    return await onClient(client, fn, o, () => undefined);
  } finally {
    if (!died) client.removeListener('error', onError);
  }
}

async function onClient<T>(
  client: PoolClient,
  fn: (client: PoolClient) => Promise<T>,
  o: TransactionOptions,
  rollbackFailed: (e: Error) => void,
): Promise<T> {
  try {
    await client.query('begin');
    if (o.statementTimeoutMs !== undefined) await client.query(`set local statement_timeout = ${o.statementTimeoutMs}`);
    const result = await fn(client);
    await client.query(o.rollBack ? 'rollback' : 'commit');
    return result;
  } catch (e) {
    await client.query('rollback').catch(rollbackFailed);
    throw e;
  }
}

function checkOptions(o: TransactionOptions): void {
  const timeoutMs = o.statementTimeoutMs;
  // interpolated into the statement (SET takes no parameters): only a plain integer gets there
  if (timeoutMs !== undefined && (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0))
    throw new Error(`statementTimeoutMs must be a non-negative integer (got ${timeoutMs})`);
}
