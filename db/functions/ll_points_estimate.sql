-- The estimate that prices a program's new points: the one recorded by its latest booked close
-- (closes.points_rate, set by ll_close_book when the approval is booked), with that close's period.
-- No row: no close has set one, and the rule's expectedRedemptionRate (the prior) prices them.
create or replace function ll_points_estimate(p_program text) returns table (rate numeric, period text)
language sql stable as $$
  select c.points_rate, c.period from closes c
   where c.program_id = p_program and c.points_rate is not null
   order by c.period desc limit 1
$$;
