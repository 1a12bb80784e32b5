/**
 * `loyalty api` and `loyalty migrate`: the HTTP API as a process of its own, for containers and
 * any deployment where the API, the workers and Temporal run apart (docker-compose.yml,
 * docs/deploy.md). `npm start` keeps running everything in one process (cli/dev-stack.ts).
 */
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { LOG_REDACT } from '../api/auth';
import { DEFAULT_AUTH_THROTTLE } from '../api/auth';
import { buildApi, DEFAULT_BATCHER, DEFAULT_HTTP_TIMEOUTS, DEFAULT_WORKFLOW_WAIT_MS } from '../api/server';
import { checkAppConnection } from '../db/roles';
import { migrateLedger, migrationUrl } from './ledger-database';
import { createPool } from '../db/pool';
import { connectClient } from '../temporal/connect';
import { temporalSettings } from '../temporal/settings';
import {
  ensureAuditAnchorSchedule,
  ensureCloseSchedule,
  ensureGlDailySchedule,
  ensureReconciliationSchedule,
} from '../workers/schedules';
import type { StackConfig } from './config';

/** Connections one API process opens: the accrual batcher's two lanes, the reads, key lookups, and room for bursts. */
export const API_POOL_MAX_CONNECTIONS = 20;
/** After SIGTERM, how long requests in flight and queued accruals get before the process exits anyway (compose waits 30 s). */
export const API_SHUTDOWN_LIMIT_MS = 25_000;
/** /readyz asks Temporal with this deadline, so that a hung frontend makes the API unready rather than /readyz hang. */
export const READINESS_DEADLINE_MS = 2_000;
/** The report and liability reads' own pool (api/server.ts reportPool): a few connections, each statement at most 30 s. */
export const API_REPORT_POOL = { maxConnections: 4, statementTimeoutMs: 30_000 };
/** Request bodies larger than this are refused with 413 (as npm start). */
const BODY_LIMIT_BYTES = 64 * 1024;

/** The settings `loyalty api` reads beyond stackConfig(), with their defaults written out. */
export function apiServerEnv(env: NodeJS.ProcessEnv = process.env) {
  return {
    /** on: apply db/migrations at start; off: leave it to the one-shot `loyalty migrate` (several replicas, one migrator) */
    migrate: onOff('LOYALTY_MIGRATE', env.LOYALTY_MIGRATE ?? 'off'),
    /** the bearer token /metrics requires (api/server.ts); unset: /metrics answers loopback only */
    metricsToken: metricsToken(env.LOYALTY_METRICS_TOKEN_FILE),
  };
}

/** The metrics token from its file (a compose secret, like Prometheus's credentials_file); at least 16 characters. */
function metricsToken(file: string | undefined): string | undefined {
  if (!file) return undefined;
  const token = readFileSync(file, 'utf8').trim();
  if (token.length < 16) throw new Error(`LOYALTY_METRICS_TOKEN_FILE (${file}) holds fewer than 16 characters`);
  return token;
}

function onOff(name: string, value: string): boolean {
  if (value !== 'on' && value !== 'off') throw new Error(`${name} is on or off, not ${JSON.stringify(value)}`);
  return value === 'on';
}

function required(name: string, value: string | undefined, command: string): string {
  // A container must say where its database and Temporal are: falling back to npm start's local ones would hide a typo.
  if (!value)
    throw new Error(
      `${name} is not set: \`loyalty ${command}\` runs against an existing ${name.startsWith('TEMPORAL') ? 'Temporal' : 'PostgreSQL'}`,
    );
  return value;
}

/**
 * The API alone: PostgreSQL at DATABASE_URL (TLS per db/pool.ts), Temporal at TEMPORAL_ADDRESS with
 * the TLS and payload codec of temporal/settings.ts, listening on HOST:PORT. Creates the daily
 * reconciliation and quarterly close schedules if they do not exist yet (replicas racing to create
 * them are fine: the second finds the first). Stops gracefully on SIGTERM or SIGINT.
 */
