-- The audit trail of rules (audit_log, ll_audit): a row for a program created or changed, and for
-- each rule version.
create or replace function ll_audit_rules() returns trigger language plpgsql as $$
begin
  if tg_table_name = 'programs' then
    perform ll_audit(16::smallint, case when tg_op = 'INSERT' then new.created_by else ll_current_actor() end, lower(tg_op) || '_program', new.program_id, null,
      'program:' || new.program_id,
      case when tg_op = 'UPDATE' then jsonb_build_object('name', old.name, 'lockedUntil', ll_ts(old.locked_until)) end,
      jsonb_build_object('name', new.name, 'currency', new.currency, 'lockedUntil', ll_ts(new.locked_until)), null);
  else
    perform ll_audit(16::smallint, new.created_by, 'rule_version', new.program_id, null, 'rules:' || new.program_id || ':' || new.version,
      (select v.rules from program_rule_versions v where v.program_id = new.program_id and v.version < new.version order by v.version desc limit 1),
      new.rules || jsonb_build_object('effectiveAt', ll_ts(new.effective_at)), null);
  end if;
  return null;
end $$;

create or replace trigger programs_audit after insert or update on programs for each row execute function ll_audit_rules();
create or replace trigger program_rule_versions_audit after insert on program_rule_versions for each row execute function ll_audit_rules();
