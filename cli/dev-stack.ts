import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { DEFAULT_AUTH_THROTTLE, LOG_REDACT } from '../api/auth';
import { buildApi, DEFAULT_BATCHER, DEFAULT_HTTP_TIMEOUTS, DEFAULT_WORKFLOW_WAIT_MS } from '../api/server';
import { API_REPORT_POOL } from './api-server';
import { startSimulators } from '../simulators';
import { createPool } from '../db/pool';
import { connectClient, connectWorker } from '../temporal/connect';
import { dataConverter, temporalSettings } from '../temporal/settings';
import { startWorkerTelemetry, telemetrySettings } from '../workers/telemetry';
import { createLoyaltyWorker } from '../workers/worker';
import {
  ensureAuditAnchorSchedule,
  ensureCloseSchedule,
  ensureGlDailySchedule,
  ensureReconciliationSchedule,
} from '../workers/schedules';
import { WakeupRelay } from '../workers/wakeup-relay';
import { WebhookRelay, webhookRelaySettings } from '../workers/webhook-relay';
import { ensureLocalCodecKeys } from './codec-keys';
import type { StackConfig } from './config';
import { ensureDevKeys } from './dev-keys';
import { oneLine, StackError } from './stack/errors';
import { watchLaunchers } from './stack/launcher';
import { startPostgres } from './stack/postgres';
import { prepareLedgerDatabase } from './ledger-database';
import { killTrackedChildren } from './stack/process';
import { startTemporalDevServer, temporalAnswers } from './stack/temporal-dev-server';

/** From the first stop signal to every child gone: what is still running then is SIGKILLed. */
const STOP_DEADLINE_MS = 8000;

/**
 * `npm start`: PostgreSQL, the Temporal dev server, the worker, the outbox relay and the API.
 *
 * It stops, and everything it started with it, on SIGINT, SIGTERM or SIGHUP, and when the process
 * that launched it is gone (npm signalled alone does not pass every signal on: see
 * stack/launcher.ts); within STOP_DEADLINE_MS, after which the servers still up are SIGKILLed; at
 * once on a second signal. The Temporal dev server and PostgreSQL die with this process even when it
 * is SIGKILLed (stack/process.ts). A failure to start is one line on stderr saying what to do, and
 * exit code 1.
 */
