import {
  ApplicationFailure,
  condition,
  defineUpdate,
  proxyActivities,
  setHandler,
  upsertMemo,
} from '@temporalio/workflow';
import type { AdjustmentActivities, AdjustmentView } from '../activities/adjustments';
import { waitMs } from './durations';

export interface AdjustmentApprovalInput {
  programId: string;
  adjustmentId: string;
  memberId: string;
  points: number;
  requestedBy: string;
  /** no decision by then: the adjustment expires */
  decideWithin: string;
}

export interface AdjustmentDecision {
  decision: 'approve' | 'reject';
  by: string;
  comment: string | null;
}

/** A finance decision; answers the adjustment as it ends up (applied or rejected). */
export const decideUpdate = defineUpdate<AdjustmentView, [AdjustmentDecision]>('decide');

const act = proxyActivities<AdjustmentActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20 },
});

/**
 * `adjustment:<programId>:<adjustmentId>`: a manual adjustment above the program's threshold waits
 * for a finance decision by someone other than the requester; approved, it is applied; rejected or
 * undecided within the window, nothing is written but the decision.
 */
export async function adjustmentApproval(input: AdjustmentApprovalInput): Promise<AdjustmentView> {
  let decision: AdjustmentDecision | null = null;
  let result: AdjustmentView | null = null;
  setHandler(
    decideUpdate,
    async (d) => {
      decision ??= d;
      await condition(() => result !== null);
      return result!;
    },
    {
      validator: (d) => {
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
  upsertMemo({ summary: `${input.points} pts for ${input.memberId} by ${input.requestedBy}: awaiting finance` });
  const decided = await condition(() => decision !== null, waitMs(Date.now(), input.decideWithin));
  const ref = { programId: input.programId, adjustmentId: input.adjustmentId };
  const d = decision as AdjustmentDecision | null;
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
    summary: `${input.points} pts for ${input.memberId}: ${result.status}${result.approvedBy ? ` by ${result.approvedBy}` : ''}`,
  });
  return result;
}
