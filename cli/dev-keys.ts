import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Pool } from 'pg';
import { listKeys, newSecret, putKey, type Role } from '../db/keys';

/** One local principal per role (API.md, Local development). */
export const DEV_PRINCIPALS: Record<string, Role[]> = {
  'dev-admin': ['admin'],
  'dev-billing': ['billing'],
  'dev-finance': ['finance'],
  'dev-controller': ['controller'],
  'dev-legal': ['legal'],
  'dev-owner': ['program_owner'],
  'dev-support': ['support'],
};

/**
 * Keys are made once and kept in the data dir, so a restart keeps them. A dev key that was revoked
 * (`loyalty keys revoke dev-admin`, or rotated) stays revoked: it is neither written again (putKey
 * would clear its revocation) nor printed, and the file drops its secret. The database says what is
 * revoked, not the file, so a deleted or edited file cannot bring a key back either.
 */
export async function ensureDevKeys(pool: Pool, storeFile: string): Promise<Record<string, string>> {
  const stored: Record<string, string> = existsSync(storeFile) ? JSON.parse(readFileSync(storeFile, 'utf8')) : {};
  const revoked = new Set((await listKeys(pool)).filter((k) => k.revokedAt !== null).map((k) => k.keyId));
  const keys: Record<string, string> = {};
  for (const [principal, roles] of Object.entries(DEV_PRINCIPALS)) {
    if (revoked.has(principal)) continue;
    keys[principal] = stored[principal] ?? newSecret(principal);
    // a dev principal an operator changed (`loyalty principals roles|disable`) stays as they left it
    await putKey(pool, { keyId: principal, secret: keys[principal], principal, roles, widenPrincipal: false });
  }
  mkdirSync(dirname(storeFile), { recursive: true });
  writeFileSync(storeFile, JSON.stringify(keys, null, 2), { mode: 0o600 });
  return keys;
}
