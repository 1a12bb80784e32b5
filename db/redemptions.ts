import type { Pool } from 'pg';
import { rethrowAsApiError } from './errors';

export interface RedemptionView {
  redemptionId?: string;
  invoiceId?: string;
  memberId?: string;
  status: 'held' | 'applied' | 'declined' | 'reversed';
  reason?: string | null;
  pointsRequested?: number;
  pointsApplied?: number;
  creditMinor?: number;
  pointsReversed?: number;
  creditReversedMinor?: number;
  cohorts?: Record<string, number>;
  existing?: boolean;
}

export interface HoldRequest {
  programId: string;
  invoiceId: string;
  redemptionId: string;
  memberId: string;
  points: number;
  invoiceTotalMinor: number;
  pointValueMinor: number;
  minPoints: number;
  maxInvoiceShareMillionths: string;
  cohortOrder: 'oldest_first' | 'pro_rata';
  occurredAt: string;
}

async function call(pool: Pool, sql: string, args: unknown[]): Promise<RedemptionView> {
  try {
    const { rows } = await pool.query<{ r: RedemptionView }>(sql, args);
    return rows[0]!.r;
  } catch (e) {
    rethrowAsApiError(e);
  }
}

/** The ledger side of a redemption (db/migrations/005_redemptions.sql). */
export const holdRedemption = (pool: Pool, p: HoldRequest) => call(pool, 'select ll_hold_redemption($1::jsonb) as r', [JSON.stringify(p)]);
export const releaseRedemption = (pool: Pool, programId: string, invoiceId: string, reason: string) =>
  call(pool, 'select ll_release_redemption($1, $2, $3) as r', [programId, invoiceId, reason]);
export const commitRedemption = (pool: Pool, programId: string, invoiceId: string, actor: string) =>
  call(pool, 'select ll_commit_redemption($1, $2, $3) as r', [programId, invoiceId, actor]);
export const reverseRedemption = (pool: Pool, programId: string, invoiceId: string, occurredAt: string, actor: string, reason: string) =>
  call(pool, 'select ll_reverse_redemption($1, $2, $3, $4, $5) as r', [programId, invoiceId, occurredAt, actor, reason]);

export interface AdjustmentView extends RedemptionView {
  adjustmentId: string;
  /** points this adjustment gave back (0 when the credit still fits the invoice) */
  adjustmentPoints: number;
  adjustmentCreditMinor: number;
}
export const adjustRedemption = async (pool: Pool, p: { programId: string; invoiceId: string; adjustmentId: string; invoiceTotalMinor: number; maxInvoiceShareMillionths: string; occurredAt: string; actor: string }) =>
  (await call(pool, 'select ll_adjust_redemption($1::jsonb) as r', [JSON.stringify(p)])) as AdjustmentView;
