-- The accounts a cohort's allocation is released between (see cohorts.liability_account): a
-- provision to loyalty_expense; a goodwill cohort's contract liability ('2026-Q4-goodwill', the
-- revenue-reduction treatment of points added by hand) back to revenue, never loyalty or breakage
-- revenue (docs/adjustments.md); any other cohort to p_default.
create or replace function ll_release_account(p_liability text, p_default text, p_cohort text default null) returns text
language sql immutable as $$
  select case when p_liability = 'loyalty_provision' then 'loyalty_expense'
              when p_cohort like '%-goodwill' then 'revenue'
              else p_default end
$$;
