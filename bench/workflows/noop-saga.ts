/**
 * The baseline of bench/saga-throughput.ts: a workflow that runs as many local activities as the
 * redemption saga does on its happy path (holdPoints, getTaxTreatment, applyCreditInBilling,
 * commitPointsAndJournal, postJournalToGl), in sequence, with the same options, and whose
 * activities do nothing. Bundled by its own worker, on its own task queue.
 */
import { proxyLocalActivities } from '@temporalio/workflow';

export interface NoopSagaActivities {
  holdPoints(): Promise<void>;
  getTaxTreatment(): Promise<void>;
  applyCreditInBilling(): Promise<void>;
  commitPointsAndJournal(): Promise<void>;
  postJournalToGl(): Promise<void>;
}

/** The number of local activities a saga runs when it applies (what this workflow runs). */
export const NOOP_SAGA_STEPS = 5;

// The same options as the saga's steps (workflows/redemption.ts).
const steps = proxyLocalActivities<NoopSagaActivities>({
  startToCloseTimeout: '5 seconds',
  retry: {
    initialInterval: '200 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '2 seconds',
    maximumAttempts: 5,
  },
});

export async function noopSaga(): Promise<number> {
  await steps.holdPoints();
  await steps.getTaxTreatment();
  await steps.applyCreditInBilling();
  await steps.commitPointsAndJournal();
  await steps.postJournalToGl();
  return NOOP_SAGA_STEPS;
}
