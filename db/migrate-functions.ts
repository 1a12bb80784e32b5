/**
 * The second half of the migrator: db/functions/<name>.sql, one function a file (and, for a trigger
 * function, the triggers that run it), applied after the numbered migrations in dependency order and
 * again whenever the file's text changes. schema_functions records (name, sha256) of what was applied.
 *
 * The file is the whole truth about its name: applying it leaves exactly that one function of that
 * name (a changed signature drops the old one) and exactly the triggers it creates for it (one taken
 * out of the file is dropped); a file taken out of the directory drops its function. Nothing is
 * dropped with CASCADE: whatever else depends on a function makes its migration fail, loudly.
 * Runs on the session that holds the migrator's advisory lock (db/migrate.ts); each file in a
 * transaction of its own, its record with it.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PoolClient } from 'pg';
import { inTransactionOn } from './tx';

export interface FunctionFile {
  name: string;
  text: string;
  sha256: string;
  /** the other ll_ functions the text names: they are applied first */
  names: string[];
  /** the triggers the file creates (`create or replace trigger <name> ... on <table>`) */
  triggers: Array<{ name: string; table: string }>;
}

const FILE_NAME = /^(ll_[a-z0-9_]+)\.sql$/;
const LL_NAME = /\bll_[a-z0-9_]+\b/g;
// Statements are found at the start of a line, comment lines left out: the files' own convention.
const CREATE_FUNCTION = /^[ \t]*create\s+(or\s+replace\s+)?(?:function|procedure)\s+(?:public\.)?([a-z0-9_]+)\s*\(/gim;
const CREATE_TRIGGER =
  /^[ \t]*create\s+(or\s+replace\s+)?(?:constraint\s+)?trigger\s+([a-z0-9_]+)\s[\s\S]*?\son\s+(?:public\.)?([a-z0-9_]+)/gim;

/** The files of `dir`, checked (one function a file, named after it, every ll_ name it uses has a file), dependencies first. */
export function readFunctionFiles(dir: string): FunctionFile[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => parseFunctionFile(f, readFileSync(join(dir, f), 'utf8')));
  const known = new Set(files.map((f) => f.name));
  const triggerFile = new Map<string, string>();
  for (const f of files) {
    const missing = f.names.filter((n) => !known.has(n));
    if (missing.length > 0)
      throw new Error(`db/functions/${f.name}.sql names ${missing.join(', ')}, which has no file in db/functions`);
    for (const t of f.triggers) {
      const key = `${t.name} on ${t.table}`;
      const other = triggerFile.get(key);
      if (other) throw new Error(`trigger ${key} is created by both db/functions/${other}.sql and ${f.name}.sql`);
      triggerFile.set(key, f.name);
    }
  }
  return dependencyOrder(files);
}

export function parseFunctionFile(file: string, text: string): FunctionFile {
  const name = FILE_NAME.exec(file)?.[1];
  if (!name) throw new Error(`db/functions/${file}: a function's file is named after it, ll_<name>.sql`);
  const code = text
    .split('\n')
    .filter((l) => !/^\s*--/.test(l))
    .join('\n');
  const fns = [...code.matchAll(CREATE_FUNCTION)];
  if (fns.length !== 1 || fns[0]![2] !== name || !fns[0]![1]) {
    throw new Error(
      `db/functions/${file}: must create exactly one function, \`create or replace function ${name}(...)\` (found ${fns.map((m) => m[2]).join(', ') || 'none'})`,
    );
  }
  const triggers = [...code.matchAll(CREATE_TRIGGER)].map((m) => {
    if (!m[1])
      throw new Error(
        `db/functions/${file}: write \`create or replace trigger ${m[2]}\`, so that the file can be applied again`,
      );
    return { name: m[2]!, table: m[3]! };
  });
  // Dependencies are the names the code uses: a comment that mentions a caller is not one.
  const names = [...new Set(code.replace(/--.*$/gm, '').match(LL_NAME) ?? [])].filter((n) => n !== name).sort();
  return { name, text, sha256: createHash('sha256').update(text).digest('hex'), names, triggers };
}

/**
 * A topological order: a function after every function its text names. PL/pgSQL bodies are not
 * checked when they are created, SQL ones are (a SQL function that calls one not made yet fails),
 * so the order matters for the second kind; keeping it for all costs nothing. Ties in name order.
 */
export function dependencyOrder(files: FunctionFile[]): FunctionFile[] {
  const byName = new Map(files.map((f) => [f.name, f]));
  const placed = new Set<string>();
  const order: FunctionFile[] = [];
  while (order.length < files.length) {
    const ready = files.filter((f) => !placed.has(f.name) && f.names.every((n) => placed.has(n) || !byName.has(n)));
    if (ready.length === 0) {
      const left = files.filter((f) => !placed.has(f.name)).map((f) => f.name);
      throw new Error(
        `db/functions: these functions name each other in a cycle, which has no order to create them in: ${left.join(', ')}`,
      );
    }
    for (const f of ready) {
      placed.add(f.name);
      order.push(f);
    }
  }
  return order;
}

/** The migrator's record of the function files it applied. */
export const SCHEMA_FUNCTIONS =
  'create table if not exists schema_functions (name text primary key, sha256 text not null, applied_at timestamptz not null default now())';

