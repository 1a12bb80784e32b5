import { createAuditAnchorActivities } from '../activities/audit-anchor';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Pool } from 'pg';
import { createMemberActivities } from '../activities/member';
import { createAdjustmentActivities } from '../activities/adjustments';
import { createCloseActivities } from '../activities/close';
import { createGlDailyActivities } from '../activities/gl-daily';
import { estimationLimitsFrom } from '../domain/breakage';
import { createRuleChangeActivities } from '../activities/rule-change';
import { createReconciliationActivities } from '../activities/reconciliation';
import { createRedemptionActivities } from '../activities/redemption';
import { billingClient } from '../activities/services/billing';
import { glClient } from '../activities/services/gl';
import { taxClient } from '../activities/services/tax';
import type { Logger } from 'pino';
import { correlationActivityInterceptor } from '../temporal/correlation';
import { metricsActivityInterceptor, type WorkerMetrics } from './metrics';
import { dataConverter, FAILURE_CONVERTER_PATH } from '../temporal/settings';
import { modulePath } from '../temporal/module-path';

export interface ServiceUrls {
  billingUrl: string;
  glUrl: string;
  taxUrl: string;
  /** per call to a service */
  timeoutMs: number;
}

export interface LoyaltyWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  pool: Pool;
  /** a pre-built bundle (tests build it once); otherwise workflows/ is bundled at start */
  workflowBundle?: WorkerOptions['workflowBundle'];
  maxConcurrentActivities: number;
  maxCachedWorkflows: number;
  /** billing, GL and tax: without them the worker runs only the member workflows' activities */
  services?: ServiceUrls;
  /** temporal/settings.ts dataConverter(): the payload codec, if any; failures always encoded */
  dataConverter?: DataConverter;
  /** one line per activity, with the request's correlation id */
  log: Logger;
  /** activity counts and durations, compensations, expiries (workers/metrics.ts) */
  metrics?: WorkerMetrics;
}

export const WORKFLOWS_PATH = modulePath(__dirname, '../workflows');
/** What every workflow bundle is built with: the workflows and the failure converter the workers use. */
const WORKFLOW_INTERCEPTORS = [modulePath(__dirname, '../workflows/correlation')];
export const BUNDLE_OPTIONS = {
  workflowsPath: WORKFLOWS_PATH,
  failureConverterPath: FAILURE_CONVERTER_PATH,
  workflowInterceptorModules: WORKFLOW_INTERCEPTORS,
};

/** The activities that talk to billing, the GL and tax: the redemption saga's, the reconciliation's, the close's and the daily GL posting's. */
function serviceActivities(pool: Pool, s: ServiceUrls) {
  const billing = billingClient({ baseUrl: s.billingUrl, timeoutMs: s.timeoutMs });
  const gl = glClient({ baseUrl: s.glUrl, timeoutMs: s.timeoutMs });
  const tax = taxClient({ baseUrl: s.taxUrl, timeoutMs: s.timeoutMs });
  return {
    ...createRedemptionActivities({ pool, billing, gl, tax }),
    ...createReconciliationActivities({ pool, billing, gl }),
    ...createCloseActivities({ pool, gl, estimation: estimationLimitsFrom(process.env) }),
    ...createGlDailyActivities({ pool, gl }),
  };
}

export async function createLoyaltyWorker(o: LoyaltyWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue,
    activities: {
      ...createMemberActivities(o.pool),
      ...createAdjustmentActivities(o.pool),
      ...createRuleChangeActivities(o.pool),
      ...createAuditAnchorActivities(o.pool),
      ...(o.services ? serviceActivities(o.pool, o.services) : {}),
    },
    ...(o.workflowBundle ? { workflowBundle: o.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    interceptors: {
      activity: [correlationActivityInterceptor(o.log), ...(o.metrics ? [metricsActivityInterceptor(o.metrics)] : [])],
      ...(o.workflowBundle ? {} : { workflowModules: WORKFLOW_INTERCEPTORS }),
    },
    maxConcurrentActivityTaskExecutions: o.maxConcurrentActivities,
    maxCachedWorkflows: o.maxCachedWorkflows,
    shutdownGraceTime: '10 seconds',
    dataConverter: o.dataConverter ?? dataConverter({}),
  });
}
