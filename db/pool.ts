import { readFileSync } from 'node:fs';
import { Pool, types, type PoolConfig } from 'pg';
import { inTransaction } from './tx';

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
  /** where DATABASE_CA_FILE / DATABASE_CERT_FILE / DATABASE_KEY_FILE are read from (pgTls) */
  env?: NodeJS.ProcessEnv;
  /** every statement's timeout on this pool (default 30 s, STATEMENT_TIMEOUT_MS) */
  statementTimeoutMs?: number;
  /**
   * true: longQuery on this pool keeps the pool's statement timeout instead of the close's 15
   * minutes (the API's report pool: a report asked over HTTP never runs for longer than that)
   */
  capLongQueries?: boolean;
}

/** The statement timeout of every pool unless it says otherwise. */
export const STATEMENT_TIMEOUT_MS = 30_000;
/** Pools whose longQuery keeps their own statement timeout (capLongQueries). */
const cappedPools = new WeakMap<Pool, number>();

export function createPool(o: PoolOptions): Pool {
  const tls = pgTls(o.connectionString, o.env ?? process.env);
  const pool = new Pool({
    ...tls,
    max: o.maxConnections,
    application_name: o.applicationName,
    options: `-c timezone=UTC -c statement_timeout=${Math.trunc(o.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS)} -c lock_timeout=10000${o.actor ? ` -c ll.actor=${o.actor.replace(/[^\w:.@-]/g, '_')}` : ''}`,
    connectionTimeoutMillis: 10_000,
  });
  // An idle client's error (e.g. PostgreSQL restarted) must not crash the process; the pool drops it.
  pool.on('error', () => undefined);
  if (o.capLongQueries) cappedPools.set(pool, Math.trunc(o.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS));
  return pool;
}

/** The connection-string parameters that configure TLS; with DATABASE_*_FILE they are taken out and replaced (pgTls). */
const URL_TLS_PARAMS = ['sslmode', 'ssl', 'uselibpqcompat'] as const;
const URL_TLS_FILE_PARAMS = ['sslrootcert', 'sslcert', 'sslkey'] as const;

/**
 * TLS to PostgreSQL from DATABASE_CA_FILE, DATABASE_CERT_FILE and DATABASE_KEY_FILE, on top of
 * DATABASE_URL's `sslmode`.
 *
 * - None of the three set: DATABASE_URL alone decides, exactly as node-postgres reads it
 *   (`sslmode=disable` plain; `require`, `prefer`, `verify-ca`, `verify-full` all verify the
 *   certificate and the host name against Node's public CAs; `no-verify` encrypts without
 *   verifying; `sslrootcert=`/`sslcert=`/`sslkey=` in the URL read those files).
 * - Any of them set: TLS is on. The server's certificate is verified against DATABASE_CA_FILE (only
 *   that CA; without the file, Node's public CAs), and its host name must match DATABASE_URL's host
 *   unless `sslmode=verify-ca` (chain only, for servers reached under a name their certificate does
 *   not carry). No `sslmode`, `require` and `verify-full` mean the full check; `disable`, `allow`,
 *   `prefer` and `no-verify` contradict the files and are refused, as are certificate files given
 *   in the URL as well. DATABASE_CERT_FILE and DATABASE_KEY_FILE go together: the client
 *   certificate, for servers that require one (`hostssl ... cert` in pg_hba.conf).
 */
export function pgTls(connectionString: string, env: NodeJS.ProcessEnv): Pick<PoolConfig, 'connectionString' | 'ssl'> {
  const caFile = env.DATABASE_CA_FILE || undefined;
  const certFile = env.DATABASE_CERT_FILE || undefined;
  const keyFile = env.DATABASE_KEY_FILE || undefined;
  if (!caFile && !certFile && !keyFile) return { connectionString };
  if (Boolean(certFile) !== Boolean(keyFile))
    throw new Error('DATABASE_CERT_FILE and DATABASE_KEY_FILE go together (the client certificate and its key)');
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    throw new Error('DATABASE_CA_FILE / DATABASE_CERT_FILE / DATABASE_KEY_FILE need DATABASE_URL as a postgres:// URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    throw new Error(`DATABASE_URL must be a postgres:// URL, not ${url.protocol}`);
  const inUrl = URL_TLS_FILE_PARAMS.filter((p) => url.searchParams.has(p));
  if (inUrl.length)
    throw new Error(
      `DATABASE_URL has ${inUrl.join(', ')} and DATABASE_*_FILE are set: give the certificate files in one place`,
    );
  const mode = url.searchParams.get('sslmode') ?? 'verify-full';
  if (!['verify-full', 'verify-ca', 'require'].includes(mode)) {
    throw new Error(
      `sslmode=${mode} in DATABASE_URL contradicts DATABASE_*_FILE (which turn verified TLS on): use verify-full (the default), verify-ca or require`,
    );
  }
  const sslParam = url.searchParams.get('ssl');
  if (sslParam !== null && !['true', '1'].includes(sslParam))
    throw new Error(`ssl=${sslParam} in DATABASE_URL contradicts DATABASE_*_FILE`);
  if (mode === 'verify-ca' && !caFile)
    throw new Error(
      'sslmode=verify-ca needs DATABASE_CA_FILE: a chain check against the public CAs alone proves nothing about who the server is',
    );
  for (const p of URL_TLS_PARAMS) url.searchParams.delete(p);
  const read = (f: string) => readFileSync(f, 'utf8');
  return {
    connectionString: url.toString(),
    ssl: {
      rejectUnauthorized: true,
      ...(caFile ? { ca: read(caFile) } : {}),
      ...(certFile && keyFile ? { cert: read(certFile), key: read(keyFile) } : {}),
      ...(mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
    },
  };
}

/** The statement timeout of the close's set-based queries over a whole program (the pool's default is 30 s). */
export const LONG_STATEMENT_TIMEOUT_MS = 15 * 60_000;

/** One query with a longer statement timeout (for set-based work over a whole program, e.g. the close); on a capLongQueries pool, the pool's own. */
export async function longQuery<R extends Record<string, unknown> = Record<string, any>>( // eslint-disable-line @typescript-eslint/no-explicit-any
  pool: Pool,
  sql: string,
  params: unknown[],
): Promise<{ rows: R[] }> {
  return inTransaction(pool, async (client) => ({ rows: (await client.query<R>(sql, params)).rows }), {
    statementTimeoutMs: cappedPools.get(pool) ?? LONG_STATEMENT_TIMEOUT_MS,
  });
}

/** Whether PostgreSQL answers a trivial query now (for /readyz); never throws. */
export async function databaseAnswers(pool: Pool): Promise<boolean> {
  return pool.query('select 1').then(
    () => true,
    () => false,
  );
}
