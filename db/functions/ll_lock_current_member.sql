-- Locks the member that holds the points now: follows merges, and follows again if a merge
-- committed while we waited for the lock. Returns null if the member does not exist.
create or replace function ll_lock_current_member(p_program text, p_member text) returns members language plpgsql as $$
declare m members; v_id text := p_member; hops int := 0;
begin
  loop
    v_id := ll_resolve_member(p_program, v_id);
    select * into m from members where program_id = p_program and member_id = v_id for update;
    if not found or m.status <> 'merged' then return m; end if;
    hops := hops + 1;
    if hops > 32 then perform ll_raise('merge_chain_too_long', 500, 'merge chain longer than 32', jsonb_build_object('memberId', p_member)); end if;
  end loop;
end $$;
