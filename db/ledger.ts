import type { Pool } from 'pg';
import { fromDbError, isRetryable } from './errors';

/** What a write function answers: the HTTP status, the body, and whether it is a replay. */
export interface WriteResult<T = Record<string, unknown>> {
  status: number;
  body: T;
  replayed: boolean;
}

export interface AccrualItem {
  programId: string;
  idemKey: string;
  requestHash: string;
  accrualId: string;
  memberId: string;
  invoiceId: string;
  amountMinor: string;
  points: string;
  allocatedMinor: string;
  allocatedMicro: string;
  cohort: string;
  occurredAt: string;
  storeId?: string;
  jurisdiction?: string;
  expiry: unknown;
  /** the rate the allocation used: the approved estimate of the close `rateClose`, or the rule's (null) */
  expectedRedemptionRate: number;
  rateClose?: string | null;
  ruleVersion: number;
  debitAccount: string;
  creditAccount: string;
  actor: string;
}

interface BatchError {
  error: { sqlstate: string; code: string; detail: string | null; hint: string | null };
}

/**
 * Runs many accruals in one transaction. Each item gets its own result: a WriteResult, or the
 * error it was rejected with (that item wrote nothing). Items that lost a deadlock are returned
 * as `retry` so the caller can run them again.
 *
 * The fast path has no subtransaction per item; if anything in it fails (a rejected item, a
 * concurrent duplicate), the batch runs again on the safe path, where each item stands alone.
 */
export async function accrueBatch(pool: Pool, items: AccrualItem[]): Promise<Array<WriteResult | Error | 'retry'>> {
  const payload = JSON.stringify(items);
  try {
    const { rows } = await pool.query<{ r: WriteResult[] }>('select ll_accrue_batch_fast($1::jsonb) as r', [payload]);
    return rows[0]!.r;
  } catch (e) {
    // Only a PostgreSQL error (a SQLSTATE) means the batch was rolled back; anything else (a lost
    // connection) may have committed, and the caller reports it rather than running it again.
    if (!/^[0-9A-Z]{5}$/.test((e as { code?: string }).code ?? '')) throw e;
  }
  const { rows } = await pool.query<{ r: Array<WriteResult | BatchError> }>('select ll_accrue_batch($1::jsonb) as r', [
    payload,
  ]);
  return rows[0]!.r.map((res) => {
    if (!('error' in res)) return res;
    const e = res.error;
    if (isRetryable({ code: e.sqlstate, message: e.code })) return 'retry';
    return (
      fromDbError({ code: e.sqlstate, message: e.code, detail: e.detail ?? undefined, hint: e.hint ?? undefined }) ??
      new Error(`accrual failed: ${e.sqlstate} ${e.code}`)
    );
  });
}

/** Calls one of the single-operation write functions (ll_refund, ll_merge), retrying deadlocks. */
export async function callWriteFunction(
  pool: Pool,
  fn: 'll_refund' | 'll_merge',
  payload: object,
): Promise<WriteResult> {
  try {
    return await callFunction<WriteResult>(pool, `select ${fn}($1::jsonb) as r`, [JSON.stringify(payload)]);
  } catch (e) {
    throw fromDbError(e as { code?: string; message: string }) ?? e;
  }
}

/** The invoice's accrual: its member and the amount not refunded yet (minor units, a decimal string); null if none. */
export async function accrualLeftToRefund(
  pool: Pool,
  programId: string,
  invoiceId: string,
): Promise<{ memberId: string; leftMinor: string } | null> {
  const { rows } = await pool.query<{ member_id: string; left_minor: string }>(
    'select member_id, amount_minor::bigint - coalesce((select sum(amount_minor) from refunds r where r.program_id = a.program_id and r.invoice_id = a.invoice_id), 0) as left_minor from accruals a where program_id = $1 and invoice_id = $2',
    [programId, invoiceId],
  );
  const r = rows[0];
  return r ? { memberId: r.member_id, leftMinor: r.left_minor } : null;
}

export interface MemberView {
  memberId: string;
  balance: number;
  held: number;
  available: number;
  lastPurchaseAt: string | null;
  expiresAt: string | null;
  status: 'active' | 'merged' | 'archived';
  mergedInto: string | null;
  jurisdiction: string | null;
}

