-- A timestamp as the API writes it: UTC, milliseconds, Z.
create or replace function ll_ts(p timestamptz) returns text language sql immutable as $$
  select to_char(p at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
