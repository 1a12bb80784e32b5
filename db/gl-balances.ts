import type { Pool } from 'pg';
import type { AccountSums } from '../domain/gl-balance';
import { longQuery } from './pool';

const toSums = (rows: Array<{ account: string; net: string }>): AccountSums[] =>
  rows.map((r) => ({ account: r.account, netMinor: BigInt(r.net) }));

/** The subledger's balance (debits less credits) per account of the journal entries dated in [from, through) (no from: all). */
export async function subledgerNetByAccount(
  pool: Pool,
  programId: string,
  through: Date,
  from: Date | null = null,
): Promise<AccountSums[]> {
  const { rows } = await longQuery<{ account: string; net: string }>(
    pool,
    `select l.account, (sum(l.debit_minor) - sum(l.credit_minor))::text as net
       from journal_entries j join journal_lines l on l.journal_entry_id = j.journal_entry_id
      where j.program_id = $1 and j.occurred_at < $2 and ($3::timestamptz is null or j.occurred_at >= $3)
      group by l.account order by l.account`,
    [programId, through, from],
  );
  return toSums(rows);
}

/**
 * Of the journal entries dated before `through`, the part no GL entry dated on or before `asOf`
 * carries (not carried yet, or carried by a later day's entry), net per account. A journal marked
 * carried by a batch whose lines net to nothing (no GL entry, nothing to carry) counts as carried.
 */
export async function notYetInGlByAccount(
  pool: Pool,
  programId: string,
  through: Date,
  asOf: string,
): Promise<AccountSums[]> {
  const { rows } = await longQuery<{ account: string; net: string }>(
    pool,
    `select l.account, (sum(l.debit_minor) - sum(l.credit_minor))::text as net
       from journal_entries j join journal_lines l on l.journal_entry_id = j.journal_entry_id
      where j.program_id = $1 and j.occurred_at < $2
        and not exists (select 1 from gl_posted_journals g left join gl_postings p on p.entry_id = g.gl_entry_id
                         where g.journal_entry_id = j.journal_entry_id and (p.entry_id is null or p.business_date <= $3::date))
      group by l.account order by l.account`,
    [programId, through, asOf],
  );
  return toSums(rows);
}
