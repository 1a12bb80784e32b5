import type { Pool } from 'pg';
import { ApiError } from '../domain/errors';
import { rethrowAsApiError } from './errors';

export interface AdjustmentView {
  adjustmentId: string;
  programId: string;
  memberId: string;
  points: number;
  reasonCode: string;
  comment: string | null;
  requestedBy: string;
  requestedAt: string;
  status: 'pending_approval' | 'applied' | 'rejected' | 'expired';
  approvedBy: string | null;
  decidedAt: string | null;
  entryId: string | null;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const toView = (r: Record<string, any>): AdjustmentView => ({
  adjustmentId: r.adjustment_id,
  programId: r.program_id,
  memberId: r.member_id,
  points: Number(r.points),
  reasonCode: r.reason_code,
  comment: r.comment,
  requestedBy: r.requested_by,
  requestedAt: r.requested_at.toISOString(),
  status: r.status,
  approvedBy: r.approved_by,
  decidedAt: r.decided_at?.toISOString() ?? null,
  entryId: r.entry_id === null ? null : String(r.entry_id),
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
  return rows[0] ? toView(rows[0]) : null;
}

/**
 * Records a requested adjustment (pending approval); the same Idempotency-Key returns the first
 * one, with another body it is refused. The member must exist and, for a negative one, have the points.
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
  },
): Promise<{ adjustment: AdjustmentView; existing: boolean }> {
  const { rows: found } = await pool.query(
    'select * from manual_adjustments where program_id = $1 and idempotency_key = $2',
    [a.programId, a.idempotencyKey],
  );
  if (found[0]) {
    const v = toView(found[0]);
    if (
      v.memberId !== a.memberId ||
      v.points !== a.points ||
      v.reasonCode !== a.reasonCode ||
      (v.comment ?? null) !== (a.comment ?? null)
    ) {
      throw new ApiError(409, 'idempotency_key_reused', 'this Idempotency-Key was used with a different request body', {
        idempotencyKey: a.idempotencyKey,
      });
    }
    return { adjustment: v, existing: true };
  }
  const { rows: m } = await pool.query(
    `select balance - held as available, status from members where program_id = $1 and member_id = $2`,
    [a.programId, a.memberId],
  );
  if (!m[0]) throw new ApiError(404, 'not_found', 'no such member', { memberId: a.memberId });
  if (m[0].status !== 'active')
    throw new ApiError(409, 'member_not_active', `member is ${m[0].status}`, { memberId: a.memberId });
  if (a.points < 0 && Number(m[0].available) < -a.points) {
    throw new ApiError(422, 'insufficient_points', 'the member has fewer points available than the adjustment takes', {
      available: Number(m[0].available),
      points: a.points,
    });
  }
  try {
    const { rows } = await pool.query(
      `insert into manual_adjustments (program_id, adjustment_id, member_id, points, reason_code, comment, requested_by, status, idempotency_key)
       values ($1, $2, $3, $4, $5, $6, $7, 'pending_approval', $8) on conflict (program_id, idempotency_key) do nothing returning *`,
      [a.programId, a.adjustmentId, a.memberId, a.points, a.reasonCode, a.comment, a.requestedBy, a.idempotencyKey],
    );
    if (!rows[0]) return recordAdjustment(pool, a); // a concurrent duplicate won: answer as it did
    return { adjustment: toView(rows[0]), existing: false };
  } catch (e) {
    rethrowAsApiError(e);
  }
}

/** Applies it (db: ll_apply_adjustment): the `adjust` entry and its journal entry; approver null below the threshold. */
export async function applyAdjustment(pool: Pool, adjustmentId: string, approver: string | null): Promise<void> {
  try {
    await pool.query('select ll_apply_adjustment($1, $2)', [adjustmentId, approver]);
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
