-- The stripe of a member: the low 4 bits of the 4th byte of md5(member id). domain/stripe.ts
-- computes the same, so the API can send accruals of disjoint stripes down separate lanes.
create or replace function ll_stripe(p_member text) returns smallint language sql immutable as $$
  select (get_byte(decode(md5(p_member), 'hex'), 3) & 15)::smallint
$$;
