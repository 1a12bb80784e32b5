-- The program's maximum share of an invoice, in whole points, rounds down. A numeric cast to bigint
-- rounds half away from zero, so `(total * share / value)::bigint` let a redemption (and what an
-- invoice adjustment leaves out) go up to one point past the share: 5,610 at 50% and 2 per point
-- allowed 1,403 points, a 2,806 credit on an invoice whose half is 2,805. Found by the fault suite's
-- model (test/faults, docs/faults.md). The two functions are as in 005 and 006 but for floor().

create or replace function ll_hold_redemption(p jsonb) returns jsonb language plpgsql as $$
declare
  v_program text := p->>'programId'; v_invoice text := p->>'invoiceId';
  v_requested bigint := (p->>'points')::bigint; v_total bigint := (p->>'invoiceTotalMinor')::bigint;
  v_value bigint := (p->>'pointValueMinor')::bigint; v_min bigint := (p->>'minPoints')::bigint;
  r redemptions; m members; v_cap bigint; v_applied bigint; v_avail_total bigint; v_left bigint; v_take bigint;
  v_before bigint := 0; v_cum bigint := 0; c record;
begin
  select * into r from redemptions where program_id = v_program and invoice_id = v_invoice;
  if found then return ll_redemption_view(r) || jsonb_build_object('existing', true); end if;

  select * into m from members where program_id = v_program and member_id = p->>'memberId' for update;
  if not found then return jsonb_build_object('status', 'declined', 'reason', 'unknown_member'); end if;
  if m.status <> 'active' then return jsonb_build_object('status', 'declined', 'reason', 'member_not_active', 'mergedInto', m.merged_into); end if;
  -- a redemption after the deadline finds the points already expired
  if m.expires_at is not null and (p->>'occurredAt')::timestamptz > m.expires_at then
    return jsonb_build_object('status', 'declined', 'reason', 'points_expired');
  end if;

  select coalesce(sum(available), 0) into v_avail_total from ll_member_cohorts_available(v_program, m.member_id);
  -- at most the program's share of the invoice, in whole points
  v_cap := floor(v_total::numeric * (p->>'maxInvoiceShareMillionths')::bigint / 1000000 / v_value)::bigint;
  v_cap := least(v_cap, (v_total / v_value));
  v_applied := least(v_requested, v_avail_total, v_cap);
  if v_applied < v_min or v_applied <= 0 then
    return jsonb_build_object('status', 'declined',
      'reason', case when v_avail_total < least(v_requested, v_min) or v_avail_total = 0 then 'insufficient_points' else 'below_minimum' end,
      'available', v_avail_total, 'maxPointsForInvoice', v_cap, 'minPoints', v_min);
  end if;

  insert into redemptions (program_id, invoice_id, redemption_id, member_id, points_requested, points_applied, credit_minor,
                           invoice_total_minor, status, occurred_at)
  values (v_program, v_invoice, (p->>'redemptionId')::uuid, m.member_id, v_requested, v_applied, v_applied * v_value,
          v_total, 'held', (p->>'occurredAt')::timestamptz)
  returning * into r;

  v_left := v_applied;
  for c in select * from ll_member_cohorts_available(v_program, m.member_id) a where a.available > 0 loop
    if p->>'cohortOrder' = 'pro_rata' then
      -- cumulative shares so the cohorts add up to exactly the points applied
      v_cum := v_cum + c.available;
      v_take := (v_applied::numeric * v_cum / v_avail_total)::bigint - v_before;
      v_before := v_before + v_take;
    else
      v_take := least(v_left, c.available);
    end if;
    if v_take > 0 then
      insert into redemption_cohorts (program_id, invoice_id, cohort, points) values (v_program, v_invoice, c.cohort, v_take);
      v_left := v_left - v_take;
    end if;
    exit when v_left = 0 and p->>'cohortOrder' <> 'pro_rata';
  end loop;
  if v_left <> 0 then raise exception 'hold of % did not cover % points', v_invoice, v_applied using errcode = 'LL903'; end if;
  update members set held = held + v_applied where program_id = v_program and member_id = m.member_id;
  return ll_redemption_view(r);
end $$;

create or replace function ll_adjust_redemption(p jsonb) returns jsonb language plpgsql as $$
declare
  v_program text := p->>'programId'; v_invoice text := p->>'invoiceId'; v_adj text := p->>'adjustmentId';
  v_total bigint := (p->>'invoiceTotalMinor')::bigint; v_value bigint;
  r redemptions; a redemption_adjustments; v_out bigint; v_allowed bigint; v_excess bigint := 0;
begin
  select * into r from redemptions where program_id = v_program and invoice_id = v_invoice for update;
  if not found then perform ll_raise('not_found', 404, 'no redemption for this invoice', jsonb_build_object('invoiceId', v_invoice)); end if;
  select * into a from redemption_adjustments where program_id = v_program and invoice_id = v_invoice and adjustment_id = v_adj;
  if found then
    return ll_redemption_view(r) || jsonb_build_object('adjustmentId', v_adj, 'adjustmentPoints', a.points_reversed,
      'adjustmentCreditMinor', a.credit_reversed_minor, 'existing', true);
  end if;
  if r.status = 'held' then -- the saga is still deciding: ask again shortly
    perform ll_raise('redemption_in_progress', 409, 'the redemption is being decided', jsonb_build_object('invoiceId', v_invoice));
  end if;
  if r.status <> 'applied' then -- declined or reversed: no points are out, nothing to give back
    return ll_redemption_view(r) || jsonb_build_object('adjustmentId', v_adj, 'adjustmentPoints', 0, 'adjustmentCreditMinor', 0);
  end if;
  v_value := r.credit_minor / r.points_applied; -- exact: the hold set credit = points x value
  v_out := r.points_applied - r.points_reversed;
  v_allowed := least(v_out, floor(v_total::numeric * (p->>'maxInvoiceShareMillionths')::bigint / 1000000 / v_value)::bigint, v_total / v_value);
  v_excess := v_out - v_allowed;
  if v_excess > 0 then
    perform ll_give_back_redemption(r, v_excess, (p->>'occurredAt')::timestamptz, p->>'actor',
                                    'redeem-adjust:' || v_invoice || ':' || v_adj, 'invoice:' || v_invoice || ':adjustment:' || v_adj);
    update redemptions set points_reversed = points_reversed + v_excess, credit_reversed_minor = credit_reversed_minor + v_excess * v_value,
                           updated_at = now()
     where program_id = v_program and invoice_id = v_invoice returning * into r;
  end if;
  insert into redemption_adjustments (program_id, invoice_id, adjustment_id, invoice_total_minor, points_reversed, credit_reversed_minor, occurred_at, actor)
  values (v_program, v_invoice, v_adj, v_total, v_excess, v_excess * v_value, (p->>'occurredAt')::timestamptz, p->>'actor');
  return ll_redemption_view(r) || jsonb_build_object('adjustmentId', v_adj, 'adjustmentPoints', v_excess, 'adjustmentCreditMinor', v_excess * v_value);
end $$;
