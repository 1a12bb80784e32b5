import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  defineUpdate,
  patched,
  proxyActivities,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { AdjustmentActivities, AdjustmentView } from '../activities/adjustments';
import { waitMs } from './durations';

export interface AdjustmentApprovalInput {
  programId: string;
  adjustmentId: string;
  /**
   * Since patch `adjustment-approval-verified` these three are not read: the requester, points and
   * member are the manual_adjustments row's (the API's start still sends them, for runs from before)
   */
  memberId: string;
  points: number;
  requestedBy: string;
  /** no decision by then: the adjustment expires */
  decideWithin: string;
}

/**
 * A finance decision. Since patch `adjustment-approval-verified` only `requestId` counts: the
 * decision request the API recorded (db/approval-requests.ts), whose principal, decision and comment
 * an activity reads from the database; the other fields are what runs from before read (the API
 * still sends them, for them).
 */
export interface AdjustmentDecision {
  decision?: 'approve' | 'reject';
  by?: string;
  comment?: string | null;
  requestId?: string;
}

/** A finance decision; answers the adjustment as it ends up (applied or rejected). */
export const decideUpdate = defineUpdate<AdjustmentView, [AdjustmentDecision]>('decide');

const act = proxyActivities<AdjustmentActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20 },
});

/** The activity's refusal as the update's own failure (its code, not "activity failed"), for the API. */
const refusedAs = (e: unknown): never => {
  if (e instanceof ActivityFailure && e.cause instanceof ApplicationFailure)
    throw ApplicationFailure.nonRetryable(e.cause.message, e.cause.type);
  throw e;
};

interface Decision {
  decision: 'approve' | 'reject';
  by: string;
  comment: string | null;
}

/**
 * `adjustment:<programId>:<adjustmentId>`: a manual adjustment above the program's threshold (or a
 * merge past it) waits for a finance decision by someone other than the requester; approved, it is
 * applied; rejected or undecided within the window, nothing is written but the decision.
 */
export async function adjustmentApproval(input: AdjustmentApprovalInput): Promise<AdjustmentView> {
  let decision: Decision | null = null;
  let result: AdjustmentView | null = null;
  // the wait is over (decided or expired): a decision verified after an expiry counts for nothing
  let settled = false;
  // Anyone who can reach Temporal can send this update under any name (issue 14, item 1): a decision
  // counts only once an activity has verified the API's decision request against the database (the
  // key active, finance or admin, not the requester as the row has it). Runs from before took the
  // name as sent, and the requester from the input.
  const decisionsVerified = patched('adjustment-approval-verified');
  setHandler(
    decideUpdate,
    async (d) => {
      if (decisionsVerified) {
        const verified = await act
          .verifyAdjustmentDecision({
            programId: input.programId,
            adjustmentId: input.adjustmentId,
            workflowId: workflowInfo().workflowId,
            requestId: d.requestId!,
          })
          .catch(refusedAs);
        // the state may have moved while the activity ran: checked again, on the database's answer
        if (decision ? decision.by !== verified.by : settled)
          throw ApplicationFailure.nonRetryable(
            decision ? `already decided by ${decision.by}` : 'the adjustment expired',
            'adjustment_decided',
          );
        decision ??= verified;
      } else decision ??= { decision: d.decision!, by: d.by!, comment: d.comment ?? null };
      await condition(() => result !== null);
      return result!;
    },
    {
      validator: (d) => {
        if (decisionsVerified) {
          if (typeof d.requestId !== 'string')
            throw ApplicationFailure.nonRetryable(
              'a decision goes through the API (POST .../adjustments/{adjustmentId}/approvals)',
              'decision_request_required',
            );
          if (settled && decision === null)
            throw ApplicationFailure.nonRetryable('the adjustment expired', 'adjustment_decided');
          return;
        }
        if (d.by === input.requestedBy)
          throw ApplicationFailure.nonRetryable(
            'the requester cannot decide their own adjustment',
            'segregation_of_duties',
          );
        if (decision && decision.by !== d.by)
          throw ApplicationFailure.nonRetryable(`already decided by ${decision.by}`, 'adjustment_decided');
      },
    },
  );
  const ref = { programId: input.programId, adjustmentId: input.adjustmentId };
  // what the memo says, from the row since the patch (a start straight on Temporal names any points)
  const shown = decisionsVerified ? await act.adjustmentTerms(ref) : input;
  upsertMemo({ summary: `${shown.points} pts for ${shown.memberId} by ${shown.requestedBy}: awaiting finance` });
  const decided = await condition(() => decision !== null, waitMs(Date.now(), input.decideWithin));
  settled = true;
  const d = decision as Decision | null;
  if (!decided || !d) {
    result = await act.recordAdjustmentDecision({
      ...ref,
      status: 'expired',
      by: null,
      comment: `no decision within ${input.decideWithin}`,
    });
  } else if (d.decision === 'approve') {
    try {
      result = await act.applyApprovedAdjustment({ ...ref, approver: d.by });
    } catch {
      result = await act.recordAdjustmentDecision({
        ...ref,
        status: 'rejected',
        by: d.by,
        comment: 'approved, but it could not be applied',
      });
    }
  } else {
    result = await act.recordAdjustmentDecision({ ...ref, status: 'rejected', by: d.by, comment: d.comment });
  }
  upsertMemo({
    summary: `${(decisionsVerified ? result : input).points} pts for ${(decisionsVerified ? result : input).memberId}: ${result.status}${result.approvedBy ? ` by ${result.approvedBy}` : ''}`,
  });
  return result;
}
