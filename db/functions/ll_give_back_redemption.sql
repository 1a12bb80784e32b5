-- Gives back p_points of an applied redemption to the cohorts they came from, in proportion to what
-- each cohort still has out (cumulative shares, so the parts add up exactly), on the member who holds
-- the points now; the revenue is recomputed per cohort. Dated in a closed period (see the close,
-- programs.locked_until), it lands in the open one. Points given back to a member whose deadline had
-- passed and been expired get a deadline again (ll_rearm_returned_points); their share of the output
-- tax booked on the credit is reversed (ll_post_redemption_tax). Returns the ledger entry id.
create or replace function ll_give_back_redemption(r redemptions, p_points bigint, p_occurred timestamptz, p_actor text,
                                        p_key text, p_reference text) returns bigint language plpgsql as $$
declare m members; v_entry bigint; c record; v_out bigint; v_cum bigint := 0; v_take bigint; v_occurred timestamptz;
begin
  v_occurred := greatest(p_occurred, coalesce(ll_locked_until(r.program_id), p_occurred));
  m := ll_lock_current_member(r.program_id, r.member_id);
  select sum(points - points_reversed) into v_out from redemption_cohorts where program_id = r.program_id and invoice_id = r.invoice_id;
  if p_points <= 0 or p_points > v_out then
    raise exception 'give back % of % points out on %', p_points, v_out, r.invoice_id using errcode = 'LL904';
  end if;
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
  values (r.program_id, m.member_id, 'redeem_reversal', p_points, v_occurred, p_reference, p_actor, p_key)
  returning entry_id into v_entry;
  for c in select rc.cohort, rc.points - rc.points_reversed as out from redemption_cohorts rc
            where rc.program_id = r.program_id and rc.invoice_id = r.invoice_id and rc.points > rc.points_reversed
            order by rc.cohort loop
    v_take := ll_prorate(p_points, v_cum, c.out, v_out);
    v_cum := v_cum + c.out;
    continue when v_take = 0;
    update redemption_cohorts set points_reversed = points_reversed + v_take
     where program_id = r.program_id and invoice_id = r.invoice_id and cohort = c.cohort;
    insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, c.cohort, v_take);
    insert into member_cohorts (program_id, member_id, cohort, points) values (r.program_id, m.member_id, c.cohort, v_take)
      on conflict (program_id, member_id, cohort) do update set points = member_cohorts.points + excluded.points;
    perform ll_stripe_add(r.program_id, c.cohort, m.member_id, d_redeemed => -v_take);
    perform ll_recognize_cohort(r.program_id, c.cohort, v_occurred, p_actor, p_key || ':' || c.cohort, 'loyalty_revenue');
  end loop;
  update members set balance = balance + p_points where program_id = r.program_id and member_id = m.member_id;
  -- the points' share of the output tax booked on the credit goes back with them (r: before this give-back)
  perform ll_post_redemption_tax(r.program_id, r.invoice_id, r.points_reversed, p_points, v_occurred, p_actor, p_key, true);
  -- back after the member's deadline had passed and expired: the deadline re-arms (they expire at once)
  perform ll_rearm_returned_points(r.program_id, m.member_id, v_occurred);
  return v_entry;
end $$;
