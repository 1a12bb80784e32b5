import type { Pool } from 'pg';

export interface CohortLiability {
  cohort: string;
  outstandingPoints: number;
  ultimateRedemptionRate: number;
  expectedRedemptionPoints: number;
  /** the contract liability (relative SSP): deferred revenue */
  deferredRevenueMinor: number;
  /** an incremental-cost cohort's provision: a cost accrued, not deferred revenue (its releases are never revenue) */
  provisionMinor: number;
}

/**
 * Point-in-time liability from the append-only ledger and journal: only entries whose business
 * time is at or before asOf count, so the figure for a past instant never depends on when it is asked.
 */
export async function liabilityAsOf(pool: Pool, programId: string, asOf: string): Promise<CohortLiability[]> {
  const { rows } = await pool.query(
    `with pts as (
       select c.cohort, sum(c.points) as points,
              -- N (issued net of revocations) and R (redeemed net of reversals), as the recognition
              -- model counts them (ll_recognize_cohort); merges move points between members only
              sum(c.points) filter (where e.type in ('earn', 'earn_reversal', 'adjust')) as issued,
              coalesce(-sum(c.points) filter (where e.type in ('redeem', 'redeem_reversal')), 0) as redeemed
         from ledger_entries e join ledger_entry_cohorts c on c.entry_id = e.entry_id
        where e.program_id = $1 and e.occurred_at <= $2
        group by c.cohort),
     money as (
       select l.cohort,
              coalesce(sum(l.credit_minor - l.debit_minor) filter (where l.account = 'loyalty_contract_liability'), 0) as deferred,
              coalesce(sum(l.credit_minor - l.debit_minor) filter (where l.account = 'loyalty_provision'), 0) as provision
         from journal_entries j join journal_lines l on l.journal_entry_id = j.journal_entry_id
        where j.program_id = $1 and j.occurred_at <= $2 and l.account in ('loyalty_contract_liability', 'loyalty_provision')
        group by l.cohort)
     select coalesce(p.cohort, m.cohort) as cohort, coalesce(p.points, 0) as points, coalesce(m.deferred, 0) as deferred,
            coalesce(m.provision, 0) as provision,
            coalesce(c.ultimate_redemption_rate, 0) as rate,
            round(greatest(0, least(coalesce(p.points, 0),
                                    coalesce(p.issued, 0) * coalesce(c.ultimate_redemption_rate, 0) - coalesce(p.redeemed, 0))))
              as expected
       from pts p full join money m on m.cohort = p.cohort
       left join cohorts c on c.program_id = $1 and c.cohort = coalesce(p.cohort, m.cohort)
      order by 1`,
    [programId, asOf],
  );
  return rows.map((r) => {
    return {
      cohort: r.cohort,
      outstandingPoints: Number(r.points),
      ultimateRedemptionRate: Number(r.rate),
      // the points still expected to be redeemed, N x u - R (the recognition model's), never more
      // than are outstanding nor below zero: an estimate in whole points, rounded in SQL from exact
      // decimals (halves away from zero); never booked
      expectedRedemptionPoints: Number(r.expected),
      deferredRevenueMinor: Number(r.deferred),
      provisionMinor: Number(r.provision),
    };
  });
}
