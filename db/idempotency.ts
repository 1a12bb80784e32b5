import type { PoolClient } from 'pg';

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
