import type { Pool, PoolClient } from 'pg';
import { overrideOutsideBounds, type CohortDevelopment } from '../domain/breakage';
import { ApiError } from '../domain/errors';
import { millionthsToDecimal, rateToMillionths } from '../domain/money';
import { cohortQuarter, nextPeriod, quarterBounds, quarterOf } from '../domain/period';
import { rethrowAsApiError } from './errors';
import { recordPointsEstimate } from './points-estimate';
import { LONG_STATEMENT_TIMEOUT_MS, longQuery } from './pool';
import { inTransaction } from './tx';

export type CloseStatus = 'frozen' | 'proposed' | 'escalated' | 'cancelled' | 'locked';

export interface CloseRow {
  programId: string;
  period: string;
  status: CloseStatus;
  workflowId: string;
  startedBy: string;
  startedAt: string;
  override: { rate: string; justification: string } | null;
  proposal: unknown;
  approvedBy: string | null;
  approvedAt: string | null;
  bookedAt: string | null;
  glEntryId: string | null;
  report: unknown;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const toClose = (r: Record<string, any>): CloseRow => ({
  programId: r.program_id,
  period: r.period,
  status: r.status,
  workflowId: r.workflow_id,
  startedBy: r.started_by,
  startedAt: r.started_at.toISOString(),
  override: r.override_rate === null ? null : { rate: r.override_rate, justification: r.override_justification },
  proposal: r.proposal,
  approvedBy: r.approved_by,
  approvedAt: r.approved_at?.toISOString() ?? null,
  bookedAt: r.booked_at?.toISOString() ?? null,
  glEntryId: r.gl_entry_id,
  report: r.report,
});

export async function getClose(pool: Pool | PoolClient, programId: string, period: string): Promise<CloseRow | null> {
  const { rows } = await pool.query('select * from closes where program_id = $1 and period = $2', [programId, period]);
  return rows[0] ? toClose(rows[0]) : null;
}

/** The quarter of the program's first ledger entry (null: no activity yet). */
export async function firstQuarterWithActivity(db: Pool | PoolClient, programId: string): Promise<string | null> {
  const { rows } = await db.query('select min(occurred_at) as first from ledger_entries where program_id = $1', [
    programId,
  ]);
  return rows[0].first ? quarterOf(rows[0].first) : null;
}

/**
 * Whether `period` may start closing now: it has ended, and it is the program's next quarter to
 * close (the one after the last locked, from the first quarter with activity). Throws the API's
 * error when not; returns the existing close when there is one (starting again returns it).
 */
export async function checkCanClose(
  db: Pool | PoolClient,
  programId: string,
  period: string,
  now: Date,
): Promise<CloseRow | null> {
  const existing = await getClose(db, programId, period);
  if (existing && existing.status !== 'cancelled') return existing;
  const { end } = quarterBounds(period);
  if (end.getTime() > now.getTime())
    throw new ApiError(409, 'period_not_ended', `${period} has not ended yet`, { period, endsAt: end.toISOString() });
  const { rows } = await db.query(
    `select period, status from closes where program_id = $1 and status <> 'cancelled' order by period desc limit 1`,
    [programId],
  );
  const last = rows[0] as { period: string; status: CloseStatus } | undefined;
  if (last && last.status !== 'locked') {
    throw new ApiError(409, 'period_out_of_order', `the close of ${last.period} is still ${last.status}`, {
      period,
      pending: last.period,
    });
  }
  const expected = last ? nextPeriod(last.period) : await firstQuarterWithActivity(db, programId);
  if (expected !== null && expected !== period) {
    throw new ApiError(409, 'period_out_of_order', `the next quarter to close is ${expected}`, {
      period,
      next: expected,
    });
  }
  return null;
}

/**
 * Freezes the quarter: from now on no ledger entry may be dated in it (db trigger). Idempotent:
 * a close already recorded is returned as it is.
 */
export async function freezePeriod(
  pool: Pool,
  c: {
    programId: string;
    period: string;
    actor: string;
    workflowId: string;
    override: { rate: string; justification: string } | null;
    now: Date;
  },
): Promise<CloseRow> {
  try {
    return await inTransaction(pool, async (client) => {
      await client.query('select 1 from programs where program_id = $1 for update', [c.programId]);
      const existing = await checkCanClose(client, c.programId, c.period, c.now);
      if (existing) return existing;
      const { end } = quarterBounds(c.period);
      await client.query('update programs set locked_until = greatest(locked_until, $2) where program_id = $1', [
        c.programId,
        end,
      ]);
      const { rows } = await client.query(
        `insert into closes (program_id, period, status, workflow_id, started_by, override_rate, override_justification)
         values ($1, $2, 'frozen', $3, $4, $5, $6)
         on conflict (program_id, period) do update set status = 'frozen', workflow_id = excluded.workflow_id, started_by = excluded.started_by,
           started_at = now(), override_rate = excluded.override_rate, override_justification = excluded.override_justification,
           proposal = null, updated_at = now()
         returning *`,
        [c.programId, c.period, c.workflowId, c.actor, c.override?.rate ?? null, c.override?.justification ?? null],
      );
      return toClose(rows[0]);
    });
  } catch (e) {
    rethrowAsApiError(e);
  }
}

export async function setCloseStatus(
  pool: Pool,
  programId: string,
  period: string,
  status: CloseStatus,
  fields: { proposal?: unknown } = {},
): Promise<void> {
  await pool.query(
    `update closes set status = $3, proposal = coalesce($4::jsonb, proposal), updated_at = now() where program_id = $1 and period = $2 and status <> 'locked'`,
    [programId, period, status, fields.proposal === undefined ? null : JSON.stringify(fields.proposal)],
  );
}

/** The controller who approved the close (the first approval's time is kept). */
export async function recordCloseApproval(
  pool: Pool,
  programId: string,
  period: string,
  approvedBy: string,
): Promise<void> {
  await pool.query(
    `update closes set approved_by = $3, approved_at = coalesce(approved_at, now()), updated_at = now() where program_id = $1 and period = $2 and status <> 'locked'`,
    [programId, period, approvedBy],
  );
}

/**
 * Books the approved catch-up per cohort in the subledger (db/functions/ll_close_book.sql; idempotent
 * per period) and, in the same transaction, records the estimate that prices new points from then on
 * (`pointsRate`, null: the close sets none): both land or neither does, so an accrual never sees
 * the booking with the old estimate, and a retry after a crash finds both done.
 */
export async function bookCloseCatchUp(
  pool: Pool,
  programId: string,
  period: string,
  end: Date,
  cohorts: Array<{ cohort: string; rate: string; catchUpMinor: number }>,
  actor: string,
  pointsRate: string | null,
): Promise<void> {
  await inTransaction(
    pool,
    async (client) => {
      await client.query('select ll_close_book($1, $2, $3, $4::jsonb, $5)', [
        programId,
        period,
        end,
        JSON.stringify(cohorts),
        actor,
      ]);
      if (pointsRate !== null) await recordPointsEstimate(client, programId, period, pointsRate);
    },
    { statementTimeoutMs: LONG_STATEMENT_TIMEOUT_MS },
  );
}

/** The GL entry the close posted (null: nothing to post). */
export async function setCloseGlEntry(
  pool: Pool,
  programId: string,
  period: string,
  glEntryId: string | null,
): Promise<void> {
  await pool.query(
    "update closes set gl_entry_id = $3, updated_at = now() where program_id = $1 and period = $2 and status <> 'locked'",
    [programId, period, glEntryId],
  );
}

/** Locks the period with its report; a locked close never changes again. */
export async function lockClose(pool: Pool, programId: string, period: string, report: unknown): Promise<void> {
  await pool.query(
    `update closes set status = 'locked', report = $3, updated_at = now() where program_id = $1 and period = $2`,
    [programId, period, JSON.stringify(report)],
  );
}

export interface CohortAsOf {
  cohort: string;
  liabilityAccount: string;
  pointsIssued: bigint;
  pointsRedeemed: bigint;
  pointsExpired: bigint;
  allocatedMinor: bigint;
  /** exact allocation (micro) when no allocation of the cohort changed after the period; else allocatedMinor x 10^6 */
  allocatedMicro: bigint;
  recognizedMinor: bigint;
  priorRateMillionths: bigint;
  /** incremental-cost cohorts */
  costPerPointMinor: bigint | null;
}

/**
 * Every cohort's figures as of the period's end, set-based: points from the ledger, money from the
 * journal, both dated before the end. One pass over the program's entries.
 */
export async function cohortsAsOf(pool: Pool, programId: string, end: Date): Promise<CohortAsOf[]> {
  const { rows } = await longQuery(
    pool,
    `with pts as (
       select c.cohort,
              sum(case when e.type in ('earn', 'earn_reversal', 'adjust') then c.points else 0 end) as n,
              -sum(case when e.type in ('redeem', 'redeem_reversal') then c.points else 0 end) as r,
              -sum(case when e.type = 'expire' then c.points else 0 end) as x
         from ledger_entries e join ledger_entry_cohorts c using (entry_id)
        where e.program_id = $1 and e.occurred_at < $2 group by c.cohort),
     money as (
       select l.cohort,
              sum(case when j.kind in ('accrual', 'refund') then l.credit_minor - l.debit_minor else 0 end) as allocated,
              sum(case when j.kind = 'recognition' then l.debit_minor - l.credit_minor else 0 end) as recognized
         from journal_entries j join journal_lines l using (journal_entry_id)
        where j.program_id = $1 and j.occurred_at < $2 and l.cohort is not null
          and l.account in ('loyalty_contract_liability', 'loyalty_provision') group by l.cohort),
     now_ as (
       select cohort, sum(allocated_minor - allocated_reversed_minor) as allocated, sum(allocated_micro - allocated_reversed_micro) as micro
         from cohort_stripes where program_id = $1 group by cohort)
     select co.cohort, co.liability_account, (co.ultimate_redemption_rate * 1000000)::bigint as prior, co.cost_per_point_minor,
            coalesce(pts.n, 0) as n, coalesce(pts.r, 0) as r, coalesce(pts.x, 0) as x,
            coalesce(money.allocated, 0) as allocated, coalesce(money.recognized, 0) as recognized,
            coalesce(now_.allocated, 0) as allocated_now, coalesce(now_.micro, 0) as micro_now
       from cohorts co left join pts using (cohort) left join money using (cohort) left join now_ using (cohort)
      where co.program_id = $1 and left(co.cohort, 7) <= $3
      order by co.cohort`,
    [programId, end, quarterOf(new Date(end.getTime() - 1))],
  );
  return rows.map((r) => {
    const allocated = BigInt(r.allocated);
    return {
      cohort: r.cohort,
      liabilityAccount: r.liability_account,
      priorRateMillionths: BigInt(r.prior),
      costPerPointMinor:
        r.liability_account === 'loyalty_provision' && r.cost_per_point_minor !== null
          ? BigInt(r.cost_per_point_minor)
          : null,
      pointsIssued: BigInt(r.n),
      pointsRedeemed: BigInt(r.r),
      pointsExpired: BigInt(r.x),
      allocatedMinor: allocated,
      recognizedMinor: BigInt(r.recognized),
      allocatedMicro: BigInt(r.allocated_now) === allocated ? BigInt(String(r.micro_now)) : allocated * 1_000_000n,
    };
  });
}

/** The development triangle: per cohort, cumulative points redeemed (net) by quarters since issue, up to the period. */
export async function redemptionTriangle(
  pool: Pool,
  programId: string,
  period: string,
  cohorts: CohortAsOf[],
  priorRates: Map<string, bigint>,
): Promise<CohortDevelopment[]> {
  const { end } = quarterBounds(period);
  const { rows } = await longQuery<{ cohort: string; quarter: string; redeemed: string }>(
    pool,
    `select c.cohort, ll_quarter_of(e.occurred_at) as quarter, -sum(c.points) as redeemed
       from ledger_entries e join ledger_entry_cohorts c using (entry_id)
      where e.program_id = $1 and e.occurred_at < $2 and e.type in ('redeem', 'redeem_reversal')
      group by 1, 2`,
    [programId, end],
  );
  const byCohort = new Map<string, Map<string, bigint>>();
  for (const r of rows)
    (byCohort.get(r.cohort) ?? byCohort.set(r.cohort, new Map()).get(r.cohort)!).set(r.quarter, BigInt(r.redeemed));
  return cohorts.map((c) => {
    const cumulative: bigint[] = [];
    let sum = 0n;
    for (let q = cohortQuarter(c.cohort); q <= period; q = nextPeriod(q)) {
      sum += byCohort.get(c.cohort)?.get(q) ?? 0n;
      cumulative.push(sum);
    }
    return {
      cohort: c.cohort,
      pointsIssued: c.pointsIssued,
      cumulativeRedeemed: cumulative,
      pointsExpired: c.pointsExpired,
      priorRate: priorRates.get(c.cohort) ?? c.priorRateMillionths,
    };
  });
}

/**
 * Refuses (422 override_out_of_bounds, before anything is written) an override rate outside any
 * open cohort's bounds as of the period's end: R/N <= u <= (R + outstanding)/N (domain/breakage.ts).
 */
export async function refuseOverrideOutsideBounds(
  pool: Pool,
  programId: string,
  period: string,
  rate: number,
): Promise<void> {
  const cohorts = await cohortsAsOf(pool, programId, quarterBounds(period).end);
  const outside = overrideOutsideBounds(cohorts, rateToMillionths(rate));
  if (outside.length === 0) return;
  const list = outside
    .map((o) => `${o.cohort} [${millionthsToDecimal(o.lowerBound)}, ${millionthsToDecimal(o.upperBound)}]`)
    .join(', ');
  throw new ApiError(
    422,
    'override_out_of_bounds',
    `the override ${rate} lies outside the bounds R/N <= u <= (R + outstanding)/N of ${list}`,
    {
      period,
      rate,
      cohorts: outside.map((o) => ({
        cohort: o.cohort,
        lowerBound: Number(millionthsToDecimal(o.lowerBound)),
        upperBound: Number(millionthsToDecimal(o.upperBound)),
      })),
    },
  );
}
