import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Pool } from 'pg';
import { newSecret, putKey, type Role } from '../db/keys';

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

/** Keys are made once and kept in the data dir, so a restart keeps them. */
export async function ensureDevKeys(pool: Pool, storeFile: string): Promise<Record<string, string>> {
  const keys: Record<string, string> = existsSync(storeFile) ? JSON.parse(readFileSync(storeFile, 'utf8')) : {};
  for (const [principal, roles] of Object.entries(DEV_PRINCIPALS)) {
    keys[principal] ??= newSecret(principal);
    await putKey(pool, { keyId: principal, secret: keys[principal]!, principal, roles });
  }
  mkdirSync(dirname(storeFile), { recursive: true });
  writeFileSync(storeFile, JSON.stringify(keys, null, 2), { mode: 0o600 });
  return keys;
}
