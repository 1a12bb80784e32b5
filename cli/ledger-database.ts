/**
 * Which role does what in the ledger database (docs/deploy.md, "Database roles and grants"):
 * migrations as the owner, everything that serves (API, workers, relay, schedules, the `loyalty`
 * commands) as the app role, which is refused a superuser's or an owner's connection.
 */
import { migrate } from '../db/migrate';
import { createPool } from '../db/pool';
import { provisionDatabase } from '../db/provision';
import { checkAppConnection, ledgerRoles, roleExists } from '../db/roles';
import type { StackConfig } from './config';
import { appPassword } from './stack/postgres-password';

/**
 * Migrates the database at `url` (the owner's connection) and gives the app role its grants: the
 * role of LOYALTY_DB_APP_ROLE, which must then exist, else `loyalty_app` when it exists (a server
 * without it gets no grants, and its API and workers, on a privileged connection, are refused).
 */
export async function migrateLedger(
  url: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ applied: string[]; appRole: string | null }> {
  const pool = createPool({ connectionString: url, maxConnections: 2, applicationName: 'loyalty-migrate', env });
  try {
    const { app } = ledgerRoles(env);
    const appRole = env.LOYALTY_DB_APP_ROLE || (await roleExists(pool, app)) ? app : null; // named: must exist
    return { applied: await migrate(pool, appRole ? { appRole } : {}), appRole };
  } finally {
    await pool.end();
  }
}

/** Where migrations run: MIGRATION_DATABASE_URL (the owner) when set, else DATABASE_URL itself. */
export const migrationUrl = (databaseUrl: string, env: NodeJS.ProcessEnv = process.env) =>
  env.MIGRATION_DATABASE_URL || databaseUrl;

/**
 * npm start's ledger database, migrated, and the URL the stack serves from.
 * - Embedded: the roles made by the server's superuser (the app's password generated once, kept
 *   in `.data/postgres-app-password`, 0600), the database owned by the owner and migrated as it;
 *   the stack connects as the app role.
 * - DATABASE_URL: migrated on MIGRATION_DATABASE_URL when set, else on DATABASE_URL; the stack
 *   connects with DATABASE_URL, which must be of least privilege (checkAppConnection: refused
 *   otherwise, unless LOYALTY_DB_PRIVILEGED=allow, which is a warning).
 */
export async function prepareLedgerDatabase(
  pg: { embedded: boolean; serverUrl: string }, // stack/postgres.ts's handle (not imported: the API's files stay clear of the local stack)
  cfg: StackConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ url: string; applied: string[]; warning: string | null }> {
  if (pg.embedded) {
    const made = await provisionDatabase({
      serverUrl: pg.serverUrl,
      name: cfg.databaseName,
      roles: ledgerRoles(env),
      appPassword: appPassword(cfg.pgDataDir, true)!,
    });
    return { url: made.appUrl, applied: made.applied, warning: null };
  }
  const url = cfg.databaseUrl!;
  const { applied } = await migrateLedger(migrationUrl(url, env), env);
  const pool = createPool({ connectionString: url, maxConnections: 1, applicationName: 'loyalty-check', env });
  try {
    return { url, applied, warning: await checkAppConnection(pool, env) };
  } finally {
    await pool.end();
  }
}
