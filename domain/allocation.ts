import { divRound, MICRO_PER_MINOR, RATE_SCALE, type RateMillionths } from './money';

export interface EarnRule {
  points: number;
  perAmountMinor: number;
}

/** Points a purchase earns: whole points only, rounded down (a partial step earns nothing). */
export function pointsEarned(amountMinor: bigint, earn: EarnRule): bigint {
  if (amountMinor < 0n) throw new RangeError('amountMinor must not be negative');
  return (amountMinor * BigInt(earn.points)) / BigInt(earn.perAmountMinor);
}

export interface SspInput {
  priceMinor: bigint;
  points: bigint;
  pointValueMinor: bigint;
  expectedRedemption: RateMillionths;
}

/**
 * Relative stand-alone selling price (ASC 606 / IFRS 15 material right): a purchase of price P
 * earning n points of value v, u of which are expected to be redeemed, allocates
 *   a = P * S / (P + S),  S = n * v * u
 * to the points, here in micro (millionths of a minor unit): the figure the cohort carries.
 */
export function allocateRelativeSspMicro(input: SspInput): bigint {
  return allocationFraction(input, MICRO_PER_MINOR);
}

/** The allocation as the accrual's journal entry posts it: the exact fraction rounded once. */
export function allocateRelativeSsp(input: SspInput): bigint {
  return allocationFraction(input, 1n);
}

function allocationFraction(input: SspInput, scale: bigint): bigint {
  const { priceMinor, points, pointValueMinor, expectedRedemption } = input;
  // S scaled by RATE_SCALE to stay an integer: Ss = n * v * u_millionths.
  const sScaled = points * pointValueMinor * expectedRedemption;
  if (priceMinor === 0n || sScaled === 0n) return 0n;
  // a = P * (Ss / K) / (P + Ss / K) = P * Ss / (P * K + Ss)
  return divRound(priceMinor * sScaled * scale, priceMinor * RATE_SCALE + sScaled);
}

/** Incremental-cost method: a provision of the expected cost of the points. */
export function provisionIncrementalCost(input: {
  points: bigint;
  costPerPointMinor: bigint;
  expectedRedemption: RateMillionths;
}): bigint {
  return divRound(input.points * input.costPerPointMinor * input.expectedRedemption, RATE_SCALE);
}
