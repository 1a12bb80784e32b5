import type { Pool } from 'pg';

/** A day's closing balances (business time, UTC days): what the liability stood at when the day ended. */
export interface TrendDay {
  date: string;
  /** the contract liability (deferred revenue), from the journal */
  deferredRevenueMinor: number;
  /** incremental-cost cohorts' provision, apart from the contract liability */
  provisionMinor: number;
  /** points on members' balances (the subledger), held points included */
  outstandingPoints: number;
}

/** A month's movements (the range's first and last months may be partial: only the range's days count). */
export interface TrendMonth {
  month: string;
  /** earned net of refunds' revocations (earn + earn_reversal) */
  issuedPoints: number;
  /** redeemed net of reversals (chargebacks lost, invoices lowered) */
  redeemedPoints: number;
  expiredPoints: number;
  /** manual adjustments, signed (a correction down is negative) */
  adjustedPoints: number;
  /** redeemed ÷ issued in the month, an exact decimal to 4 places as text; null when nothing was issued */
  burnRate: string | null;
  /** redemptions that applied points (reversed ones included: they were redeemed first) */
  redemptions: number;
  declinedRedemptions: number;
  /** billing credits granted by those redemptions */
  creditMinor: number;
  /** creditMinor ÷ redemptions, rounded half away from zero to a minor unit; null with none */
  costPerRedemptionMinor: number | null;
}

/** A reconciled day: its latest run. */
export interface TrendReconciliation {
  date: string;
  runId: number;
  differenceCount: number;
  /** redemptions the run found still running (not a difference yet) */
  inProgressCount: number;
  recordedAt: string;
}

export interface Trends {
  days: TrendDay[];
  months: TrendMonth[];
  reconciliations: TrendReconciliation[];
}

const LIABILITY = `l.account in ('loyalty_contract_liability', 'loyalty_provision')`;

/** A bigint column as a JavaScript number, refused if it could not be one exactly. */
function int(v: unknown): number {
  const n = Number(v ?? 0);
  if (!Number.isSafeInteger(n)) throw new Error(`not a safe integer: ${String(v)}`);
  return n;
}

/**
 * A program's figures over business dates `from`..`to` (UTC, both included), set-based on the
 * report pool: each day's closing liability (the opening before `from`, then the day's movements
 * added up), each month's points by kind and its redemptions, and the range's reconciliations.
 * Three scans of the journal and ledger by their (program, occurred_at) indexes, one of them from
 * the program's first entry for the opening balance.
 */
