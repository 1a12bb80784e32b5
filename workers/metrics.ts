import http from 'node:http';
import type { Context } from '@temporalio/activity';
import type { ActivityInterceptors } from '@temporalio/worker';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The saga's compensations and the chargeback reversal: each completion is counted by name. */
const COMPENSATIONS = new Set([
  'releaseHeldPoints',
  'reverseCreditInBilling',
  'reversePointsAndJournal',
  'clawBackEarnedPoints',
]);

export interface WorkerMetrics {
  registry: Registry;
  activities: Histogram<'activity' | 'outcome'>;
  compensations: Counter<'activity'>;
  expiries: Counter;
  expiredPoints: Counter;
}

/** The worker's own metrics (the SDK's are served beside them: see serveWorkerMetrics). */
export function workerMetrics(
  registry = new Registry(),
  o: { processMetrics: boolean } = { processMetrics: true },
): WorkerMetrics {
  if (o.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'loyalty_worker_' });
  return {
    registry,
    activities: new Histogram({
      name: 'loyalty_worker_activity_seconds',
      help: 'activity executions by name and outcome (completed, failed)',
      labelNames: ['activity', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    }),
    compensations: new Counter({
      name: 'loyalty_compensations_total',
      help: 'saga compensations and chargeback reversals completed, by step',
      labelNames: ['activity'],
      registers: [registry],
    }),
    expiries: new Counter({ name: 'loyalty_expiries_total', help: 'expiries that took points', registers: [registry] }),
    expiredPoints: new Counter({
      name: 'loyalty_expired_points_total',
      help: 'points taken by expiries',
      registers: [registry],
    }),
  };
}

/** Counts every activity, the compensations, and what the expiries took. */
export function metricsActivityInterceptor(m: WorkerMetrics) {
  return (ctx: Context): ActivityInterceptors => ({
    inbound: {
      execute: async (input, next) => {
        const activity = ctx.info.activityType;
        const end = m.activities.startTimer({ activity });
        try {
          const result = await next(input);
          end({ outcome: 'completed' });
          if (COMPENSATIONS.has(activity)) m.compensations.inc({ activity });
          const expired =
            activity === 'expireUnprotectedPoints'
              ? Number((result as { expiredPoints?: number } | null)?.expiredPoints ?? 0)
              : 0;
          if (expired > 0) {
            m.expiries.inc();
            m.expiredPoints.inc(expired);
          }
          return result;
        } catch (e) {
          end({ outcome: 'failed' });
          throw e;
        }
      },
    },
  });
}

/** Longest wait for the SDK's exporter before /metrics answers with ours alone. */
const SDK_SCRAPE_TIMEOUT_MS = 2000;

/**
 * GET /metrics: the worker's metrics, then the Temporal SDK's own (its Prometheus exporter listens
 * on loopback only; one scrape target per worker is simpler to run).
 */
export function serveWorkerMetrics(o: {
  registry: Registry;
  host: string;
  port: number;
  sdkMetricsUrl: string | null;
}): Promise<http.Server> {
  const server = http.createServer(async (req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    const ours = await o.registry.metrics();
    const sdk = o.sdkMetricsUrl
      ? await fetch(o.sdkMetricsUrl, { signal: AbortSignal.timeout(SDK_SCRAPE_TIMEOUT_MS) }).then(
          (r) => r.text(),
          (e: Error) => `# the SDK's metrics did not answer: ${e.message}\n`,
        )
      : '';
    res.writeHead(200, { 'content-type': o.registry.contentType }).end(`${ours}\n${sdk}`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve(server));
  });
}
