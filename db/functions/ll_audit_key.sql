-- The audit trail of keys (audit_log, ll_audit): created, rotated, revoked (never the secret or
-- its hash).
create or replace function ll_audit_key() returns trigger language plpgsql as $$
begin
  if tg_op = 'UPDATE' and old.revoked_at is not distinct from new.revoked_at and old.roles = new.roles and old.principal = new.principal
     and old.key_hash = new.key_hash and old.programs is not distinct from new.programs then
    return null; -- only last_used_at moved: not a change to access
  end if;
  perform ll_audit(16::smallint, ll_current_actor(), case when tg_op = 'INSERT' then 'key_created' when new.revoked_at is not null and old.revoked_at is null then 'key_revoked' else 'key_changed' end,
    null, null, 'key:' || new.key_id,
    case when tg_op = 'UPDATE' then jsonb_build_object('principal', old.principal, 'roles', old.roles, 'programs', old.programs, 'revokedAt', ll_ts(old.revoked_at)) end,
    jsonb_build_object('principal', new.principal, 'roles', new.roles, 'programs', new.programs, 'revokedAt', ll_ts(new.revoked_at)), null);
  return null;
end $$;

create or replace trigger api_keys_audit after insert or update on api_keys for each row execute function ll_audit_key();
