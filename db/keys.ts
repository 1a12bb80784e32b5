import { createHash, randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { ID_PATTERN, PROGRAM_ID_PATTERN, ROLE_NAMES } from '../domain/schemas';
import { inTransaction } from './tx';

export const ROLES = ROLE_NAMES;
export type Role = (typeof ROLES)[number];

export const PRINCIPAL_KINDS = ['person', 'service'] as const;
export type PrincipalKind = (typeof PRINCIPAL_KINDS)[number];

/** Who a request acts as: the key that authenticated it and the principal it belongs to (migration 014). */
export interface Principal {
  keyId: string;
  /** the principal's id: what segregation of duties compares, and the actor on every record */
  name: string;
  kind: PrincipalKind;
  /** what this key may use: its own roles that its principal still holds */
  roles: Role[];
  /** the programs this key may touch; null: every program */
  programs: string[] | null;
}

/** A refusal of a key or principal change, with a code the CLI prints. */
export class AccessChangeError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A principal's id is an id like any other of the API's. */
export const PRINCIPAL_ID = ID_PATTERN;

export function hashKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A new secret: `ll_<keyId>_<random>`; the key id part lets logs name a key without its secret. */
export function newSecret(keyId: string): string {
  return `ll_${keyId}_${randomBytes(24).toString('base64url')}`;
}

/** The kind a principal is given when a seed (dev keys, tests, benches) does not say: billing alone is a service. */
export const defaultKind = (roles: readonly Role[]): PrincipalKind =>
  roles.length > 0 && roles.every((r) => r === 'billing') ? 'service' : 'person';

/**
 * For seeds (npm start's dev keys, tests, benches): the principal, made if missing (kind from
 * `kind`, else defaultKind) or given the roles it lacks. Operators use createPrincipal.
 */
export async function ensurePrincipal(
  db: Pick<Pool, 'query'>,
  p: { principalId: string; roles: Role[]; kind?: PrincipalKind; widen?: boolean },
): Promise<void> {
  // widen false (npm start's dev principals): an existing principal is left as an operator set it,
  // so a role taken from it stays taken across restarts
  await db.query(
    p.widen === false
      ? `insert into principals (principal_id, kind, roles) values ($1, $2, $3) on conflict (principal_id) do nothing`
      : `insert into principals (principal_id, kind, roles) values ($1, $2, $3)
     on conflict (principal_id) do update set roles = array(select distinct r from unnest(principals.roles || excluded.roles) r order by r)
      where not (principals.roles @> excluded.roles)`,
    [p.principalId, p.kind ?? defaultKind(p.roles), [...p.roles].sort()],
  );
}

/**
 * Stores (or replaces) the key for keyId, for seeds (npm start's dev keys, tests, benches), its
 * principal ensured (ensurePrincipal). Operators make principals and keys apart (`loyalty
 * principals`, `loyalty keys`).
 */
export async function putKey(
  pool: Pool,
  k: {
    keyId: string;
    secret: string;
    principal: string;
    roles: Role[];
    kind?: PrincipalKind;
    programs?: string[] | null;
    /** false: an existing principal keeps the roles it has (ensurePrincipal) */
    widenPrincipal?: boolean;
  },
): Promise<void> {
  await inTransaction(pool, async (client) => {
    await ensurePrincipal(client, { principalId: k.principal, roles: k.roles, kind: k.kind, widen: k.widenPrincipal });
    await client.query(
      `insert into api_keys (key_id, key_hash, principal, roles, programs) values ($1, $2, $3, $4, $5)
       on conflict (key_id) do update set key_hash = excluded.key_hash, principal = excluded.principal,
         roles = excluded.roles, programs = excluded.programs, revoked_at = null`,
      [k.keyId, hashKey(k.secret), k.principal, k.roles, k.programs ?? null],
    );
  });
}

/**
 * The principal of an active key of an active principal, with the roles both hold; null for
 * anything else. An unknown key matches no row, so it writes nothing (the auth throttle relies on it).
 */
export async function findPrincipal(pool: Pool, secret: string): Promise<Principal | null> {
  const { rows } = await pool.query(
    `update api_keys k set last_used_at = now() from principals p
      where k.key_hash = $1 and k.revoked_at is null and p.principal_id = k.principal and p.disabled_at is null
     returning k.key_id, k.principal, p.kind, k.programs,
       array(select r from unnest(k.roles) r where r = any (p.roles) order by r) as roles`,
    [hashKey(secret)],
  );
  const r = rows[0];
  return r ? { keyId: r.key_id, name: r.principal, kind: r.kind, roles: r.roles, programs: r.programs } : null;
}

export interface PrincipalView {
  principalId: string;
  kind: PrincipalKind;
  displayName: string | null;
  roles: Role[];
  disabledAt: string | null;
  createdAt: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const toPrincipal = (r: Record<string, any>): PrincipalView => ({
  principalId: r.principal_id,
  kind: r.kind,
  displayName: r.display_name,
  roles: r.roles,
  disabledAt: r.disabled_at?.toISOString() ?? null,
  createdAt: r.created_at.toISOString(),
});

/** A new principal; refused if the id is taken (a principal's id is never reused: it names its records). */
export async function createPrincipal(
  pool: Pool,
  p: { principalId: string; kind: PrincipalKind; roles: Role[]; displayName?: string | null },
): Promise<PrincipalView> {
  if (!PRINCIPAL_ID.test(p.principalId))
    throw new AccessChangeError('bad_principal', 'a principal id is 1 to 128 printable characters, no spaces');
  const { rows } = await pool.query(
    `insert into principals (principal_id, kind, roles, display_name) values ($1, $2, $3, $4)
     on conflict (principal_id) do nothing returning *`,
    [p.principalId, p.kind, [...new Set(p.roles)].sort(), p.displayName ?? null],
  );
  if (!rows[0]) throw new AccessChangeError('principal_exists', `principal ${p.principalId} exists already`);
  return toPrincipal(rows[0]);
}

export async function listPrincipals(pool: Pool): Promise<PrincipalView[]> {
  const { rows } = await pool.query('select * from principals order by principal_id');
  return rows.map(toPrincipal);
}

/**
 * Changes a principal: its roles (every key of it loses at once what the principal no longer
 * holds), or disables / enables it (a disabled principal's keys authenticate nothing). Null if none.
 */
export async function updatePrincipal(
  pool: Pool,
  principalId: string,
  change: { roles?: Role[]; disabled?: boolean },
): Promise<PrincipalView | null> {
  const { rows } = await pool.query(
    `update principals set roles = coalesce($2, roles),
            disabled_at = case when $3::boolean is null then disabled_at when $3 then coalesce(disabled_at, now()) else null end
      where principal_id = $1 returning *`,
    [principalId, change.roles ? [...new Set(change.roles)].sort() : null, change.disabled ?? null],
  );
  return rows[0] ? toPrincipal(rows[0]) : null;
}

export interface KeyView {
  keyId: string;
  principal: string;
  roles: Role[];
  /** null: every program */
  programs: string[] | null;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const toView = (r: Record<string, any>): KeyView => ({
  keyId: r.key_id,
  principal: r.principal,
  roles: r.roles,
  programs: r.programs ?? null,
  createdAt: r.created_at.toISOString(),
  revokedAt: r.revoked_at?.toISOString() ?? null,
  lastUsedAt: r.last_used_at?.toISOString() ?? null,
});

/**
 * A new key for an existing, active principal, holding some of the principal's roles, optionally
 * only for some programs; the secret is returned once and only its hash is kept.
 */
export async function createKey(
  pool: Pool,
  k: { principal: string; roles: Role[]; programs?: string[] | null },
): Promise<{ key: KeyView; secret: string }> {
  if (k.programs) {
    const bad = k.programs.filter((p) => !PROGRAM_ID_PATTERN.test(p));
    if (k.programs.length === 0 || bad.length)
      throw new AccessChangeError(
        'bad_programs',
        `--programs takes program ids${bad.length ? `; not one: ${bad.join(', ')}` : ''}`,
      );
  }
  return inTransaction(pool, async (client) => {
    const { rows: ps } = await client.query('select * from principals where principal_id = $1 for share', [
      k.principal,
    ]);
    const p = ps[0];
    if (!p)
      throw new AccessChangeError(
        'principal_unknown',
        `no principal ${k.principal}: add them first (loyalty principals add ${k.principal} --kind person|service --roles ...)`,
      );
    if (p.disabled_at) throw new AccessChangeError('principal_disabled', `principal ${k.principal} is disabled`);
    const missing = k.roles.filter((r) => !p.roles.includes(r));
    if (missing.length)
      throw new AccessChangeError(
        'role_not_held',
        `principal ${k.principal} does not hold ${missing.join(', ')} (holds ${p.roles.join(', ') || 'nothing'})`,
      );
    const keyId = `k-${randomBytes(6).toString('hex')}`;
    const secret = newSecret(keyId);
    const { rows } = await client.query(
      `insert into api_keys (key_id, key_hash, principal, roles, programs) values ($1, $2, $3, $4, $5) returning *`,
      [keyId, hashKey(secret), k.principal, k.roles, k.programs ? [...new Set(k.programs)].sort() : null],
    );
    return { key: toView(rows[0]), secret };
  });
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

/** A new key with the same principal, roles and programs; the old one is revoked in the same transaction. */
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
      `insert into api_keys (key_id, key_hash, principal, roles, programs) values ($1, $2, $3, $4, $5) returning *`,
      [newId, hashKey(secret), rows[0].principal, rows[0].roles, rows[0].programs],
    );
    return { key: toView(created.rows[0]), secret, revoked: toView(rows[0]) };
  });
}

