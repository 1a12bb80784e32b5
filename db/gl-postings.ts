import type { Pool } from 'pg';
import type { JournalLine } from '../domain/reconciliation';

/**
 * What the ledger posted to the GL, recorded after the GL took it: the reconciliation compares
 * these with the GL. What many journal entries carried at once (a day, a close) is db/gl-daily.ts.
 */
export async function recordGlPosting(
  pool: Pool,
  p: { entryId: string; programId: string; journalKey: string; businessDate: string; lines: JournalLine[] },
): Promise<void> {
  await pool.query(
    `insert into gl_postings (entry_id, program_id, journal_key, business_date, lines) values ($1, $2, $3, $4, $5)
     on conflict (entry_id) do nothing`,
    [p.entryId, p.programId, p.journalKey, p.businessDate, JSON.stringify(p.lines)],
  );
}

/** The journal entries of `<journalKey>:<cohort>` reached the GL as `glEntryId` (no daily posting or close posts them again). */
export async function markJournalPostedToGl(
  pool: Pool,
  programId: string,
  journalKey: string,
  glEntryId: string,
): Promise<void> {
  await pool.query('select ll_mark_gl_posted($1, $2, $3)', [programId, journalKey, glEntryId]);
}
