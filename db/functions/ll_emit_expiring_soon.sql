-- points.expiring_soon (docs/api.md, "Webhooks"): members of programs whose active rules set
-- notifications.expiringSoonDays, with points and a deadline within that many days of p_now, and a
-- webhook subscribed to the type. Once per (member, deadline): the notice row is inserted first, so
-- a scan run again (by this relay or another) finds it and sends nothing; a deadline a purchase moves
-- is a new deadline, notified again when it comes within the window. At most p_limit a call.
-- p_now is the relay's clock (injectable in tests). Returns how many events it wrote.
--
-- Each member's row is locked before its event is written, as every other path that writes a
-- member's events does: a member's deliveries go in the order of their ids, so the ids must follow
-- the commits. Locked in key order (the batch accruals' order), so the scan never deadlocks with them.
create or replace function ll_emit_expiring_soon(p_now timestamptz, p_limit int) returns int language plpgsql as $$
declare r record; v_n int := 0; v_points bigint;
begin
  for r in
    select m.program_id, m.member_id, m.expires_at, m.balance - m.held as points
      from (select distinct w.program_id from webhooks w where w.status = 'active' and 'points.expiring_soon' = any (w.events)) p
      cross join lateral (select (v.rules->'notifications'->>'expiringSoonDays')::int as days
                            from program_rule_versions v where v.program_id = p.program_id and v.effective_at <= p_now
                           order by v.version desc limit 1) s
      join members m on m.program_id = p.program_id and m.status = 'active' and m.expires_at is not null
                    and m.expires_at > p_now and m.expires_at <= p_now + make_interval(days => s.days)
                    and m.balance - m.held > 0
     where s.days is not null
       and not exists (select 1 from webhook_expiry_notices n
                        where n.program_id = m.program_id and n.member_id = m.member_id and n.deadline = m.expires_at)
     order by m.program_id, m.member_id
     limit p_limit
  loop
    select m.balance - m.held into v_points from members m
     where m.program_id = r.program_id and m.member_id = r.member_id and m.expires_at = r.expires_at
       for update;
    -- a purchase moved the deadline (or it expired) since the scan read it: the next scan sees it
    continue when not found or v_points <= 0;
    -- the notice first: a concurrent scan waits on its key, then finds it and writes nothing
    insert into webhook_expiry_notices (program_id, member_id, deadline)
    values (r.program_id, r.member_id, r.expires_at)
    on conflict do nothing;
    continue when not found;
    perform ll_emit_event(r.program_id, 'points.expiring_soon', r.member_id, p_now,
      jsonb_build_object('memberId', r.member_id, 'points', v_points, 'expiresAt', ll_ts(r.expires_at)));
    v_n := v_n + 1;
  end loop;
  return v_n;
end $$;
