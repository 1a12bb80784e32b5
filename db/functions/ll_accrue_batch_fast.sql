-- The same batch without a subtransaction per item: cheaper (no subtransaction XIDs, which past 64
-- per transaction also slow every other backend's snapshots). A batch of new accruals only is
-- written set-based (ll_accrue_set); any other runs ll_accrue item by item. Any error aborts the
-- whole batch, which db/ledger.ts then runs again through ll_accrue_batch, where each item stands alone.
create or replace function ll_accrue_batch_fast(p_items jsonb) returns jsonb language plpgsql as $$
declare
  r record; v_out jsonb[]; v_new text[]; v_set jsonb;
begin
  v_new := ll_lock_batch_members(p_items);
  v_set := ll_accrue_set(p_items, v_new);
  if v_set is not null then return v_set; end if;
  v_out := array_fill(null::jsonb, array[jsonb_array_length(p_items)]);
  for r in select value as item, ord from jsonb_array_elements(p_items) with ordinality t(value, ord)
           order by ll_stripe(value->>'memberId'), value->>'memberId', ord loop
    v_out[r.ord] := ll_accrue(r.item, r.item->>'memberId' = any(v_new));
  end loop;
  return to_jsonb(v_out);
end $$;
