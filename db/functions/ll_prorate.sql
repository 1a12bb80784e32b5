-- Pro-rata share of a refund, cumulative so rounding never drifts: after refunds totalling F of an
-- invoice of amount T, round(n * F / T) of its n (points, allocated minor units or micro-units) are
-- taken back in all, and each refund takes the increase. round() on numeric rounds halves away from
-- zero, as domain/money.ts divRound. The one home of refund proration: ll_refund calls it, and
-- test/integration/refund-sql.test.ts checks it (examples and properties).
create or replace function ll_prorate(p_n numeric, p_before numeric, p_refund numeric, p_total numeric)
returns numeric language plpgsql immutable as $$
begin
  if p_refund <= 0 or p_before < 0 or p_total <= 0 or p_before + p_refund > p_total then
    raise exception 'refund of % after % outside an invoice of %', p_refund, p_before, p_total using errcode = '22003';
  end if;
  return round(p_n * (p_before + p_refund) / p_total) - round(p_n * p_before / p_total);
end
$$;
