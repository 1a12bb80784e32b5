// `npm run db:schema`: migrates a scratch database and writes db/schema.sql from its catalogs
// (db/schema-dump.ts). The server is DATABASE_URL's when set (the scratch database is made beside
// it and dropped), else an embedded PostgreSQL in a temporary directory. `--check` writes nothing
// and exits 1 when db/schema.sql is not current.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres } from '../cli/stack/postgres';
import { dropDatabase, ensureDatabase } from '../db/databases';
import { freePort } from '../cli/stack/process';
import { migrate } from '../db/migrate';
import { createPool } from '../db/pool';
import { SCHEMA_FILE, schemaText } from '../db/schema-dump';

async function main(): Promise<number> {
  const check = process.argv.includes('--check');
  const work = mkdtempSync(join(tmpdir(), 'loyalty-schema-'));
  const pg = await startPostgres({
    dataDir: join(work, 'pg'),
    port: await freePort(),
    databaseUrl: process.env.DATABASE_URL,
  });
  const server = new URL(pg.serverUrl);
  server.pathname = '/postgres'; // DATABASE_URL names one database; the scratch one goes beside it
  const name = `loyalty_schema_${process.pid}`;
  try {
    const pool = createPool({
      connectionString: await ensureDatabase(server.toString(), name),
      maxConnections: 2,
      applicationName: 'db-schema',
    });
    let text: string;
    try {
      await migrate(pool);
      text = await schemaText(pool);
    } finally {
      await pool.end();
    }
    if (check) {
      const current = readFileSync(SCHEMA_FILE, 'utf8') === text;
      process.stdout.write(
        current ? 'db/schema.sql is current\n' : 'db/schema.sql is not current: run npm run db:schema\n',
      );
      return current ? 0 : 1;
    }
    writeFileSync(SCHEMA_FILE, text);
    process.stdout.write(`wrote db/schema.sql (${text.split('\n').length - 1} lines)\n`);
    return 0;
  } finally {
    await dropDatabase(server.toString(), name).catch(() => undefined);
    await pg.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
