import { divRound, MICRO_PER_MINOR, RATE_SCALE, type RateMillionths } from './money';

export interface CohortFigures {
  /** N_c net of revocations */
  pointsIssued: bigint;
  /** A_c net of reversals as posted to the liability, minor units */
  allocatedMinor: bigint;
  /** A_c net of reversals, exact at fixed scale (micro); defaults to allocatedMinor * 10^6 */
  allocatedMicro?: bigint;
  pointsRedeemed: bigint;
  pointsExpired: bigint;
  /** u_c */
  ultimateRedemption: RateMillionths;
  /** incremental-cost cohorts: the cost per point their provision was built from */
  costPerPointMinor?: bigint | null;
}

/**
 * Revenue recognised to date for a cohort: A * min(1, R / (N * u)) with A exact (micro), rounded
 * once, here, to the minor unit, and never more than was posted (allocatedMinor); a journal entry
 * posts the difference between two such cumulative figures. Once every point is redeemed or
 * expired the cohort releases all that was posted.
 * Incremental-cost cohorts keep provisioned the cost of the points still expected to be redeemed.
 * Mirrored by ll_recognize_cohort in SQL.
 */
export function recognizedToDate(c: CohortFigures): bigint {
  const posted = c.allocatedMinor > 0n ? c.allocatedMinor : 0n;
  if (c.pointsIssued <= 0n || c.pointsRedeemed + c.pointsExpired >= c.pointsIssued) return posted;
  if (c.costPerPointMinor) {
    // incremental cost: what is left provisioned is the cost of the points still expected to be
    // redeemed, min(outstanding, N x u - R); everything else of the provision is released
    const outstandingScaled = (c.pointsIssued - c.pointsRedeemed - c.pointsExpired) * RATE_SCALE;
    const toComeScaled = c.pointsIssued * c.ultimateRedemption - c.pointsRedeemed * RATE_SCALE;
    const expectedScaled = toComeScaled < 0n ? 0n : toComeScaled < outstandingScaled ? toComeScaled : outstandingScaled;
    return c.allocatedMinor - divRound(c.costPerPointMinor * expectedScaled, RATE_SCALE);
  }
  const micro = c.allocatedMicro ?? c.allocatedMinor * MICRO_PER_MINOR;
  const a = micro > 0n ? micro : 0n;
  const expectedScaled = c.pointsIssued * c.ultimateRedemption; // N * u * K
  const redeemedScaled = c.pointsRedeemed * RATE_SCALE; // R * K
  const share = redeemedScaled < expectedScaled ? redeemedScaled : expectedScaled;
  const target = divRound(a * share, expectedScaled * MICRO_PER_MINOR);
  // never more than was posted: allocatedMinor is the sum of the rounded allocations, which can fall
  // short of round(A_micro) by up to half a minor unit per accrual (no liability is ever negative)
  return target < posted ? target : posted;
}
