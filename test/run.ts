/**
 * `npm test`'s runner. Brings up the real components once for the whole run: PostgreSQL (embedded,
 * or the server of DATABASE_URL), a template database with the migrations applied, a Temporal dev
 * server (in memory, headless) and the workflow bundle; then runs every test file with Node's test
 * runner. Each test file makes its own database from the template and its own task queue.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { migrate } from '../db/migrate';
import { createPool } from '../db/pool';
import { BUNDLE_OPTIONS } from '../workers/worker';
import { dropDatabase, ensureDatabase, startPostgres } from '../cli/stack/postgres';
import { startTemporalDevServer } from '../cli/stack/temporal-dev-server';
import { freePort } from '../cli/stack/process';

const unitOnly = process.argv.includes('--unit');
const filter = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);

function testFiles(dir: string): string[] {
  return readdirSync(join(__dirname, dir))
    .filter((f) => f.endsWith('.test.ts') && (!filter || f.includes(filter)))
    .sort()
    .map((f) => join('test', dir, f));
}

async function main(): Promise<number> {
  const files = [...testFiles('unit'), ...(unitOnly ? [] : testFiles('integration'))];
  const work = mkdtempSync(join(tmpdir(), 'loyalty-test-'));
  const env: NodeJS.ProcessEnv = { ...process.env, LOYALTY_TEST_WORK_DIR: work };
  const stops: Array<() => Promise<unknown>> = [];
  try {
    if (!unitOnly) {
      const t0 = Date.now();
      const pg = await startPostgres({ dataDir: join(work, 'pg'), port: await freePort(), databaseUrl: process.env.DATABASE_URL });
      stops.push(pg.stop);
      const serverUrl = pg.embedded ? pg.serverUrl : maintenanceUrl(pg.serverUrl);
      const template = `loyalty_tpl_${process.pid}`;
      await dropDatabase(serverUrl, template);
      const templateUrl = await ensureDatabase(serverUrl, template);
      const pool = createPool({ connectionString: templateUrl, maxConnections: 1, applicationName: 'test-template' });
      await migrate(pool);
      await pool.end();
      stops.push(() => dropDatabase(serverUrl, template));

      const temporal = await startTemporalDevServer({
        dbFile: join(work, 'temporal.sqlite'), port: await freePort(), uiPort: null, logFile: join(work, 'temporal.log'), namespace: 'default',
      });
      stops.push(temporal.stop);

      const bundle = await bundleWorkflowCode({ ...BUNDLE_OPTIONS, logger: quietLogger });
      const bundlePath = join(work, 'workflow-bundle.js');
      writeFileSync(bundlePath, bundle.code);

      Object.assign(env, {
        LOYALTY_TEST_PG_SERVER_URL: serverUrl,
        LOYALTY_TEST_TEMPLATE_DB: template,
        LOYALTY_TEST_TEMPORAL_ADDRESS: temporal.address,
        LOYALTY_TEST_WORKFLOW_BUNDLE: bundlePath,
      });
      process.stdout.write(`# test stack up in ${Date.now() - t0} ms: PostgreSQL ${pg.embedded ? '(embedded)' : '(DATABASE_URL)'}, Temporal dev server ${temporal.address}\n`);
    }
    return await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=300000', ...files], {
        stdio: 'inherit',
        env,
      });
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    });
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

/** DATABASE_URL names one database; test databases are made beside it on the same server. */
function maintenanceUrl(url: string): string {
  const u = new URL(url);
  u.pathname = '/postgres';
  return u.toString();
}

const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} };

main().then((code) => process.exit(code), (e) => {
  console.error(e);
  process.exit(1);
});