/** Applies what changed in `dir` since the last run; returns what it did (`db/functions/<file>`, `dropped <name>`). */
export async function applyFunctions(client: PoolClient, dir: string): Promise<string[]> {
  const files = readFunctionFiles(dir);
  await client.query(SCHEMA_FUNCTIONS);
  const recorded = new Map(
    (await client.query<{ name: string; sha256: string }>('select name, sha256 from schema_functions')).rows.map(
      (r) => [r.name, r.sha256],
    ),
  );
  const existing = new Set(
    (
      await client.query<{ proname: string }>(`select proname from pg_proc where pronamespace = 'public'::regnamespace`)
    ).rows.map((r) => r.proname),
  );
  const done: string[] = [];
  for (const f of files) {
    // a function dropped by hand is made again even though its file did not change
    if (recorded.get(f.name) === f.sha256 && existing.has(f.name)) continue;
    await applyFile(client, f);
    done.push(`db/functions/${f.name}.sql`);
  }
  const kept = new Set(files.map((f) => f.name));
  for (const name of [...recorded.keys()].filter((n) => !kept.has(n)).sort()) {
    await inTransactionOn(client, async () => {
      const old = await overloads(client, name);
      await dropTriggers(
        client,
        old.map((o) => o.oid),
        [],
      );
      for (const o of old) await client.query(`drop function ${o.signature}`);
      await client.query('delete from schema_functions where name = $1', [name]);
    });
    done.push(`dropped ${name}`);
  }
  return done;
}

// create or replace refuses a new result type, renamed or fewer defaults, another routine kind.
const SIGNATURE_CHANGE = new Set(['42P13', '42809']);

async function applyFile(client: PoolClient, f: FunctionFile): Promise<void> {
  try {
    await inTransactionOn(client, () => replaceFunction(client, f, false));
  } catch (e) {
    if (!SIGNATURE_CHANGE.has((e as { code?: string }).code ?? ''))
      throw new Error(`db/functions/${f.name}.sql failed: ${(e as Error).message}`, { cause: e });
    try {
      await inTransactionOn(client, () => replaceFunction(client, f, true));
    } catch (e2) {
      throw new Error(`db/functions/${f.name}.sql failed: ${(e2 as Error).message}`, { cause: e2 });
    }
  }
}

/**
 * In place (create or replace keeps the function's oid and whatever points at it), unless `dropFirst`
 * (the signature changed in a way create or replace refuses) or more than one function has the name.
 */
async function replaceFunction(client: PoolClient, f: FunctionFile, dropFirst: boolean): Promise<void> {
  let before = await overloads(client, f.name);
  if (dropFirst || before.length > 1) {
    await dropTriggers(
      client,
      before.map((o) => o.oid),
      [],
    );
    for (const o of before) await client.query(`drop function ${o.signature}`);
    before = [];
  }
  await client.query(f.text);
  const after = await overloads(client, f.name);
  // the file's function is the new one (its argument types changed) or the one it replaced
  const fresh = after.filter((o) => !before.some((b) => b.oid === o.oid));
  const mine = fresh[0] ?? after[0];
  if (!mine || fresh.length > 1)
    throw new Error(`expected one function ${f.name} after the file, found ${after.length}`);
  const stale = after.filter((o) => o.oid !== mine.oid);
  await dropTriggers(
    client,
    after.map((o) => o.oid),
    f.triggers,
    mine.oid,
  );
  for (const o of stale) await client.query(`drop function ${o.signature}`);
  const { rows: made } = await client.query<{ name: string; table: string; fn: string }>(
    `select g.tgname as name, c.relname as table, g.tgfoid::text as fn from pg_trigger g join pg_class c on c.oid = g.tgrelid
      where not g.tgisinternal and g.tgname = any($1)`,
    [f.triggers.map((t) => t.name)],
  );
  for (const t of f.triggers) {
    if (!made.some((m) => m.name === t.name && m.table === t.table && m.fn === mine.oid)) {
      throw new Error(
        `trigger ${t.name} on ${t.table} does not execute ${f.name}: a function's file creates only its own triggers`,
      );
    }
  }
  await client.query(
    `insert into schema_functions (name, sha256) values ($1, $2) on conflict (name) do update set sha256 = excluded.sha256, applied_at = now()`,
    [f.name, f.sha256],
  );
}

// oids as text: they are unsigned and pass 2^31, which ::int would refuse
async function overloads(client: PoolClient, name: string): Promise<Array<{ oid: string; signature: string }>> {
  const { rows } = await client.query<{ oid: string; signature: string }>(
    `select oid::text as oid, oid::regprocedure::text as signature from pg_proc where pronamespace = 'public'::regnamespace and proname = $1 order by oid`,
    [name],
  );
  return rows;
}

/** Drops the triggers that execute any of `fns`, but the ones `keep` names if they execute `keepFn`. */
async function dropTriggers(
  client: PoolClient,
  fns: string[],
  keep: Array<{ name: string; table: string }>,
  keepFn?: string,
): Promise<void> {
  const { rows } = await client.query<{ name: string; table: string; fn: string; drop: string }>(
    `select g.tgname as name, c.relname as table, g.tgfoid::text as fn, format('drop trigger %I on %s', g.tgname, g.tgrelid::regclass) as drop
       from pg_trigger g join pg_class c on c.oid = g.tgrelid where not g.tgisinternal and g.tgfoid = any($1::oid[])`,
    [fns],
  );
  for (const t of rows) {
    if (t.fn === keepFn && keep.some((k) => k.name === t.name && k.table === t.table)) continue;
    await client.query(t.drop);
  }
}
