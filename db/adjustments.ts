import type { Pool } from 'pg';
import { rethrowAsApiError } from './errors';

export interface AdjustmentView {
  adjustmentId: string;
  programId: string;
  /** `merge`: a merge that waited for finance (or ran at once under the threshold), on the same approval path */
  kind: 'adjustment' | 'merge';
  memberId: string;
  /** a merge's survivor */
  intoMemberId: string | null;
  points: number;
  reasonCode: string;
  comment: string | null;
  requestedBy: string;
  requestedAt: string;
  status: 'pending_approval' | 'applied' | 'rejected' | 'expired';
  approvedBy: string | null;
  decidedAt: string | null;
  entryId: string | null;
  /** decided when it was requested: whether it waited for finance (docs/adjustments.md, the window) */
  needsApproval: boolean;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const toAdjustmentView = (r: Record<string, any>): AdjustmentView => ({
  adjustmentId: r.adjustment_id,
  programId: r.program_id,
  kind: r.kind,
  memberId: r.member_id,
  intoMemberId: r.into_member_id,
  points: Number(r.points),
  reasonCode: r.reason_code,
  comment: r.comment,
  requestedBy: r.requested_by,
  requestedAt: r.requested_at.toISOString(),
  status: r.status,
  approvedBy: r.approved_by,
  decidedAt: r.decided_at?.toISOString() ?? null,
  entryId: r.entry_id === null ? null : String(r.entry_id),
  needsApproval: r.needs_approval,
});

export async function getAdjustment(
  pool: Pool,
  programId: string,
  adjustmentId: string,
): Promise<AdjustmentView | null> {
  const { rows } = await pool.query('select * from manual_adjustments where program_id = $1 and adjustment_id = $2', [
    programId,
    adjustmentId,
  ]);
  return rows[0] ? toAdjustmentView(rows[0]) : null;
}

/** What the approval gate decided for a request (db/functions/ll_approval_gate.sql); figures absent on a replay. */
export interface ApprovalGate {
  needsApproval: boolean;
  approvalThresholdPoints?: number;
  approvalWindow?: string;
  memberPointsInWindow?: number;
  requesterPointsInWindow?: number;
}

/**
 * Records a requested adjustment (pending approval) and decides in the same transaction, under the
 * approval lock, whether it waits for finance (db: ll_request_adjustment): the points moved without
 * an approval in the window, per member and per requester, plus its own, against the threshold. The
 * same Idempotency-Key returns the first one and its decision, with another body it is refused. The
 * member must exist and, for a negative one, have the points.
 */
export async function recordAdjustment(
  pool: Pool,
  a: {
    adjustmentId: string;
    programId: string;
    memberId: string;
    points: number;
    reasonCode: string;
    comment: string | null;
    requestedBy: string;
    idempotencyKey: string;
    /** the program's when its rules do not say (domain/program.ts) */
    defaultThresholdPoints: number;
    defaultWindow: string;
  },
): Promise<{ adjustment: AdjustmentView; existing: boolean; gate: ApprovalGate }> {
  let r: ApprovalGate & { adjustmentId: string; existing: boolean };
  try {
    r = (await pool.query('select ll_request_adjustment($1::jsonb) as r', [JSON.stringify(a)])).rows[0].r;
  } catch (e) {
    rethrowAsApiError(e);
  }
  const { adjustmentId, existing, ...gate } = r;
  return { adjustment: (await getAdjustment(pool, a.programId, adjustmentId))!, existing, gate };
}

/** Applies it (db: ll_apply_adjustment): the `adjust` entry and its journal entry; approver null below the threshold. */
export async function applyAdjustment(pool: Pool, adjustmentId: string, approver: string | null): Promise<void> {
  try {
    await pool.query('select ll_apply_adjustment($1, $2)', [adjustmentId, approver]);
  } catch (e) {
    rethrowAsApiError(e);
  }
}

/** Applies what finance approved: an adjustment (ll_apply_adjustment) or a merge that waited (ll_apply_merge_request). */
export async function applyApproved(pool: Pool, adjustmentId: string, approver: string): Promise<void> {
  const { rows } = await pool.query('select kind from manual_adjustments where adjustment_id = $1', [adjustmentId]);
  if (rows[0]?.kind !== 'merge') return applyAdjustment(pool, adjustmentId, approver);
  try {
    await pool.query('select ll_apply_merge_request($1, $2)', [adjustmentId, approver]);
  } catch (e) {
    rethrowAsApiError(e);
  }
}

export async function decideAdjustment(
  pool: Pool,
  adjustmentId: string,
  status: 'rejected' | 'expired',
  by: string | null,
  comment: string | null,
): Promise<void> {
  await pool.query('select ll_decide_adjustment($1, $2, $3, $4)', [adjustmentId, status, by, comment]);
}
