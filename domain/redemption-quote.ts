/**
 * What holds a redemption's points down: the points asked for, the member's available points, or
 * the program's share of the invoice (ll_invoice_share_cap). The hold applies the least of the three
 * (db/functions/ll_hold_redemption.sql); this names which one it was. On a tie the caller's own
 * request is named first, then the member's points, then the invoice's share. No points asked for:
 * as many as one redemption may ask for.
 */
export type RedemptionLimit = 'requested' | 'available' | 'invoice_share' | 'max_per_redemption';

export function redemptionLimitedBy(o: {
  /** null: no points asked for (as many as may be taken) */
  requested: number | null;
  available: number;
  invoiceShareCap: number;
  /** the most points one redemption may ask for (the schema's bound), taken when none are asked for */
  maxPerRedemption: number;
}): RedemptionLimit {
  const bound = Math.min(o.available, o.invoiceShareCap);
  if (o.requested !== null && o.requested <= bound) return 'requested';
  if (o.requested === null && o.maxPerRedemption < bound) return 'max_per_redemption';
  return o.available <= o.invoiceShareCap ? 'available' : 'invoice_share';
}
