import { divRound } from './money';

/**
 * Pro-rata revocation, cumulative so rounding never drifts: after refunds totalling F of an invoice
 * of amount T, round(n * F / T) of its n points are revoked in all. Each refund revokes the
 * increase. Mirrored by ll_refund in db/migrations/003_refund_merge.sql.
 */
export function revocationForRefund(input: {
  earned: bigint;
  invoiceAmountMinor: bigint;
  refundedBeforeMinor: bigint;
  refundMinor: bigint;
}): bigint {
  const { earned, invoiceAmountMinor: total, refundedBeforeMinor: before, refundMinor } = input;
  if (refundMinor <= 0n || before < 0n || before + refundMinor > total) {
    throw new RangeError('refund outside the invoice amount');
  }
  return divRound(earned * (before + refundMinor), total) - divRound(earned * before, total);
}

/** What a member actually loses: never more than they have available; the rest is a shortfall. */
export function applyRevocation(toRevoke: bigint, available: bigint): { revoked: bigint; shortfall: bigint } {
  const revoked = toRevoke < available ? toRevoke : available > 0n ? available : 0n;
  return { revoked, shortfall: toRevoke - revoked };
}
