import { Client } from 'pg';

// Server administration for the local stack, the tests and the benches: databases made and dropped
// on a server the caller names by its maintenance URL. Names are checked (they cannot be bound as
// parameters in CREATE/DROP DATABASE).

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

/** The URL of database `name` on the same server, creating it (optionally from a template, owned by `owner`) if missing. */
export async function ensureDatabase(
  serverUrl: string,
  name: string,
  template?: string,
  owner?: string,
): Promise<string> {
  if (owner !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(owner)) throw new Error(`bad role name ${owner}`);
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`bad database name ${name}`);
  const c = new Client({ connectionString: serverUrl });
  await c.connect();
  try {
    const exists = await c.query('select 1 from pg_database where datname = $1', [name]);
    if (exists.rowCount === 0) {
      await c.query(
        `create database ${name}${owner ? ` owner ${owner}` : ''}${template ? ` template ${template}` : ''}`,
      );
    }
  } finally {
    await c.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
