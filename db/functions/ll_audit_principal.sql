-- The audit trail of principals (audit_log, ll_audit): created, their kind, roles or name changed,
-- disabled, enabled again. Who may act is as much an access change as a key.
create or replace function ll_audit_principal() returns trigger language plpgsql as $$
begin
  if tg_op = 'UPDATE' and old.kind = new.kind and old.roles = new.roles and old.display_name is not distinct from new.display_name
     and old.disabled_at is not distinct from new.disabled_at then
    return null; -- nothing about access moved (a second disable, the same roles again)
  end if;
  perform ll_audit(16::smallint, ll_current_actor(),
    case when tg_op = 'INSERT' then 'principal_created'
         when new.disabled_at is not null and old.disabled_at is null then 'principal_disabled'
         when new.disabled_at is null and old.disabled_at is not null then 'principal_enabled'
         else 'principal_changed' end,
    null, null, 'principal:' || new.principal_id,
    case when tg_op = 'UPDATE' then jsonb_build_object('kind', old.kind, 'roles', old.roles, 'displayName', old.display_name, 'disabledAt', ll_ts(old.disabled_at)) end,
    jsonb_build_object('kind', new.kind, 'roles', new.roles, 'displayName', new.display_name, 'disabledAt', ll_ts(new.disabled_at)), null);
  return null;
end $$;

create or replace trigger principals_audit after insert or update on principals for each row execute function ll_audit_principal();
