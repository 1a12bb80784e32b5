import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, test } from 'vitest';
import { Client } from 'pg';
import { stackConfig } from '../../cli/config';
import { startPostgres, type PostgresHandle } from '../../cli/stack/postgres';
import { appPasswordFile, embeddedPasswordFile, LEGACY_EMBEDDED_PASSWORD } from '../../cli/stack/postgres-password';
import { prepareLedgerDatabase } from '../../cli/ledger-database';
import { freePort } from '../../cli/stack/process';

// `npm start`'s embedded PostgreSQL listens on 127.0.0.1 with a superuser: with a password fixed in
// the code, anyone on the machine could log in as it. The password is generated when the data
// folder is first made, kept beside it (0600), and used again on the next start and by the
// `loyalty` commands run beside the stack (cli/config.ts).
const work = mkdtempSync(join(tmpdir(), 'embedded-pw-'));
chmodSync(work, 0o755); // as root the server runs as postgres, which must reach the data folder
const handles: PostgresHandle[] = [];
afterAll(async () => {
  for (const h of handles) await h.stop().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

const answers = async (url: string) => {
  const c = new Client({ connectionString: url });
  try {
    await c.connect();
    await c.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
};

test('the embedded server gets a generated password on first start, kept for the next start and the CLI', async () => {
  const dataDir = join(work, '.data', 'postgres');
  const port = await freePort();
  const pg = await startPostgres({ dataDir, port, logFile: join(work, 'postgres.log') });
  handles.push(pg);
  const file = embeddedPasswordFile(dataDir);
  assert.equal(file, join(work, '.data', 'postgres-password'));
  const password = readFileSync(file, 'utf8').trim();
  assert.match(password, /^[0-9a-f]{48}$/);
  assert.notEqual(password, LEGACY_EMBEDDED_PASSWORD);
  assert.equal(statSync(file).mode & 0o077, 0, 'readable by its owner only');
  assert.equal(new URL(pg.serverUrl).password, password);
  assert.ok(await answers(pg.serverUrl));
  const fixed = new URL(pg.serverUrl);
  fixed.password = LEGACY_EMBEDDED_PASSWORD;
  assert.equal(await answers(fixed.toString()), false, 'the old fixed password does not get in');

  // what npm start serves from, and `loyalty keys`, `loyalty verify` and the others use beside the
  // stack: the app role (db/roles.ts), with a generated password of its own, kept beside the other
  const env = { LOYALTY_DATA_DIR: join(work, '.data'), LOYALTY_PG_PORT: String(port) };
  const ledger = await prepareLedgerDatabase(pg, stackConfig(env), env);
  const cli = stackConfig(env);
  assert.equal(cli.embeddedDatabaseUrl, ledger.url);
  const app = new URL(cli.embeddedDatabaseUrl);
  assert.equal(app.username, 'loyalty_app');
  assert.match(app.password, /^[0-9a-f]{48}$/);
  assert.notEqual(app.password, password);
  assert.equal(readFileSync(appPasswordFile(dataDir), 'utf8').trim(), app.password);
  assert.equal(statSync(appPasswordFile(dataDir)).mode & 0o077, 0, 'readable by its owner only');
  assert.ok(await answers(cli.embeddedDatabaseUrl));

  await pg.stop();
  handles.pop();
  const again = await startPostgres({ dataDir, port, logFile: join(work, 'postgres.log') });
  handles.push(again);
  assert.equal(new URL(again.serverUrl).password, password, 'the same password after a restart');
  assert.ok(await answers(again.serverUrl));
  // the next start finds the roles and the database, and keeps the app's password
  assert.equal((await prepareLedgerDatabase(again, stackConfig(env), env)).url, ledger.url);
  assert.ok(await answers(ledger.url));
});
