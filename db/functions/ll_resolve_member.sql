-- Follows merges to the member that holds the points now. Bounded: a merge chain longer than
-- 32 is a corruption, not a use case.
create or replace function ll_resolve_member(p_program text, p_member text) returns text language plpgsql as $$
declare v_id text := p_member; v_into text; hops int := 0;
begin
  loop
    select merged_into into v_into from members where program_id = p_program and member_id = v_id;
    if v_into is null then return v_id; end if;
    v_id := v_into; hops := hops + 1;
    if hops > 32 then perform ll_raise('merge_chain_too_long', 500, 'merge chain longer than 32', jsonb_build_object('memberId', p_member)); end if;
  end loop;
end $$;
