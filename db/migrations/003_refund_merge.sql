-- Refunds: revoke the points earned on an invoice in proportion to the amount refunded.
-- Cumulative: after refunds totalling F of an invoice of amount T that earned n points, the
-- revocation target is round(n * F / T); each refund revokes the increase. Never below zero:
-- what the member no longer has is recorded as a shortfall.
create function ll_refund(p jsonb) returns jsonb language plpgsql as $$
declare
  v_program text := p->>'programId'; v_refund text := p->>'refundId'; v_invoice text := p->>'invoiceId';
  v_amount bigint := (p->>'amountMinor')::bigint; v_occurred timestamptz := (p->>'occurredAt')::timestamptz;
  v_actor text := p->>'actor';
  v_prior jsonb; a accruals; r refunds; m members; v_member text; v_before bigint; v_to_revoke bigint;
  v_alloc_rev bigint; v_alloc_rev_micro numeric; v_available bigint; v_revoked bigint; v_left bigint; v_take bigint; v_entry bigint;
  v_journal bigint; v_key text; c record; v_body jsonb; v_liability text;
begin
  v_prior := ll_idem_claim(v_program, p->>'idemKey', p->>'requestHash');
  if v_prior is not null then return v_prior; end if;
  -- The invoice's accrual row serialises refunds of one invoice; the refundId check comes after it.
  select * into a from accruals where program_id = v_program and invoice_id = v_invoice for update;
  select * into r from refunds where program_id = v_program and refund_id = v_refund;
  if found then
    if r.request_hash <> p->>'requestHash' then
      perform ll_raise('refund_already_recorded', 409, 'this refundId was recorded with a different request', jsonb_build_object('refundId', v_refund));
    end if;
    perform ll_idem_store(v_program, p->>'idemKey', 200, r.response);
    return jsonb_build_object('status', 200, 'body', r.response, 'replayed', true);
  end if;
  if a.invoice_id is null then
    perform ll_raise('not_found', 404, 'no accrual for this invoice', jsonb_build_object('invoiceId', v_invoice));
  end if;
  if a.member_id <> p->>'memberId' then
    perform ll_raise('validation_failed', 400, 'memberId is not the member the invoice earned points for', jsonb_build_object('invoiceId', v_invoice, 'memberId', p->>'memberId'));
  end if;
  select coalesce(sum(amount_minor), 0) into v_before from refunds where program_id = v_program and invoice_id = v_invoice;
  if v_before + v_amount > a.amount_minor then
    perform ll_raise('refund_exceeds_invoice', 422, 'refunds would exceed the invoice amount', jsonb_build_object('invoiceId', v_invoice, 'invoiceAmountMinor', a.amount_minor, 'alreadyRefundedMinor', v_before));
  end if;
  v_to_revoke := round(a.points::numeric * (v_before + v_amount) / a.amount_minor) - round(a.points::numeric * v_before / a.amount_minor);
  v_alloc_rev := round(a.allocated_minor::numeric * (v_before + v_amount) / a.amount_minor) - round(a.allocated_minor::numeric * v_before / a.amount_minor);
  v_alloc_rev_micro := round(a.allocated_micro * (v_before + v_amount) / a.amount_minor) - round(a.allocated_micro * v_before / a.amount_minor);

  m := ll_lock_current_member(v_program, a.credited_member_id);
  v_member := m.member_id;
  select liability_account into v_liability from cohorts where program_id = v_program and cohort = a.cohort;
  v_available := m.balance - m.held;
  v_revoked := least(v_to_revoke, v_available);
  v_key := 'refund:' || v_refund;

  if v_alloc_rev > 0 then
    v_journal := ll_post_journal(v_program, 'refund', v_occurred, 'refund:' || v_refund, v_actor, v_key,
      jsonb_build_array(
        jsonb_build_object('account', coalesce(v_liability, 'loyalty_contract_liability'), 'debitMinor', v_alloc_rev, 'cohort', a.cohort),
        jsonb_build_object('account', ll_release_account(v_liability, 'revenue'), 'creditMinor', v_alloc_rev)));
  end if;
  perform ll_stripe_add(v_program, a.cohort, v_member, d_alloc_rev => v_alloc_rev, d_alloc_rev_micro => v_alloc_rev_micro);
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key, rule_version, journal_entry_id)
  values (v_program, v_member, 'earn_reversal', -v_revoked, v_occurred, 'refund:' || v_refund || ':invoice:' || v_invoice, v_actor, v_key, a.rule_version, v_journal)
  returning entry_id into v_entry;

  -- Take the points from the invoice's own cohort first, then the oldest.
  v_left := v_revoked;
  for c in select mc.cohort, mc.points from member_cohorts mc
           where mc.program_id = v_program and mc.member_id = v_member and mc.points > 0
           order by (mc.cohort = a.cohort) desc, mc.cohort loop
    exit when v_left = 0;
    v_take := least(v_left, c.points);
    insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, c.cohort, -v_take);
    update member_cohorts set points = points - v_take where program_id = v_program and member_id = v_member and cohort = c.cohort;
    perform ll_stripe_add(v_program, c.cohort, v_member, d_revoked => v_take);
    v_left := v_left - v_take;
  end loop;
  if v_left <> 0 then raise exception 'member cohorts do not cover the balance of %', v_member using errcode = 'LL902'; end if;
  update members set balance = balance - v_revoked where program_id = v_program and member_id = v_member;

  v_body := jsonb_build_object('refundId', v_refund, 'invoiceId', v_invoice, 'memberId', v_member,
    'pointsRevoked', v_revoked, 'shortfallPoints', v_to_revoke - v_revoked, 'allocatedReversedMinor', v_alloc_rev,
    'balance', m.balance - v_revoked);
  insert into refunds (program_id, refund_id, invoice_id, member_id, amount_minor, points_revoked, shortfall_points,
                       allocated_reversed_minor, occurred_at, request_hash, response)
  values (v_program, v_refund, v_invoice, v_member, v_amount, v_revoked, v_to_revoke - v_revoked, v_alloc_rev,
          v_occurred, p->>'requestHash', v_body);
  return ll_idem_store(v_program, p->>'idemKey', 201, v_body);
