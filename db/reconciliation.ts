import type { Pool } from 'pg';
import type { JournalLine, LedgerRedemption, ReconciliationReport } from '../domain/reconciliation';

/** The most redemptions one day's run of one program looks at; more is reported as truncated. */
export const MAX_REDEMPTIONS_PER_RUN = 20_000;

export interface LedgerRedemptionRow extends LedgerRedemption {
  memberId: string;
  adjustmentIds: string[];
}

const REDEMPTION_COLUMNS = `r.redemption_id::text as "redemptionId", r.invoice_id as "invoiceId", r.member_id as "memberId", r.status,
  (r.credit_minor - r.credit_reversed_minor)::bigint as "creditOutMinor",
  (select jsonb_build_object('jurisdiction', t.jurisdiction, 'treatment', t.treatment) from redemption_taxes t
    where t.program_id = r.program_id and t.invoice_id = r.invoice_id) as "taxTreatment",
  coalesce((select array_agg(a.adjustment_id order by a.adjustment_id) from redemption_adjustments a
             where a.program_id = r.program_id and a.invoice_id = r.invoice_id and a.points_reversed > 0), '{}') as "adjustmentIds"`;

const toRow = (r: Record<string, unknown>): LedgerRedemptionRow => ({
  ...(r as unknown as LedgerRedemptionRow),
  creditOutMinor: Number(r.creditOutMinor),
});

/** Redemptions created or changed on the day (UTC record time), at most `limit`. */
export async function redemptionsTouchedOn(
  pool: Pool,
  programId: string,
  date: string,
  limit: number,
): Promise<LedgerRedemptionRow[]> {
  const { rows } = await pool.query(
    `select ${REDEMPTION_COLUMNS} from redemptions r
      where r.program_id = $1
        and ((r.created_at >= $2::date and r.created_at < $2::date + 1) or (r.updated_at >= $2::date and r.updated_at < $2::date + 1))
      order by r.invoice_id limit $3`,
    [programId, date, limit],
  );
  return rows.map(toRow);
}

export async function redemptionsByIds(
  pool: Pool,
  programId: string,
  redemptionIds: string[],
): Promise<LedgerRedemptionRow[]> {
  const uuids = redemptionIds.filter((id) =>
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id),
  );
  if (uuids.length === 0) return [];
  const { rows } = await pool.query(
    `select ${REDEMPTION_COLUMNS} from redemptions r where r.program_id = $1 and r.redemption_id = any($2::uuid[])`,
    [programId, uuids],
  );
  return rows.map(toRow);
}

export interface GlPosting {
  entryId: string;
  journalKey: string;
  businessDate: string;
  lines: JournalLine[];
}

/** What the ledger posted to the GL on the day (UTC record time). */
export async function postingsOn(pool: Pool, programId: string, date: string): Promise<GlPosting[]> {
  const { rows } = await pool.query(
    `select entry_id as "entryId", journal_key as "journalKey", business_date::text as "businessDate", lines from gl_postings
      where program_id = $1 and posted_at >= $2::date and posted_at < $2::date + 1 order by entry_id`,
    [programId, date],
  );
  return rows as GlPosting[];
}

/** Of these GL entry ids, the ones the ledger recorded posting (on any day). */
export async function postedEntryIds(pool: Pool, entryIds: string[]): Promise<Set<string>> {
  if (entryIds.length === 0) return new Set();
  const { rows } = await pool.query<{ entry_id: string }>(
    'select entry_id from gl_postings where entry_id = any($1::text[])',
    [entryIds],
  );
  return new Set(rows.map((r) => r.entry_id));
}

/** The most differences stored and shown per run (the count is always exact). */
export const MAX_DIFFERENCES_SHOWN = 1_000;

export async function recordRun(
  pool: Pool,
  r: Omit<ReconciliationReport, 'runId' | 'recordedAt'>,
): Promise<ReconciliationReport> {
  const { rows } = await pool.query(
    `insert into reconciliation_runs (program_id, business_date, workflow_id, redemptions_checked, credits_checked, gl_entries_checked,
                                      in_progress, differences, difference_count, balance_check, monthly)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning run_id, recorded_at`,
    [
      r.programId,
      r.date,
      r.workflowId,
      r.redemptionsChecked,
      r.creditsChecked,
      r.glEntriesChecked,
      JSON.stringify(r.inProgress),
      JSON.stringify(r.differences.slice(0, MAX_DIFFERENCES_SHOWN)),
      r.differenceCount,
      r.balanceCheck === null ? null : JSON.stringify(r.balanceCheck),
      r.monthly === null ? null : JSON.stringify(r.monthly),
    ],
  );
  return {
    ...r,
    differences: r.differences.slice(0, MAX_DIFFERENCES_SHOWN),
    runId: Number(rows[0].run_id),
    recordedAt: rows[0].recorded_at.toISOString(),
  };
}

/** The day's report: its latest run. */
export async function latestRun(pool: Pool, programId: string, date: string): Promise<ReconciliationReport | null> {
  const { rows } = await pool.query(
    `select run_id, program_id, business_date::text as date, workflow_id, redemptions_checked, credits_checked, gl_entries_checked,
            in_progress, differences, difference_count, balance_check, monthly, recorded_at
       from reconciliation_runs where program_id = $1 and business_date = $2 order by run_id desc limit 1`,
    [programId, date],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    runId: Number(r.run_id),
    programId: r.program_id,
    date: r.date,
    workflowId: r.workflow_id,
    redemptionsChecked: r.redemptions_checked,
    creditsChecked: r.credits_checked,
    glEntriesChecked: r.gl_entries_checked,
    inProgress: r.in_progress,
    differenceCount: r.difference_count,
    differences: r.differences,
    balanceCheck: r.balance_check ?? null,
    monthly: r.monthly ?? null,
    recordedAt: r.recorded_at.toISOString(),
  };
}
