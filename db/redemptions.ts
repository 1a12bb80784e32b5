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
  /** a hold with `rulesFrom: 'ledger'`: the rule version's terms it was decided by */
  rules?: RedemptionRules;
}

/** What a redemption is decided by, as the rule version holds it (db/functions/ll_redemption_rules.sql). */
export interface RedemptionRules {
  ruleVersion: number;
  pointValueMinor: number;
  minPoints: number;
  maxInvoiceShareMillionths: string;
  cohortOrder: 'oldest_first' | 'pro_rata';
  chargebackWindow: string;
}

export interface HoldRequestBase {
  programId: string;
  invoiceId: string;
  redemptionId: string;
  memberId: string;
  points: number;
  invoiceTotalMinor: number;
  occurredAt: string;
}

/** A hold on given terms (the ledger's tests and callers before issue 14). */
export interface HoldRequest extends HoldRequestBase {
  pointValueMinor: number;
  minPoints: number;
  maxInvoiceShareMillionths: string;
  cohortOrder: 'oldest_first' | 'pro_rata';
}

/** The saga's hold: on the terms of the rule version in force, whatever else the request carries. */
export interface LedgerRulesHoldRequest extends HoldRequestBase {
  rulesFrom: 'ledger';
}

async function call(pool: Pool, sql: string, args: unknown[]): Promise<RedemptionView> {
  try {
    const { rows } = await pool.query<{ r: RedemptionView }>(sql, args);
    return rows[0]!.r;
  } catch (e) {
    rethrowAsApiError(e);
  }
}

/** The ledger side of a redemption (db/functions/ll_hold_redemption.sql, ll_commit_redemption.sql, ll_release_redemption.sql, ll_reverse_redemption.sql). */
export const holdRedemption = (pool: Pool, p: HoldRequest | LedgerRulesHoldRequest) =>
  call(pool, 'select ll_hold_redemption($1::jsonb) as r', [JSON.stringify(p)]);
export const releaseRedemption = (pool: Pool, programId: string, invoiceId: string, reason: string) =>
  call(pool, 'select ll_release_redemption($1, $2, $3) as r', [programId, invoiceId, reason]);
export const commitRedemption = (pool: Pool, programId: string, invoiceId: string, actor: string) =>
  call(pool, 'select ll_commit_redemption($1, $2, $3) as r', [programId, invoiceId, actor]);
export const reverseRedemption = (
  pool: Pool,
  programId: string,
  invoiceId: string,
  occurredAt: string,
  actor: string,
  reason: string,
) =>
  call(pool, 'select ll_reverse_redemption($1, $2, $3, $4, $5) as r', [
    programId,
    invoiceId,
    occurredAt,
    actor,
    reason,
  ]);

export interface AdjustmentView extends RedemptionView {
  adjustmentId: string;
  /** points this adjustment gave back (0 when the credit still fits the invoice) */
  adjustmentPoints: number;
  adjustmentCreditMinor: number;
}
export const adjustRedemption = async (
  pool: Pool,
  p: {
    programId: string;
    invoiceId: string;
    adjustmentId: string;
    invoiceTotalMinor: number;
    maxInvoiceShareMillionths: string;
    occurredAt: string;
    actor: string;
  },
) => (await call(pool, 'select ll_adjust_redemption($1::jsonb) as r', [JSON.stringify(p)])) as AdjustmentView;

/** Marked before billing is asked for the credit: a worker that dies during the call leaves the mark for the compensation. */
export async function markCreditRequested(pool: Pool, programId: string, invoiceId: string): Promise<void> {
  await pool.query(
    'update redemptions set credit_requested_at = now() where program_id = $1 and invoice_id = $2 and credit_requested_at is null',
    [programId, invoiceId],
  );
}

/** Whether billing was ever asked for the redemption's credit (false: no such redemption either). */
export async function wasCreditRequested(pool: Pool, programId: string, invoiceId: string): Promise<boolean> {
  const { rows } = await pool.query<{ sent: boolean }>(
    'select credit_requested_at is not null as sent from redemptions where program_id = $1 and invoice_id = $2',
    [programId, invoiceId],
  );
  return rows[0]?.sent ?? false;
}

/** The invoice's redemption as the API shows it (ll_redemption_view), or null. */
export async function findRedemption(pool: Pool, programId: string, invoiceId: string): Promise<RedemptionView | null> {
  const { rows } = await pool.query<{ v: RedemptionView }>(
    'select ll_redemption_view(r) as v from redemptions r where program_id = $1 and invoice_id = $2',
    [programId, invoiceId],
  );
  return rows[0]?.v ?? null;
}

/** The invoice's redemption's status, or null when it has none. */
export async function redemptionStatus(
  pool: Pool,
  programId: string,
  invoiceId: string,
): Promise<RedemptionView['status'] | null> {
  const { rows } = await pool.query<{ status: RedemptionView['status'] }>(
    `select status from redemptions where program_id = $1 and invoice_id = $2`,
    [programId, invoiceId],
  );
  return rows[0]?.status ?? null;
}

/**
 * The invoice's redemption, for an invoice adjustment: its id, and the invoice total this
 * adjustment was recorded with before (null: not recorded yet). Null when the invoice has no redemption.
 */
export async function findRedemptionForAdjustment(
  pool: Pool,
  programId: string,
  invoiceId: string,
  adjustmentId: string,
): Promise<{ redemptionId: string; recordedInvoiceTotalMinor: string | null } | null> {
  const { rows } = await pool.query<{ redemption_id: string; invoice_total_minor: string | null }>(
    `select r.redemption_id, a.invoice_total_minor from redemptions r
       left join redemption_adjustments a on a.program_id = r.program_id and a.invoice_id = r.invoice_id and a.adjustment_id = $3
      where r.program_id = $1 and r.invoice_id = $2`,
    [programId, invoiceId, adjustmentId],
  );
  const r = rows[0];
  return r ? { redemptionId: r.redemption_id, recordedInvoiceTotalMinor: r.invoice_total_minor } : null;
}
