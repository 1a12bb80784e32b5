import type { Pool } from 'pg';

export interface AuditRow {
  chain: number;
  seq: number;
  at: string;
  actor: string;
  action: string;
  programId: string | null;
  memberId: string | null;
  subject: string;
  before: unknown;
  after: unknown;
  idempotencyKey: string | null;
  hash: string;
}

/** The most rows one read returns. */
export const MAX_AUDIT_PAGE = 1000;

/** The audit trail, oldest first, filtered by program, member and time (audit_log in db/migrations/001_baseline.sql; written by db/functions/ll_audit*.sql). */
export async function readAudit(
  pool: Pool,
  q: { programId?: string; memberId?: string; since?: string; limit: number },
): Promise<AuditRow[]> {
  const { rows } = await pool.query(
    `select chain, seq, at, actor, action, program_id, member_id, subject, before, after, idempotency_key, hash from audit_log
      where ($1::text is null or program_id = $1) and ($2::text is null or member_id = $2) and ($3::timestamptz is null or at >= $3)
      order by at, chain, seq limit $4`,
    [q.programId ?? null, q.memberId ?? null, q.since ?? null, Math.min(q.limit, MAX_AUDIT_PAGE)],
  );
  return rows.map((r) => ({
    chain: r.chain,
    seq: Number(r.seq),
    at: r.at.toISOString(),
    actor: r.actor,
    action: r.action,
    programId: r.program_id,
    memberId: r.member_id,
    subject: r.subject,
    before: r.before,
    after: r.after,
    idempotencyKey: r.idempotency_key,
    hash: r.hash,
  }));
}