export async function runDevStack(cfg: StackConfig): Promise<void> {
  const log = pino({ level: cfg.logLevel, redact: LOG_REDACT });
  // a closed terminal (SIGHUP) must not turn the stop into a crash on a write
  for (const s of [process.stdout, process.stderr]) s.on('error', () => undefined);
  const stops: Array<[string, () => Promise<unknown>]> = [];
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => {
      log.warn(`the stack did not stop within ${STOP_DEADLINE_MS / 1000} s: killing what is left`);
      killTrackedChildren('SIGKILL');
      process.exit(code);
    }, STOP_DEADLINE_MS);
    for (const [name, stop] of stops.reverse()) {
      await stop().catch((e) => log.error(`stopping ${name} failed: ${oneLine(e)}`));
    }
    process.exit(code);
  };
  let firstSignalAt = 0;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (stopping) {
        // a second signal (not the same one relayed a moment later): no more waiting
        if (firstSignalAt && Date.now() - firstSignalAt > 1000) {
          killTrackedChildren('SIGKILL');
          process.exit(1);
        }
        return;
      }
      firstSignalAt = Date.now();
      log.info({ signal: sig }, 'stopping the stack');
      void shutdown(0);
    });
  }
  const watch = watchLaunchers((gone) => {
    log.info(
      { launcher: gone },
      `the process that started the stack (pid ${gone.pid}: ${gone.command}) is gone: stopping the stack`,
    );
    void shutdown(0);
  });
  log.debug({ launchers: watch.launchers }, 'watching the processes that started the stack');
  // after the start, a failure that nothing handles stops the stack the same way, in one line
  const failed = (e: unknown) => {
    if (stopping) return;
    process.stderr.write(`loyalty start: ${failure(e, cfg)}\n`);
    void shutdown(1);
  };
  process.on('uncaughtException', failed);
  process.on('unhandledRejection', failed);

  try {
    const pg = await startPostgres({
      dataDir: cfg.pgDataDir,
      port: cfg.pgPort,
      databaseUrl: cfg.databaseUrl,
      logFile: join(cfg.dataDir, 'logs', 'postgres.log'),
    });
    stops.push(['postgres', pg.stop]);
    // migrated as the owner; everything below connects as the app role (cli/ledger-database.ts)
    const { url: dbUrl, applied, warning } = await prepareLedgerDatabase(pg, cfg);
    if (warning) log.warn(warning);
    const pool = createPool({ connectionString: dbUrl, maxConnections: 20, applicationName: 'loyalty-dev' });
    stops.push(['pool', () => pool.end()]);
    log.info({ applied }, 'database ready');

    const keys = await ensureDevKeys(pool, join(cfg.dataDir, 'dev-keys.json'));
    if (cfg.devKeysFile) writeFileSync(cfg.devKeysFile, JSON.stringify(keys, null, 2), { mode: 0o600 });

    // Payloads encrypted by default, with a local key kept beside the data. The dev server's UI
    // decodes through the API's /codec with a support key that the browser holds as a cookie
    // (api/routes/codec.ts: set at /codec/session; sent when the UI's codec setting "Include
    // cross-origin credentials" is on). `localhost`, as the UI's own address: the cookie is
    // SameSite=Strict, and localhost and 127.0.0.1 are two sites to a browser.
    const codecKeysFile =
      cfg.codecKeysFile ?? (cfg.codec ? ensureLocalCodecKeys(join(cfg.dataDir, 'codec-keys.json')) : undefined);
    const codecEndpoint = codecKeysFile ? `http://localhost:${cfg.apiPort}/codec` : undefined;

    let temporalAddress = cfg.temporalAddress;
    let uiUrl: string | null = null;
    if (!temporalAddress) {
      const dev = await startTemporalDevServer({
        dbFile: cfg.temporalDbFile,
        port: cfg.temporalPort,
        uiPort: cfg.temporalUiPort,
        logFile: join(cfg.dataDir, 'logs', 'temporal.log'),
        namespace: cfg.namespace,
        uiCodecEndpoint: codecEndpoint,
      });
      stops.push(['temporal', dev.stop]);
      temporalAddress = dev.address;
      uiUrl = dev.uiUrl;
    }

    const settings = temporalSettings(
      { address: temporalAddress, namespace: cfg.namespace },
      { ...process.env, LOYALTY_CODEC_KEYS_FILE: codecKeysFile },
    );

    const sims = await startSimulators(cfg.simulatorPorts);
    stops.push(['simulators', sims.close]);

    const telemetry = await startWorkerTelemetry(telemetrySettings(), log);
    if (telemetry.server) stops.push(['worker metrics', async () => telemetry.server!.close()]);
    const nativeConnection = await connectWorker(settings);
    const worker = await createLoyaltyWorker({
      log: log.child({ component: 'worker' }),
      connection: nativeConnection,
      namespace: cfg.namespace,
      taskQueue: cfg.taskQueue,
      pool,
      maxConcurrentActivities: 50,
      maxCachedWorkflows: 2000,
      services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 2000 },
      dataConverter: dataConverter(settings),
      metrics: telemetry.metrics,
      // a bundle made beforehand (as `loyalty worker` takes it): a quicker start, for tests
      workflowBundle: process.env.LOYALTY_WORKFLOW_BUNDLE
        ? { code: readFileSync(process.env.LOYALTY_WORKFLOW_BUNDLE, 'utf8') }
        : undefined,
    });
    const workerRun = worker.run();
    // the SDK stops the worker by itself on SIGINT and SIGTERM (its runtime's shutdown signals)
    stops.push([
      'worker',
      async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await workerRun;
        await nativeConnection.close();
      },
    ]);

    const { client, connection } = await connectClient(settings);
    const relay = new WakeupRelay({
      pool,
      client,
      taskQueue: cfg.taskQueue,
      log,
      batchSize: 200,
      concurrency: 16,
      idleMs: 200,
      maxBackoffMs: 5000,
      searchAttributes: true,
    });
    relay.start();
    // the dev stack's webhooks may point at this machine (http://127.0.0.1:...): the API's check and
    // the relay's read this; a deployment leaves it unset (docs/api.md, "Webhooks")
    process.env.LOYALTY_WEBHOOK_ALLOW_PRIVATE ??= '1';
    const webhooks = new WebhookRelay({ pool, log, ...webhookRelaySettings(process.env) });
    webhooks.start();
    stops.push([
      'relay',
      async () => {
        await relay.stop();
        await webhooks.stop();
        await connection.close();
      },
    ]);

    const schedule = cfg.reconciliationAt
      ? await ensureReconciliationSchedule(client, { taskQueue: cfg.taskQueue, ...cfg.reconciliationAt })
      : null;
    log.info({ schedule }, 'daily reconciliation schedule');
    const glSchedule = cfg.glDailyAt
      ? await ensureGlDailySchedule(client, { taskQueue: cfg.taskQueue, ...cfg.glDailyAt })
      : null;
    log.info({ schedule: glSchedule }, 'daily GL posting schedule');
    const anchorSchedule =
      cfg.auditAnchorEveryMinutes === null
        ? null
        : await ensureAuditAnchorSchedule(client, {
            taskQueue: cfg.taskQueue,
            everyMinutes: cfg.auditAnchorEveryMinutes,
          });
    log.info({ schedule: anchorSchedule }, 'audit anchor schedule');
    const closeSchedule =
      cfg.closeDaysAfterQuarterEnd === null
        ? null
        : await ensureCloseSchedule(client, {
            taskQueue: cfg.taskQueue,
            daysAfterQuarterEnd: cfg.closeDaysAfterQuarterEnd,
          });

    const reportPool = createPool({
      connectionString: dbUrl,
      maxConnections: API_REPORT_POOL.maxConnections,
      statementTimeoutMs: API_REPORT_POOL.statementTimeoutMs,
      capLongQueries: true,
      applicationName: 'loyalty-dev-reports',
    });
    stops.push(['report pool', () => reportPool.end()]);
    const api = await buildApi({
      pool,
      reportPool,
      logger: log,
      batcher: DEFAULT_BATCHER,
      bodyLimitBytes: 64 * 1024,
      authThrottle: DEFAULT_AUTH_THROTTLE,
      httpTimeouts: DEFAULT_HTTP_TIMEOUTS,
      workflowWaitMs: DEFAULT_WORKFLOW_WAIT_MS,
      temporalReachable: () => temporalAnswers(temporalAddress!),
      temporal: { client, taskQueue: cfg.taskQueue },
      codec: settings.codec ? { codec: settings.codec, corsOrigins: cfg.codecCorsOrigins } : undefined,
      console: { temporalUiUrl: uiUrl ?? cfg.temporalUiUrl, namespace: cfg.namespace },
      // no metrics token: /metrics answers loopback peers only, whatever HOST says (api/server.ts)
    });
    await api.listen({ port: cfg.apiPort, host: cfg.apiHost });
    stops.push(['api', () => api.close()]);

    const lines = [
      '',
      'Loyalty Ledger is running.',
      `  API            http://localhost:${cfg.apiPort}   (reference: /docs, schema: /openapi.json, metrics: /metrics from this machine only)`,
      `  Console        http://localhost:${cfg.apiPort}/console   (sign in with a person's key below: dev-finance, dev-controller, dev-support, dev-owner, dev-legal; 'npm run loyalty -- demo redemption' makes a program with data)`,
      `  Temporal UI    ${uiUrl ?? '(external server)'}`,
      `  Payloads       ${codecKeysFile ? `encrypted (AES-256-GCM, keys ${codecKeysFile}); for the UI to decode them, give this browser a support key at http://localhost:${cfg.apiPort}/codec/session and turn on "Include cross-origin credentials" in the UI's codec settings` : 'in clear (LOYALTY_CODEC=off)'}`,
      `  Temporal       ${temporalAddress}  namespace ${cfg.namespace}, task queue ${cfg.taskQueue}`,
      `  PostgreSQL     ${dbUrl.replace(/:[^:@/]+@/, ':***@')}${cfg.databaseUrl ? '' : ' (embedded; migrated as the owner role, served as the app role)'}`,
      ...(warning ? [`                 WARNING: ${warning}`] : []),
      ...(pg.notes ?? []).map((n) => `                 ${n}`),
      `  Simulators     billing ${sims.billingUrl}, GL ${sims.glUrl}, tax ${sims.taxUrl} (faults: POST /admin/faults)`,
      `  Reconciliation ${cfg.reconciliationAt ? `daily at ${process.env.LOYALTY_RECONCILIATION_AT ?? '00:30'} UTC (schedule ${schedule})` : 'no schedule (LOYALTY_RECONCILIATION_AT=off)'}`,
      `  GL posting     ${cfg.glDailyAt ? `daily at ${process.env.LOYALTY_GL_DAILY_AT ?? '00:10'} UTC, the day before (schedule ${glSchedule})` : 'no schedule (LOYALTY_GL_DAILY_AT=off)'}`,
      `  Closes         ${closeSchedule ? `started ${cfg.closeDaysAfterQuarterEnd} day(s) after each quarter ends (schedule ${closeSchedule})` : 'no schedule (LOYALTY_CLOSE_DAYS_AFTER_QUARTER=off)'}`,
      `  Data           ${cfg.dataDir}`,
      '  API keys (Authorization: Bearer <key>):',
      ...Object.entries(keys).map(([p, k]) => `    ${p.padEnd(16)} ${k}`),
      'Ctrl-C stops everything.',
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } catch (e) {
    if (stopping) return; // stopped while starting: what failed is the stop's doing
    process.stderr.write(`loyalty start: ${failure(e, cfg)}\n`);
    await shutdown(1);
  }
}

