/**
 * The part of a ledger or journal key that names an invoice's adjustment: `<invoice>:<adjustment>`.
 * Both ids may hold `:` (printable ASCII, domain/schemas.ts), so (invoice `a:b`, adjustment `c`) and
 * (`a`, `b:c`) would share one key, and the second adjustment's give-back would be taken for a
 * replay of the first (its ledger entry, its journal and its GL entry). When either id has a colon,
 * the invoice id's length goes first, `<length>:<invoice>:<adjustment>`, which reads back one way
 * only and has at least three colons where colon-free ids give exactly one; keys of colon-free ids
 * keep the form they always had (entries already written). The same rule as
 * invoiceAdjustmentWorkflowId (domain/workflow-ids.ts); its SQL twin is
 * db/functions/ll_adjustment_key.sql (test/integration/period-sql.test.ts checks they agree).
 */
export const invoiceAdjustmentKey = (invoiceId: string, adjustmentId: string): string =>
  invoiceId.includes(':') || adjustmentId.includes(':')
    ? `${invoiceId.length}:${invoiceId}:${adjustmentId}`
    : `${invoiceId}:${adjustmentId}`;

/**
 * The idempotency key of a lost chargeback's claw-back (the refund `chargeback:<chargebackId>` of
 * the invoice's accrual): the same pair encoding, so (invoice `a:b`, chargeback `c`) and (`a`,
 * `b:c`) are two claw-backs, not one replayed; colon-free ids keep the key they always had.
 */
export const chargebackClawbackKey = (invoiceId: string, chargebackId: string): string =>
  `chargeback:${invoiceAdjustmentKey(invoiceId, chargebackId)}`;
