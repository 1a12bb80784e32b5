import type { Pool } from 'pg';

/**
 * Records on a booked close the approved estimate that prices new points from now on
 * (db/functions/ll_points_estimate.sql reads it for every accrual). Idempotent; never on a locked
 * close, and never changes an estimate already recorded.
 */
export async function recordPointsEstimate(pool: Pool, programId: string, period: string, rate: string): Promise<void> {
  await pool.query(
    `update closes set points_rate = $3::numeric, updated_at = now()
      where program_id = $1 and period = $2 and booked_at is not null and points_rate is null and status <> 'locked'`,
    [programId, period, rate],
  );
}
