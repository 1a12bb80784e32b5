-- Every ledger entry and every redemption records the rule version it was made under: the version
-- in force when it is recorded (whose rules decided it: an expiry after a window change used the
-- new window, whatever its business time), unless the write path set it (accruals do, the same way).

-- (redemptions.rule_version and its place in ll_redemption_view come from 006)

create function ll_rule_version_at(p_program text, p_at timestamptz) returns int language sql stable as $$
  select coalesce(
    (select version from program_rule_versions where program_id = p_program and effective_at <= p_at order by version desc limit 1),
    (select min(version) from program_rule_versions where program_id = p_program))
$$;

create function ll_set_rule_version() returns trigger language plpgsql as $$
begin
  if new.rule_version is null then new.rule_version := ll_rule_version_at(new.program_id, now()); end if;
  return new;
end $$;
create trigger ledger_entries_rule_version before insert on ledger_entries for each row execute function ll_set_rule_version();
create trigger redemptions_rule_version before insert on redemptions for each row execute function ll_set_rule_version();
