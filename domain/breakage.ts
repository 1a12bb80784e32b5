/**
 * Breakage estimation at close (DESIGN.md, "Breakage estimation"): the redemption development
 * triangle per cohort (cumulative points redeemed by quarters since issue), volume-weighted
 * chain-ladder factors, and each open cohort's projected ultimate redemption rate. Exact integer
 * arithmetic (bigint ratios); the rate is rounded once, to millionths, at the end.
 *
 * The constraint on variable consideration (ASC 606-10-32-11..13, 55-48; IFRS 15.56, B46):
 * breakage is recognised only to the extent that a significant reversal is not probable. So a
 * cohort whose development beyond its age has not been observed (no factor, or one backed by fewer
 * than `minCohortsPerFactor` cohorts) keeps its prior estimate, unless an approved tail factor
 * carries it to ultimate; it is never taken as fully developed (R/N). And every estimate, the
 * override included, stays within R/N <= u <= (R + outstanding)/N: what was redeemed is redeemed,
 * and points that expired or were revoked (N is net of revocations) can never be.
 */
import { decimalToMillionths, RATE_SCALE, type RateMillionths } from './money';

export interface CohortDevelopment {
  cohort: string;
  /** N_c, net of revocations */
  pointsIssued: bigint;
  /** cumulative points redeemed (net of reversals) at the end of age 0, 1, ... latest observed age */
  cumulativeRedeemed: bigint[];
  /** X_c, points expired to date: they can never be redeemed (the estimate's upper bound) */
  pointsExpired: bigint;
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
  /** why this source (and any bound) was used, in words for the report */
  reason: string | null;
  latestAge: number;
  redeemedToDate: bigint;
  projectedRedeemed: bigint | null;
  /** R/N rounded up and (R + outstanding)/N rounded down, in millionths; null when the cohort has no points */
  lowerBound: RateMillionths | null;
  upperBound: RateMillionths | null;
  /** the estimate of its source was outside the bounds and was brought to this one */
  bounded: 'lower' | 'upper' | null;
}

export interface EstimationLimits {
  /**
   * A factor needs at least this many cohorts observed at both ages; development beyond an age
   * whose factor has fewer is not observed.
   */
  minCohortsPerFactor: number;
  /** a cohort with fewer redeemed points than this keeps the prior estimate */
  minRedeemedPoints: bigint;
  /** the estimate's floor (the bounds take precedence over it) */
  minRate: RateMillionths;
  /**
   * An approved tail factor (millionths, at least 1,000,000) carrying development from the
   * development horizon (the first age whose factor is not sufficient) to ultimate. Null: none
   * approved, and every cohort whose development beyond its age is not observed keeps its prior.
   */
  tailFactor: RateMillionths | null;
}

export const DEFAULT_ESTIMATION_LIMITS: EstimationLimits = {
  minCohortsPerFactor: 2,
  minRedeemedPoints: 1n,
  minRate: 10_000n,
  tailFactor: null,
};

/**
 * The policy from the worker's settings: LOYALTY_CLOSE_MIN_COHORTS_PER_FACTOR (a whole number, at
 * least 1; default 2) and LOYALTY_CLOSE_TAIL_FACTOR (an approved decimal of at most 6 places in
 * [1, 10]; default none). Throws on a value it cannot take, so that a worker never starts with a
 * policy nobody meant.
 */
export function estimationLimitsFrom(env: Record<string, string | undefined>): EstimationLimits {
  const limits = { ...DEFAULT_ESTIMATION_LIMITS };
  const min = env.LOYALTY_CLOSE_MIN_COHORTS_PER_FACTOR;
  if (min !== undefined && min !== '') {
    if (!/^[1-9]\d{0,3}$/.test(min))
      throw new RangeError(`LOYALTY_CLOSE_MIN_COHORTS_PER_FACTOR: a whole number from 1 to 9999, not ${min}`);
    limits.minCohortsPerFactor = Number(min);
  }
  const tail = env.LOYALTY_CLOSE_TAIL_FACTOR;
  if (tail !== undefined && tail !== '') {
    let m: RateMillionths;
    try {
      m = decimalToMillionths(tail);
    } catch {
      throw new RangeError(`LOYALTY_CLOSE_TAIL_FACTOR: a decimal with at most 6 places, not ${tail}`);
    }
    if (m < RATE_SCALE || m > 10n * RATE_SCALE)
      throw new RangeError(`LOYALTY_CLOSE_TAIL_FACTOR: from 1 to 10, not ${tail}`);
    limits.tailFactor = m;
  }
  return limits;
}

/** A cohort of points added by hand (`2026-Q4-goodwill`), not bought. */
export function isGoodwillCohort(cohort: string): boolean {
  return cohort.endsWith('-goodwill');
}

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

/** The first age whose factor to the next is missing or not sufficient: development is observed up to it. */
export function developmentHorizon(factors: DevelopmentFactor[]): number {
  const i = factors.findIndex((f) => !f.sufficient);
  return i === -1 ? factors.length : i;
}

