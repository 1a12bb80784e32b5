-- Expires a member's whole available balance if their deadline is at or before p_as_of.
-- Never more than the balance: the amount is read under the row lock, in this transaction. Held
-- points (a redemption in progress) stay: per cohort, only what the member's holds have not taken
-- expires (ll_member_cohorts_available), the oldest cohorts first. Dated at the deadline, or at the
-- start of the open period if the deadline fell in a closed one (a late expiry is a correction).
-- The key is unique per expiry event (it names the member's last entry): a backdated purchase can
-- set the same deadline again later.
create or replace function ll_expire_member(p_program text, p_member text, p_as_of timestamptz, p_actor text)
returns jsonb language plpgsql as $$
declare
  m members; v_points bigint; v_deadline timestamptz; v_occurred timestamptz; v_entry bigint; v_key text; r record; v_journal bigint;
  v_left bigint; v_take bigint; v_last bigint;
begin
  select * into m from members where program_id = p_program and member_id = p_member for update;
  if not found or m.status <> 'active' or m.expires_at is null or m.expires_at > p_as_of then
    return jsonb_build_object('expiredPoints', 0, 'expiresAt', ll_ts(m.expires_at));
  end if;
  v_deadline := m.expires_at;
  v_occurred := greatest(v_deadline, coalesce(ll_locked_until(p_program), v_deadline));
  v_points := m.balance - m.held;
  select coalesce(max(entry_id), 0) into v_last from ledger_entries where program_id = p_program and member_id = p_member;
  v_key := 'expire:' || jsonb_build_array(p_member, ll_ts(v_deadline), v_last)::text;
  if v_points > 0 then
    insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
    values (p_program, p_member, 'expire', -v_points, v_occurred, 'expiry:' || ll_ts(v_deadline), p_actor, v_key)
    returning entry_id into v_entry;
    v_left := v_points;
    for r in select a.cohort, a.available as points from ll_member_cohorts_available(p_program, p_member) a
             where a.available > 0 loop
      exit when v_left = 0;
      v_take := least(v_left, r.points);
      insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, r.cohort, -v_take);
      update member_cohorts set points = points - v_take where program_id = p_program and member_id = p_member and cohort = r.cohort;
      perform ll_stripe_add(p_program, r.cohort, p_member, d_expired => v_take);
      v_journal := ll_recognize_cohort(p_program, r.cohort, v_occurred, p_actor, v_key || ':' || r.cohort, 'breakage_revenue');
      v_left := v_left - v_take;
    end loop;
    update members set balance = balance - v_points where program_id = p_program and member_id = p_member;
    perform ll_emit_event(p_program, 'points.expired', p_member, v_occurred,
      jsonb_build_object('memberId', p_member, 'points', v_points, 'deadline', ll_ts(v_deadline)));
  end if;
  update members set expires_at = null, armed_deadline = null where program_id = p_program and member_id = p_member;
  return jsonb_build_object('expiredPoints', greatest(v_points, 0), 'deadline', ll_ts(v_deadline), 'entryId', v_entry);
end $$;
