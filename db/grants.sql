-- The app role's privileges, the one place they are written (docs/deploy.md, "Database roles and
-- grants"). Run by migrate() after the migrations and db/functions, as the owner of the schema, on
-- every run: a table a migration adds gets its grants the same day. The role is the setting
-- ll.app_role (set by db/roles.ts grantApp). One DO block: atomic, no session sees the revokes alone.
--
-- Derived from the catalog, not from a list that could forget a table:
--   * every table and view: SELECT; every table: INSERT;
--   * UPDATE only where no refusing trigger (ll_forbid_change, ll_decision_request_final,
--     ll_principal_kept) refuses updates; DELETE only on the tables the app deletes from (`deletable`
--     below, none of them append-only): the trigger binds
--     everyone, but whoever owns the table can disable or drop it; the app owns nothing, and
--     lacks the privilege besides;
--   * never TRUNCATE, REFERENCES or TRIGGER; the migrator's own tables read-only;
--   * sequences USAGE and SELECT; functions and procedures EXECUTE.
-- Everything the role had before is revoked first, so that a privilege this file no longer gives is gone.
do $grants$
declare
  app name := current_setting('ll.app_role');
  -- the trigger functions that refuse every update or delete they fire on: the ledger's append-only
  -- tables, decision requests (never changed), principals (never deleted)
  refusing regproc[] := array['ll_forbid_change', 'll_decision_request_final', 'll_principal_kept']::regproc[];
  -- the only tables the app deletes from (idempotency keys released, wake-ups taken, a batch's
  -- placeholder members): every other row, once written, is removed by no code of the app's, so
  -- it may not (an accrual's row deleted would let its invoice accrue again)
  deletable name[] := array['idempotency_keys', 'member_wakeups', 'members'];
  t record;
begin
  execute format('revoke all on all tables in schema public from %I', app);
  execute format('revoke all on all sequences in schema public from %I', app);
  execute format('revoke all on all routines in schema public from %I', app);
  -- PostgreSQL 15 and later already keep CREATE on public from PUBLIC; older servers do not
  revoke create on schema public from public;
  execute format('revoke create on schema public from %I', app);
  execute format('grant usage on schema public to %I', app);
  for t in
    select c.oid, c.relname, c.relkind,
           exists (select 1 from pg_trigger g where g.tgrelid = c.oid and g.tgfoid = any (refusing)
                    and g.tgtype & 16 <> 0) as no_update,  -- TRIGGER_TYPE_UPDATE
           exists (select 1 from pg_trigger g where g.tgrelid = c.oid and g.tgfoid = any (refusing)
                    and g.tgtype & 8 <> 0) as no_delete    -- TRIGGER_TYPE_DELETE
      from pg_class c
     where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
  loop
    execute format('grant select on %I to %I', t.relname, app);
    continue when t.relkind not in ('r', 'p') or t.relname in ('schema_migrations', 'schema_functions');
    execute format('grant insert on %I to %I', t.relname, app);
    if not t.no_update then execute format('grant update on %I to %I', t.relname, app); end if;
    if not t.no_delete and t.relname = any (deletable) then execute format('grant delete on %I to %I', t.relname, app); end if;
  end loop;
  execute format('grant usage, select on all sequences in schema public to %I', app);
  execute format('grant execute on all routines in schema public to %I', app);
end
$grants$;
