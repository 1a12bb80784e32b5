import { createHash, randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { inTransaction } from './tx';

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
export async function putKey(
  pool: Pool,
  k: { keyId: string; secret: string; principal: string; roles: Role[] },
): Promise<void> {
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

export interface KeyView {
  keyId: string;
  principal: string;
  roles: Role[];
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const toView = (r: Record<string, any>): KeyView => ({
  keyId: r.key_id,
  principal: r.principal,
  roles: r.roles,
  createdAt: r.created_at.toISOString(),
  revokedAt: r.revoked_at?.toISOString() ?? null,
  lastUsedAt: r.last_used_at?.toISOString() ?? null,
});

/** A new key for a principal; the secret is returned once and only its hash is kept. */
export async function createKey(
  pool: Pool,
  k: { principal: string; roles: Role[] },
): Promise<{ key: KeyView; secret: string }> {
  const keyId = `k-${randomBytes(6).toString('hex')}`;
  const secret = newSecret(keyId);
  const { rows } = await pool.query(
    `insert into api_keys (key_id, key_hash, principal, roles) values ($1, $2, $3, $4) returning *`,
    [keyId, hashKey(secret), k.principal, k.roles],
  );
  return { key: toView(rows[0]), secret };
}

/** Every key, without its secret (only the hash is stored), newest first. */
export async function listKeys(pool: Pool): Promise<KeyView[]> {
  const { rows } = await pool.query('select * from api_keys order by created_at desc, key_id');
  return rows.map(toView);
}

/** Revokes a key (idempotent); null if there is no such key. */
export async function revokeKey(pool: Pool, keyId: string): Promise<KeyView | null> {
  const { rows } = await pool.query(
    'update api_keys set revoked_at = coalesce(revoked_at, now()) where key_id = $1 returning *',
    [keyId],
  );
  return rows[0] ? toView(rows[0]) : null;
}

/** A new key with the same principal and roles; the old one is revoked in the same transaction. */
export async function rotateKey(
  pool: Pool,
  keyId: string,
): Promise<{ key: KeyView; secret: string; revoked: KeyView } | null> {
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query(
      'update api_keys set revoked_at = coalesce(revoked_at, now()) where key_id = $1 and revoked_at is null returning *',
      [keyId],
    );
    if (!rows[0]) return null; // nothing revoked: the commit changes nothing
    const newId = `k-${randomBytes(6).toString('hex')}`;
    const secret = newSecret(newId);
    const created = await client.query(
      `insert into api_keys (key_id, key_hash, principal, roles) values ($1, $2, $3, $4) returning *`,
      [newId, hashKey(secret), rows[0].principal, rows[0].roles],
    );
    return { key: toView(created.rows[0]), secret, revoked: toView(rows[0]) };
  });
}

export interface AccessReviewRow {
  principal: string;
  roles: Role[];
  activeKeys: number;
  lastUsedAt: string | null;
  keys: Array<{ keyId: string; roles: Role[]; createdAt: string; lastUsedAt: string | null }>;
}

/** Who holds which role through which active key, and when each was last used (the periodic access review). */
export async function accessReview(pool: Pool): Promise<AccessReviewRow[]> {
  const keys = (await listKeys(pool)).filter((k) => k.revokedAt === null);
  const byPrincipal = new Map<string, AccessReviewRow>();
  for (const k of keys) {
    const row = byPrincipal.get(k.principal) ?? {
      principal: k.principal,
      roles: [],
      activeKeys: 0,
      lastUsedAt: null,
      keys: [],
    };
    row.roles = [...new Set([...row.roles, ...k.roles])].sort() as Role[];
    row.activeKeys++;
    if (k.lastUsedAt && (!row.lastUsedAt || k.lastUsedAt > row.lastUsedAt)) row.lastUsedAt = k.lastUsedAt;
    row.keys.push({ keyId: k.keyId, roles: k.roles, createdAt: k.createdAt, lastUsedAt: k.lastUsedAt });
    byPrincipal.set(k.principal, row);
  }
  return [...byPrincipal.values()].sort((a, b) => a.principal.localeCompare(b.principal));
}
