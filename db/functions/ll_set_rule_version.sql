-- Every ledger entry and every redemption records the rule version it was made under: the version
-- in force when it is recorded (whose rules decided it: an expiry after a window change used the
-- new window, whatever its business time), unless the write path set it (accruals do, the same way).
create or replace function ll_set_rule_version() returns trigger language plpgsql as $$
begin
  if new.rule_version is null then new.rule_version := ll_rule_version_at(new.program_id, now()); end if;
  return new;
end $$;

create or replace trigger ledger_entries_rule_version before insert on ledger_entries for each row execute function ll_set_rule_version();
create or replace trigger redemptions_rule_version before insert on redemptions for each row execute function ll_set_rule_version();
