-- When the redemption saga first sent its credit to billing. Set before the call, so that it
-- survives a worker that dies during it: a saga that declines before its credit step is done then
-- knows that billing may hold the credit all the same, and settles it (activities/redemption.ts,
-- settleAndReverseCreditInBilling). Null: the credit was never sent, nothing to settle.
alter table redemptions add column credit_requested_at timestamptz;