/** A member's columns as the API shows them (getMember, db/lists.ts listMembers), for toMemberView. */
export const MEMBER_COLUMNS = `member_id, balance, held, ll_ts(last_purchase_at) as last_purchase_at, ll_ts(expires_at) as expires_at,
            status, merged_into, jurisdiction`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function toMemberView(r: Record<string, any>): MemberView {
  const balance = Number(r.balance);
  const held = Number(r.held);
  return {
    memberId: r.member_id,
    balance,
    held,
    available: balance - held,
    lastPurchaseAt: r.last_purchase_at,
    expiresAt: r.expires_at,
    status: r.status,
    mergedInto: r.merged_into,
    jurisdiction: r.jurisdiction,
  };
}

export async function getMember(pool: Pool, programId: string, memberId: string): Promise<MemberView | null> {
  const { rows } = await pool.query(`select ${MEMBER_COLUMNS} from members where program_id = $1 and member_id = $2`, [
    programId,
    memberId,
  ]);
  return rows[0] ? toMemberView(rows[0]) : null;
}

export interface LedgerEntryView {
  entryId: string;
  type: string;
  points: number;
  occurredAt: string;
  recordedAt: string;
  reference: string;
  actor: string;
  ruleVersion: number | null;
  journalEntryId: string | null;
  cohorts: Array<{ cohort: string; points: number }>;
}

export async function getLedger(
  pool: Pool,
  programId: string,
  memberId: string,
  page: { afterEntryId: string; limit: number },
): Promise<LedgerEntryView[]> {
  const { rows } = await pool.query(
    `select e.entry_id, e.type, e.points, ll_ts(e.occurred_at) as occurred_at, ll_ts(e.recorded_at) as recorded_at,
            e.reference, e.actor, e.rule_version, e.journal_entry_id,
            coalesce((select jsonb_agg(jsonb_build_object('cohort', c.cohort, 'points', c.points) order by c.cohort)
                        from ledger_entry_cohorts c where c.entry_id = e.entry_id), '[]') as cohorts
       from ledger_entries e
      where e.program_id = $1 and e.member_id = $2 and e.entry_id > $3
      order by e.entry_id limit $4`,
    [programId, memberId, page.afterEntryId, page.limit],
  );
  return rows.map((r) => ({
    entryId: String(r.entry_id),
    type: r.type,
    points: Number(r.points),
    occurredAt: r.occurred_at,
    recordedAt: r.recorded_at,
    reference: r.reference,
    actor: r.actor,
    ruleVersion: r.rule_version,
    journalEntryId: r.journal_entry_id === null ? null : String(r.journal_entry_id),
    cohorts: r.cohorts,
  }));
}

export interface ArmState {
  status: 'active' | 'merged' | 'archived' | 'unknown';
  mergedInto: string | null;
  expiresAt: string | null;
  balance: number;
}

export async function armMember(pool: Pool, programId: string, memberId: string): Promise<ArmState> {
  const { rows } = await pool.query<{ r: ArmState }>('select ll_arm_member($1, $2) as r', [programId, memberId]);
  const r = rows[0]!.r;
  return {
    status: r.status,
    mergedInto: r.mergedInto ?? null,
    expiresAt: r.expiresAt ?? null,
    balance: Number(r.balance ?? 0),
  };
}

export interface ExpiryResult {
  expiredPoints: number;
  deadline?: string;
  entryId?: number;
}

export async function expireMember(
  pool: Pool,
  programId: string,
  memberId: string,
  asOf: string,
  actor: string,
): Promise<ExpiryResult> {
  return callFunction<ExpiryResult>(pool, 'select ll_expire_member($1, $2, $3, $4) as r', [
    programId,
    memberId,
    asOf,
    actor,
  ]);
}

/** One write function in its own transaction, run again (up to 5 times) if it lost a deadlock. */
async function callFunction<T>(pool: Pool, sql: string, args: unknown[]): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { rows } = await pool.query<{ r: T }>(sql, args);
      return rows[0]!.r;
    } catch (e) {
      if (attempt < 5 && isRetryable(e as { code?: string; message: string })) continue;
      throw e;
    }
  }
}