export async function readTrends(pool: Pool, programId: string, from: string, to: string): Promise<Trends> {
  const start = `${from}T00:00:00Z`;
  const end = new Date(Date.parse(`${to}T00:00:00Z`) + 86_400_000).toISOString();
  const [money, points, months, recons] = await Promise.all([
    pool.query(
      `with moves as (
         select (j.occurred_at at time zone 'UTC')::date as day,
                sum(l.credit_minor - l.debit_minor) filter (where l.account = 'loyalty_contract_liability') as deferred,
                sum(l.credit_minor - l.debit_minor) filter (where l.account = 'loyalty_provision') as provision
           from journal_entries j join journal_lines l using (journal_entry_id)
          where j.program_id = $1 and j.occurred_at < $3 and ${LIABILITY}
          group by 1)
       select d::date::text as day,
              sum(coalesce(m.deferred, 0)) over w as deferred, sum(coalesce(m.provision, 0)) over w as provision
         from generate_series(
                least($2::date, (select min(day) from moves)), ($3::timestamptz at time zone 'UTC')::date - 1, interval '1 day') d
         left join moves m on m.day = d::date
       window w as (order by d)`,
      [programId, from, end],
    ),
    pool.query(
      `with moves as (
         select (occurred_at at time zone 'UTC')::date as day, sum(points) as points
           from ledger_entries where program_id = $1 and occurred_at < $3 group by 1)
       select d::date::text as day, sum(coalesce(m.points, 0)) over (order by d) as points
         from generate_series(
                least($2::date, (select min(day) from moves)), ($3::timestamptz at time zone 'UTC')::date - 1, interval '1 day') d
         left join moves m on m.day = d::date`,
      [programId, from, end],
    ),
    pool.query(
      `with pts as (
         select to_char(occurred_at at time zone 'UTC', 'YYYY-MM') as month,
                coalesce(sum(points) filter (where type in ('earn', 'earn_reversal')), 0) as issued,
                coalesce(-sum(points) filter (where type in ('redeem', 'redeem_reversal')), 0) as redeemed,
                coalesce(-sum(points) filter (where type = 'expire'), 0) as expired,
                coalesce(sum(points) filter (where type = 'adjust'), 0) as adjusted
           from ledger_entries where program_id = $1 and occurred_at >= $2 and occurred_at < $3 group by 1),
       red as (
         select to_char(occurred_at at time zone 'UTC', 'YYYY-MM') as month,
                count(*) filter (where status in ('applied', 'reversed') and points_applied > 0) as redemptions,
                count(*) filter (where status = 'declined') as declined,
                coalesce(sum(credit_minor) filter (where status in ('applied', 'reversed') and points_applied > 0), 0) as credit
           from redemptions where program_id = $1 and occurred_at >= $2 and occurred_at < $3 group by 1),
       months as (
         select to_char(m, 'YYYY-MM') as month
           from generate_series(date_trunc('month', $2::timestamptz at time zone 'UTC'),
                                date_trunc('month', ($3::timestamptz - interval '1 microsecond') at time zone 'UTC'),
                                interval '1 month') m)
       select ms.month, coalesce(p.issued, 0) as issued, coalesce(p.redeemed, 0) as redeemed,
              coalesce(p.expired, 0) as expired, coalesce(p.adjusted, 0) as adjusted,
              case when coalesce(p.issued, 0) > 0 then round(p.redeemed::numeric / p.issued, 4)::text end as burn_rate,
              coalesce(r.redemptions, 0) as redemptions, coalesce(r.declined, 0) as declined,
              coalesce(r.credit, 0) as credit,
              case when coalesce(r.redemptions, 0) > 0 then round(r.credit::numeric / r.redemptions) end as cost
         from months ms left join pts p using (month) left join red r using (month)
        order by ms.month`,
      [programId, start, end],
    ),
    pool.query(
      `select distinct on (business_date) business_date::text as date, run_id, difference_count,
              jsonb_array_length(in_progress) as in_progress, recorded_at
         from reconciliation_runs
        where program_id = $1 and business_date between $2::date and $3::date
        order by business_date, run_id desc`,
      [programId, from, to],
    ),
  ]);
  // the series start at the program's first entry when it is earlier (for the running sums): keep the range
  const inRange = (r: { day: string }) => r.day >= from;
  const pointsByDay = new Map<string, number>(points.rows.filter(inRange).map((r) => [r.day, int(r.points)]));
  return {
    days: money.rows.filter(inRange).map((r) => ({
      date: r.day,
      deferredRevenueMinor: int(r.deferred),
      provisionMinor: int(r.provision),
      outstandingPoints: pointsByDay.get(r.day) ?? 0,
    })),
    months: months.rows.map((r) => ({
      month: r.month,
      issuedPoints: int(r.issued),
      redeemedPoints: int(r.redeemed),
      expiredPoints: int(r.expired),
      adjustedPoints: int(r.adjusted),
      burnRate: r.burn_rate ?? null,
      redemptions: int(r.redemptions),
      declinedRedemptions: int(r.declined),
      creditMinor: int(r.credit),
      costPerRedemptionMinor: r.cost === null ? null : int(r.cost),
    })),
    reconciliations: recons.rows.map((r) => ({
      date: r.date,
      runId: int(r.run_id),
      differenceCount: r.difference_count,
      inProgressCount: r.in_progress,
      recordedAt: r.recorded_at.toISOString(),
    })),
  };
}
