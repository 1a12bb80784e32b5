-- Locks the member that holds the points now: follows merges (ll_resolve_member: any length,
-- compressed, a cycle refused), and follows again if a merge committed while we waited for the
-- lock. Returns null if the member does not exist. Each pass ends on a member merged after we
-- resolved it, so the passes are bounded by the merges that can commit meanwhile; 1000 is a guard.
create or replace function ll_lock_current_member(p_program text, p_member text) returns members language plpgsql as $$
declare m members; v_id text := p_member; hops int := 0;
begin
  loop
    v_id := ll_resolve_member(p_program, v_id);
    select * into m from members where program_id = p_program and member_id = v_id for update;
    if not found or m.status <> 'merged' then return m; end if;
    hops := hops + 1;
    if hops > 1000 then perform ll_raise('merge_chain_cycle', 500, 'members kept being merged while this waited', jsonb_build_object('memberId', p_member)); end if;
  end loop;
end $$;
