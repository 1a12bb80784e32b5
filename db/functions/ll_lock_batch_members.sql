-- A batch's first step: create the members it names that do not exist yet, then lock every one
-- of them in key order. Returns the ids it created.
create or replace function ll_lock_batch_members(p_items jsonb) returns text[] language plpgsql as $$
declare v_new text[];
begin
  with wanted as (
    select distinct i->>'programId' as program_id, i->>'memberId' as member_id from jsonb_array_elements(p_items) i
  ), ins as (
    insert into members (program_id, member_id) select program_id, member_id from wanted order by 1, 2
    on conflict do nothing returning member_id
  ) select coalesce(array_agg(member_id), '{}') into v_new from ins;
  perform 1 from members m join (select distinct i->>'programId' as p, i->>'memberId' as mid from jsonb_array_elements(p_items) i) w
    on m.program_id = w.p and m.member_id = w.mid order by m.program_id, m.member_id for update of m;
  return v_new;
end $$;
