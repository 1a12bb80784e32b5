import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Pool } from 'pg';
import { createMemberActivities } from '../activities/member';
import { createAdjustmentActivities } from '../activities/adjustments';
import { createCloseActivities } from '../activities/close';
import { createRuleChangeActivities } from '../activities/rule-change';
import { createReconciliationActivities } from '../activities/reconciliation';
import { createRedemptionActivities } from '../activities/redemption';
import { billingClient } from '../activities/services/billing';
import { glClient } from '../activities/services/gl';
import { taxClient } from '../activities/services/tax';

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
}

export const WORKFLOWS_PATH = require.resolve('../workflows');

/** The activities that talk to billing, the GL and tax: the redemption saga's, the reconciliation's and the close's. */
function serviceActivities(pool: Pool, s: ServiceUrls) {
  const billing = billingClient({ baseUrl: s.billingUrl, timeoutMs: s.timeoutMs });
  const gl = glClient({ baseUrl: s.glUrl, timeoutMs: s.timeoutMs });
  const tax = taxClient({ baseUrl: s.taxUrl, timeoutMs: s.timeoutMs });
  return { ...createRedemptionActivities({ pool, billing, gl, tax }), ...createReconciliationActivities({ pool, billing, gl }), ...createCloseActivities({ pool, gl }) };
}

export async function createLoyaltyWorker(o: LoyaltyWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue,
    activities: { ...createMemberActivities(o.pool), ...createAdjustmentActivities(o.pool), ...createRuleChangeActivities(o.pool), ...(o.services ? serviceActivities(o.pool, o.services) : {}) },
    ...(o.workflowBundle ? { workflowBundle: o.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    maxConcurrentActivityTaskExecutions: o.maxConcurrentActivities,
    maxCachedWorkflows: o.maxCachedWorkflows,
    shutdownGraceTime: '10 seconds',
  });
}
