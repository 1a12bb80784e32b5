-- The accounts a cohort's allocation is released between (see cohorts.liability_account).
create or replace function ll_release_account(p_liability text, p_default text) returns text language sql immutable as $$
  select case when p_liability = 'loyalty_provision' then 'loyalty_expense' else p_default end
$$;
