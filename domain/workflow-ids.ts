/** Readable workflow ids and the search attributes registered on the Temporal server. */
export const memberWorkflowId = (programId: string, memberId: string) => `member:${programId}:${memberId}`;

export const SEARCH_ATTRIBUTES = {
  program: 'LoyaltyProgramId',
  member: 'LoyaltyMemberId',
  invoice: 'LoyaltyInvoiceId',
  period: 'LoyaltyPeriod',
} as const;

export const TASK_QUEUE_DEFAULT = 'loyalty';
