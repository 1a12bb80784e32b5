import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import { applyApproved, decideAdjustment, getAdjustment, type AdjustmentView } from '../db/adjustments';
import { ApiError } from '../domain/errors';

/** The manual-adjustment workflow's side effects, bound to the ledger database. */
export function createAdjustmentActivities(pool: Pool) {
  return {
    /**
     * The `adjust` entry and its journal entry, approved by `approver`, or for a merge that waited
     * the merge itself; a business refusal (the points are gone, a member merged away) is final.
     */
    async applyApprovedAdjustment(q: {
      programId: string;
      adjustmentId: string;
      approver: string;
    }): Promise<AdjustmentView> {
      try {
        await applyApproved(pool, q.adjustmentId, q.approver);
      } catch (e) {
        if (e instanceof ApiError && e.statusCode < 500) {
          await decideAdjustment(pool, q.adjustmentId, 'rejected', q.approver, `could not apply: ${e.code}`);
          throw ApplicationFailure.nonRetryable(e.message, e.code);
        }
        throw e;
      }
      return (await getAdjustment(pool, q.programId, q.adjustmentId))!;
    },

    async recordAdjustmentDecision(q: {
      programId: string;
      adjustmentId: string;
      status: 'rejected' | 'expired';
      by: string | null;
      comment: string | null;
    }): Promise<AdjustmentView> {
      await decideAdjustment(pool, q.adjustmentId, q.status, q.by, q.comment);
      return (await getAdjustment(pool, q.programId, q.adjustmentId))!;
    },
  };
}

export type AdjustmentActivities = ReturnType<typeof createAdjustmentActivities>;
export type { AdjustmentView };
