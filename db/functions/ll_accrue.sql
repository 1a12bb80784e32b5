-- One accrual. p: {programId, idemKey, requestHash, accrualId, memberId, invoiceId, amountMinor, points,
-- allocatedMinor, allocatedMicro, cohort, occurredAt, storeId, jurisdiction, expiry, expectedRedemptionRate,
-- ruleVersion, debitAccount, creditAccount, actor, rateClose}. p_new: the member row was created by this batch.
-- Business errors are raised before anything is written. expectedRedemptionRate is the rate the
-- allocation used: the estimate of the close named by rateClose (ll_points_estimate), or the rule's
-- own (rateClose null) before any close set one. A caller that priced with another estimate than
-- the one in force (its cache predates a close's booking) gets estimate_changed and prices again.
create or replace function ll_accrue(p jsonb, p_new boolean) returns jsonb language plpgsql as $$
declare
  v_program text := p->>'programId'; v_invoice text := p->>'invoiceId';
  v_occurred timestamptz := (p->>'occurredAt')::timestamptz;
  v_points bigint := (p->>'points')::bigint; v_alloc bigint := (p->>'allocatedMinor')::bigint;
  v_cohort text := p->>'cohort'; v_actor text := p->>'actor';
  a accruals; k idempotency_keys; m members; v_member text; v_jur text; v_exp timestamptz;
  v_journal bigint; v_entry bigint; v_body jsonb; e record;
begin
  -- The Idempotency-Key, then the natural key: one accrual per invoice, whatever the key. Read
  -- only: the key is written with the result, at the end (a concurrent duplicate that commits
  -- first makes that insert fail, and the batch runs the item again, finding it).
  select * into k from idempotency_keys where scope = v_program and idem_key = p->>'idemKey';
  if found then
    if k.request_hash <> p->>'requestHash' then
      perform ll_raise('idempotency_key_reused', 409, 'this Idempotency-Key was used with a different request body', jsonb_build_object('idempotencyKey', p->>'idemKey'));
    end if;
    return jsonb_build_object('status', k.status_code, 'body', k.response, 'replayed', true);
  end if;
  select * into a from accruals where program_id = v_program and invoice_id = v_invoice;
  if found then
    if a.request_hash <> p->>'requestHash' then
      perform ll_raise('invoice_already_accrued', 409, 'this invoice already earned points with a different request', jsonb_build_object('invoiceId', v_invoice, 'accrualId', a.accrual_id));
    end if;
    return jsonb_build_object('status', 200, 'body', a.response, 'replayed', true);
  end if;

  select * into e from ll_points_estimate(v_program);
  if e.period is distinct from p->>'rateClose' or (e.period is not null and e.rate <> (p->>'expectedRedemptionRate')::numeric) then
    perform ll_raise('estimate_changed', 409, 'the estimate that prices new points changed; price the accrual again',
      jsonb_build_object('rateClose', e.period, 'expectedRedemptionRate', e.rate));
  end if;

  m := ll_lock_current_member(v_program, p->>'memberId');
  if m.member_id is null then
    insert into members (program_id, member_id) values (v_program, p->>'memberId') on conflict do nothing;
    m := ll_lock_current_member(v_program, p->>'memberId');
  end if;
  v_member := m.member_id;
  if m.status <> 'active' then
    perform ll_raise('member_not_active', 409, 'member is ' || m.status, jsonb_build_object('memberId', v_member));
  end if;

  -- Purchase protection: a purchase after the deadline finds the points already expired.
  if m.expires_at is not null and v_occurred > m.expires_at then
    perform ll_expire_member(v_program, v_member, v_occurred, v_actor);
    select * into m from members where program_id = v_program and member_id = v_member;
  end if;

  v_jur := coalesce(p->>'jurisdiction', m.jurisdiction);
  v_exp := ll_add_duration(v_occurred, ll_expiry_window(p->'expiry', v_jur));
  if v_exp is not null then v_exp := greatest(v_exp, m.expires_at); end if;

  if v_alloc > 0 then
    v_journal := ll_post_journal(v_program, 'accrual', v_occurred, 'invoice:' || v_invoice, v_actor, 'accrual:' || v_invoice,
      jsonb_build_array(
        jsonb_build_object('account', coalesce(p->>'debitAccount', 'revenue'), 'debitMinor', v_alloc),
        jsonb_build_object('account', coalesce(p->>'creditAccount', 'loyalty_contract_liability'), 'creditMinor', v_alloc, 'cohort', v_cohort)));
  end if;
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key, rule_version, journal_entry_id)
  values (v_program, v_member, 'earn', v_points, v_occurred, 'invoice:' || v_invoice, v_actor, 'accrual:' || v_invoice, (p->>'ruleVersion')::int, v_journal)
  returning entry_id into v_entry;
  if v_points > 0 then
    insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, v_cohort, v_points);
    insert into member_cohorts (program_id, member_id, cohort, points) values (v_program, v_member, v_cohort, v_points)
      on conflict (program_id, member_id, cohort) do update set points = member_cohorts.points + excluded.points;
  end if;
  insert into cohorts (program_id, cohort, ultimate_redemption_rate, liability_account)
    values (v_program, v_cohort, (p->>'expectedRedemptionRate')::numeric, coalesce(p->>'creditAccount', 'loyalty_contract_liability'))
    on conflict do nothing;
  perform ll_stripe_add(v_program, v_cohort, v_member, d_issued => v_points, d_alloc => v_alloc,
                        d_alloc_micro => (p->>'allocatedMicro')::numeric);

  update members set balance = balance + v_points, expires_at = v_exp, jurisdiction = v_jur,
         last_purchase_at = greatest(last_purchase_at, v_occurred)
   where program_id = v_program and member_id = v_member;
  -- Wake the workflow only if it has no timer that fires at or before the new deadline.
  if p_new or (v_exp is not null and (m.armed_deadline is null or v_exp < m.armed_deadline)) then
    perform ll_request_wake(v_program, v_member);
  end if;

  v_body := jsonb_build_object('accrualId', p->>'accrualId', 'memberId', v_member, 'points', v_points,
    'allocatedMinor', v_alloc, 'balance', m.balance + v_points, 'expiresAt', ll_ts(v_exp), 'cohort', v_cohort,
    'expectedRedemptionRate', (p->>'expectedRedemptionRate')::numeric, 'rateSetByClose', p->>'rateClose');
  insert into accruals (program_id, invoice_id, accrual_id, member_id, credited_member_id, amount_minor, points, allocated_minor,
                        allocated_micro, cohort, occurred_at, store_id, jurisdiction, rule_version, request_hash, response,
                        redemption_rate, rate_close)
  values (v_program, v_invoice, (p->>'accrualId')::uuid, p->>'memberId', v_member, (p->>'amountMinor')::bigint, v_points, v_alloc,
          (p->>'allocatedMicro')::numeric, v_cohort, v_occurred, p->>'storeId', p->>'jurisdiction', (p->>'ruleVersion')::int,
          p->>'requestHash', v_body, (p->>'expectedRedemptionRate')::numeric, p->>'rateClose');
  insert into idempotency_keys (scope, idem_key, request_hash, status_code, response)
  values (v_program, p->>'idemKey', p->>'requestHash', 201, v_body);
  -- the webhook outbox, in this transaction (one index probe when nobody subscribes)
  perform ll_emit_event(v_program, 'points.earned', v_member, v_occurred, v_body || jsonb_build_object('invoiceId', v_invoice));
  return jsonb_build_object('status', 201, 'body', v_body, 'replayed', false);
end $$;
