import type { Pool, PoolClient } from 'pg';
import { rethrowAsApiError } from './errors';

/** The answer stored under an idempotency key, replayed to a request sent again with it. */
export interface StoredResponse {
  status: number;
  body: unknown;
  replayed: boolean;
}

/**
 * Claims the key in the caller's transaction (db/functions/ll_idem_claim.sql):
 * null when this request does the work, else the stored answer. A concurrent claim waits for the
 * first to commit; the same key with another request hash raises 409 idempotency_key_reused.
 */
export async function claimIdempotencyKey(
  client: PoolClient,
  scope: string,
  key: string,
  requestHash: string,
): Promise<StoredResponse | null> {
  const { rows } = await client.query<{ r: StoredResponse | null }>('select ll_idem_claim($1, $2, $3) as r', [
    scope,
    key,
    requestHash,
  ]);
  return rows[0]!.r;
}

/** Stores the answer of a claimed key, in the same transaction as the work it answers for. */
export async function storeIdempotentResponse(
  client: PoolClient,
  scope: string,
  key: string,
  status: number,
  body: unknown,
): Promise<void> {
  await client.query('select ll_idem_store($1, $2, $3, $4)', [scope, key, status, JSON.stringify(body)]);
}

/** What ll_idem_begin answers: do the work, replay the stored answer, or another request is doing it. */
export type IdempotentBegin =
  | { state: 'proceed'; claimId: string; tookOver?: boolean }
  | { state: 'done'; status: number; body: unknown }
  | { state: 'in_progress'; retryAfter: number; otherBody?: boolean };

/**
 * Claims a key in its own committed row (db/functions/ll_idem_begin.sql), for a write that is not
 * one transaction: a claim in progress for longer than leaseSeconds is taken over.
 */
export async function beginIdempotentRequest(
  pool: Pool,
  scope: string,
  key: string,
  requestHash: string,
  leaseSeconds: number,
): Promise<IdempotentBegin> {
  try {
    const { rows } = await pool.query<{ r: IdempotentBegin }>('select ll_idem_begin($1, $2, $3, $4) as r', [
      scope,
      key,
      requestHash,
      leaseSeconds,
    ]);
    return rows[0]!.r;
  } catch (e) {
    rethrowAsApiError(e);
  }
}

/** Stores the answer of the work a claim let through: later requests with its key replay it. */
export async function finishIdempotentRequest(
  pool: Pool,
  scope: string,
  key: string,
  status: number,
  body: unknown,
): Promise<void> {
  await pool.query('select ll_idem_store($1, $2, $3, $4)', [scope, key, status, JSON.stringify(body ?? null)]);
}

/** Gives up a claim whose work answered an error: nothing stored, the key may be sent again. */
export async function releaseIdempotentRequest(pool: Pool, scope: string, key: string, claimId: string): Promise<void> {
  await pool.query('select ll_idem_release($1, $2, $3)', [scope, key, claimId]);
}

/**
 * Records a request's natural key (db/functions/ll_natural_claim.sql): 'new', 'same' (same body,
 * same principal) or 'other'. A chargebackId of another invoice raises 409 chargeback_id_reused.
 */
export async function claimNaturalKey(
  pool: Pool,
  n: {
    programId: string;
    kind: 'redemption' | 'chargeback';
    naturalId: string;
    subject: string | null;
    requestHash: string | null;
    principal: string;
    request: unknown;
  },
): Promise<'new' | 'same' | 'other'> {
  try {
    const { rows } = await pool.query<{ r: 'new' | 'same' | 'other' }>(
      'select ll_natural_claim($1, $2, $3, $4, $5, $6, $7) as r',
      [n.programId, n.kind, n.naturalId, n.subject, n.requestHash, n.principal, JSON.stringify(n.request ?? null)],
    );
    return rows[0]!.r;
  } catch (e) {
    rethrowAsApiError(e);
  }
}

/** A request takes the natural key of one that ended without effect (a declined redemption). */
export async function takeNaturalKey(
  pool: Pool,
  n: {
    programId: string;
    kind: 'redemption';
    naturalId: string;
    requestHash: string;
    principal: string;
    request: unknown;
  },
): Promise<void> {
  await pool.query('select ll_natural_take($1, $2, $3, $4, $5, $6)', [
    n.programId,
    n.kind,
    n.naturalId,
    n.requestHash,
    n.principal,
    JSON.stringify(n.request),
  ]);
}

/**
 * Who recorded an invoice's accrual, or a refund: a natural-key duplicate (same invoice, same
 * body, another Idempotency-Key) replays the first answer only to the principal that sent it.
 */
export async function recordedBy(
  pool: Pool,
  programId: string,
  what: { accrualOf: string } | { refund: string },
): Promise<string | null> {
  const { rows } = await pool.query<{ actor: string }>(
    'accrualOf' in what
      ? `select actor from ledger_entries where program_id = $1 and idempotency_key = 'accrual:' || $2 limit 1`
      : `select actor from ledger_entries where program_id = $1 and idempotency_key = 'refund:' || $2 limit 1`,
    [programId, 'accrualOf' in what ? what.accrualOf : what.refund],
  );
  return rows[0]?.actor ?? null;
}

/**
 * Whether the API recorded this redemption's request (issue 14, item 1): the invoice's natural key
 * (claimNaturalKey, kind redemption) holds exactly this member, points and invoice total, claimed by
 * an active principal that may redeem (billing, or admin). A saga started straight on Temporal with
 * terms of its own finds no such row and holds nothing.
 */
export async function redemptionRequestOnRecord(
  pool: Pool,
  r: { programId: string; invoiceId: string; memberId: string; points: number; invoiceTotalMinor: number },
): Promise<boolean> {
  const { rowCount } = await pool.query(
    `select 1 from request_natural_keys n join principals p on p.principal_id = n.principal
      where n.program_id = $1 and n.kind = 'redemption' and n.natural_id = $2
        and n.request = jsonb_build_object('memberId', $3::text, 'points', $4::bigint, 'invoiceTotalMinor', $5::bigint)
        and p.disabled_at is null and p.roles && array['billing', 'admin']`,
    [r.programId, r.invoiceId, r.memberId, r.points, r.invoiceTotalMinor],
  );
  return rowCount !== 0;
}
