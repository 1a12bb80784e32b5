import type { Pool } from 'pg';

export interface Wakeup {
  programId: string;
  memberId: string;
  seq: string;
}

/** The oldest pending wake-ups (the outbox of member workflows to start or wake). */
export async function pendingWakeups(pool: Pool, limit: number): Promise<Wakeup[]> {
  const { rows } = await pool.query(
    `select program_id, member_id, seq from member_wakeups order by requested_at limit $1`,
    [limit],
  );
  return rows.map((r) => ({ programId: r.program_id, memberId: r.member_id, seq: String(r.seq) }));
}

/** Removes delivered wake-ups, unless one was requested again since it was read (seq moved). */
export async function ackWakeups(pool: Pool, delivered: Wakeup[]): Promise<void> {
  if (delivered.length === 0) return;
  await pool.query(
    `delete from member_wakeups w using unnest($1::text[], $2::text[], $3::bigint[]) as d(p, m, s)
      where w.program_id = d.p and w.member_id = d.m and w.seq = d.s`,
    [delivered.map((d) => d.programId), delivered.map((d) => d.memberId), delivered.map((d) => d.seq)],
  );
}

export async function countPendingWakeups(pool: Pool): Promise<number> {
  const { rows } = await pool.query('select count(*)::int as n from member_wakeups');
  return rows[0].n;
}
