import type { Pool } from 'pg';

export interface ProgramGaugeRow {
  programId: string;
  /** points held by active members (bigint as a string) */
  points: string;
  /** those points at the point value in force, minor units (bigint as a string) */
  valueMinor: string;
  /** differences in the program's last daily reconciliation (null: none run yet) */
  differences: number | null;
}

/** The figures of the API's ledger gauges, per program (at most 1,000): reads every member, so the caller caches it. */
export async function programGaugeRows(pool: Pool): Promise<ProgramGaugeRow[]> {
  const { rows } = await pool.query<{
    program_id: string;
    points: string;
    value_minor: string;
    differences: number | null;
  }>(
    `select p.program_id, coalesce(b.points, 0)::text as points,
            (coalesce(b.points, 0) * (v.rules->>'pointValueMinor')::bigint)::text as value_minor, r.difference_count as differences
       from programs p
       left join (select program_id, sum(balance) as points from members where status = 'active' group by 1) b using (program_id)
       left join lateral (select rules from program_rule_versions where program_id = p.program_id and effective_at <= now() order by version desc limit 1) v on true
       left join lateral (select difference_count from reconciliation_runs where program_id = p.program_id order by business_date desc, run_id desc limit 1) r on true
      limit 1000`,
  );
  return rows.map((r) => ({
    programId: r.program_id,
    points: r.points,
    valueMinor: r.value_minor,
    differences: r.differences,
  }));
}
