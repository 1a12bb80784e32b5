/**
 * vitest's globalSetup for the integration project: brings up the real components once per run,
 * in the main process, before any test file starts. PostgreSQL (embedded, or the server of
 * DATABASE_URL) with this run's owner and app roles (db/roles.ts; names and the app's password
 * this run's own, so that runs sharing a server do not meet) and a template database owned by the
 * owner and migrated as it, a Temporal dev server
 * (in memory, headless) and the workflow bundle. Test files reach them through the LOYALTY_TEST_*
 * variables (forks inherit this process's environment); each file makes its own database from the
 * template (test/helpers/stack.ts freshDatabase) and its own task queue.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { Client } from 'pg';
import { provisionDatabase } from '../db/provision';
import { BUNDLE_OPTIONS } from '../workers/worker';
import { startPostgres } from '../cli/stack/postgres';
import { dropDatabase } from '../db/databases';
import { startTemporalDevServer } from '../cli/stack/temporal-dev-server';
import { freePort } from '../cli/stack/process';
import { StackError } from '../cli/stack/errors';

export default async function setup(): Promise<() => Promise<void>> {
  const work = mkdtempSync(join(tmpdir(), 'loyalty-test-'));
  const stops: Array<() => Promise<unknown>> = [];
  const teardown = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  };
  try {
    const t0 = Date.now();
    const pg = await startPostgres({
      dataDir: join(work, 'pg'),
      port: await freePort(),
      databaseUrl: process.env.DATABASE_URL,
    });
    stops.push(pg.stop);
    const serverUrl = pg.embedded ? pg.serverUrl : maintenanceUrl(pg.serverUrl);
    const template = `loyalty_tpl_${process.pid}`;
    const roles = { owner: `loyalty_owner_t${process.pid}`, app: `loyalty_app_t${process.pid}` };
    const appPassword = randomBytes(18).toString('hex');
    await dropDatabase(serverUrl, template);
    // on a server of its own the roles go with it; on DATABASE_URL's they are dropped after the template
    if (!pg.embedded) stops.push(() => dropRoles(serverUrl, [roles.app, roles.owner]));
    await provisionDatabase({ serverUrl, name: template, roles, appPassword });
    stops.push(() => dropDatabase(serverUrl, template));

    const temporal = await startTemporalDevServer({
      dbFile: join(work, 'temporal.sqlite'),
      port: await freePort(),
      uiPort: null,
      logFile: join(work, 'temporal.log'),
      namespace: 'default',
    });
    stops.push(temporal.stop);

    const bundle = await bundleWorkflowCode({ ...BUNDLE_OPTIONS, logger: quietLogger });
    const bundlePath = join(work, 'workflow-bundle.js');
    writeFileSync(bundlePath, bundle.code);

    Object.assign(process.env, {
      LOYALTY_TEST_WORK_DIR: work,
      LOYALTY_TEST_PG_SERVER_URL: serverUrl,
      LOYALTY_TEST_TEMPLATE_DB: template,
      LOYALTY_TEST_OWNER_ROLE: roles.owner,
      LOYALTY_TEST_APP_ROLE: roles.app,
      LOYALTY_TEST_APP_PASSWORD: appPassword,
      LOYALTY_TEST_TEMPORAL_ADDRESS: temporal.address,
      LOYALTY_TEST_WORKFLOW_BUNDLE: bundlePath,
      // closes anchor the audit chain (db/audit-anchors.ts): the throwaway databases' anchors and
      // their signing key go to this run's work folder, never into the checkout's .data
      LOYALTY_AUDIT_ANCHOR_DIR: join(work, 'audit-anchors'),
      LOYALTY_AUDIT_ANCHOR_KEY_FILE: join(work, 'audit-anchor-key.pem'),
    });
    process.stdout.write(
      `# test stack up in ${Date.now() - t0} ms: PostgreSQL ${pg.embedded ? '(embedded)' : '(DATABASE_URL)'}, Temporal dev server ${temporal.address}\n`,
    );
  } catch (e) {
    await teardown();
    // What the person running the tests can fix (a port taken, no postgres user as root, nowhere
    // PostgreSQL can reach) is one line saying what to do, as `npm start` says it, not a stack trace.
    if (e instanceof StackError) {
      process.stderr.write(`npm test: the test stack could not start: ${e.message}\n`);
      process.exit(1);
    }
    throw e;
  }
  return teardown;
}

/** This run's roles, once nothing of theirs is left (a test database left over keeps them: reported, not fatal). */
async function dropRoles(serverUrl: string, names: string[]): Promise<void> {
  const c = new Client({ connectionString: serverUrl });
  await c.connect();
  try {
    for (const n of names) {
      await c.query(`drop role if exists ${n}`).catch((e: Error) => {
        process.stderr.write(`# could not drop the test role ${n}: ${e.message}\n`);
      });
    }
  } finally {
    await c.end();
  }
}

/** DATABASE_URL names one database; test databases are made beside it on the same server. */
function maintenanceUrl(url: string): string {
  const u = new URL(url);
  u.pathname = '/postgres';
  return u.toString();
}

const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} };
