-- What a refund takes from a member: the points it revokes, never more than the member has
-- available (balance less held) and never below zero; the rest is the refund's shortfall.
create or replace function ll_revocable(p_to_revoke bigint, p_available bigint) returns bigint language sql immutable as $$
  select greatest(least(p_to_revoke, p_available), 0)
$$;
