import { createHash, randomBytes } from 'node:crypto';
import type { Pool } from 'pg';

export const ROLES = ['billing', 'finance', 'controller', 'legal', 'program_owner', 'support', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  keyId: string;
  name: string;
  roles: Role[];
}

export function hashKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A new secret: `ll_<keyId>_<random>`; the key id part lets logs name a key without its secret. */
export function newSecret(keyId: string): string {
  return `ll_${keyId}_${randomBytes(24).toString('base64url')}`;
}

/** Stores (or replaces) the key for keyId. */
export async function putKey(pool: Pool, k: { keyId: string; secret: string; principal: string; roles: Role[] }): Promise<void> {
  await pool.query(
    `insert into api_keys (key_id, key_hash, principal, roles) values ($1, $2, $3, $4)
     on conflict (key_id) do update set key_hash = excluded.key_hash, principal = excluded.principal,
       roles = excluded.roles, revoked_at = null`,
    [k.keyId, hashKey(k.secret), k.principal, k.roles],
  );
}

export async function findPrincipal(pool: Pool, secret: string): Promise<Principal | null> {
  const { rows } = await pool.query(
    `update api_keys set last_used_at = now() where key_hash = $1 and revoked_at is null
     returning key_id, principal, roles`,
    [hashKey(secret)],
  );
  const r = rows[0];
  return r ? { keyId: r.key_id, name: r.principal, roles: r.roles } : null;
}
