import type { Server } from 'node:http';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Logger } from 'pino';
import { serveWorkerMetrics, workerMetrics, type WorkerMetrics } from './metrics';

export interface TelemetrySettings {
  /** the worker's /metrics (ours and the SDK's); null: not served */
  metricsPort: number | null;
  metricsHost: string;
  /** the SDK's own Prometheus exporter, on loopback; null: off */
  sdkMetricsPort: number | null;
}

const port = (name: string, v: string | undefined, fallback: number): number | null => {
  if (v === 'off') return null;
  const n = Number(v ?? fallback);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a port or off (got ${v})`);
  return n;
};

export function telemetrySettings(env: NodeJS.ProcessEnv = process.env): TelemetrySettings {
  return {
    metricsPort: port('LOYALTY_WORKER_METRICS_PORT', env.LOYALTY_WORKER_METRICS_PORT, 9464),
    metricsHost: env.LOYALTY_WORKER_METRICS_HOST ?? '127.0.0.1',
    sdkMetricsPort: port('LOYALTY_SDK_METRICS_PORT', env.LOYALTY_SDK_METRICS_PORT, 9465),
  };
}

/**
 * Once per process, before the first worker connection: the SDK's runtime with its Prometheus
 * exporter, and the worker's metrics server. Returns the metrics for createLoyaltyWorker.
 */
export async function startWorkerTelemetry(
  t: TelemetrySettings,
  log: Logger,
): Promise<{ metrics: WorkerMetrics; server: Server | null }> {
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    ...(t.sdkMetricsPort
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: `127.0.0.1:${t.sdkMetricsPort}` } } } }
      : {}),
  });
  const metrics = workerMetrics();
  const server =
    t.metricsPort === null
      ? null
      : await serveWorkerMetrics({
          registry: metrics.registry,
          host: t.metricsHost,
          port: t.metricsPort,
          sdkMetricsUrl: t.sdkMetricsPort ? `http://127.0.0.1:${t.sdkMetricsPort}/metrics` : null,
        });
  if (server) log.info({ url: `http://${t.metricsHost}:${t.metricsPort}/metrics` }, 'worker metrics');
  return { metrics, server };
}
