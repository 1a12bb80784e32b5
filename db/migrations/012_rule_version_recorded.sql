-- Every ledger entry and every redemption records the rule version it was made under: the version
-- in force when it is recorded (whose rules decided it: an expiry after a window change used the
-- new window, whatever its business time), unless the write path set it (accruals do, the same way).

alter table redemptions add column rule_version int;

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

create or replace function ll_redemption_view(r redemptions) returns jsonb language sql stable as $$
  select jsonb_build_object('redemptionId', r.redemption_id, 'invoiceId', r.invoice_id, 'memberId', r.member_id,
    'status', r.status, 'reason', r.reason, 'pointsRequested', r.points_requested, 'pointsApplied', r.points_applied,
    'creditMinor', r.credit_minor, 'pointsReversed', r.points_reversed, 'creditReversedMinor', r.credit_reversed_minor,
    'ruleVersion', r.rule_version,
    'cohorts', coalesce((select jsonb_object_agg(rc.cohort, rc.points) from redemption_cohorts rc
                          where rc.program_id = r.program_id and rc.invoice_id = r.invoice_id), '{}'))
$$;
