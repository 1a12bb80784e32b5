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
  -- a probe of the primary key per member (LIMIT: no hash of the whole table for a batch the
  -- planner guesses at 100 rows), locked in key order: the lateral probes run in w's order
  perform 1 from (select distinct i->>'programId' as p, i->>'memberId' as mid from jsonb_array_elements(p_items) i order by 1, 2) w,
          lateral (select m.program_id, m.member_id from members m where m.program_id = w.p and m.member_id = w.mid
                    limit 1 for update) m;
  return v_new;
end $$;
