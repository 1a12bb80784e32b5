import type { Pool } from 'pg';
import type { JournalLine } from '../domain/reconciliation';
import { netPerAccount } from './journal';
import { longQuery } from './pool';
import { inTransaction } from './tx';

/** A GL entry that carries many journal entries: a program's day, or what its close found uncarried. */
export interface GlBatch {
  entryId: string;
  lines: JournalLine[];
  journalCount: number;
  /** false: the batch existed (a retry or a second run), nothing new was claimed */
  created: boolean;
}

/**
 * Fixes the batch `entryId` (db/functions/ll_plan_gl_batch.sql): claims the journal entries dated
 * before `through` that nothing carries yet, or answers the batch as it was first fixed. Set-based,
 * with the long statement timeout (the first run after a deployment carries all the history since
 * the last close).
 */
export async function planGlBatch(
  pool: Pool,
  b: {
    entryId: string;
    programId: string;
    kind: 'daily' | 'close_rest';
    businessDate: string;
    through: Date;
    withSagaJournals: boolean;
    actor: string;
  },
): Promise<GlBatch> {
  const { rows } = await longQuery<{ b: GlBatch }>(
    pool,
    'select ll_plan_gl_batch($1, $2, $3, $4::date, $5, $6, $7) as b',
    [b.entryId, b.programId, b.kind, b.businessDate, b.through, b.withSagaJournals, b.actor],
  );
  return rows[0]!.b;
}

/**
 * The program's batches dated on or before `date` whose journal entries are not all recorded as
 * carried yet: fixed, but the GL never took them (refused, or an outage that outlasted the run's
 * retries). Their entries are claimed by them, so no later batch takes them: the close posts these
 * again before its own (activities/close.ts).
 */
export async function unpostedBatchesThrough(
  pool: Pool,
  programId: string,
  date: string,
): Promise<Array<GlBatch & { businessDate: string; kind: string }>> {
  const { rows } = await longQuery<{
    entry_id: string;
    lines: JournalLine[];
    journal_count: number;
    d: string;
    kind: string;
  }>(
    pool,
    `select b.entry_id, b.lines, b.journal_count, b.business_date::text as d, b.kind from gl_batches b
      where b.program_id = $1 and b.business_date <= $2::date
        and exists (select 1 from gl_batch_journals c where c.entry_id = b.entry_id
                     and not exists (select 1 from gl_posted_journals g where g.journal_entry_id = c.journal_entry_id))
      order by b.business_date, b.entry_id`,
    [programId, date],
  );
  return rows.map((r) => ({
    entryId: r.entry_id,
    lines: r.lines,
    journalCount: r.journal_count,
    created: false,
    businessDate: r.d,
    kind: r.kind,
  }));
}

/** After the GL took the batch's entry: gl_postings and gl_posted_journals record it (idempotent). */
export async function recordGlBatch(pool: Pool, entryId: string): Promise<void> {
  await longQuery(pool, 'select ll_record_gl_batch($1)', [entryId]);
}

/** The lines, net per account, of the journal entries a batch carries as the subledger has them now (null: not a batch). */
export async function batchJournalLines(pool: Pool, entryId: string): Promise<JournalLine[] | null> {
  const { rows: batch } = await pool.query('select 1 from gl_batches where entry_id = $1', [entryId]);
  if (batch.length === 0) return null;
  const { rows } = await longQuery<{ account: string; d: string; c: string }>(
    pool,
    `select l.account, sum(l.debit_minor)::bigint as d, sum(l.credit_minor)::bigint as c
       from gl_batch_journals b join journal_lines l on l.journal_entry_id = b.journal_entry_id
      where b.entry_id = $1 group by l.account order by l.account`,
    [entryId],
  );
  return netPerAccount(rows);
}

/** The close's own catch-ups of `period` (journal `close:<period>:<cohort>`) that no GL entry carries yet, net per account. */
export async function closeOwnUnpostedLines(pool: Pool, programId: string, period: string): Promise<JournalLine[]> {
  const { rows } = await pool.query<{ account: string; d: string; c: string }>(
    `select l.account, sum(l.debit_minor)::bigint as d, sum(l.credit_minor)::bigint as c
       from journal_entries j join journal_lines l on l.journal_entry_id = j.journal_entry_id
      where j.program_id = $1 and j.reference = $2
        and not exists (select 1 from gl_posted_journals g where g.journal_entry_id = j.journal_entry_id)
      group by l.account order by l.account`,
    [programId, `close:${period}`],
  );
  return netPerAccount(rows);
}

/**
 * After the GL took the close's own entry (or when its catch-ups net to nothing): records the posting
 * and marks the close's catch-ups as carried by it, in one transaction.
 */
export async function recordCloseOwnPosting(
  pool: Pool,
  p: { entryId: string; programId: string; period: string; businessDate: string; lines: JournalLine[] },
): Promise<void> {
  await inTransaction(pool, async (client) => {
    if (p.lines.length > 0)
      await client.query(
        `insert into gl_postings (entry_id, program_id, journal_key, business_date, lines) values ($1, $2, $3, $4, $5)
         on conflict (entry_id) do nothing`,
        [p.entryId, p.programId, `close:${p.period}`, p.businessDate, JSON.stringify(p.lines)],
      );
    await client.query(
      `insert into gl_posted_journals (journal_entry_id, gl_entry_id)
       select j.journal_entry_id, $3 from journal_entries j where j.program_id = $1 and j.reference = $2
       on conflict (journal_entry_id) do nothing`,
      [p.programId, `close:${p.period}`, p.entryId],
    );
  });
}
