import { Client } from 'pg';
import { ensureDatabase } from './databases';
import { migrate } from './migrate';
import { createPool } from './pool';
import { adoptDatabase, ensureRoles, type LedgerRoles } from './roles';

export interface ProvisionedDatabase {
  /** the database as the server's superuser (for what tampers with it on purpose: tests, adoption) */
  adminUrl: string;
  /** the database as the app role: what the API, workers and commands connect with */
  appUrl: string;
  /** what migrate() applied */
  applied: string[];
}

/** `url` with another database, and optionally another user and password. */
export function withDatabase(url: string, name: string, login?: { user: string; password: string }): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  if (login) {
    u.username = encodeURIComponent(login.user);
    u.password = encodeURIComponent(login.password);
  }
  return u.toString();
}

/**
 * A ledger database of least privilege on a server whose `serverUrl` is a superuser's (the embedded
 * one of npm start, the tests', the fault suite's): the two roles (db/roles.ts), database `name`
 * owned by the owner (made if missing, from `template` if given), whatever in it another role owns
 * passed to the owner (a database from before the roles), migrated as the owner (`set role`), the
 * app given its grants. `migrate: false` for a clone of a template that was migrated already.
 */
export async function provisionDatabase(o: {
  serverUrl: string;
  name: string;
  roles: LedgerRoles;
  appPassword: string;
  template?: string;
  migrate?: boolean;
}): Promise<ProvisionedDatabase> {
  const server = new Client({ connectionString: o.serverUrl });
  await server.connect();
  try {
    await ensureRoles(server, { ...o.roles, appPassword: o.appPassword });
  } finally {
    await server.end();
  }
  const adminUrl = await ensureDatabase(o.serverUrl, o.name, o.template, o.roles.owner);
  let applied: string[] = [];
  if (o.migrate !== false) {
    const pool = createPool({ connectionString: adminUrl, maxConnections: 1, applicationName: 'loyalty-provision' });
    try {
      const c = await pool.connect();
      try {
        await adoptDatabase(c, o.roles.owner);
      } finally {
        c.release();
      }
      applied = await migrate(pool, { asRole: o.roles.owner, appRole: o.roles.app });
    } finally {
      await pool.end();
    }
  }
  return {
    adminUrl,
    appUrl: withDatabase(o.serverUrl, o.name, { user: o.roles.app, password: o.appPassword }),
    applied,
  };
}
