/**
 * Breakage estimation at close (DESIGN.md, "Breakage estimation"): the redemption development
 * triangle per cohort (cumulative points redeemed by quarters since issue), volume-weighted
 * chain-ladder factors, and each open cohort's projected ultimate redemption rate. Exact integer
 * arithmetic (bigint ratios); the rate is rounded once, to millionths, at the end.
 */
import { RATE_SCALE, type RateMillionths } from './money';

export interface CohortDevelopment {
  cohort: string;
  /** N_c, net of revocations */
  pointsIssued: bigint;
  /** cumulative points redeemed (net of reversals) at the end of age 0, 1, ... latest observed age */
  cumulativeRedeemed: bigint[];
  /** the estimate in force before this close */
  priorRate: RateMillionths;
}

export interface DevelopmentFactor {
  /** from age `age` to age `age + 1` */
  age: number;
  numerator: bigint;
  denominator: bigint;
  /** cohorts that contributed (observed at both ages) */
  cohorts: number;
  sufficient: boolean;
}

export type EstimateMethod = 'chain_ladder' | 'prior' | 'override';

export interface UltimateEstimate {
  cohort: string;
  rate: RateMillionths;
  method: EstimateMethod;
  /** why the chain ladder was not used, in words for the report */
  reason: string | null;
  latestAge: number;
  redeemedToDate: bigint;
  projectedRedeemed: bigint | null;
}

export interface EstimationLimits {
  /** a factor needs at least this many cohorts observed at both ages */
  minCohortsPerFactor: number;
  /** a cohort with fewer redeemed points than this keeps the prior estimate */
  minRedeemedPoints: bigint;
  /** the estimate stays within [minRate, 1] */
  minRate: RateMillionths;
}

export const DEFAULT_ESTIMATION_LIMITS: EstimationLimits = {
  minCohortsPerFactor: 2,
  minRedeemedPoints: 1n,
  minRate: 10_000n,
};

/** Volume-weighted chain-ladder factors: f_k = sum C[c][k+1] / sum C[c][k] over cohorts observed at k+1. */
export function chainLadderFactors(
  rows: CohortDevelopment[],
  limits: EstimationLimits = DEFAULT_ESTIMATION_LIMITS,
): DevelopmentFactor[] {
  const maxAge = Math.max(-1, ...rows.map((r) => r.cumulativeRedeemed.length - 1));
  const factors: DevelopmentFactor[] = [];
  for (let age = 0; age < maxAge; age++) {
    let numerator = 0n;
    let denominator = 0n;
    let cohorts = 0;
    for (const r of rows) {
      if (r.cumulativeRedeemed.length > age + 1) {
        numerator += r.cumulativeRedeemed[age + 1]!;
        denominator += r.cumulativeRedeemed[age]!;
        cohorts++;
      }
    }
    factors.push({
      age,
      numerator,
      denominator,
      cohorts,
      sufficient: cohorts >= limits.minCohortsPerFactor && denominator > 0n,
    });
  }
  return factors;
}

const clampRate = (r: bigint, min: bigint): bigint => (r < min ? min : r > RATE_SCALE ? RATE_SCALE : r);

/**
 * Each cohort's ultimate redemption rate: its cumulative redemptions carried to the oldest age
 * observed with the factors, divided by the points issued; the prior estimate when a factor it
 * needs or its own data is too thin (the reason says which); finance's override when given.
 */
export function projectUltimateRates(
  rows: CohortDevelopment[],
  override: RateMillionths | null,
  limits: EstimationLimits = DEFAULT_ESTIMATION_LIMITS,
): { factors: DevelopmentFactor[]; estimates: UltimateEstimate[] } {
  const factors = chainLadderFactors(rows, limits);
  const estimates = rows.map((r): UltimateEstimate => {
    const latestAge = r.cumulativeRedeemed.length - 1;
    const redeemedToDate = latestAge >= 0 ? r.cumulativeRedeemed[latestAge]! : 0n;
    const base = { cohort: r.cohort, latestAge, redeemedToDate };
    if (override !== null)
      return {
        ...base,
        rate: clampRate(override, limits.minRate),
        method: 'override',
        reason: 'finance override',
        projectedRedeemed: null,
      };
    const prior = (reason: string): UltimateEstimate => ({
      ...base,
      rate: r.priorRate,
      method: 'prior',
      reason,
      projectedRedeemed: null,
    });
    if (r.pointsIssued <= 0n) return prior('no points outstanding');
    if (latestAge < 0) return prior('no development observed yet');
    if (redeemedToDate < limits.minRedeemedPoints) return prior('too few redemptions to project');
    let num = redeemedToDate;
    let den = 1n;
    for (const f of factors.slice(latestAge)) {
      if (!f.sufficient)
        return prior(`too little data for the factor from age ${f.age} to ${f.age + 1} (${f.cohorts} cohort(s))`);
      num *= f.numerator;
      den *= f.denominator;
    }
    // rate = num / den / N, in millionths, halves away from zero (all terms are positive here)
    const scaledNum = num * RATE_SCALE;
    const scaledDen = den * r.pointsIssued;
    const rate = (2n * scaledNum + scaledDen) / (2n * scaledDen);
    return {
      ...base,
      rate: clampRate(rate, limits.minRate),
      method: 'chain_ladder',
      reason: null,
      projectedRedeemed: num / den,
    };
  });
  return { factors, estimates };
}
