/**
 * The daily reconciliation's matching rules, as pure functions: the ledger's redemptions against
 * the credits billing applied, and what the ledger posted to the GL against what the GL holds.
 */

import type { BalanceCheck, MonthView } from './gl-balance';

export type LedgerRedemptionStatus = 'held' | 'applied' | 'declined' | 'reversed';

export interface LedgerRedemption {
  redemptionId: string;
  invoiceId: string;
  status: LedgerRedemptionStatus;
  /** the credit still applied: the credit less what adjustments and reversals took back */
  creditOutMinor: number;
  /** the tax treatment recorded on the redemption, which billing's credit must carry (null: none known) */
  taxTreatment?: CreditTax | null;
}

export interface CreditTax {
  jurisdiction: string;
  treatment: 'discount' | 'consideration';
}

export interface BillingCreditState {
  creditId: string;
  invoiceId: string;
  amountMinor: number;
  reversed: boolean;
  /** the tax treatment the credit carries in billing (null: none) */
  taxTreatment?: CreditTax | null;
}

export interface JournalLine {
  account: string;
  debitMinor: number;
  creditMinor: number;
}

export type DifferenceReason =
  | 'missing_in_billing' // the ledger applied a redemption billing has no credit for
  | 'reversed_in_billing_only' // billing reversed a credit the ledger still counts as applied
  | 'amount_mismatch' // both applied, different amounts
  | 'tax_treatment_mismatch' // both applied; billing's credit does not carry the ledger's tax treatment
  | 'credit_not_reversed' // the ledger declined or reversed it; billing still shows the credit
  | 'unknown_in_ledger' // billing shows a loyalty credit the ledger has no redemption for
  | 'missing_in_gl' // the ledger recorded a posting the GL does not have
  | 'gl_lines_mismatch' // the GL entry's lines differ from what the ledger posted
  | 'subledger_changed' // the subledger's journal no longer equals what was posted
  | 'not_posted_to_gl' // an applied (or reversed) redemption's journal never reached the GL
  | 'unknown_in_subledger'; // the GL holds a loyalty entry the ledger never recorded posting

export interface Difference {
  check: 'billing' | 'gl';
  reason: DifferenceReason;
  invoiceId: string;
  redemptionId?: string;
  entryId?: string;
  ledger?: unknown;
  external?: unknown;
}

/** One redemption against its billing credit: a difference, 'in_progress' (the saga is still deciding), or null (they agree). */
export function matchRedemption(
  ledger: LedgerRedemption | null,
  credit: BillingCreditState | null,
): Difference | 'in_progress' | null {
  if (!ledger) {
    return credit
      ? {
          check: 'billing',
          reason: 'unknown_in_ledger',
          invoiceId: credit.invoiceId,
          redemptionId: credit.creditId,
          external: credit,
        }
      : null;
  }
  const base = {
    check: 'billing' as const,
    invoiceId: ledger.invoiceId,
    redemptionId: ledger.redemptionId,
    ledger,
    external: credit,
  };
  switch (ledger.status) {
    case 'held':
      return 'in_progress';
    case 'applied':
      if (!credit) return { ...base, reason: 'missing_in_billing' };
      if (credit.reversed) return { ...base, reason: 'reversed_in_billing_only' };
      if (credit.amountMinor !== ledger.creditOutMinor) return { ...base, reason: 'amount_mismatch' };
      if (!sameTax(ledger.taxTreatment ?? null, credit.taxTreatment ?? null))
        return { ...base, reason: 'tax_treatment_mismatch' };
      return null;
    case 'declined':
    case 'reversed':
      return credit && !credit.reversed ? { ...base, reason: 'credit_not_reversed' } : null;
  }
}

/** Whether billing's credit carries the ledger's treatment (the same jurisdiction and treatment, or neither has one). */
function sameTax(ledger: CreditTax | null, billing: CreditTax | null): boolean {
  if (!ledger || !billing) return ledger === billing;
  return ledger.jurisdiction === billing.jurisdiction && ledger.treatment === billing.treatment;
}

/** Lines in a canonical order and form, so that two journals compare by value. */
export function canonicalLines(lines: JournalLine[]): string {
  return JSON.stringify(
    lines
      .map((l) => ({ account: l.account, debitMinor: l.debitMinor, creditMinor: l.creditMinor }))
      .sort((a, b) =>
        a.account < b.account
          ? -1
          : a.account > b.account
            ? 1
            : a.debitMinor - b.debitMinor || a.creditMinor - b.creditMinor,
      ),
  );
}

/** A posting the ledger recorded against the GL's entry and the subledger's journal as it is now. */
export function matchPosting(
  posting: { entryId: string; invoiceId: string; lines: JournalLine[] },
  glLines: JournalLine[] | null,
  subledgerLines: JournalLine[],
): Difference | null {
  const base = { check: 'gl' as const, invoiceId: posting.invoiceId, entryId: posting.entryId, ledger: posting.lines };
  if (!glLines) return { ...base, reason: 'missing_in_gl' };
  if (canonicalLines(glLines) !== canonicalLines(posting.lines))
    return { ...base, reason: 'gl_lines_mismatch', external: glLines };
  if (canonicalLines(subledgerLines) !== canonicalLines(posting.lines))
    return { ...base, reason: 'subledger_changed', external: subledgerLines };
  return null;
}

export interface ReconciliationReport {
  runId: number;
  programId: string;
  date: string;
  workflowId: string;
  redemptionsChecked: number;
  creditsChecked: number;
  glEntriesChecked: number;
  /** redemptions whose saga was still deciding when the run looked */
  inProgress: string[];
  differenceCount: number;
  differences: Difference[];
  /**
   * The subledger's balance per loyalty account at the day's end against the GL's (null on runs
   * made before it existed); its differences are counted there, not in `differenceCount`.
   */
  balanceCheck: BalanceCheck | null;
  /** Per month of the day's year up to the day: per account, the subledger's movement against the GL's. */
  monthly: MonthView[] | null;
  recordedAt: string;
}