/**
 * One line for a failure: a StackError says what to do by itself; anything else is a bug or an
 * unforeseen case: its first line, and its whole stack trace in a file rather than on the screen.
 */
function failure(e: unknown, cfg: StackConfig): string {
  if (e instanceof StackError) return e.message;
  const err = e as NodeJS.ErrnoException & { port?: number; address?: string };
  if (err?.code === 'EADDRINUSE' && err.port) {
    return `port ${err.port} is taken, so the stack cannot listen on ${err.address ?? '127.0.0.1'}:${err.port}: stop what uses it (ss -ltnp | grep :${err.port}) or choose another port${portVariable(cfg, err.port)}`;
  }
  const file = join(cfg.dataDir, 'logs', 'start-error.log');
  try {
    mkdirSync(dirname(file), { recursive: true });
    appendFileSync(file, `${new Date().toISOString()} ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return `the stack failed: ${oneLine(e)} (details: ${file})`;
  } catch {
    return `the stack failed: ${oneLine(e)}`;
  }
}

/** Which setting moves the listener on `port`, as ` (NAME)`, or nothing. */
function portVariable(cfg: StackConfig, port: number): string {
  let t: ReturnType<typeof telemetrySettings> | null = null;
  try {
    t = telemetrySettings();
  } catch {
    // a bad value fails elsewhere
  }
  const names: Array<[number | null | undefined, string]> = [
    [cfg.apiPort, 'PORT'],
    [cfg.simulatorPorts.billing, 'LOYALTY_BILLING_PORT'],
    [cfg.simulatorPorts.gl, 'LOYALTY_GL_PORT'],
    [cfg.simulatorPorts.tax, 'LOYALTY_TAX_PORT'],
    [t?.metricsPort, 'LOYALTY_WORKER_METRICS_PORT'],
    [t?.sdkMetricsPort, 'LOYALTY_SDK_METRICS_PORT'],
  ];
  const name = names.find(([p]) => p === port)?.[1];
  return name ? ` (${name})` : '';
}
