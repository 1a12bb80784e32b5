import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool, PoolClient } from 'pg';
import { applyFunctions, SCHEMA_FUNCTIONS } from './migrate-functions';
import { grantApp, roleName } from './roles';
import { inTransactionOn } from './tx';

const MIGRATIONS_DIR = join(__dirname, 'migrations');
const FUNCTIONS_DIR = join(__dirname, 'functions');
const MIGRATION_LOCK = 7_344_001; // advisory lock id: one migrator at a time

export interface MigrateOptions {
  /** the numbered migrations (default db/migrations) */
  migrationsDir?: string;
  /** one function a file (default db/functions) */
  functionsDir?: string;
  /**
   * the role to migrate as, from a superuser's session (`set role`): every object made is its
   * (db/roles.ts, the owner). Unset: the connection's own role, which then must be the owner.
   */
  asRole?: string;
  /** the app role, given its privileges after the migrations (db/grants.sql); unset: none given */
  appRole?: string;
}

/**
 * Brings a database to the schema of this checkout, under an advisory lock so that migrators started
 * together run one after the other (the later ones find nothing to do): the SQL files of
 * db/migrations in name order, each once, each in its own transaction (tables, constraints, indexes,
 * data); then the functions of db/functions, each whose text changed (db/migrate-functions.ts);
 * then, with `appRole`, the app role's privileges (db/grants.sql: every run, so a new table has them).
 * Returns what it applied.
 */
export async function migrate(pool: Pool, o: MigrateOptions = {}): Promise<string[]> {
  const migrationsDir = o.migrationsDir ?? MIGRATIONS_DIR;
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    // The pool's session limits (statement 30 s, lock 10 s) are for requests: a migrator waits for
    // another one as long as that one takes, and a migration or data move runs to its end.
    await client.query(`set statement_timeout = 0`);
    await client.query(`set lock_timeout = 0`);
    if (o.asRole) await client.query(`set role ${roleName(o.asRole)}`);
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'create table if not exists schema_migrations (version text primary key, applied_at timestamptz not null default now())',
    );
    if (migrationsDir === MIGRATIONS_DIR) await adoptSquashedHistory(client);
    const done = new Set(
      (await client.query<{ version: string }>('select version from schema_migrations')).rows.map((r) => r.version),
    );
    for (const file of readdirSync(migrationsDir)
      .filter((f) => f.endsWith('.sql'))
      .sort()) {
      if (done.has(file)) continue;
      try {
        await inTransactionOn(client, async () => {
          await client.query(readFileSync(join(migrationsDir, file), 'utf8'));
          await client.query('insert into schema_migrations (version) values ($1)', [file]);
        });
      } catch (e) {
        throw new Error(`migration ${file} failed: ${(e as Error).message}`, { cause: e });
      }
      applied.push(file);
    }
    applied.push(...(await applyFunctions(client, o.functionsDir ?? FUNCTIONS_DIR)));
    if (o.appRole) await grantApp(client, o.appRole);
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    // back to the pool with its request limits (RESET returns to the connection's own settings)
    const reset = await client.query('reset statement_timeout; reset lock_timeout; reset role').then(
      () => true,
      () => false,
    );
    client.release(!reset);
  }
  return applied;
}

/**
 * Migrations 001 to 016, squashed into 001_baseline.sql and db/functions (no deployed database
 * existed; docs/architecture.md). A development database migrated before the squash has all
 * sixteen: it has the baseline's schema, so it is recorded as having the baseline, and its
 * functions as applied from unknown text, which makes the function pass apply every file again
 * and drop what no file defines any more (ll_quarter). One with only some of them cannot be
 * brought forward: the migrations it lacks are gone.
 */
export const SQUASHED = [
  '001_ledger.sql',
  '002_write_functions.sql',
  '003_refund_merge.sql',
  '004_api_keys.sql',
  '005_redemptions.sql',
  '006_adjustments_reconciliation.sql',
  '007_close.sql',
  '008_provision.sql',
  '009_audit.sql',
  '010_manual_adjustments.sql',
  '011_rule_changes.sql',
  '012_rule_version_recorded.sql',
  '013_notifications.sql',
  '014_redemption_share_cap_floor.sql',
  '015_wakeup_leases.sql',
  '016_credit_requested.sql',
];
const BASELINE = '001_baseline.sql';

async function adoptSquashedHistory(client: PoolClient): Promise<void> {
  const { rows } = await client.query<{ version: string }>(
    'select version from schema_migrations where version = any($1) order by version',
    [SQUASHED],
  );
  if (rows.length === 0) return;
  if (rows.length < SQUASHED.length) {
    throw new Error(
      `this database was migrated by an older checkout, up to ${rows.at(-1)?.version}; migrations 001 to 016 are now one baseline, ` +
        'which it cannot be brought to: make it again (for npm start, remove .data/postgres)',
    );
  }
  await inTransactionOn(client, async () => {
    await client.query('delete from schema_migrations where version = any($1)', [SQUASHED]);
    await client.query('insert into schema_migrations (version) values ($1)', [BASELINE]);
    await client.query(SCHEMA_FUNCTIONS);
    await client.query(`insert into schema_functions (name, sha256) select distinct proname, 'before the squash' from pg_proc
                         where pronamespace = 'public'::regnamespace and proname like 'll\\_%' on conflict do nothing`);
  });
}