export interface EstimateBounds {
  /** ceil(R / N), millionths */
  lower: RateMillionths;
  /** floor((R + outstanding) / N) = floor((N - X) / N), millionths */
  upper: RateMillionths;
  /** every point redeemed, expired or revoked: the cohort releases what is left, whatever the estimate */
  complete: boolean;
}

/** A cohort's bounds on its ultimate redemption rate; null when it has no points (nothing to bound). */
export function estimateBounds(pointsIssued: bigint, redeemed: bigint, expired: bigint): EstimateBounds | null {
  if (pointsIssued <= 0n) return null;
  const r = redeemed < 0n ? 0n : redeemed;
  const redeemable = pointsIssued - (expired < 0n ? 0n : expired);
  const lower = (r * RATE_SCALE + pointsIssued - 1n) / pointsIssued;
  const upper = redeemable <= 0n ? 0n : (redeemable * RATE_SCALE) / pointsIssued;
  return {
    lower: lower > RATE_SCALE ? RATE_SCALE : lower,
    upper: upper > RATE_SCALE ? RATE_SCALE : upper,
    complete: r + (expired < 0n ? 0n : expired) >= pointsIssued,
  };
}

const redeemedOf = (r: CohortDevelopment) =>
  r.cumulativeRedeemed.length > 0 ? r.cumulativeRedeemed[r.cumulativeRedeemed.length - 1]! : 0n;

/** Every point of the cohort redeemed, expired or revoked: it can redeem no more. */
export const isCompleteCohort = (r: CohortDevelopment) =>
  r.pointsIssued > 0n && redeemedOf(r) + r.pointsExpired >= r.pointsIssued;

/**
 * Whether development is observed to its end: the cohorts observed at the oldest age (at least
 * `minCohortsPerFactor` of them) are all complete, so cohorts of that age have redeemed all they
 * ever will, and a younger cohort carried there by the factors is at its ultimate (no tail factor
 * needed). Returns that age, or null. An open cohort at the oldest age is not: its development
 * beyond is not observed.
 */
export function developmentEndAge(rows: CohortDevelopment[], limits: EstimationLimits): number | null {
  const purchased = rows.filter((r) => !isGoodwillCohort(r.cohort) && r.cumulativeRedeemed.length > 0);
  if (purchased.length === 0) return null;
  const maxAge = Math.max(...purchased.map((r) => r.cumulativeRedeemed.length - 1));
  const oldest = purchased.filter((r) => r.cumulativeRedeemed.length - 1 === maxAge);
  return oldest.length >= limits.minCohortsPerFactor && oldest.every(isCompleteCohort) ? maxAge : null;
}

/** A cohort's points as of the period's end: what its bounds are made of. */
export interface CohortPoints {
  cohort: string;
  /** N, net of revocations */
  pointsIssued: bigint;
  pointsRedeemed: bigint;
  pointsExpired: bigint;
}

/**
 * The cohorts whose bounds an override rate lies outside, exactly (R <= u x N <= N - X). Cohorts
 * with no points, or whose every point is redeemed, expired or revoked, have no say: they release
 * what is left whatever the rate.
 */
export function overrideOutsideBounds(
  cohorts: CohortPoints[],
  override: RateMillionths,
): Array<{ cohort: string; lowerBound: RateMillionths; upperBound: RateMillionths }> {
  const out: Array<{ cohort: string; lowerBound: RateMillionths; upperBound: RateMillionths }> = [];
  for (const c of cohorts) {
    // a goodwill cohort takes the purchased points' estimate, bounded per cohort at the proposal:
    // free points never veto finance's estimate of points bought
    if (isGoodwillCohort(c.cohort)) continue;
    const b = estimateBounds(c.pointsIssued, c.pointsRedeemed, c.pointsExpired);
    if (!b || b.complete) continue;
    const scaled = override * c.pointsIssued;
    if (scaled < c.pointsRedeemed * RATE_SCALE || scaled > (c.pointsIssued - c.pointsExpired) * RATE_SCALE)
      out.push({ cohort: c.cohort, lowerBound: b.lower, upperBound: b.upper });
  }
  return out;
}

const clampRate = (r: bigint, min: bigint): bigint => (r < min ? min : r > RATE_SCALE ? RATE_SCALE : r);

const pct = (m: bigint) => `${(Number(m) / 10_000).toFixed(4)}%`;

