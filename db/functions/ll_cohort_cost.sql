-- A provision cohort records the cost per point of the rules it was created under.
create or replace function ll_cohort_cost() returns trigger language plpgsql as $$
begin
  if new.liability_account = 'loyalty_provision' and new.cost_per_point_minor is null then
    select (v.rules->'accounting'->>'costPerPointMinor')::bigint into new.cost_per_point_minor
      from program_rule_versions v where v.program_id = new.program_id and v.effective_at <= now()
     order by v.version desc limit 1;
  end if;
  return new;
end $$;

create or replace trigger cohorts_cost before insert on cohorts for each row execute function ll_cohort_cost();
