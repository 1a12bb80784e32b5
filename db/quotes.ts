import type { Pool, PoolClient } from 'pg';
import type { AccrualItem, WriteResult } from './ledger';
import { rethrowAsApiError } from './errors';
import type { HoldRequestBase, RedemptionRules, RedemptionView } from './redemptions';
import { inTransaction } from './tx';

/**
 * Quotes run the real write functions in a transaction that is rolled back: the same rule, no second
 * copy of it, and nothing written (rows, audit entries, idempotency keys, wake requests: all rolled
 * back; only sequences may have moved on, as after any refused write).
 */
async function dryRun<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  try {
    return await inTransaction(pool, fn, { rollBack: true });
  } catch (e) {
    rethrowAsApiError(e);
  }
}

async function one<T>(c: PoolClient, sql: string, args: unknown[]): Promise<T> {
  const { rows } = await c.query<{ r: T }>(sql, args);
  return rows[0]!.r;
}

/** What ll_accrue (db/functions/ll_accrue.sql) would answer for this item: its points, allocation, balance and deadline. */
export const dryRunAccrual = (pool: Pool, item: AccrualItem) =>
  dryRun(pool, (c) => one<WriteResult>(c, 'select ll_accrue($1::jsonb, false) as r', [JSON.stringify(item)]));

export interface RedemptionDryRun {
  /** the member whose points it would take (merges followed); null: no such member */
  memberId: string | null;
  /** their points not yet held by another redemption */
  available: number;
  /** the rule version in force and its terms (ll_redemption_rules); null: no such program */
  rules: RedemptionRules | null;
  /** the most points the invoice may take (ll_invoice_share_cap) */
  invoiceShareCap: number | null;
  /** what ll_hold_redemption (the saga's hold, rulesFrom 'ledger') answered */
  hold: RedemptionView & { available?: number; maxPointsForInvoice?: number; minPoints?: number };
}

/**
 * The saga's hold of a redemption (ll_hold_redemption with the rules in force), rolled back, with
 * what it is decided by read in the same transaction before it: the member's available points, the
 * rules and the invoice's cap. `p.invoiceId` must be one no redemption has (the caller's own).
 */
export const dryRunRedemptionHold = (pool: Pool, p: HoldRequestBase) =>
  dryRun(pool, async (c): Promise<RedemptionDryRun> => {
    // what the hold is decided by, read first (the hold changes the available points)
    const facts = await one<Omit<RedemptionDryRun, 'hold'>>(
      c,
      `with m as (select ll_resolve_member($1, $2) as id),
            v as (select ll_redemption_rules($1, ll_rule_version_at($1, now())) as rules)
       select jsonb_build_object(
         'memberId', (select x.member_id from members x where x.program_id = $1 and x.member_id = m.id),
         'available', (select coalesce(sum(a.available), 0) from ll_member_cohorts_available($1, m.id) a),
         'rules', v.rules,
         'invoiceShareCap', ll_invoice_share_cap($3::bigint, (v.rules->>'maxInvoiceShareMillionths')::bigint,
                                                 (v.rules->>'pointValueMinor')::bigint)) as r
         from m, v`,
      [p.programId, p.memberId, p.invoiceTotalMinor],
    );
    const hold = await one<RedemptionDryRun['hold']>(c, 'select ll_hold_redemption($1::jsonb) as r', [
      JSON.stringify({ ...p, rulesFrom: 'ledger' }),
    ]);
    return { ...facts, hold };
  });
