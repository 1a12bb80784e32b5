import type { Pool } from 'pg';
import { quarterBounds } from '../domain/period';
import {
  closeReport,
  periodFigures,
  type CloseProposal,
  type CloseReport,
  type DeferredWeight,
  type PeriodBooks,
} from '../domain/close-report';
import { cohortsAsOf, type CloseRow } from './close';
import { longQuery } from './pool';
import { outputTaxOnOpeningCohorts, redemptionTaxEffect } from './redemption-tax';
import { programCurrency } from './programs';

const LIABILITY_ACCOUNTS = `('loyalty_contract_liability', 'loyalty_provision')`;

/**
 * The period's sums from the books (journal and ledger entries dated before its end), set-based:
 * the contract-liability roll-forward in money, the points roll-forward, the cohorts as of the end,
 * and the weights the deferred amount is split by (jurisdictions, stores).
 */
export async function readPeriodBooks(pool: Pool, programId: string, period: string): Promise<PeriodBooks> {
  const { start, end } = quarterBounds(period);
  // one roll-forward per account: the contract liability (relative SSP) and, apart from it, the
  // provision of incremental-cost cohorts, whose releases are never revenue (docs/close.md)
  const byAccount = (
    await longQuery(
      pool,
      `select l.account,
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
    where j.program_id = $1 and j.occurred_at < $3 and l.account in ${LIABILITY_ACCOUNTS}
    group by l.account`,
      [programId, start, end, period],
    )
  ).rows;
  const sums = (account: string) => {
    const m = byAccount.find((r) => r.account === account) ?? {};
    return {
      opening: m.opening ?? null,
      issued: m.issued ?? null,
      estimateChange: m.estimate_change ?? null,
      breakage: m.breakage ?? null,
      redemptions: m.redemptions ?? null,
      adjusted: m.adjusted ?? null,
      fromOpening: m.from_opening ?? null,
      closing: m.closing ?? null,
    };
  };
  const points = (
    await longQuery(
      pool,
      `select sum(case when occurred_at < $2 then points else 0 end) as opening,
            sum(case when occurred_at >= $2 and type = 'earn' then points else 0 end) as issued,
            -sum(case when occurred_at >= $2 and type in ('redeem', 'redeem_reversal') then points else 0 end) as redeemed,
            -sum(case when occurred_at >= $2 and type = 'expire' then points else 0 end) as expired,
            sum(case when occurred_at >= $2 and type in ('earn_reversal', 'adjust', 'merge_in', 'merge_out') then points else 0 end) as adjusted,
            sum(points) as closing
       from ledger_entries where program_id = $1 and occurred_at < $3`,
      [programId, start, end],
    )
  ).rows[0]!;
  const cohorts = await cohortsAsOf(pool, programId, end);
  const rates = await pool.query<{ cohort: string; rate: string }>(
    'select cohort, ultimate_redemption_rate::text as rate from cohorts where program_id = $1',
    [programId],
  );
  const outstanding = await longQuery<DeferredWeight & Record<string, unknown>>(
    pool,
    `select c.cohort, m.jurisdiction as key, sum(c.points) as weight
       from ledger_entries e join ledger_entry_cohorts c using (entry_id)
       join members m on m.program_id = e.program_id and m.member_id = e.member_id
      where e.program_id = $1 and e.occurred_at < $2 group by 1, 2 having sum(c.points) > 0`,
    [programId, end],
  );
  const allocations = await longQuery<DeferredWeight & Record<string, unknown>>(
    pool,
    // Each store weighs in a cohort by the allocations its sales put there, less what refunds dated
    // before the end reversed of them there, per cohort as the refund's journal lines took it
    // (ll_refund): the part off the refunded invoice's own cohort is that invoice's (its store); a
    // part off another cohort came with the member's points in it, earned on the member's accruals
    // there, and is split over those exactly by their allocation (differences of rounded cumulative
    // shares); none found (points that came by a merge): the refunded invoice's store. Points taken
    // back by hand reverse like the latter. So a cohort's weights add up to its allocation net of
    // reversals, and a refunded sale no longer weighs.
    `with acc as (select invoice_id, cohort, store_id, credited_member_id, allocated_minor from accruals
                   where program_id = $1 and occurred_at < $2),
          rev as (select r.refund_id, r.member_id, a0.cohort as invoice_cohort, a0.store_id as invoice_store, l.cohort,
                         sum(l.debit_minor - l.credit_minor) as reversed
                    from refunds r join accruals a0 on a0.program_id = r.program_id and a0.invoice_id = r.invoice_id
                    join journal_entries j on j.program_id = r.program_id and j.idempotency_key = 'refund:' || r.refund_id
                    join journal_lines l on l.journal_entry_id = j.journal_entry_id
                     and l.account in ${LIABILITY_ACCOUNTS} and l.cohort is not null
                   where r.program_id = $1 and r.occurred_at < $2 group by 1, 2, 3, 4, 5
                  union all
                  -- points taken back by hand from a purchased cohort reverse their share there (ll_apply_adjustment):
                  -- no invoice, so always split over the member's accruals in that cohort
                  select j.idempotency_key, e.member_id, null, null, l.cohort, sum(l.debit_minor - l.credit_minor)
                    from journal_entries j join journal_lines l on l.journal_entry_id = j.journal_entry_id
                     and l.account in ${LIABILITY_ACCOUNTS} and l.cohort is not null and l.cohort not like '%-goodwill'
                    join ledger_entries e on e.program_id = j.program_id and e.idempotency_key = 'adjust:' || split_part(j.idempotency_key, ':', 2)
                   where j.program_id = $1 and j.occurred_at < $2 and j.kind = 'refund' and j.idempotency_key like 'adjust:%:reversal'
                   group by 1, 2, 3, 4, 5),
          other as (select rev.cohort, rev.reversed, rev.invoice_store, acc.store_id, acc.allocated_minor,
                           sum(acc.allocated_minor) over (partition by rev.refund_id, rev.cohort order by acc.invoice_id) as cum,
                           sum(acc.allocated_minor) over (partition by rev.refund_id, rev.cohort) as total
                      from rev left join acc on acc.cohort = rev.cohort and acc.credited_member_id = rev.member_id
                     where rev.cohort is distinct from rev.invoice_cohort),
          w as (select cohort, store_id as key, allocated_minor as weight from acc
                union all
                select cohort, invoice_store, -reversed from rev where cohort = invoice_cohort
                union all
                select cohort, case when total > 0 then store_id else invoice_store end,
                       case when total > 0 then -(round(reversed::numeric * cum / total) - round(reversed::numeric * (cum - allocated_minor) / total))
                            else -reversed end
                  from other)
     select cohort, key, sum(weight)::bigint as weight from w group by 1, 2 having sum(weight) > 0`,
    [programId, end],
  );
  return {
    liability: sums('loyalty_contract_liability'),
    provision: sums('loyalty_provision'),
    points: {
      opening: points.opening,
      issued: points.issued,
      redeemed: points.redeemed,
      expired: points.expired,
      adjusted: points.adjusted,
      closing: points.closing,
    },
    cohorts,
    rates: rates.rows,
    outstandingByJurisdiction: outstanding.rows,
    allocatedByStore: allocations.rows,
    taxEffect: await redemptionTaxEffect(pool, programId, start, end),
    taxFromOpening: await outputTaxOnOpeningCohorts(pool, programId, start, end, period),
  };
}

/**
 * The close's report, the one the API, `loyalty report` and the close's lock all use: a locked
 * close's is the one stored at lock (it never changes); before that, the books as they are now,
 * with the close's assumptions and `status` (the lock passes 'locked' for the report it stores).
 */
export async function buildCloseReport(
  pool: Pool,
  close: CloseRow,
  status: string = close.status,
): Promise<CloseReport> {
  if (close.status === 'locked') return close.report as CloseReport;
  const figures = periodFigures(
    close.programId,
    close.period,
    await readPeriodBooks(pool, close.programId, close.period),
  );
  const currency = (await programCurrency(pool, close.programId))?.currency ?? '';
  return closeReport({
    programId: close.programId,
    currency,
    status,
    figures,
    close: {
      proposal: close.proposal as CloseProposal | null,
      startedBy: close.startedBy,
      approvedBy: close.approvedBy,
      approvedAt: close.approvedAt,
    },
  });
}
