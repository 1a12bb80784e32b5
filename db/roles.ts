/**
 * The two database roles of least privilege (docs/deploy.md, "Database roles and grants"):
 *
 * - the owner (`loyalty_owner`): owns the database and every object in it; migrations run as it;
 * - the app (`loyalty_app`): what the API, the workers and the commands beside them connect as.
 *   Not a superuser, owns nothing, no CREATE anywhere; SELECT and INSERT on the append-only tables
 *   and no more (db/grants.sql, applied by migrate()).
 *
 * Roles are the cluster's, not the database's: made here only by a connection that may make roles
 * (the embedded server's superuser, the tests'), and idempotently, so that a second database on the
 * same server, or a second start, finds them and only brings them to these attributes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientBase, Pool } from 'pg';

export interface LedgerRoles {
  owner: string;
  app: string;
}

/** The roles' names unless LOYALTY_DB_OWNER_ROLE / LOYALTY_DB_APP_ROLE say otherwise. */
export function ledgerRoles(env: NodeJS.ProcessEnv = process.env): LedgerRoles {
  return {
    owner: roleName(env.LOYALTY_DB_OWNER_ROLE ?? 'loyalty_owner'),
    app: roleName(env.LOYALTY_DB_APP_ROLE ?? 'loyalty_app'),
  };
}

/** A role name as it may appear in a statement unquoted (roles cannot be bound as parameters). */
export function roleName(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`bad role name ${JSON.stringify(name)}`);
  return name;
}

const NO_POWERS = 'nosuperuser nocreatedb nocreaterole noreplication nobypassrls';

/**
 * Both roles, as a role that may create roles: the owner NOLOGIN (migrations `set role` to it from
 * the superuser's session) unless it is given a password, the app LOGIN with `appPassword`; neither
 * with any power over the cluster. An existing role is altered to the same (its password too).
 */
export async function ensureRoles(
  c: ClientBase,
  r: LedgerRoles & { appPassword: string; ownerPassword?: string },
): Promise<void> {
  const login = (pw: string | undefined) => (pw ? `login password ${c.escapeLiteral(pw)}` : 'nologin');
  for (const [name, attrs] of [
    [roleName(r.owner), login(r.ownerPassword)],
    [roleName(r.app), login(r.appPassword)],
  ] as const) {
    const exists = (await c.query('select 1 from pg_roles where rolname = $1', [name])).rowCount! > 0;
    try {
      await c.query(`${exists ? 'alter' : 'create'} role ${name} ${attrs} ${NO_POWERS}`);
    } catch (e) {
      // made by another start between the look and the create (42710 duplicate_object)
      if ((e as { code?: string }).code !== '42710') throw e;
      await c.query(`alter role ${name} ${attrs} ${NO_POWERS}`);
    }
  }
}

// A database made before the roles (npm start's .data from an older checkout) is its creator's:
// everything in its public schema passes to the owner, as the owner would have made it.
const ADOPT = `
do $adopt$
declare
  o name := current_setting('ll.owner_role');
  r record;
begin
  execute format('alter database %I owner to %I', current_database(), o);
  for r in
    select c.relname, c.relkind from pg_class c
     where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'S')
       and c.relowner <> o::regrole
       -- a sequence of a table's column passes with its table
       and not (c.relkind = 'S' and exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                                              and d.objid = c.oid and d.deptype in ('a', 'i')))
  loop
    execute format('alter %s %I owner to %I',
                   case r.relkind when 'S' then 'sequence' when 'v' then 'view' when 'm' then 'materialized view' else 'table' end,
                   r.relname, o);
  end loop;
  -- standalone types (a composite type such as accrual_batch_row, an enum, a domain); a table's
  -- row type and the array types pass with what they belong to
  for r in select t.typname, t.typtype from pg_type t left join pg_class c on c.oid = t.typrelid
            where t.typnamespace = 'public'::regnamespace and t.typowner <> o::regrole
              and (t.typtype in ('e', 'd') or (t.typtype = 'c' and c.relkind = 'c')) loop
    execute format('alter %s %I owner to %I', case r.typtype when 'd' then 'domain' else 'type' end, r.typname, o);
  end loop;
  for r in select p.oid::regprocedure as sig from pg_proc p
            where p.pronamespace = 'public'::regnamespace and p.proowner <> o::regrole loop
    execute format('alter routine %s owner to %I', r.sig, o);
  end loop;
end
$adopt$`;

