/** The rules of a program: one version of them. Money in minor units, rates in [0, 1]. */
export interface ExpiryRule {
  policy: 'rolling' | 'none';
  /** ISO 8601 duration; required when policy is rolling */
  window?: string;
}

export interface ProgramRules {
  pointValueMinor: number;
  earn: { points: number; perAmountMinor: number };
  expectedRedemptionRate: number;
  expiry: ExpiryRule & { jurisdictions?: Record<string, ExpiryRule> };
  accounting: { method: 'relative_ssp' | 'incremental_cost'; costPerPointMinor?: number };
  redemption: { minPoints: number; maxInvoiceShare: number; cohortOrder: 'oldest_first' | 'pro_rata' };
  chargebackWindow: string;
  ruleChanges?: { requiredRoles?: Array<'finance' | 'legal' | 'controller' | 'program_owner'>; noticePeriod?: string };
  /**
   * manual adjustments above this many points wait for a finance approval (DEFAULT_ADJUSTMENT_THRESHOLD_POINTS when
   * absent); points added are booked by goodwillTreatment (DEFAULT_GOODWILL_TREATMENT when absent)
   */
  adjustments?: { approvalThresholdPoints?: number; goodwillTreatment?: GoodwillTreatment };
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
/** How long an adjustment waits for a finance decision before it expires. */
export const ADJUSTMENT_DECISION_WINDOW = 'P7D';
