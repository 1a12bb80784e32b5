-- Pro-rata shares, cumulative so rounding never drifts: n split over the parts of a total, the
-- part that comes after `before` gets round(n * (before + part) / total) - round(n * before / total),
-- so the shares of all the parts add up to exactly n. round() on numeric rounds halves away from
-- zero, as domain/money.ts divRound. The one home of proration: a refund's points and allocation
-- (ll_refund: the parts are the refunds of an invoice), a pro-rata redemption's cohorts
-- (ll_hold_redemption: the parts are the cohorts' available points) and the cohorts of points
-- given back (ll_give_back_redemption). test/integration/refund-sql.test.ts checks it.
create or replace function ll_prorate(p_n numeric, p_before numeric, p_part numeric, p_total numeric)
returns numeric language plpgsql immutable as $$
begin
  if p_part <= 0 or p_before < 0 or p_total <= 0 or p_before + p_part > p_total then
    raise exception 'a part of % after % outside a total of %', p_part, p_before, p_total using errcode = '22003';
  end if;
  return round(p_n * (p_before + p_part) / p_total) - round(p_n * p_before / p_total);
end
$$;
