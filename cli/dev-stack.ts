import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { buildApi, DEFAULT_BATCHER } from '../api/server';
import { migrate } from '../db/migrate';
import { startSimulators } from '../simulators';
import { createPool } from '../db/pool';
import { connectClient, connectWorker } from '../temporal/connect';
import { dataConverter, temporalSettings } from '../temporal/settings';
import { startWorkerTelemetry, telemetrySettings } from '../workers/telemetry';
import { createLoyaltyWorker } from '../workers/worker';
import { ensureCloseSchedule, ensureReconciliationSchedule } from '../workers/schedules';
import { WakeupRelay } from '../workers/wakeup-relay';
import { ensureLocalCodecKeys } from './codec-keys';
import type { StackConfig } from './config';
import { ensureDevKeys } from './dev-keys';
import { ensureDatabase, startPostgres } from './stack/postgres';
import { startTemporalDevServer, temporalAnswers } from './stack/temporal-dev-server';

/** `npm start`: PostgreSQL, the Temporal dev server, the worker, the outbox relay and the API. */
export async function runDevStack(cfg: StackConfig): Promise<void> {
  const log = pino({ level: cfg.logLevel });
  const stops: Array<[string, () => Promise<unknown>]> = [];
  const shutdown = async (code: number) => {
    for (const [name, stop] of stops.reverse()) {
      await stop().catch((e) => log.error({ err: e }, `stopping ${name} failed`));
    }
    process.exit(code);
  };
  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      log.info('stopping the stack');
      void shutdown(0);
    });
  }

  try {
    const pg = await startPostgres({ dataDir: cfg.pgDataDir, port: cfg.pgPort, databaseUrl: cfg.databaseUrl });
    stops.push(['postgres', pg.stop]);
    const dbUrl = cfg.databaseUrl ?? (await ensureDatabase(pg.serverUrl, cfg.databaseName));
    const pool = createPool({ connectionString: dbUrl, maxConnections: 20, applicationName: 'loyalty-dev' });
    stops.push(['pool', () => pool.end()]);
    const applied = await migrate(pool);
    log.info({ applied }, 'database ready');

    const keys = await ensureDevKeys(pool, join(cfg.dataDir, 'dev-keys.json'));
    if (cfg.devKeysFile) writeFileSync(cfg.devKeysFile, JSON.stringify(keys, null, 2), { mode: 0o600 });

    // Payloads encrypted by default, with a local key kept beside the data; the dev server's UI
    // decodes through the API's codec routes, as dev-support (its key in the path: see api/routes/codec.ts).
    const codecKeysFile = cfg.codecKeysFile ?? (cfg.codec ? ensureLocalCodecKeys(join(cfg.dataDir, 'codec-keys.json')) : undefined);
    const codecEndpoint = codecKeysFile ? `http://127.0.0.1:${cfg.apiPort}/codec/k/${keys['dev-support']}` : undefined;

    let temporalAddress = cfg.temporalAddress;
    let uiUrl: string | null = null;
    if (!temporalAddress) {
      const dev = await startTemporalDevServer({
        dbFile: cfg.temporalDbFile, port: cfg.temporalPort, uiPort: cfg.temporalUiPort,
        logFile: join(cfg.dataDir, 'logs', 'temporal.log'), namespace: cfg.namespace, uiCodecEndpoint: codecEndpoint,
      });
      stops.push(['temporal', dev.stop]);
      temporalAddress = dev.address;
      uiUrl = dev.uiUrl;
    }

    const settings = temporalSettings({ address: temporalAddress, namespace: cfg.namespace }, { ...process.env, LOYALTY_CODEC_KEYS_FILE: codecKeysFile });

    const sims = await startSimulators(cfg.simulatorPorts);
    stops.push(['simulators', sims.close]);

    const telemetry = await startWorkerTelemetry(telemetrySettings(), log);
    if (telemetry.server) stops.push(['worker metrics', async () => telemetry.server!.close()]);
    const nativeConnection = await connectWorker(settings);
    const worker = await createLoyaltyWorker({ log: log.child({ component: 'worker' }),
      connection: nativeConnection, namespace: cfg.namespace, taskQueue: cfg.taskQueue, pool,
      maxConcurrentActivities: 50, maxCachedWorkflows: 2000,
      services: { billingUrl: sims.billingUrl, glUrl: sims.glUrl, taxUrl: sims.taxUrl, timeoutMs: 2000 },
      dataConverter: dataConverter(settings), metrics: telemetry.metrics,
    });
    const workerRun = worker.run();
    stops.push(['worker', async () => { worker.shutdown(); await workerRun; await nativeConnection.close(); }]);

    const { client, connection } = await connectClient(settings);
    const relay = new WakeupRelay({
      pool, client, taskQueue: cfg.taskQueue, log, batchSize: 200, concurrency: 16, idleMs: 200, maxBackoffMs: 5000, searchAttributes: true,
    });
    relay.start();
    stops.push(['relay', async () => { await relay.stop(); await connection.close(); }]);

    const schedule = cfg.reconciliationAt ? await ensureReconciliationSchedule(client, { taskQueue: cfg.taskQueue, ...cfg.reconciliationAt }) : null;
    log.info({ schedule }, 'daily reconciliation schedule');
    const closeSchedule = cfg.closeDaysAfterQuarterEnd === null ? null
      : await ensureCloseSchedule(client, { taskQueue: cfg.taskQueue, daysAfterQuarterEnd: cfg.closeDaysAfterQuarterEnd });

    const api = await buildApi({
      pool, logger: log, batcher: DEFAULT_BATCHER, bodyLimitBytes: 64 * 1024,
      temporalReachable: () => temporalAnswers(temporalAddress!),
      temporal: { client, taskQueue: cfg.taskQueue },
      codec: settings.codec ? { codec: settings.codec, corsOrigins: cfg.codecCorsOrigins, keyInPath: true } : undefined,
    });
    await api.listen({ port: cfg.apiPort, host: cfg.apiHost });
    stops.push(['api', () => api.close()]);

    const lines = [
      '',
      'Loyalty Ledger is running.',
      `  API            http://localhost:${cfg.apiPort}   (reference: /docs, schema: /openapi.json)`,
      `  Temporal UI    ${uiUrl ?? '(external server)'}`,
      `  Payloads       ${codecKeysFile ? `encrypted (AES-256-GCM, keys ${codecKeysFile}); the UI decodes them through the API's /codec as dev-support` : 'in clear (LOYALTY_CODEC=off)'}`,
      `  Temporal       ${temporalAddress}  namespace ${cfg.namespace}, task queue ${cfg.taskQueue}`,
      `  PostgreSQL     ${dbUrl.replace(/:[^:@/]+@/, ':***@')}${cfg.databaseUrl ? '' : ' (embedded)'}`,
      `  Simulators     billing ${sims.billingUrl}, GL ${sims.glUrl}, tax ${sims.taxUrl} (faults: POST /admin/faults)`,
      `  Reconciliation ${cfg.reconciliationAt ? `daily at ${process.env.LOYALTY_RECONCILIATION_AT ?? '00:30'} UTC (schedule ${schedule})` : 'no schedule (LOYALTY_RECONCILIATION_AT=off)'}`,
      `  Closes         ${closeSchedule ? `started ${cfg.closeDaysAfterQuarterEnd} day(s) after each quarter ends (schedule ${closeSchedule})` : 'no schedule (LOYALTY_CLOSE_DAYS_AFTER_QUARTER=off)'}`,
      `  Data           ${cfg.dataDir}`,
      '  API keys (Authorization: Bearer <key>):',
      ...Object.entries(keys).map(([p, k]) => `    ${p.padEnd(16)} ${k}`),
      'Ctrl-C stops everything.',
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } catch (e) {
    log.error({ err: e }, 'the stack did not start');
    await shutdown(1);
  }
}
