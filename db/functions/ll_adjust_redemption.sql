-- An invoice lowered after its redemption: the points beyond what the new total allows (the
-- program's share of it, in whole points, at the point value the redemption used) go back to the
-- member. p: {programId, invoiceId, adjustmentId, invoiceTotalMinor, maxInvoiceShareMillionths, occurredAt, actor}.
-- Idempotent per adjustment; an adjustment that leaves the credit within the invoice reverses nothing.
-- The share in whole points rounds down (floor), as in ll_hold_redemption: a numeric cast to bigint
-- rounds half away from zero, and let what an adjustment leaves out go one point past the share
-- (found by the fault suite's model, docs/faults.md).
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
  v_allowed := least(v_out, ll_invoice_share_cap(v_total, (p->>'maxInvoiceShareMillionths')::bigint, v_value));
  v_excess := v_out - v_allowed;
  if v_excess > 0 then
    perform ll_give_back_redemption(r, v_excess, (p->>'occurredAt')::timestamptz, p->>'actor',
                                    'redeem-adjust:' || ll_adjustment_key(v_invoice, v_adj),
                                    'invoice:' || v_invoice || ':adjustment:' || v_adj);
    update redemptions set points_reversed = points_reversed + v_excess, credit_reversed_minor = credit_reversed_minor + v_excess * v_value,
                           updated_at = now()
     where program_id = v_program and invoice_id = v_invoice returning * into r;
  end if;
  insert into redemption_adjustments (program_id, invoice_id, adjustment_id, invoice_total_minor, points_reversed, credit_reversed_minor, occurred_at, actor)
  values (v_program, v_invoice, v_adj, v_total, v_excess, v_excess * v_value, (p->>'occurredAt')::timestamptz, p->>'actor');
  return ll_redemption_view(r) || jsonb_build_object('adjustmentId', v_adj, 'adjustmentPoints', v_excess, 'adjustmentCreditMinor', v_excess * v_value);
end $$;
