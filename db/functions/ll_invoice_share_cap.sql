-- The most points one invoice may be paid with: the program's share of the invoice total
-- (maxInvoiceShare, in millionths), in whole points of `p_value_minor`, rounded down, and never
-- more than the whole invoice. The one home of the cap: a redemption's hold (ll_hold_redemption)
-- and an invoice lowered after its redemption (ll_adjust_redemption).
create or replace function ll_invoice_share_cap(p_total_minor bigint, p_share_millionths bigint, p_value_minor bigint)
returns bigint language sql immutable strict as $$
  select least(floor(p_total_minor::numeric * p_share_millionths / 1000000 / p_value_minor)::bigint, p_total_minor / p_value_minor)
$$;
