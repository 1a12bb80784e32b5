-- What a member can still spend or expire, per cohort: their points less what their holds took.
create or replace function ll_member_cohorts_available(p_program text, p_member text)
returns table (cohort text, available bigint) language sql stable as $$
  select mc.cohort, mc.points - coalesce((
      select sum(rc.points) from redemptions r join redemption_cohorts rc using (program_id, invoice_id)
       where r.program_id = p_program and r.member_id = p_member and r.status = 'held' and rc.cohort = mc.cohort), 0)
    from member_cohorts mc
   where mc.program_id = p_program and mc.member_id = p_member
   order by mc.cohort
$$;