end $$;

-- Merge a duplicate member into a survivor: points, cohorts and purchase dates move; the
-- survivor's deadline becomes the later of the two. Both rows are locked in key order.
create function ll_merge(p jsonb) returns jsonb language plpgsql as $$
declare
  v_program text := p->>'programId'; v_from text := p->>'memberId'; v_into text := p->>'intoMemberId';
  v_occurred timestamptz := (p->>'occurredAt')::timestamptz; v_actor text := p->>'actor';
  v_prior jsonb; f members; s members; v_out bigint; v_in bigint; c record; v_key text; v_exp timestamptz; v_body jsonb;
begin
  v_prior := ll_idem_claim(v_program, p->>'idemKey', p->>'requestHash');
  if v_prior is not null then return v_prior; end if;
  if v_from = v_into then
    perform ll_raise('validation_failed', 400, 'a member cannot be merged into itself', jsonb_build_object('memberId', v_from));
  end if;
  perform 1 from members where program_id = v_program and member_id in (v_from, v_into)
    order by member_id for update;
  select * into f from members where program_id = v_program and member_id = v_from;
  if not found then perform ll_raise('not_found', 404, 'no such member', jsonb_build_object('memberId', v_from)); end if;
  select * into s from members where program_id = v_program and member_id = v_into;
  if not found then perform ll_raise('not_found', 404, 'no such member', jsonb_build_object('memberId', v_into)); end if;
  if f.status <> 'active' then
    perform ll_raise('member_not_active', 409, 'member ' || v_from || ' is ' || f.status, jsonb_build_object('memberId', v_from, 'mergedInto', f.merged_into));
  end if;
  if s.status <> 'active' then
    perform ll_raise('member_not_active', 409, 'member ' || v_into || ' is ' || s.status, jsonb_build_object('memberId', v_into, 'mergedInto', s.merged_into));
  end if;
  if f.held > 0 then
    perform ll_raise('member_has_holds', 409, 'member has points held by a redemption in progress', jsonb_build_object('memberId', v_from, 'held', f.held));
  end if;

  -- Purchase protection first: points past their deadline expire before they could move.
  perform ll_expire_member(v_program, v_from, v_occurred, v_actor);
  perform ll_expire_member(v_program, v_into, v_occurred, v_actor);
  select * into f from members where program_id = v_program and member_id = v_from;
  select * into s from members where program_id = v_program and member_id = v_into;

  v_key := 'merge:' || jsonb_build_array(v_from, v_into)::text;
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
  values (v_program, v_from, 'merge_out', -f.balance, v_occurred, 'merge:into:' || v_into, v_actor, v_key || ':out')
  returning entry_id into v_out;
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
  values (v_program, v_into, 'merge_in', f.balance, v_occurred, 'merge:from:' || v_from, v_actor, v_key || ':in')
  returning entry_id into v_in;
  for c in select mc.cohort, mc.points from member_cohorts mc
           where mc.program_id = v_program and mc.member_id = v_from and mc.points > 0 order by mc.cohort loop
    insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_out, c.cohort, -c.points), (v_in, c.cohort, c.points);
    update member_cohorts set points = 0 where program_id = v_program and member_id = v_from and cohort = c.cohort;
    insert into member_cohorts (program_id, member_id, cohort, points) values (v_program, v_into, c.cohort, c.points)
      on conflict (program_id, member_id, cohort) do update set points = member_cohorts.points + excluded.points;
  end loop;

  v_exp := case when f.balance > 0 then greatest(s.expires_at, f.expires_at) else s.expires_at end;
  update members set balance = balance + f.balance, expires_at = v_exp,
         last_purchase_at = greatest(last_purchase_at, f.last_purchase_at),
         jurisdiction = coalesce(jurisdiction, f.jurisdiction)
   where program_id = v_program and member_id = v_into;
  update members set balance = 0, expires_at = null, status = 'merged', merged_into = v_into
   where program_id = v_program and member_id = v_from;
  perform ll_request_wake(v_program, v_from);
  if v_exp is not null and (s.armed_deadline is null or v_exp < s.armed_deadline) then
    perform ll_request_wake(v_program, v_into);
  end if;

  v_body := jsonb_build_object('memberId', v_from, 'intoMemberId', v_into, 'status', 'merged', 'pointsMoved', f.balance,
    'survivor', jsonb_build_object('memberId', v_into, 'balance', s.balance + f.balance, 'expiresAt', ll_ts(v_exp)));
  return ll_idem_store(v_program, p->>'idemKey', 201, v_body);
end $$;
