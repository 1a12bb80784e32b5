import type { PoolClient } from 'pg';

/**
 * Records on a booked close the approved estimate that prices new points from now on
 * (db/functions/ll_points_estimate.sql reads it for every accrual). Runs in the booking's own
 * transaction (db/close.ts bookCloseCatchUp), so that no accrual ever sees the booking without the
 * estimate it sets. Idempotent: the same rate again is a no-op that still matches its row. Throws
 * when no row is updated (no booked close, a locked one, or another rate already recorded): an
 * estimate that silently failed to land would price every later accrual at the old rate.
 */
export async function recordPointsEstimate(
  client: PoolClient,
  programId: string,
  period: string,
  rate: string,
): Promise<void> {
  const { rowCount } = await client.query(
    `update closes set points_rate = $3::numeric, updated_at = now()
      where program_id = $1 and period = $2 and booked_at is not null and status <> 'locked'
        and (points_rate is null or points_rate = $3::numeric)`,
    [programId, period, rate],
  );
  if (rowCount !== 1) {
    const { rows } = await client.query(
      `select status, booked_at is not null as booked, points_rate::text as points_rate from closes where program_id = $1 and period = $2`,
      [programId, period],
    );
    throw new Error(
      `the approved estimate ${rate} of ${programId} ${period} was not recorded: the close is ${JSON.stringify(rows[0] ?? null)}`,
    );
  }
}
