import type { Pool } from 'pg';
import type { JournalLine } from '../domain/reconciliation';

/**
 * The subledger's lines of one journal, summed per account: the `<journalKey>:<cohort>` entries a
 * redemption, its reversal or an adjustment wrote (one per cohort they touched).
 */
export async function journalLines(pool: Pool, programId: string, journalKey: string): Promise<JournalLine[]> {
  const { rows } = await pool.query<{ account: string; d: string; c: string }>(
    `select l.account, sum(l.debit_minor)::bigint as d, sum(l.credit_minor)::bigint as c
       from journal_entries j join journal_lines l using (journal_entry_id)
      where j.program_id = $1 and left(j.idempotency_key, length($2)) = $2
        and position(':' in substr(j.idempotency_key, length($2) + 1)) = 0
      group by l.account order by l.account`,
    [programId, `${journalKey}:`],
  );
  return netPerAccount(rows);
}

/** Debit and credit sums per account (bigint as strings) as one net line each; accounts that net to zero left out. */
export function netPerAccount(rows: Array<{ account: string; d: string; c: string }>): JournalLine[] {
  return rows
    .map((r) => {
      const net = Number(r.d) - Number(r.c);
      return { account: r.account, debitMinor: Math.max(net, 0), creditMinor: Math.max(-net, 0) };
    })
    .filter((l) => l.debitMinor + l.creditMinor > 0);
}
