import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  defineQuery,
  defineUpdate,
  patched,
  proxyActivities,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { CloseActivities, CloseProposal } from '../activities/close';
import type { CloseReport } from '../domain/close-report';
import { waitMs } from './durations';
import { closeWorkflowId, SCHEDULE_CLOSE_STARTER } from '../domain/workflow-ids';

export interface CloseInput {
  programId: string;
  period: string;
  /** before `close-start-verified`: who started it, as the starter said */
  startedBy: string;
  /** before `close-start-verified`: the override; since, the start request's (activities/close.ts freezeQuarter) */
  override: { rate: number; justification: string } | null;
  /** the API's start request (db/approval-requests.ts, kind close_start): who started the close and its terms */
  startRequestId?: string;
  /** no approval by then: escalate (status `escalated`) ... */
  escalateAfter: string;
  /** ... and by then: cancel; the period stays frozen but not locked */
  cancelAfter: string;
}

export type CloseStep =
  'freezing' | 'estimating' | 'awaiting_approval' | 'escalated' | 'posting' | 'locking' | 'locked' | 'cancelled';

export interface CloseProgress {
  step: CloseStep;
  proposal: CloseProposal | null;
  approvedBy: string | null;
  glEntryId: string | null;
}

export interface CloseResult {
  status: 'locked' | 'cancelled';
  period: string;
  glEntryId: string | null;
  report: CloseReport | null;
}

/**
 * A controller approves the proposal; answers once it is posted and locked. Since patch
 * `close-approval-verified` only `requestId` counts: the decision request the API recorded
 * (db/approval-requests.ts), verified against the database by an activity; `approver` is what
 * runs from before read (the API still sends it, for them).
 */
export const approveUpdate = defineUpdate<CloseResult, [{ approver?: string; requestId?: string }]>('approve');
export const progressQuery = defineQuery<CloseProgress>('progress');

// Set-based SQL over the whole program, and one GL call: minutes at most, retried until done.
const act = proxyActivities<CloseActivities>({
  startToCloseTimeout: '30 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 20 },
});

/** The activity's refusal as the update's own failure (its code, not "activity failed"), for the API. */
const refusedAs = (e: unknown): never => {
  if (e instanceof ActivityFailure && e.cause instanceof ApplicationFailure)
    throw ApplicationFailure.nonRetryable(e.cause.message, e.cause.type);
  throw e;
};

/**
 * `close:<programId>:<period>`: freeze the quarter, re-estimate breakage from the redemption
 * triangle, propose the catch-up, wait for a controller (never the starter), book it, post the
 * period to the GL, lock it and store the report. No approval: escalate, then cancel.
 */
export async function closeQuarter(input: CloseInput): Promise<CloseResult> {
  const ref = { programId: input.programId, period: input.period };
  const progress: CloseProgress = { step: 'freezing', proposal: null, approvedBy: null, glEntryId: null };
  let result: CloseResult | null = null;
  const step = (s: CloseStep, summary: string) => {
    progress.step = s;
    upsertMemo({ summary: `${input.period}: ${summary}` });
  };
  setHandler(progressQuery, () => progress);
  // Anyone who can reach Temporal can send this update under any name (issue 14, item 1): an
  // approval counts only once an activity has verified the API's decision request against the
  // database. Runs from before took the approver's name as sent.
  const approvalsVerified = patched('close-approval-verified');
  const awaiting = () => progress.step === 'awaiting_approval' || progress.step === 'escalated';
  setHandler(
    approveUpdate,
    async ({ approver, requestId }) => {
      if (approvalsVerified) {
        const verified = await act
          .verifyCloseApproval({
            ...ref,
            workflowId: workflowInfo().workflowId,
            requestId: requestId!,
          })
          .catch(refusedAs);
        // the state may have moved while the activity ran: a refusal then changes nothing
        if (progress.approvedBy === null && !awaiting())
          throw ApplicationFailure.nonRetryable(
            `the close is ${progress.step}: nothing to approve`,
            'close_not_awaiting_approval',
          );
        if (progress.approvedBy === null) progress.approvedBy = verified.approver;
      } else if (progress.approvedBy === null) progress.approvedBy = approver!;
      await condition(() => result !== null);
      return result!;
    },
    {
      validator: ({ approver, requestId }) => {
        if (approvalsVerified) {
          if (typeof requestId !== 'string')
            throw ApplicationFailure.nonRetryable(
              'an approval goes through the API (POST .../closes/{period}/approve)',
              'decision_request_required',
            );
          if (!awaiting() && progress.approvedBy === null)
            throw ApplicationFailure.nonRetryable(
              `the close is ${progress.step}: nothing to approve`,
              'close_not_awaiting_approval',
            );
          return;
        }
        if (approver === input.startedBy)
          throw ApplicationFailure.nonRetryable(
            'the person who started the close cannot approve it',
            'segregation_of_duties',
          );
        if (
          progress.step !== 'awaiting_approval' &&
          progress.step !== 'escalated' &&
          progress.approvedBy !== approver
        ) {
          throw ApplicationFailure.nonRetryable(
            `the close is ${progress.step}: nothing to approve`,
            'close_not_awaiting_approval',
          );
        }
      },
    },
  );

  // Who started the close is the one person who cannot approve it: since this patch it is the API's
  // start request, verified, and not the input's name (anyone who can reach Temporal can start one).
  const startVerified = patched('close-start-verified');
  await act.freezeQuarter({
    ...ref,
    startedBy: input.startedBy,
    workflowId: closeWorkflowId(input.programId, input.period),
    override: input.override,
    ...(startVerified
      ? {
          startRequestId: input.startRequestId ?? null,
          verifyStart: true,
          // the quarterly Schedule's closes (a child of scheduledCloses) have no start request: no
          // person started them, so they bar no one from approving
          bySchedule: workflowInfo().parent !== undefined && input.startedBy === SCHEDULE_CLOSE_STARTER,
        }
      : {}),
  });
  step('estimating', 'frozen; re-estimating breakage');
  progress.proposal = await act.estimateBreakageAndPropose(ref);
  step('awaiting_approval', `awaiting a controller's approval; catch-up ${progress.proposal.totalCatchUpMinor}`);

  const awaitingSinceMs = Date.now();
  const escalateMs = waitMs(awaitingSinceMs, input.escalateAfter);
  const cancelMs = waitMs(awaitingSinceMs, input.cancelAfter);
  if (!(await condition(() => progress.approvedBy !== null, escalateMs))) {
    await act.recordCloseStatus({ ...ref, status: 'escalated' });
    step('escalated', `no approval within ${input.escalateAfter}: escalated`);
    if (!(await condition(() => progress.approvedBy !== null, Math.max(cancelMs - escalateMs, 0)))) {
      await act.recordCloseStatus({ ...ref, status: 'cancelled' });
      step('cancelled', `no approval within ${input.cancelAfter}: cancelled; the period stays frozen, not locked`);
      result = { status: 'cancelled', period: input.period, glEntryId: null, report: null };
      return result;
    }
  }
  step('posting', `approved by ${progress.approvedBy}; booking and posting to the GL`);
  const posted = await act.bookCatchUpAndPostToGl({ ...ref, approvedBy: progress.approvedBy! });
  progress.glEntryId = posted.glEntryId;
  step('locking', 'posted; locking');
  const report = await act.lockPeriodAndStoreReport(ref);
  step('locked', `locked; closing liability ${report.liability.closingMinor}`);
  result = { status: 'locked', period: input.period, glEntryId: posted.glEntryId, report };
  return result;
}
