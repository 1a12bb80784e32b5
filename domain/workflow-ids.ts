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
/**
 * `invoice-adjustment:<program>:<invoice>:<adjustment>`. Invoice and adjustment ids may both hold
 * `:` (domain/schemas.ts), so written side by side (invoice `a:b`, adjustment `c`) and (`a`, `b:c`)
 * would be one workflow: the second adjustment would be taken for the first. When either has a
 * colon, the invoice id's length goes first, `invoice-adjustment:<program>:<length>:<invoice>:<adjustment>`,
 * which reads back one way only and has at least five colons, where an id of colon-free parts has
 * exactly three. Ids without a colon keep the form they always had: workflows already running under
 * it, and recorded histories, keep their ids. (Every other workflow id has one free-form part after
 * the program, whose id cannot hold `:`, so it reads back one way already.)
 */
export const invoiceAdjustmentWorkflowId = (programId: string, invoiceId: string, adjustmentId: string) =>
  invoiceId.includes(':') || adjustmentId.includes(':')
    ? `invoice-adjustment:${programId}:${invoiceId.length}:${invoiceId}:${adjustmentId}`
    : `invoice-adjustment:${programId}:${invoiceId}:${adjustmentId}`;
export const reconciliationWorkflowId = (programId: string, date: string) => `reconciliation:${programId}:${date}`;
export const DAILY_RECONCILIATION_SCHEDULE_ID = 'loyalty-daily-reconciliation';
/** A program's day posted to the GL (workflows/gl-daily.ts), and the Schedule that posts every day. */
export const glDailyWorkflowId = (programId: string, date: string) => `gl-daily:${programId}:${date}`;
export const DAILY_GL_POSTING_SCHEDULE_ID = 'loyalty-daily-gl-posting';
export const closeWorkflowId = (programId: string, period: string) => `close:${programId}:${period}`;
/** How long a proposed close waits for a controller before it escalates, then cancels. */
/**
 * Who a close started by the quarterly Schedule was started by: no person, so no controller is
 * barred from approving it (workflows/close-schedule.ts; docs/access.md).
 */
export const SCHEDULE_CLOSE_STARTER = 'system:close-schedule';

export const DEFAULT_CLOSE_APPROVAL = { escalateAfter: 'P3D', cancelAfter: 'P7D' };
export const QUARTERLY_CLOSE_SCHEDULE_ID = 'loyalty-quarterly-close';
export const AUDIT_ANCHOR_SCHEDULE_ID = 'loyalty-audit-anchor';
