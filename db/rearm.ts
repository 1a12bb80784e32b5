import type { Pool } from 'pg';

/** Members moved per transaction: bounds each transaction's locks and the wake-ups it queues at once. */
export const REARM_BATCH = 1000;

/**
 * After an expiry-rule change: every member of the program whose deadline differs from the rules
 * now in force gets the new deadline and a wake-up for its workflow, `batch` members per
 * transaction. The outbox relay delivers the wake-ups at its own bounded concurrency, so the
 * Temporal server sees no storm however many members move. Returns how many moved.
 */
export async function rearmDeadlines(
  pool: Pool,
  programId: string,
  onProgress: (moved: number) => void,
  batch = REARM_BATCH,
): Promise<number> {
  if (!Number.isInteger(batch) || batch < 1 || batch > 10_000)
    throw new Error(`rearm batch must be 1..10000 (got ${batch})`);
  let total = 0;
  for (;;) {
    const {
      rows: [r],
    } = await pool.query('select ll_rearm_deadlines($1, $2) as n', [programId, batch]);
    total += r.n;
    onProgress(total);
    if (r.n < batch) return total;
  }
}
