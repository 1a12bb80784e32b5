import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Pool } from 'pg';
import { createMemberActivities } from '../activities/member';

export interface LoyaltyWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  pool: Pool;
  /** a pre-built bundle (tests build it once); otherwise workflows/ is bundled at start */
  workflowBundle?: WorkerOptions['workflowBundle'];
  maxConcurrentActivities: number;
  maxCachedWorkflows: number;
}

export const WORKFLOWS_PATH = require.resolve('../workflows');

export async function createLoyaltyWorker(o: LoyaltyWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue,
    activities: createMemberActivities(o.pool),
    ...(o.workflowBundle ? { workflowBundle: o.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    maxConcurrentActivityTaskExecutions: o.maxConcurrentActivities,
    maxCachedWorkflows: o.maxCachedWorkflows,
    shutdownGraceTime: '10 seconds',
  });
}
