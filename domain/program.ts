import type { ProgramTaxRules } from './tax';

/** The rules of a program: one version of them. Money in minor units, rates in [0, 1]. */
export interface ExpiryRule {
  policy: 'rolling' | 'none';
  /** ISO 8601 duration; required when policy is rolling */
  window?: string;
}

/** Who judged, when and why, that a program's points give no material right (ASC 606-10-25-16B). */
export interface MaterialRightJudgment {
  justification: string;
  /** the authenticated principal who made the judgment (never from the body) */
  judgedBy: string;
  /** the request's time, RFC 3339 */
  judgedAt: string;
}

export interface ProgramRules {
  pointValueMinor: number;
  earn: { points: number; perAmountMinor: number };
  expectedRedemptionRate: number;
  expiry: ExpiryRule & { jurisdictions?: Record<string, ExpiryRule> };
  accounting: {
    method: 'relative_ssp' | 'incremental_cost';
    costPerPointMinor?: number;
    /** incremental_cost only, and required for it: the recorded judgment that the points give no material right */
    notMaterialRight?: MaterialRightJudgment;
  };
  redemption: { minPoints: number; maxInvoiceShare: number; cohortOrder: 'oldest_first' | 'pro_rata' };
  chargebackWindow: string;
  ruleChanges?: { requiredRoles?: Array<'finance' | 'legal' | 'controller' | 'program_owner'>; noticePeriod?: string };
  /**
   * a manual adjustment or a merge waits for a finance approval when it, plus the points moved without
   * one in the rolling approvalWindow (per member and per requester), exceeds approvalThresholdPoints
   * (DEFAULT_ADJUSTMENT_THRESHOLD_POINTS, DEFAULT_ADJUSTMENT_APPROVAL_WINDOW when absent); points added
   * are booked by goodwillTreatment (DEFAULT_GOODWILL_TREATMENT when absent)
   */
  adjustments?: { approvalThresholdPoints?: number; approvalWindow?: string; goodwillTreatment?: GoodwillTreatment };
  /** how the part of an invoice paid with points is taxed, per jurisdiction (domain/tax.ts; the law's when absent) */
  tax?: ProgramTaxRules;
  /** RFC 3339: no accrual is dated before it (accrual_before_go_live); absent, no bound */
  goLiveAt?: string;
  /** webhooks' points.expiring_soon this many days before a deadline (absent: never) */
  notifications?: { expiringSoonDays: number };
}

/**
 * How points added by hand (goodwill) are booked, in a cohort of their own (`2026-Q4-goodwill`):
 * consideration payable to a customer (ASC 606-10-32-25; IFRS 15.70). `revenue_reduction`: debit
 * `revenue`, credit the contract liability, released back to `revenue` on redemption or expiry (no
 * revenue of their own). `marketing`: a cost accrual, debit `loyalty_expense`, credit
 * `loyalty_provision`, released to `loyalty_expense` (no revenue on redemption).
 * db/functions/ll_apply_adjustment.sql books it.
 */
export const GOODWILL_TREATMENTS = ['revenue_reduction', 'marketing'] as const;
export type GoodwillTreatment = (typeof GOODWILL_TREATMENTS)[number];
export const DEFAULT_GOODWILL_TREATMENT: GoodwillTreatment = 'revenue_reduction';

/** The approval threshold of programs created without one (written out: no hidden default). */
export const DEFAULT_ADJUSTMENT_THRESHOLD_POINTS = 1000;
/**
 * The rolling window over which the threshold applies cumulatively, for programs created without one:
 * requests split to stay under the threshold add up (db/functions/ll_approval_gate.sql).
 */
export const DEFAULT_ADJUSTMENT_APPROVAL_WINDOW = 'P30D';
/** How long an adjustment waits for a finance decision before it expires. */
export const ADJUSTMENT_DECISION_WINDOW = 'P7D';

/**
 * The cost method needs a recorded judgment that the points give no material right: a material
 * right must be deferred (ASC 606-10-25-16B, IFRS 15.B40). Returns the rules with the judgment
 * stamped with who and when (the principal, the request time), the previous rules' judgment when a
 * change stays on incremental_cost without a new one, or null when the judgment is missing.
 */
export function withMaterialRightJudgment(
  rules: ProgramRules,
  by: string,
  at: Date,
  previous?: ProgramRules,
): ProgramRules | null {
  if (rules.accounting.method !== 'incremental_cost') return rules;
  const given = rules.accounting.notMaterialRight as { justification: string } | undefined;
  let judgment: MaterialRightJudgment | undefined;
  if (given) judgment = { justification: given.justification, judgedBy: by, judgedAt: at.toISOString() };
  else if (previous?.accounting.method === 'incremental_cost') judgment = previous.accounting.notMaterialRight;
  if (!judgment) return null;
  return { ...rules, accounting: { ...rules.accounting, notMaterialRight: judgment } };
}

export const MATERIAL_RIGHT_JUDGMENT_MESSAGE =
  'incremental_cost is allowed only for points that give no material right (ASC 606-10-25-16B): ' +
  'give accounting.notMaterialRight.justification, the recorded judgment';
