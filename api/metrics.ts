import type { Pool } from 'pg';
import { Counter, Gauge, type Registry } from 'prom-client';
import { programGaugeRows, type ProgramGaugeRow } from '../db/metrics';

/** How long a scrape's ledger figures are reused: the queries read every member of every program. */
const LEDGER_GAUGE_TTL_MS = 30_000;

/**
 * The ledger's metrics on the API's /metrics: accruals and redemptions as they are answered, and,
 * read from PostgreSQL at scrape time (cached), the outstanding points and their face value per
 * program and the last reconciliation's differences (docs/observability.md has the alerts).
 */
export function apiMetrics(registry: Registry, pool: Pool) {
  let cached: { at: number; rows: ProgramGaugeRow[] } | null = null;
  const ledgerRows = async () => {
    if (cached && Date.now() - cached.at < LEDGER_GAUGE_TTL_MS) return cached.rows;
    const rows = await programGaugeRows(pool);
    cached = { at: Date.now(), rows };
    return rows;
  };
  const gauge = (
    name: string,
    help: string,
    pick: (r: Awaited<ReturnType<typeof ledgerRows>>[number]) => number | null,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['program'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const r of await ledgerRows().catch(() => [])) {
          const v = pick(r);
          if (v !== null) this.set({ program: r.programId }, v);
        }
      },
    });
  gauge('loyalty_outstanding_points', 'points held by active members, per program', (r) => Number(r.points));
  gauge(
    'loyalty_outstanding_face_value_minor',
    'outstanding points at their face value (points x point value), minor units',
    (r) => Number(r.valueMinor),
  );
  gauge(
    'loyalty_reconciliation_differences',
    "differences in the program's last daily reconciliation",
    (r) => r.differences,
  );
  return {
    accruals: new Counter({
      name: 'loyalty_accruals_total',
      help: 'accruals answered: accepted, replayed (same key) or refused',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    accruedPoints: new Counter({
      name: 'loyalty_accrued_points_total',
      help: 'points earned by accepted accruals',
      registers: [registry],
    }),
    redemptions: new Counter({
      name: 'loyalty_redemptions_total',
      help: 'redemptions answered, by status (applied, declined)',
      labelNames: ['status'],
      registers: [registry],
    }),
    redeemedPoints: new Counter({
      name: 'loyalty_redeemed_points_total',
      help: 'points applied by redemptions',
      registers: [registry],
    }),
  };
}
export type ApiMetrics = ReturnType<typeof apiMetrics>;
