-- A timestamp as the API writes it: UTC, milliseconds, Z.
-- Stable, as its body is (to_char and a text-to-interval cast are): so the planner inlines it into the
-- query that calls it; declared immutable it could not be, and each query ran it as a function call.
create or replace function ll_ts(p timestamptz) returns text language sql stable as $$
  select to_char(p at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
