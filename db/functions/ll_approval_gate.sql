-- Whether a request that moves p_points (either way) needs a finance approval: it does when the
-- points moved without one within the program's rolling window (adjustments.approvalWindow, before
-- now), per member and per requester, plus p_points pass adjustments.approvalThresholdPoints. So
-- three requests just under the threshold do not pass unseen: the one that crosses it waits.
-- "Moved without one" is every manual_adjustments row of the window that did not need an approval
-- (needs_approval false: applied, or about to be, on the requester's word alone); rows that went to
-- finance are not counted, approved or pending: finance saw each of them. A merge counts for both
-- its members (the points leave one and reach the other). The defaults are the caller's
-- (domain/program.ts), for programs whose rules do not write them out; a caller that gives none
-- gets the same figures here (1000, P30D), so a missing setting never opens the gate.
-- Under a lock per member and per requester, taken in one order (no deadlock), held to the end of
-- the transaction that records the request: two concurrent requests cannot both slip under, the
-- second sees the first's row. The caller records the request in the same transaction.
create or replace function ll_approval_gate(p_program text, p_members text[], p_requester text, p_points bigint,
  p_default_threshold bigint, p_default_window text) returns jsonb language plpgsql as $$
declare
  v_rules jsonb; v_threshold bigint; v_window text; v_since timestamptz; v_member_pts bigint := 0;
  v_requester_pts bigint; v_m text; v_sum bigint; v_lock bigint;
begin
  for v_lock in
    select distinct hashtextextended(k, 0) as h from unnest(
      array(select 'member:' || p_program || ':' || m from unnest(p_members) m) || ('requester:' || p_program || ':' || p_requester)) k
    order by 1
  loop
    perform pg_advisory_xact_lock(v_lock);
  end loop;
  select v.rules into v_rules from program_rule_versions v
   where v.program_id = p_program and v.version = ll_rule_version_at(p_program, now());
  v_threshold := coalesce((v_rules->'adjustments'->>'approvalThresholdPoints')::bigint, p_default_threshold, 1000);
  v_window := coalesce(v_rules->'adjustments'->>'approvalWindow', p_default_window, 'P30D');
  -- the window back from now in UTC calendar arithmetic, as ll_add_duration goes forward
  v_since := ((now() at time zone 'UTC') - v_window::interval) at time zone 'UTC';
  foreach v_m in array p_members loop
    select coalesce(sum(abs(points)), 0) into v_sum from manual_adjustments
     where program_id = p_program and not needs_approval and requested_at > v_since
       and (member_id = v_m or into_member_id = v_m);
    v_member_pts := greatest(v_member_pts, v_sum);
  end loop;
  select coalesce(sum(abs(points)), 0) into v_requester_pts from manual_adjustments
   where program_id = p_program and not needs_approval and requested_at > v_since and requested_by = p_requester;
  return jsonb_build_object(
    'needsApproval', greatest(v_member_pts, v_requester_pts) + abs(p_points) > v_threshold,
    'approvalThresholdPoints', v_threshold, 'approvalWindow', v_window,
    'memberPointsInWindow', v_member_pts, 'requesterPointsInWindow', v_requester_pts);
end $$;
