-- The quarter an instant falls in, in UTC, as a cohort and a period are named ('2026-Q3'):
-- domain/period.ts quarterOf computes the same for the API (test/integration/period-sql.test.ts
-- compares them).
create or replace function ll_quarter_of(p_at timestamptz) returns text language sql immutable strict as $$
  select to_char(p_at at time zone 'UTC', 'YYYY-"Q"Q')
$$;
