-- After an expiry-window change: the next `p_limit` members whose deadline differs from their last
-- purchase plus the window now in force get the new deadline, and their workflows a wake-up (the
-- outbox relay delivers them at its own bounded rate). Returns how many were moved; 0 when done.
create or replace function ll_rearm_deadlines(p_program text, p_limit int) returns int language plpgsql as $$
declare v_expiry jsonb; v_moved int;
begin
  select v.rules->'expiry' into v_expiry from program_rule_versions v
   where v.program_id = p_program and v.effective_at <= now() order by v.version desc limit 1;
  with due as (
    select m.program_id, m.member_id, ll_add_duration(m.last_purchase_at, ll_expiry_window(v_expiry, m.jurisdiction)) as deadline
      from members m
     where m.program_id = p_program and m.status = 'active' and m.balance > 0 and m.last_purchase_at is not null
       and m.expires_at is distinct from ll_add_duration(m.last_purchase_at, ll_expiry_window(v_expiry, m.jurisdiction))
     order by m.member_id limit p_limit for update skip locked),
  moved as (
    update members m set expires_at = due.deadline from due
     where m.program_id = due.program_id and m.member_id = due.member_id returning m.program_id, m.member_id)
  select count(*) into v_moved from (select ll_request_wake(program_id, member_id) from moved) w;
  return v_moved;
end $$;
