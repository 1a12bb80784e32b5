/** Readable workflow ids and the search attributes registered on the Temporal server. */
export const memberWorkflowId = (programId: string, memberId: string) => `member:${programId}:${memberId}`;

export const SEARCH_ATTRIBUTES = {
  program: 'LoyaltyProgramId',
  member: 'LoyaltyMemberId',
  invoice: 'LoyaltyInvoiceId',
  period: 'LoyaltyPeriod',
  /** a rule change's id */
  change: 'LoyaltyChangeId',
} as const;

export const TASK_QUEUE_DEFAULT = 'loyalty';
export const redemptionWorkflowId = (programId: string, invoiceId: string) => `redemption:${programId}:${invoiceId}`;
export const invoiceAdjustmentWorkflowId = (programId: string, invoiceId: string, adjustmentId: string) =>
  `invoice-adjustment:${programId}:${invoiceId}:${adjustmentId}`;
export const reconciliationWorkflowId = (programId: string, date: string) => `reconciliation:${programId}:${date}`;
export const DAILY_RECONCILIATION_SCHEDULE_ID = 'loyalty-daily-reconciliation';
export const closeWorkflowId = (programId: string, period: string) => `close:${programId}:${period}`;
/** How long a proposed close waits for a controller before it escalates, then cancels. */
export const DEFAULT_CLOSE_APPROVAL = { escalateAfter: 'P3D', cancelAfter: 'P7D' };
export const QUARTERLY_CLOSE_SCHEDULE_ID = 'loyalty-quarterly-close';
