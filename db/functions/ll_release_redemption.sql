-- Compensation of a hold: the points are available again. If the member's deadline passed while
-- they were held (an expiry ran since the hold), they expire now: expiry skipped them only because
-- they were held, and no purchase protected them. If that expiry found nothing available (every
-- point held) it wrote no entry: the deadline re-arms then (ll_rearm_returned_points), and the member
-- workflow expires them. Idempotent; refuses an applied redemption.
create or replace function ll_release_redemption(p_program text, p_invoice text, p_reason text) returns jsonb language plpgsql as $$
declare r redemptions; v_deadline timestamptz; v_entry bigint; v_key text; c record;
begin
  select * into r from redemptions where program_id = p_program and invoice_id = p_invoice for update;
  if not found then perform ll_raise('not_found', 404, 'no redemption for this invoice', jsonb_build_object('invoiceId', p_invoice)); end if;
  if r.status = 'held' then
    perform 1 from members where program_id = p_program and member_id = r.member_id for update;
    update members set held = held - r.points_applied where program_id = p_program and member_id = r.member_id;
    update redemptions set status = 'declined', reason = p_reason, updated_at = now()
     where program_id = p_program and invoice_id = p_invoice returning * into r;
    select max(occurred_at) into v_deadline from ledger_entries
     where program_id = p_program and member_id = r.member_id and type = 'expire' and recorded_at >= r.created_at;
    if v_deadline is not null then
      v_key := 'expire-released:' || p_invoice;
      insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
      values (p_program, r.member_id, 'expire', -r.points_applied, now(), 'expiry:' || ll_ts(v_deadline) || ':released-hold:' || p_invoice,
              'system:redemption-saga', v_key)
      returning entry_id into v_entry;
      for c in select rc.cohort, rc.points from redemption_cohorts rc where rc.program_id = p_program and rc.invoice_id = p_invoice order by rc.cohort loop
        insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, c.cohort, -c.points);
        update member_cohorts set points = points - c.points where program_id = p_program and member_id = r.member_id and cohort = c.cohort;
        perform ll_stripe_add(p_program, c.cohort, r.member_id, d_expired => c.points);
        perform ll_recognize_cohort(p_program, c.cohort, now(), 'system:redemption-saga', v_key || ':' || c.cohort, 'breakage_revenue');
      end loop;
      update members set balance = balance - r.points_applied where program_id = p_program and member_id = r.member_id;
    else
      -- an expiry that found every point held wrote no entry but cleared the deadline: re-arm it
      perform ll_rearm_returned_points(p_program, r.member_id, now());
    end if;
    perform ll_emit_event(p_program, 'redemption.declined', r.member_id, now(), ll_redemption_view(r));
  elsif r.status <> 'declined' then
    perform ll_raise('redemption_not_held', 409, 'the redemption is ' || r.status, jsonb_build_object('invoiceId', p_invoice));
  end if;
  return ll_redemption_view(r);
end $$;