export interface AccessReviewRow {
  principal: string;
  kind: PrincipalKind;
  disabled: boolean;
  /** what the principal may hold */
  roles: Role[];
  activeKeys: number;
  lastUsedAt: string | null;
  keys: Array<{
    keyId: string;
    roles: Role[];
    programs: string[] | null;
    createdAt: string;
    lastUsedAt: string | null;
  }>;
}

/**
 * Every principal, what it may hold, and which active keys it has with which roles and programs,
 * and when each was last used (the periodic access review).
 */
export async function accessReview(pool: Pool): Promise<AccessReviewRow[]> {
  const keys = (await listKeys(pool)).filter((k) => k.revokedAt === null);
  const rows = new Map<string, AccessReviewRow>();
  for (const p of await listPrincipals(pool))
    rows.set(p.principalId, {
      principal: p.principalId,
      kind: p.kind,
      disabled: p.disabledAt !== null,
      roles: [...p.roles].sort() as Role[],
      activeKeys: 0,
      lastUsedAt: null,
      keys: [],
    });
  for (const k of keys) {
    const row = rows.get(k.principal);
    if (!row) continue; // the foreign key makes this impossible
    row.activeKeys++;
    if (k.lastUsedAt && (!row.lastUsedAt || k.lastUsedAt > row.lastUsedAt)) row.lastUsedAt = k.lastUsedAt;
    row.keys.push({
      keyId: k.keyId,
      roles: k.roles,
      programs: k.programs,
      createdAt: k.createdAt,
      lastUsedAt: k.lastUsedAt,
    });
  }
  return [...rows.values()].sort((a, b) => a.principal.localeCompare(b.principal));
}
