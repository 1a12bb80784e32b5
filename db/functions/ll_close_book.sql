-- Books an approved close: per cohort, the catch-up of the change of estimate as of the period's
-- end (dated at its last instant), the new estimate, then the true-up of what happened after the
-- period with the new estimate (dated now, in the open period). p_rows: [{cohort, rate (decimal
-- string), catchUpMinor}]. Once per close (closes.booked_at).
create or replace function ll_close_book(p_program text, p_period text, p_period_end timestamptz, p_rows jsonb, p_actor text)
returns jsonb language plpgsql as $$
declare x record; c cohorts; v_key text; v_booked int := 0; v_close closes;
begin
  select * into v_close from closes where program_id = p_program and period = p_period for update;
  if not found then perform ll_raise('not_found', 404, 'no close of this period', jsonb_build_object('period', p_period)); end if;
  if v_close.booked_at is not null then return jsonb_build_object('cohortsBooked', 0, 'alreadyBooked', true); end if;
  for x in select r->>'cohort' as cohort, (r->>'rate')::numeric as rate, (r->>'catchUpMinor')::bigint as catch_up
             from jsonb_array_elements(p_rows) r order by 1 loop
    v_key := 'close:' || p_period || ':' || x.cohort;
    select * into c from cohorts where program_id = p_program and cohort = x.cohort for update;
    if not found then continue; end if;
    if x.catch_up <> 0 then
      perform ll_post_journal(p_program, 'recognition', p_period_end - interval '1 millisecond', 'close:' || p_period, p_actor, v_key,
        case when x.catch_up > 0 then jsonb_build_array(
          jsonb_build_object('account', c.liability_account, 'debitMinor', x.catch_up, 'cohort', x.cohort),
          jsonb_build_object('account', ll_release_account(c.liability_account, 'loyalty_revenue', x.cohort), 'creditMinor', x.catch_up, 'cohort', x.cohort))
        else jsonb_build_array(
          jsonb_build_object('account', ll_release_account(c.liability_account, 'loyalty_revenue', x.cohort), 'debitMinor', -x.catch_up, 'cohort', x.cohort),
          jsonb_build_object('account', c.liability_account, 'creditMinor', -x.catch_up, 'cohort', x.cohort)) end);
    end if;
    update cohorts set ultimate_redemption_rate = x.rate, recognized_minor = recognized_minor + x.catch_up
     where program_id = p_program and cohort = x.cohort;
    perform ll_recognize_cohort(p_program, x.cohort, now(), p_actor, v_key || ':after-period', 'loyalty_revenue');
    v_booked := v_booked + 1;
  end loop;
  update closes set booked_at = now(), updated_at = now() where program_id = p_program and period = p_period;
  return jsonb_build_object('cohortsBooked', v_booked);
end $$;
