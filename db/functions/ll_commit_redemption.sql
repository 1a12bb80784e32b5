-- Spend the held points: a redeem entry from the held cohorts, the revenue the cohort formula
-- recognises for them, and the output tax due on the credit where the treatment is consideration
-- (ll_post_redemption_tax). Idempotent.
create or replace function ll_commit_redemption(p_program text, p_invoice text, p_actor text) returns jsonb language plpgsql as $$
declare r redemptions; v_entry bigint; c record; v_key text;
begin
  select * into r from redemptions where program_id = p_program and invoice_id = p_invoice for update;
  if not found then perform ll_raise('not_found', 404, 'no redemption for this invoice', jsonb_build_object('invoiceId', p_invoice)); end if;
  if r.status = 'applied' then return ll_redemption_view(r); end if;
  if r.status <> 'held' then
    perform ll_raise('redemption_not_held', 409, 'the redemption is ' || r.status, jsonb_build_object('invoiceId', p_invoice));
  end if;
  perform 1 from members where program_id = p_program and member_id = r.member_id for update;
  v_key := 'redeem:' || p_invoice;
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
  values (p_program, r.member_id, 'redeem', -r.points_applied, r.occurred_at, 'invoice:' || p_invoice, p_actor, v_key)
  returning entry_id into v_entry;
  for c in select rc.cohort, rc.points from redemption_cohorts rc where rc.program_id = p_program and rc.invoice_id = p_invoice order by rc.cohort loop
    insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, c.cohort, -c.points);
    update member_cohorts set points = points - c.points where program_id = p_program and member_id = r.member_id and cohort = c.cohort;
    perform ll_stripe_add(p_program, c.cohort, r.member_id, d_redeemed => c.points);
    perform ll_recognize_cohort(p_program, c.cohort, r.occurred_at, p_actor, v_key || ':' || c.cohort, 'loyalty_revenue');
  end loop;
  -- output tax due on the part paid with points comes out of what was released (consideration only)
  perform ll_post_redemption_tax(p_program, p_invoice, 0, r.points_applied, r.occurred_at, p_actor, v_key, false);
  update members set balance = balance - r.points_applied, held = held - r.points_applied
   where program_id = p_program and member_id = r.member_id;
  update redemptions set status = 'applied', updated_at = now() where program_id = p_program and invoice_id = p_invoice returning * into r;
  perform ll_emit_event(p_program, 'redemption.applied', r.member_id, r.occurred_at, ll_redemption_view(r));
  return ll_redemption_view(r);
end $$;
