import type { Pool } from 'pg';
import { quarterBounds } from '../domain/period';
import type { CloseReport, CohortReportRow } from '../domain/close-report';
import { splitByWeights } from '../domain/close-report';
import { cohortsAsOf } from './close';
import { longQuery } from './pool';

const LIABILITY_ACCOUNTS = `('loyalty_contract_liability', 'loyalty_provision')`;
const n = (v: unknown) => Number(v ?? 0);

/**
 * The period's figures from the books (journal and ledger entries dated in it), set-based: the
 * contract-liability roll-forward in money, the points roll-forward, the cohorts as of the end,
 * and the liability by jurisdiction. The roll-forward foots by construction and is asserted.
 */
export async function buildPeriodFigures(pool: Pool, programId: string, period: string): Promise<Omit<CloseReport, 'status' | 'assumptions' | 'currency' | 'programId'>> {
  const { start, end } = quarterBounds(period);
  const money = (await longQuery(pool, 
    `select
       sum(case when j.occurred_at < $2 then l.credit_minor - l.debit_minor else 0 end) as opening,
       sum(case when j.occurred_at >= $2 and j.kind = 'accrual' then l.credit_minor - l.debit_minor else 0 end) as issued,
       sum(case when j.occurred_at >= $2 and j.kind = 'recognition' and j.reference like 'close:%' then l.debit_minor - l.credit_minor else 0 end) as estimate_change,
       sum(case when j.occurred_at >= $2 and j.kind = 'recognition' and j.reference not like 'close:%' and j.idempotency_key like 'expire%'
                then l.debit_minor - l.credit_minor else 0 end) as breakage,
       sum(case when j.occurred_at >= $2 and j.kind = 'recognition' and j.reference not like 'close:%' and j.idempotency_key not like 'expire%'
                then l.debit_minor - l.credit_minor else 0 end) as redemptions,
       sum(case when j.occurred_at >= $2 and j.kind not in ('accrual', 'recognition') then l.credit_minor - l.debit_minor else 0 end) as adjusted,
       sum(case when j.occurred_at >= $2 and j.kind = 'recognition' and l.cohort < $4 then l.debit_minor - l.credit_minor else 0 end) as from_opening,
       sum(l.credit_minor - l.debit_minor) as closing
     from journal_entries j join journal_lines l using (journal_entry_id)
    where j.program_id = $1 and j.occurred_at < $3 and l.account in ${LIABILITY_ACCOUNTS}`,
    [programId, start, end, period],
  )).rows[0]!;
  const points = (await longQuery(pool, 
    `select sum(case when occurred_at < $2 then points else 0 end) as opening,
            sum(case when occurred_at >= $2 and type = 'earn' then points else 0 end) as issued,
            -sum(case when occurred_at >= $2 and type in ('redeem', 'redeem_reversal') then points else 0 end) as redeemed,
            -sum(case when occurred_at >= $2 and type = 'expire' then points else 0 end) as expired,
            sum(case when occurred_at >= $2 and type in ('earn_reversal', 'adjust', 'merge_in', 'merge_out') then points else 0 end) as adjusted,
            sum(points) as closing
       from ledger_entries where program_id = $1 and occurred_at < $3`,
    [programId, start, end],
  )).rows[0]!;

  const recognized = { redemptionsMinor: n(money.redemptions), breakageMinor: n(money.breakage), estimateChangeMinor: n(money.estimate_change) };
  const liability = {
    openingMinor: n(money.opening), issuedMinor: n(money.issued),
    recognizedMinor: recognized.redemptionsMinor + recognized.breakageMinor + recognized.estimateChangeMinor, recognized,
    adjustedMinor: n(money.adjusted), closingMinor: n(money.closing),
  };
  const pts = { opening: n(points.opening), issued: n(points.issued), redeemed: n(points.redeemed), expired: n(points.expired), adjusted: n(points.adjusted), closing: n(points.closing) };
  // The books must foot: a failure here is a bug, never a report.
  if (liability.openingMinor + liability.issuedMinor - liability.recognizedMinor + liability.adjustedMinor !== liability.closingMinor) {
    throw new Error(`liability roll-forward of ${programId} ${period} does not foot: ${JSON.stringify(liability)}`);
  }
  if (pts.opening + pts.issued - pts.redeemed - pts.expired + pts.adjusted !== pts.closing) {
    throw new Error(`points roll-forward of ${programId} ${period} does not foot: ${JSON.stringify(pts)}`);
  }

  const cohorts: CohortReportRow[] = (await cohortsAsOf(pool, programId, end)).map((c) => ({
    cohort: c.cohort, pointsIssued: Number(c.pointsIssued), allocatedMinor: Number(c.allocatedMinor), pointsRedeemed: Number(c.pointsRedeemed),
    pointsExpired: Number(c.pointsExpired), ultimateRedemptionRate: 0, recognizedMinor: Number(c.recognizedMinor),
    deferredMinor: Number(c.allocatedMinor - c.recognizedMinor),
  }));
  const rates = await pool.query<{ cohort: string; rate: string }>('select cohort, ultimate_redemption_rate::text as rate from cohorts where program_id = $1', [programId]);
  for (const c of cohorts) c.ultimateRedemptionRate = Number(rates.rows.find((r) => r.cohort === c.cohort)?.rate ?? 0);

  // Each cohort's deferred amount split over jurisdictions by the points outstanding there at the
  // end, and over stores by the allocations their sales made (what created the liability).
  const outstanding = await longQuery<{ cohort: string; key: string | null; weight: string }>(pool,
    `select c.cohort, m.jurisdiction as key, sum(c.points) as weight
       from ledger_entries e join ledger_entry_cohorts c using (entry_id)
       join members m on m.program_id = e.program_id and m.member_id = e.member_id
      where e.program_id = $1 and e.occurred_at < $2 group by 1, 2 having sum(c.points) > 0`,
    [programId, end],
  );
  const allocations = await longQuery<{ cohort: string; key: string | null; weight: string }>(pool,
    `select cohort, store_id as key, sum(allocated_minor) as weight from accruals
      where program_id = $1 and occurred_at < $2 group by 1, 2 having sum(allocated_minor) > 0`,
    [programId, end],
  );
  const byJurisdiction = splitDeferred(cohorts, outstanding.rows, 'no points outstanding');
  const byStore = splitDeferred(cohorts, allocations.rows, 'no allocation recorded');
  return {
    period, liability, points: pts, revenueFromOpeningBalanceMinor: n(money.from_opening), cohorts,
    liabilityByStore: byStore.map(([storeId, deferredMinor]) => ({ storeId, deferredMinor })),
    liabilityByJurisdiction: byJurisdiction.map(([jurisdiction, deferredMinor]) => ({ jurisdiction, deferredMinor })),
  };
}

/** Splits each cohort's deferred amount over keys by their weights in it (exactly); sums per key, zeros left out. */
function splitDeferred(cohorts: CohortReportRow[], rows: Array<{ cohort: string; key: string | null; weight: string }>, none: string): Array<[string, number]> {
  const total = new Map<string, number>();
  for (const c of cohorts) {
    const parts = rows.filter((r) => r.cohort === c.cohort);
    if (parts.length === 0) parts.push({ cohort: c.cohort, key: none, weight: '1' });
    const split = splitByWeights(BigInt(c.deferredMinor), parts.map((p) => BigInt(p.weight)));
    parts.forEach((p, i) => total.set(p.key ?? 'unknown', (total.get(p.key ?? 'unknown') ?? 0) + Number(split[i])));
  }
  return [...total.entries()].filter(([, v]) => v !== 0).sort();
}
