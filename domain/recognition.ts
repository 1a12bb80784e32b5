import { divRound, RATE_SCALE, type RateMillionths } from './money';

export interface CohortFigures {
  /** N_c net of revocations */
  pointsIssued: bigint;
  /** A_c net of reversals, minor units */
  allocatedMinor: bigint;
  pointsRedeemed: bigint;
  pointsExpired: bigint;
  /** u_c */
  ultimateRedemption: RateMillionths;
}

/**
 * Revenue recognised to date for a cohort: A * min(1, R / (N * u)), or all of A once every point
 * is redeemed or expired. Rounded once, here, to the minor unit; a journal entry posts the
 * difference between two such cumulative figures. Mirrored by ll_recognize_cohort in SQL.
 */
export function recognizedToDate(c: CohortFigures): bigint {
  const a = c.allocatedMinor > 0n ? c.allocatedMinor : 0n;
  if (c.pointsIssued <= 0n || c.pointsRedeemed + c.pointsExpired >= c.pointsIssued) return a;
  const expectedScaled = c.pointsIssued * c.ultimateRedemption; // N * u * K
  const redeemedScaled = c.pointsRedeemed * RATE_SCALE; // R * K
  if (redeemedScaled >= expectedScaled) return a;
  return divRound(a * redeemedScaled, expectedScaled);
}
