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
  /** manual adjustments above this many points wait for a finance approval (DEFAULT_ADJUSTMENT_THRESHOLD_POINTS when absent) */
  adjustments?: { approvalThresholdPoints: number };
}

/** The approval threshold of programs created without one (written out: no hidden default). */
export const DEFAULT_ADJUSTMENT_THRESHOLD_POINTS = 1000;
/** How long an adjustment waits for a finance decision before it expires. */
export const ADJUSTMENT_DECISION_WINDOW = 'P7D';
