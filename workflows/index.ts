export { memberLifecycle, wakeSignal } from './member';
export { redemptionSaga, outcomeUpdate, chargebackSignal, stateQuery } from './redemption';
export { invoiceAdjustment } from './invoice-adjustment';
export { reconcileProgramDay, dailyReconciliation } from './reconciliation';
export { closeQuarter, approveUpdate, progressQuery } from './close';
export { scheduledCloses } from './close-schedule';
export { adjustmentApproval, decideUpdate } from './adjustment';
export { ruleChange, decideRuleChangeUpdate, withdrawSignal, ruleChangeStateQuery } from './rule-change';
export { auditAnchorCheckpoint } from './audit-anchor';
