/** A valid program body (API.md's example, with the given overrides). */
export function programBody(programId: string, overrides: Record<string, unknown> = {}) {
  return {
    programId,
    name: `Program ${programId}`,
    currency: 'USD',
    pointValueMinor: 1,
    earn: { points: 1, perAmountMinor: 100 },
    expectedRedemptionRate: 0.8,
    expiry: { policy: 'rolling', window: 'P365D' },
    accounting: { method: 'relative_ssp' },
    redemption: { minPoints: 100, maxInvoiceShare: 1.0, cohortOrder: 'oldest_first' },
    chargebackWindow: 'P120D',
    ...overrides,
  };
}

/** A program's rules as a rule change proposes them: programBody without its id, name and currency. */
export function ruleChangeRules(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const { programId: _p, name: _n, currency: _c, ...rules } = programBody('-', overrides);
  return rules;
}
