import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import { applyApproved, decideAdjustment, getAdjustment, type AdjustmentView } from '../db/adjustments';
import { verifyDecisionRequest } from '../db/approval-requests';
import { ApiError } from '../domain/errors';

/** The manual-adjustment workflow's side effects, bound to the ledger database. */
export function createAdjustmentActivities(pool: Pool) {
  const rowOf = async (q: { programId: string; adjustmentId: string }): Promise<AdjustmentView> => {
    const a = await getAdjustment(pool, q.programId, q.adjustmentId);
    if (!a) throw ApplicationFailure.nonRetryable(`no adjustment ${q.adjustmentId}`, 'not_found');
    return a;
  };
  return {
    /** The adjustment as the ledger has it (requester, member, points), not as the workflow's input says. */
    async adjustmentTerms(q: { programId: string; adjustmentId: string }): Promise<AdjustmentView> {
      return rowOf(q);
    },

    /**
     * A decision counts only once this passes (issue 14, item 1): the decision request the API
     * recorded exists and is for this adjustment and its workflow, its key is active and of the same
     * principal, who holds finance (or admin) and is not the requester as the manual_adjustments row
     * has it. Answers the decision as the request holds it (who, approve or reject, the comment). A
     * refusal is final and changes nothing.
     */
    async verifyAdjustmentDecision(q: {
      programId: string;
      adjustmentId: string;
      workflowId: string;
      requestId: string;
    }): Promise<{ by: string; decision: 'approve' | 'reject'; comment: string | null }> {
      const a = await rowOf(q);
      // the API starts and addresses it under this id only (api/routes/adjustments.ts)
      if (q.workflowId !== `adjustment:${a.programId}:${a.adjustmentId}`)
        throw ApplicationFailure.nonRetryable('not the workflow of this adjustment', 'decision_request_mismatch');
      const verdict = await verifyDecisionRequest(
        pool,
        q.requestId,
        { kind: 'adjustment_approval', programId: a.programId, subject: a.adjustmentId, workflowId: q.workflowId },
        ['finance'],
        a.requestedBy,
      );
      if (!verdict.ok) throw ApplicationFailure.nonRetryable(verdict.reason, verdict.code);
      const { by, decision, comment } = verdict.decision;
      return { by, decision, comment };
    },

    /**
     * The `adjust` entry and its journal entry, approved by `approver`, or for a merge that waited
     * the merge itself, as the manual_adjustments row has it (its member, points and requester: the
     * workflow's input is not read; ll_apply_adjustment, ll_apply_merge_request); a business refusal (the points are gone, a member merged away) is final.
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