/** Brings an estimate within the cohort's bounds (they take precedence over the floor); says why when it moved. */
function bound(
  rate: RateMillionths,
  r: CohortDevelopment,
  redeemed: bigint,
): Pick<UltimateEstimate, 'rate' | 'lowerBound' | 'upperBound' | 'bounded'> & { why: string | null } {
  const b = estimateBounds(r.pointsIssued, redeemed, r.pointsExpired);
  if (!b) return { rate, lowerBound: null, upperBound: null, bounded: null, why: null };
  const bounds = { lowerBound: b.lower, upperBound: b.upper };
  // the database keeps a rate in (0, 1]: one millionth is the least there is
  const atLeastOne = (x: bigint) => (x < 1n ? 1n : x);
  if (b.complete) {
    const target = atLeastOne(b.lower);
    return {
      rate: target,
      ...bounds,
      bounded: rate === target ? null : rate < target ? 'lower' : 'upper',
      why: 'every point redeemed, expired or revoked: the cohort releases what is left',
    };
  }
  if (rate * r.pointsIssued < redeemed * RATE_SCALE)
    return {
      rate: atLeastOne(b.lower),
      ...bounds,
      bounded: 'lower',
      why: `raised to the share already redeemed, ${pct(b.lower)} (R/N)`,
    };
  if (rate * r.pointsIssued > (r.pointsIssued - r.pointsExpired) * RATE_SCALE) {
    // an interval narrower than a millionth (more than a million points): the lower bound wins
    const target = atLeastOne(b.upper < b.lower ? b.lower : b.upper);
    return {
      rate: target,
      ...bounds,
      bounded: 'upper',
      why: `lowered to the share that can still be redeemed, ${pct(b.upper)} ((R + outstanding)/N: expired and revoked points never will be)`,
    };
  }
  return { rate, ...bounds, bounded: null, why: null };
}

/**
 * Each cohort's ultimate redemption rate, within its bounds: its cumulative redemptions carried
 * with the sufficient factors to the development horizon, then to ultimate with the approved tail
 * factor, divided by the points issued; the prior estimate when development beyond its age has not
 * been observed and no tail factor applies, or its own data is too thin (the reason says which);
 * finance's override when given.
 */
export function projectUltimateRates(
  rows: CohortDevelopment[],
  override: RateMillionths | null,
  limits: EstimationLimits = DEFAULT_ESTIMATION_LIMITS,
): { factors: DevelopmentFactor[]; estimates: UltimateEstimate[] } {
  // goodwill cohorts ('2026-Q4-goodwill', docs/adjustments.md) are projected with the purchased
  // points' factors but never make them: free points do not move the estimate of points bought
  const factors = chainLadderFactors(
    rows.filter((r) => !isGoodwillCohort(r.cohort)),
    limits,
  );
  const horizon = developmentHorizon(factors);
  const endAge = developmentEndAge(rows, limits);
  const estimates = rows.map((r): UltimateEstimate => {
    const latestAge = r.cumulativeRedeemed.length - 1;
    const redeemedToDate = redeemedOf(r);
    const base = { cohort: r.cohort, latestAge, redeemedToDate };
    const make = (
      method: EstimateMethod,
      rate: RateMillionths,
      reason: string,
      projectedRedeemed: bigint | null,
    ): UltimateEstimate => {
      const { why, ...bounded } = bound(rate, r, redeemedToDate);
      return { ...base, method, reason: why ? `${reason}; ${why}` : reason, projectedRedeemed, ...bounded };
    };
    if (override !== null) return make('override', clampRate(override, limits.minRate), 'finance override', null);
    const prior = (reason: string) => make('prior', r.priorRate, reason, null);
    if (r.pointsIssued <= 0n) return prior('no points outstanding');
    if (latestAge < 0) return prior('no development observed yet');
    if (redeemedToDate < limits.minRedeemedPoints) return prior('too few redemptions to project');
    let num = redeemedToDate;
    let den = 1n;
    let age = latestAge;
    for (; age < factors.length && factors[age]!.sufficient; age++) {
      num *= factors[age]!.numerator;
      den *= factors[age]!.denominator;
    }
    // development observed to its end: the factors carried the cohort to the oldest age, where
    // every cohort observed is complete, so that is its ultimate (no tail factor is needed)
    if (endAge !== null && age === endAge && latestAge < endAge) {
      const scaledNum = num * RATE_SCALE;
      const scaledDen = den * r.pointsIssued;
      const rate = (2n * scaledNum + scaledDen) / (2n * scaledDen);
      return make(
        'chain_ladder',
        clampRate(rate, limits.minRate),
        `projected from age ${latestAge} to ${endAge} with the factors; every cohort observed at age ${endAge} is complete (every point redeemed, expired or revoked): development ends there`,
        num / den,
      );
    }
    const f = factors[age];
    const unobserved = f
      ? `development beyond age ${age} not observed: the factor from age ${age} to ${age + 1} is backed by ${f.cohorts} cohort(s)${f.denominator > 0n ? '' : ' with no redemptions at that age'}, at least ${limits.minCohortsPerFactor} needed`
      : `development beyond age ${age} not observed: no cohort is older`;
    if (limits.tailFactor === null) return prior(`${unobserved}, and no tail factor is approved`);
    if (age !== horizon)
      return prior(`${unobserved}; the approved tail factor applies from the development horizon, age ${horizon}`);
    num *= limits.tailFactor;
    den *= RATE_SCALE;
    // rate = num / den / N, in millionths, halves away from zero (all terms are positive here)
    const scaledNum = num * RATE_SCALE;
    const scaledDen = den * r.pointsIssued;
    const rate = (2n * scaledNum + scaledDen) / (2n * scaledDen);
    return make(
      'chain_ladder',
      clampRate(rate, limits.minRate),
      `projected from age ${latestAge} to ${horizon} with the factors, then to ultimate with the approved tail factor ${Number(limits.tailFactor) / 1e6}`,
      num / den,
    );
  });
  return { factors, estimates };
}
