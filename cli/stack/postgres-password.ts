import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * The embedded PostgreSQL's superuser password. Generated when `npm start` first creates the data
 * folder, kept beside it (`.data/postgres-password`, mode 0600) for the stack and the `loyalty`
 * commands run next to it: a fixed password would let anyone on the machine (the server listens on
 * 127.0.0.1) in as superuser. A data folder made before passwords were generated still has the old
 * fixed one; the banner says so (remove `.data` to start afresh with a generated one).
 */
export const LEGACY_EMBEDDED_PASSWORD = 'loyalty-local';

/** `<data dir>/postgres-password`, beside the PostgreSQL folder (never inside it: as root that is the postgres user's). */
export const embeddedPasswordFile = (pgDataDir: string) => join(dirname(resolve(pgDataDir)), 'postgres-password');

/** The password of an existing embedded server: its file, else the old fixed one. */
export function embeddedPassword(pgDataDir: string): { password: string; legacy: boolean } {
  const file = embeddedPasswordFile(pgDataDir);
  if (!existsSync(file)) return { password: LEGACY_EMBEDDED_PASSWORD, legacy: true };
  return { password: readFileSync(file, 'utf8').trim(), legacy: false };
}

/** A fresh password for a data folder about to be created, written to its file first. */
export function newEmbeddedPassword(pgDataDir: string): string {
  const password = randomBytes(24).toString('hex'); // URL-safe: it goes into postgres:// URLs as it is
  const file = embeddedPasswordFile(pgDataDir);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return password;
}

/**
 * The app role's password (db/roles.ts: what the API, workers and `loyalty` commands connect as),
 * `<data dir>/postgres-app-password`, mode 0600: generated on the first start that needs it, then
 * kept; npm start sets the role's password to it on every start.
 */
export const appPasswordFile = (pgDataDir: string) => join(dirname(resolve(pgDataDir)), 'postgres-app-password');

/** The app role's password: its file, made first when missing (`create`), else null. */
export function appPassword(pgDataDir: string, create: boolean): string | null {
  const file = appPasswordFile(pgDataDir);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  if (!create) return null;
  const password = randomBytes(24).toString('hex');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
  return password;
}
