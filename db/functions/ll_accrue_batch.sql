-- Many accruals in one transaction (group commit). Lock order, the same in every batch so that
-- batches in flight together cannot deadlock: every member row of the batch first (created if
-- new), in key order; then the items in (stripe, member) order, so shared stripe rows are taken in
-- ascending order. Each item runs in its own subtransaction: a rejected item writes nothing and
-- does not disturb the others. A unique violation means a concurrent duplicate committed first:
-- run the item again and it finds that first result. Results come back in the items' order.
create or replace function ll_accrue_batch(p_items jsonb) returns jsonb language plpgsql as $$
declare
  r record; v_res jsonb; v_try int; v_out jsonb[]; v_new text[];
  v_state text; v_msg text; v_detail text; v_hint text;
begin
  v_out := array_fill(null::jsonb, array[jsonb_array_length(p_items)]);
  v_new := ll_lock_batch_members(p_items);

  for r in select value as item, ord from jsonb_array_elements(p_items) with ordinality t(value, ord)
           order by ll_stripe(value->>'memberId'), value->>'memberId', ord loop
    v_res := null;
    for v_try in 1..3 loop
      begin
        v_res := ll_accrue(r.item, r.item->>'memberId' = any(v_new));
        exit;
      exception when others then
        get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text, v_detail = pg_exception_detail, v_hint = pg_exception_hint;
        if v_state = '23505' and v_try < 3 then continue; end if;
        v_res := jsonb_build_object('error', jsonb_build_object('sqlstate', v_state, 'code', v_msg, 'detail', v_detail, 'hint', v_hint));
        exit;
      end;
    end loop;
    v_out[r.ord] := v_res;
  end loop;
  -- A member row made for an item that was then rejected must not stay behind.
  delete from members m where m.member_id = any(v_new) and m.balance = 0
     and not exists (select 1 from ledger_entries e where e.program_id = m.program_id and e.member_id = m.member_id);
  return to_jsonb(v_out);
end $$;
