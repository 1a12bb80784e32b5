import { NativeConnection, Worker } from '@temporalio/worker';
import type { NoopSagaActivities } from './workflows/noop-saga';
import { modulePath } from '../temporal/module-path';

/**
 * A worker for the baseline workflow `noopSaga` (bench/workflows/noop-saga.ts): its own bundle,
 * task queue and connection, the same settings as the saga's worker in the benches.
 */
export async function startNoopSagaWorker(address: string, taskQueue: string): Promise<{ stop: () => Promise<void> }> {
  const noop = async () => undefined;
  const activities: NoopSagaActivities = {
    holdPoints: noop,
    getTaxTreatment: noop,
    applyCreditInBilling: noop,
    commitPointsAndJournal: noop,
    postJournalToGl: noop,
  };
  const native = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection: native,
    namespace: 'default',
    taskQueue,
    workflowsPath: modulePath(__dirname, 'workflows/noop-saga'),
    activities,
    maxConcurrentActivityTaskExecutions: 100,
    maxCachedWorkflows: 1000,
    shutdownGraceTime: '10 seconds',
  });
  const running = worker.run();
  return {
    stop: async () => {
      worker.shutdown();
      await running;
      await native.close();
    },
  };
}
