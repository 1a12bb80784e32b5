import type { Pool } from 'pg';

export interface Wakeup {
  programId: string;
  memberId: string;
  seq: string;
}

/** How long a relay holds the wake-ups it read before another relay may take them. */
export const WAKEUP_LEASE_SECONDS = 60;

/**
 * The oldest pending wake-ups not leased by another relay (the outbox of member workflows to start
 * or wake), leased to this one for WAKEUP_LEASE_SECONDS.
 */
export async function pendingWakeups(pool: Pool, limit: number): Promise<Wakeup[]> {
  const { rows } = await pool.query(
    `update member_wakeups w set leased_until = now() + make_interval(secs => $2)
       from (select program_id, member_id from member_wakeups
              where leased_until is null or leased_until < now()
              order by requested_at limit $1 for update skip locked) c
      where w.program_id = c.program_id and w.member_id = c.member_id
      returning w.program_id, w.member_id, w.seq, w.requested_at`,
    [limit, WAKEUP_LEASE_SECONDS],
  );
  rows.sort((a, b) => a.requested_at - b.requested_at);
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

/** Gives back the lease of wake-ups this relay could not deliver, so the next round retries them. */
export async function releaseWakeups(pool: Pool, undelivered: Wakeup[]): Promise<void> {
  if (undelivered.length === 0) return;
  await pool.query(
    `update member_wakeups w set leased_until = null from unnest($1::text[], $2::text[]) as d(p, m)
      where w.program_id = d.p and w.member_id = d.m`,
    [undelivered.map((d) => d.programId), undelivered.map((d) => d.memberId)],
  );
}

export async function countPendingWakeups(pool: Pool): Promise<number> {
  const { rows } = await pool.query('select count(*)::int as n from member_wakeups');
  return rows[0].n;
}
