import type { Pool, PoolClient } from 'pg';
import type { ProgramRules } from '../domain/program';

export interface ProgramRow {
  programId: string;
  name: string;
  currency: string;
  currencyDigits: number;
  createdAt: Date;
  createdBy: string;
  activeVersion: number;
  activeSince: Date;
  rules: ProgramRules;
  /**
   * The approved estimate that prices new points (ll_points_estimate: the latest booked close's),
   * null before any close set one (the rule's expectedRedemptionRate is the prior).
   */
  pointsEstimate: { rate: string; close: string } | null;
}

export async function insertProgram(
  client: PoolClient,
  p: { programId: string; name: string; currency: string; currencyDigits: number; rules: ProgramRules; actor: string },
): Promise<boolean> {
  const res = await client.query(
    `insert into programs (program_id, name, currency, currency_digits, created_by) values ($1, $2, $3, $4, $5)
     on conflict do nothing`,
    [p.programId, p.name, p.currency, p.currencyDigits, p.actor],
  );
  if (res.rowCount === 0) return false;
  await client.query(
    `insert into program_rule_versions (program_id, version, effective_at, rules, created_by) values ($1, 1, now(), $2, $3)`,
    [p.programId, JSON.stringify(p.rules), p.actor],
  );
  return true;
}

/** The program with the rule version in force now (the latest whose effective instant has passed). */
export async function getProgram(db: Pool | PoolClient, programId: string): Promise<ProgramRow | null> {
  const { rows } = await db.query(
    `select p.program_id, p.name, p.currency, p.currency_digits, p.created_at, p.created_by,
            v.version, v.effective_at, v.rules, pe.rate as points_rate, pe.period as points_rate_close
       from programs p
       join lateral (select * from program_rule_versions v where v.program_id = p.program_id and v.effective_at <= now()
                     order by v.version desc limit 1) v on true
       left join lateral ll_points_estimate(p.program_id) pe on true
      where p.program_id = $1`,
    [programId],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    programId: r.program_id,
    name: r.name,
    currency: r.currency,
    currencyDigits: r.currency_digits,
    createdAt: r.created_at,
    createdBy: r.created_by,
    activeVersion: r.version,
    activeSince: r.effective_at,
    rules: r.rules as ProgramRules,
    pointsEstimate: r.points_rate_close === null ? null : { rate: String(r.points_rate), close: r.points_rate_close },
  };
}

/** Rule versions that take effect later than now, soonest first (made by approved rule changes). */
export async function scheduledRuleVersions(
  db: Pool | PoolClient,
  programId: string,
): Promise<Array<{ version: number; effectiveAt: string; rules: ProgramRules }>> {
  const { rows } = await db.query(
    `select version, effective_at, rules from program_rule_versions where program_id = $1 and effective_at > now() order by effective_at, version`,
    [programId],
  );
  return rows.map((r) => ({
    version: r.version,
    effectiveAt: r.effective_at.toISOString(),
    rules: r.rules as ProgramRules,
  }));
}

/** The program's currency and its minor-unit digits (null: no such program). */
export async function programCurrency(
  db: Pool | PoolClient,
  programId: string,
): Promise<{ currency: string; currencyDigits: number } | null> {
  const { rows } = await db.query<{ currency: string; currency_digits: number }>(
    'select currency, currency_digits from programs where program_id = $1',
    [programId],
  );
  return rows[0] ? { currency: rows[0].currency, currencyDigits: rows[0].currency_digits } : null;
}

/** The first `limit` program ids in order (the daily reconciliation's and the quarterly close's programs). */
export async function programIds(db: Pool | PoolClient, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ program_id: string }>(
    'select program_id from programs order by program_id limit $1',
    [limit],
  );
  return rows.map((r) => r.program_id);
}

/** The end of the program's last frozen or locked quarter: nothing may be dated before it (null: none, or no such program). */
export async function programLockedUntil(db: Pool | PoolClient, programId: string): Promise<Date | null> {
  const { rows } = await db.query<{ locked_until: Date | null }>(
    'select locked_until from programs where program_id = $1',
    [programId],
  );
  return rows[0]?.locked_until ?? null;
}
