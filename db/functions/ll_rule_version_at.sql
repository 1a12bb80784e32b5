-- The rule version in force at p_at: the latest that took effect by then, else the program's first.
create or replace function ll_rule_version_at(p_program text, p_at timestamptz) returns int language sql stable as $$
  select coalesce(
    (select version from program_rule_versions where program_id = p_program and effective_at <= p_at order by version desc limit 1),
    (select min(version) from program_rule_versions where program_id = p_program))
$$;
