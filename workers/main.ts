/**
 * A worker process on its own: the member workflows' worker, the outbox relay and the webhook relay, against
 * TEMPORAL_ADDRESS and DATABASE_URL. `loyalty worker` runs it; so do the crash tests.
 */
import pino from 'pino';
import { createPool } from '../db/pool';
import { checkAppConnection } from '../db/roles';
import { LOG_REDACT } from '../domain/log-redaction';
import { connectClient, connectWorker } from '../temporal/connect';
import { dataConverter, temporalSettings } from '../temporal/settings';
import { startWorkerTelemetry, telemetrySettings } from './telemetry';
import { createLoyaltyWorker } from './worker';
import { WakeupRelay } from './wakeup-relay';
import { WebhookRelay, webhookRelaySettings } from './webhook-relay';

export interface WorkerProcessOptions {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  databaseUrl: string;
  /** a pre-built workflow bundle file (else workflows/ is bundled at start) */
  workflowBundlePath?: string;
  searchAttributes: boolean;
  services?: import('./worker').ServiceUrls;
}

export async function runWorkerProcess(o: WorkerProcessOptions): Promise<void> {
  // the same redaction as the API's: an activity's error can carry a header or a secret field
  const log = pino({ level: process.env.LOG_LEVEL ?? 'info', redact: LOG_REDACT });
  const pool = createPool({ connectionString: o.databaseUrl, maxConnections: 30, applicationName: 'loyalty-worker' });
  // the app role's connection, never the owner's or a superuser's (docs/deploy.md)
  const privileged = await checkAppConnection(pool);
  if (privileged) log.warn(privileged);
  // TLS and payload encryption from the environment (temporal/settings.ts)
  const settings = temporalSettings({ address: o.temporalAddress, namespace: o.namespace });
  const telemetry = await startWorkerTelemetry(telemetrySettings(), log);
  const nativeConnection = await connectWorker(settings);
  const { readFileSync } = await import('node:fs');
  const worker = await createLoyaltyWorker({
    log,
    connection: nativeConnection,
    namespace: o.namespace,
    taskQueue: o.taskQueue,
    pool,
    workflowBundle: o.workflowBundlePath ? { code: readFileSync(o.workflowBundlePath, 'utf8') } : undefined,
    maxConcurrentActivities: 50,
    maxCachedWorkflows: 5000,
    services: o.services,
    dataConverter: dataConverter(settings),
    metrics: telemetry.metrics,
  });
  const { client, connection } = await connectClient(settings);
  const relay = new WakeupRelay({
    pool,
    client,
    taskQueue: o.taskQueue,
    log,
    batchSize: 200,
    concurrency: 16,
    idleMs: 200,
    maxBackoffMs: 5000,
    searchAttributes: o.searchAttributes,
  });
  relay.start();
  // webhooks: the outbox of events (docs/api.md, "Webhooks"), shared with other workers' relays by leases
  const webhooks = new WebhookRelay({ pool, log, ...webhookRelaySettings(process.env) });
  webhooks.start();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => worker.shutdown());
  log.info({ taskQueue: o.taskQueue }, 'worker ready');
  process.stdout.write('READY\n');
  await worker.run();
  await relay.stop();
  await webhooks.stop();
  await connection.close();
  await nativeConnection.close();
  await pool.end();
  telemetry.server?.close();
}
