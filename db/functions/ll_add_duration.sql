-- A duration after an instant with one meaning in every session: calendar arithmetic in UTC
-- (months first, clamped to the month's end, then days, then the time part). `timestamptz +
-- interval` alone adds months and days in the session's time zone, so a psql session in another
-- zone would move deadlines by an hour across a DST change; the same sum on a UTC timestamp does
-- not. domain/duration.ts addDuration computes the same for the workflows' timers
-- (test/integration/duration-sql.test.ts compares them).
create or replace function ll_add_duration(p_from timestamptz, p_duration interval) returns timestamptz
language sql immutable strict as $$
  select ((p_from at time zone 'UTC') + p_duration) at time zone 'UTC'
$$;
