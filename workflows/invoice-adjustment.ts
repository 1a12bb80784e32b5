import { proxyActivities, upsertMemo } from '@temporalio/workflow';
import type { RedemptionActivities, SagaRef } from '../activities/redemption';

export interface InvoiceAdjustmentInput extends SagaRef {
  adjustmentId: string;
  /** the invoice's new total */
  invoiceTotalMinor: number;
  maxInvoiceShareMillionths: string;
  occurredAt: string;
}

export interface InvoiceAdjustmentResult {
  invoiceId: string;
  adjustmentId: string;
  pointsReversed: number;
  creditReversedMinor: number;
  glEntryId: string | null;
}

// Every step must finish once the ledger has given the points back: retry until done, with backoff.
const act = proxyActivities<RedemptionActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * One per invoice adjustment, `invoice-adjustment:<programId>:<invoiceId>:<adjustmentId>`: an
 * invoice lowered below its loyalty credit gives the excess points back to the member, in
 * proportion across the cohorts they came from, takes their value off the credit in billing, and
 * posts the recomputed revenue to the GL. Its own workflow (not a signal to the saga) because an
 * invoice can change after the chargeback window; the redemption's row lock orders it with a
 * chargeback reversal, and each step is idempotent by the adjustment id.
 */
export async function invoiceAdjustment(input: InvoiceAdjustmentInput): Promise<InvoiceAdjustmentResult> {
  const ref: SagaRef = { programId: input.programId, invoiceId: input.invoiceId, redemptionId: input.redemptionId };
  const given = await act.givePointsBackForInvoiceAdjustment({
    ...ref,
    adjustmentId: input.adjustmentId,
    invoiceTotalMinor: input.invoiceTotalMinor,
    maxInvoiceShareMillionths: input.maxInvoiceShareMillionths,
    occurredAt: input.occurredAt,
  });
  let glEntryId: string | null = null;
  if (given.adjustmentPoints > 0) {
    await act.reduceCreditInBilling({
      ...ref,
      adjustmentId: input.adjustmentId,
      creditMinor: given.adjustmentCreditMinor,
      points: given.adjustmentPoints,
    });
    glEntryId = await act.postJournalToGl({
      ...ref,
      reversal: false,
      adjustmentId: input.adjustmentId,
      occurredAt: input.occurredAt,
    });
  }
  upsertMemo({
    summary: `invoice ${input.invoiceId} lowered to ${input.invoiceTotalMinor}: ${given.adjustmentPoints} pts (${given.adjustmentCreditMinor}) given back`,
  });
  return {
    invoiceId: input.invoiceId,
    adjustmentId: input.adjustmentId,
    pointsReversed: given.adjustmentPoints,
    creditReversedMinor: given.adjustmentCreditMinor,
    glEntryId,
  };
}
