-- Follows merges to the member that holds the points now. ll_merge keeps chains one hop long (it
-- points the members merged into the merged one at the survivor) and migration 012 compressed the
-- chains made before, so one hop is the rule; a longer chain (any length) is followed, and
-- compressed here when it is (every member on it pointed at the live one, in the caller's
-- transaction). A chain that comes back to a member it passed is a corruption: merge_chain_cycle.
create or replace function ll_resolve_member(p_program text, p_member text) returns text language plpgsql as $$
declare v_id text := p_member; v_into text; v_seen text[] := array[p_member];
begin
  loop
    select merged_into into v_into from members where program_id = p_program and member_id = v_id;
    if v_into is null then exit; end if;
    if v_into = any(v_seen) then
      perform ll_raise('merge_chain_cycle', 500, 'merge chain comes back to a member it passed', jsonb_build_object('memberId', p_member, 'at', v_into));
    end if;
    v_seen := v_seen || v_into;
    v_id := v_into;
  end loop;
  -- more than one hop: compress (the members before the last point straight at it)
  if cardinality(v_seen) > 2 then
    update members set merged_into = v_id
     where program_id = p_program and member_id = any(v_seen[1:cardinality(v_seen) - 2]) and status = 'merged'
       and merged_into is distinct from v_id;
  end if;
  return v_id;
end $$;