/** As a superuser connected to the ledger database: it and everything in its public schema owned by `owner`. */
export async function adoptDatabase(c: ClientBase, owner: string): Promise<void> {
  // one DO block: atomic by itself
  await c.query(`select set_config('ll.owner_role', $1, false)`, [roleName(owner)]);
  await c.query(ADOPT);
}

/** Whether role `name` exists on the server. */
export async function roleExists(db: Pick<Pool, 'query'>, name: string): Promise<boolean> {
  return (await db.query('select 1 from pg_roles where rolname = $1', [roleName(name)])).rowCount! > 0;
}

const GRANTS = readFileSync(join(__dirname, 'grants.sql'), 'utf8');

/** db/grants.sql for `app`, as the owner of the schema (migrate() calls it last). */
export async function grantApp(c: ClientBase, app: string): Promise<void> {
  if (!(await roleExists(c, app)))
    throw new Error(
      `the app role ${app} does not exist: create it first (docs/deploy.md, "Database roles and grants"), or name another with LOYALTY_DB_APP_ROLE`,
    );
  // one DO block: atomic by itself, so no session ever sees the revokes without the grants
  await c.query(`select set_config('ll.app_role', $1, false)`, [app]);
  await c.query(GRANTS);
}

/**
 * What the connection can do that the app's must not: empty when it is a role of least privilege.
 * The API, the workers and npm start refuse to run on a connection with any of these
 * (checkAppConnection).
 */
export async function privilegeProblems(db: Pick<Pool, 'query'>): Promise<string[]> {
  const { rows } = await db.query<{
    who: string;
    rolsuper: boolean;
    rolcreaterole: boolean;
    rolcreatedb: boolean;
    rolbypassrls: boolean;
    owned: number;
    create_schema: boolean;
    create_db: boolean;
  }>(
    `select current_user as who, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,
            (select count(*)::int from pg_class c where c.relnamespace = 'public'::regnamespace and pg_has_role(c.relowner, 'USAGE'))
          + (select count(*)::int from pg_proc p where p.pronamespace = 'public'::regnamespace and pg_has_role(p.proowner, 'USAGE')) as owned,
            has_schema_privilege('public', 'CREATE') as create_schema,
            has_database_privilege(current_database(), 'CREATE') as create_db
       from pg_roles r where r.rolname = current_user`,
  );
  const r = rows[0]!;
  const problems: string[] = [];
  if (r.rolsuper) problems.push('is a superuser');
  if (r.rolcreaterole) problems.push('may create roles');
  if (r.rolcreatedb) problems.push('may create databases');
  if (r.rolbypassrls) problems.push('bypasses row security');
  if (r.owned > 0) problems.push(`owns ${r.owned} table(s), sequence(s) or function(s)`);
  if (r.create_schema) problems.push('may create objects in schema public');
  if (r.create_db) problems.push('may create schemas in the database');
  return problems.map((p) => `${r.who} ${p}`);
}

/**
 * Throws unless the connection is of least privilege, or LOYALTY_DB_PRIVILEGED=allow, when it
 * returns the warning to log instead. For the processes that serve: the API, the workers, npm start.
 */
export async function checkAppConnection(
  db: Pick<Pool, 'query'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | null> {
  const problems = await privilegeProblems(db);
  if (problems.length === 0) return null;
  const what = `the database connection ${problems.join(', ')}: the API and workers must connect as the app role (docs/deploy.md, "Database roles and grants")`;
  if (env.LOYALTY_DB_PRIVILEGED === 'allow') return `${what}; running anyway because LOYALTY_DB_PRIVILEGED=allow`;
  throw new Error(`${what}, or set LOYALTY_DB_PRIVILEGED=allow to run anyway`);
}
