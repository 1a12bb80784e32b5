import type { Pool } from 'pg';
import type { JournalLine } from '../domain/reconciliation';
import { netPerAccount } from './journal';
import { longQuery } from './pool';

/**
 * What the ledger posted to the GL, recorded after the GL took it: the reconciliation compares
 * these with the GL, and the close posts only journals that are not marked posted yet.
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

/** The journal entries of `<journalKey>:<cohort>` reached the GL as `glEntryId` (the close will not post them again). */
export async function markJournalPostedToGl(
  pool: Pool,
  programId: string,
  journalKey: string,
  glEntryId: string,
): Promise<void> {
  await pool.query('select ll_mark_gl_posted($1, $2, $3)', [programId, journalKey, glEntryId]);
}

// The program's journal entries dated before $2 that no GL entry carries yet.
const UNPOSTED = `from journal_entries j where j.program_id = $1 and j.occurred_at < $2
                    and not exists (select 1 from gl_posted_journals g where g.journal_entry_id = j.journal_entry_id)`;

/** The lines, net per account, of every journal entry dated before `end` that has not reached the GL (set-based, long timeout). */
export async function unpostedJournalLines(pool: Pool, programId: string, end: Date): Promise<JournalLine[]> {
  const { rows } = await longQuery<{ account: string; d: string; c: string }>(
    pool,
    `select l.account, sum(l.debit_minor)::bigint as d, sum(l.credit_minor)::bigint as c
       from journal_lines l where l.journal_entry_id in (select j.journal_entry_id ${UNPOSTED}) group by l.account order by l.account`,
    [programId, end],
  );
  return netPerAccount(rows);
}

/** Marks every journal entry dated before `end` that has not reached the GL as carried by `glEntryId`. */
export async function markUnpostedJournalsPosted(
  pool: Pool,
  programId: string,
  end: Date,
  glEntryId: string,
): Promise<void> {
  await longQuery(
    pool,
    `insert into gl_posted_journals (journal_entry_id, gl_entry_id) select j.journal_entry_id, $3 ${UNPOSTED} on conflict do nothing`,
    [programId, end, glEntryId],
  );
}
