-- The compensating reversal of an applied redemption (a lost chargeback): what is still out goes
-- back to the cohorts it came from, on the member who holds the points now, and the recognised
-- revenue is recomputed. Idempotent.
create or replace function ll_reverse_redemption(p_program text, p_invoice text, p_occurred timestamptz, p_actor text, p_reason text)
returns jsonb language plpgsql as $$
declare r redemptions;
begin
  select * into r from redemptions where program_id = p_program and invoice_id = p_invoice for update;
  if not found then perform ll_raise('not_found', 404, 'no redemption for this invoice', jsonb_build_object('invoiceId', p_invoice)); end if;
  if r.status = 'reversed' then return ll_redemption_view(r); end if;
  if r.status <> 'applied' then
    perform ll_raise('redemption_not_applied', 409, 'the redemption is ' || r.status, jsonb_build_object('invoiceId', p_invoice));
  end if;
  if r.points_applied > r.points_reversed then
    perform ll_give_back_redemption(r, r.points_applied - r.points_reversed, p_occurred, p_actor,
                                    'redeem-reversal:' || p_invoice, 'invoice:' || p_invoice || ':' || p_reason);
  end if;
  update redemptions set status = 'reversed', reason = p_reason, points_reversed = points_applied, credit_reversed_minor = credit_minor,
                         updated_at = now()
   where program_id = p_program and invoice_id = p_invoice returning * into r;
  perform ll_emit_event(p_program, 'redemption.reversed', r.member_id, p_occurred, ll_redemption_view(r));
  return ll_redemption_view(r);
end $$;
