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
}

export function expiryFor(rules: ProgramRules, jurisdiction: string | undefined): ExpiryRule {
  return (jurisdiction && rules.expiry.jurisdictions?.[jurisdiction]) || rules.expiry;
}
