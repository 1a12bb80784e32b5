/**
 * Which approved figure of a close prices the points issued after it (issue 13, defect 6; Deloitte
 * Roadmap 11.10: the updated estimate informs the stand-alone selling price of points issued in new
 * contracts). New points start where a new cohort starts: at the beginning of development.
 *
 * - An override is finance's program-wide estimate, approved by the controller: it prices new points
 *   as it is (the bounds of existing cohorts, which may have moved it for one of them, say nothing
 *   about points not issued yet).
 * - Otherwise the chain ladder's estimate of the newest cohort it projected: the ultimate rate of
 *   the most recent sales, observed from their start. An average over all cohorts would mix in old
 *   cohorts whose development (and expiry) is behind them.
 * - A cohort that only kept its prior (development not observed, no redemptions yet) is no new
 *   evidence: such a close sets no estimate and the one in force stays (the last close's, or the
 *   rule's). Its prior may be stale anyway: a quarter's cohort is created during the close of the
 *   quarter before, at the estimate then in force.
 */
import { millionthsToDecimal, rateToMillionths } from './money';

export interface NewPointsEstimate {
  /** decimal string, at most 6 places, in (0, 1] */
  rate: string;
  source: 'override' | 'chain_ladder';
  /** the cohort whose estimate it is (source chain_ladder) */
  cohort: string | null;
}

export function newPointsEstimate(proposal: {
  cohorts: Array<{ cohort: string; rate: string; method: string }>;
  override: { rate: number; justification: string } | null;
}): NewPointsEstimate | null {
  if (proposal.override)
    return { rate: millionthsToDecimal(rateToMillionths(proposal.override.rate)), source: 'override', cohort: null };
  // the quarters' own cohorts (a cohort named after its quarter and something more is not one of sales)
  const projected = proposal.cohorts.filter(
    (c) => c.method === 'chain_ladder' && /^\d{4}-Q[1-4]$/.test(c.cohort) && Number(c.rate) > 0,
  );
  if (projected.length === 0) return null;
  const newest = projected.reduce((a, b) => (b.cohort > a.cohort ? b : a));
  return { rate: newest.rate, source: 'chain_ladder', cohort: newest.cohort };
}