export async function runApiServer(cfg: StackConfig, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = pino({ level: cfg.logLevel, redact: LOG_REDACT });
  const databaseUrl = required('DATABASE_URL', cfg.databaseUrl, 'api');
  const temporalAddress = required('TEMPORAL_ADDRESS', cfg.temporalAddress, 'api');
  const own = apiServerEnv(env);
  const settings = temporalSettings({ address: temporalAddress, namespace: cfg.namespace }, env);

  const stops: Array<[string, () => Promise<unknown>]> = [];
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => {
      log.error({ limitMs: API_SHUTDOWN_LIMIT_MS }, 'shutdown took too long; exiting');
      process.exit(1);
    }, API_SHUTDOWN_LIMIT_MS).unref();
    for (const [name, stop] of stops.reverse()) {
      await stop().catch((e) => log.error({ err: e }, `stopping ${name} failed`));
    }
    process.exit(code);
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      log.info({ signal: sig }, 'stopping the API');
      void shutdown(0);
    });
  }

  try {
    const pool = createPool({
      connectionString: databaseUrl,
      maxConnections: API_POOL_MAX_CONNECTIONS,
      applicationName: 'loyalty-api',
      env,
    });
    stops.push(['pool', () => pool.end()]);
    const reportPool = createPool({
      connectionString: databaseUrl,
      maxConnections: API_REPORT_POOL.maxConnections,
      statementTimeoutMs: API_REPORT_POOL.statementTimeoutMs,
      capLongQueries: true,
      applicationName: 'loyalty-api-reports',
      env,
    });
    stops.push(['report pool', () => reportPool.end()]);
    if (own.migrate)
      log.info(
        { applied: (await migrateLedger(migrationUrl(databaseUrl, env), env)).applied },
        'migrations applied (LOYALTY_MIGRATE=on)',
      );
    // the app role's connection, never the owner's or a superuser's (docs/deploy.md)
    const privileged = await checkAppConnection(pool, env);
    if (privileged) log.warn(privileged);

    const { client, connection } = await connectClient(settings);
    stops.push(['temporal connection', () => connection.close()]);

    if (cfg.reconciliationAt) {
      const r = await ensureReconciliationSchedule(client, { taskQueue: cfg.taskQueue, ...cfg.reconciliationAt }).catch(
        (e: Error) => log.error({ err: e }, 'could not create the daily reconciliation schedule'),
      );
      if (r) log.info({ schedule: r }, 'daily reconciliation schedule');
    }
    if (cfg.glDailyAt) {
      const r = await ensureGlDailySchedule(client, { taskQueue: cfg.taskQueue, ...cfg.glDailyAt }).catch((e: Error) =>
        log.error({ err: e }, 'could not create the daily GL posting schedule'),
      );
      if (r) log.info({ schedule: r }, 'daily GL posting schedule');
    }
    if (cfg.closeDaysAfterQuarterEnd !== null) {
      const r = await ensureCloseSchedule(client, {
        taskQueue: cfg.taskQueue,
        daysAfterQuarterEnd: cfg.closeDaysAfterQuarterEnd,
      }).catch((e: Error) => log.error({ err: e }, 'could not create the quarterly close schedule'));
      if (r) log.info({ schedule: r }, 'quarterly close schedule');
    }
    if (cfg.auditAnchorEveryMinutes !== null) {
      const r = await ensureAuditAnchorSchedule(client, {
        taskQueue: cfg.taskQueue,
        everyMinutes: cfg.auditAnchorEveryMinutes,
      }).catch((e: Error) => log.error({ err: e }, 'could not create the audit anchor schedule'));
      if (r) log.info({ schedule: r }, 'audit anchor schedule');
    }

    if (!settings.codec)
      log.warn('LOYALTY_CODEC_KEYS_FILE is not set: payloads go to Temporal in clear and /codec answers 503');
    const api = await buildApi({
      pool,
      reportPool,
      logger: log,
      batcher: DEFAULT_BATCHER,
      bodyLimitBytes: BODY_LIMIT_BYTES,
      authThrottle: DEFAULT_AUTH_THROTTLE,
      httpTimeouts: DEFAULT_HTTP_TIMEOUTS,
      workflowWaitMs: DEFAULT_WORKFLOW_WAIT_MS,
      // Through the client's own connection, so that readiness checks Temporal with the same TLS and mTLS as the calls.
      temporalReachable: () =>
        connection
          .withDeadline(Date.now() + READINESS_DEADLINE_MS, () => connection.workflowService.getSystemInfo({}))
          .then(() => true),
      temporal: { client, taskQueue: cfg.taskQueue },
      // The UI or CLI sends a support key in `Authorization: Bearer` or the codec cookie, never in a URL (docs/deploy.md).
      codec: settings.codec ? { codec: settings.codec, corsOrigins: cfg.codecCorsOrigins } : undefined,
      metricsToken: own.metricsToken,
      console: { temporalUiUrl: cfg.temporalUiUrl, namespace: cfg.namespace },
    });
    // Closed first on SIGTERM: no new requests (503), the ones in flight and their accrual batches finish.
    stops.push(['api', () => api.close()]);
    await api.listen({ port: cfg.apiPort, host: cfg.apiHost });
    log.info(
      {
        host: cfg.apiHost,
        port: cfg.apiPort,
        temporal: temporalAddress,
        namespace: cfg.namespace,
        taskQueue: cfg.taskQueue,
        temporalTls: Boolean(settings.tls),
        payloadEncryption: Boolean(settings.codec),
      },
      'api ready',
    );
  } catch (e) {
    log.error({ err: e }, 'the API did not start');
    await shutdown(1);
  }
}

/** `loyalty migrate`: applies db/migrations once and exits; 0 when the schema is current, 1 when a migration failed. */
export async function runMigrate(
  databaseUrl: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  try {
    // as the owner (cli/index.ts: --database-url, else MIGRATION_DATABASE_URL, else DATABASE_URL)
    const { applied, appRole } = await migrateLedger(required('DATABASE_URL', databaseUrl, 'migrate'), env);
    process.stdout.write(
      applied.length
        ? `applied ${applied.length} migration(s): ${applied.join(', ')}\n`
        : 'the schema is current; nothing to apply\n',
    );
    process.stdout.write(
      appRole
        ? `granted the app role ${appRole} its privileges (db/grants.sql)\n`
        : 'no app role (loyalty_app, or LOYALTY_DB_APP_ROLE) on this server: no grants given (docs/deploy.md, "Database roles and grants")\n',
    );
    return 0;
  } catch (e) {
    process.stderr.write(`loyalty migrate: ${(e as Error).message}\n`);
    return 1;
  }
}
