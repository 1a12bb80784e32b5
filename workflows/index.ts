export { memberLifecycle, wakeSignal } from './member';
export { redemptionSaga, outcomeUpdate, chargebackSignal, stateQuery } from './redemption';
