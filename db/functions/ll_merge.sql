-- Merge a duplicate member into a survivor: points, cohorts and purchase dates move; the
-- survivor's deadline becomes the later of the two. Both rows are locked in key order. Members
-- merged into the merged member before are pointed at the survivor (chains compressed).
-- A merge moves points as an adjustment does, so it passes the same approval gate (ll_approval_gate:
-- the points moved without a finance approval in the window, for both members and the requester,
-- plus the member's balance): past the threshold nothing moves, a pending `merge` row of
-- manual_adjustments waits for finance (202, its adjustmentId), and ll_apply_merge_request runs the
-- merge once approved (p.mergeRequestId: no gate, no idempotency claim, the approver in the
-- reference). A merge under it runs at once and is recorded as applied, so the window counts it.
create or replace function ll_merge(p jsonb) returns jsonb language plpgsql as $$
declare
  v_program text := p->>'programId'; v_from text := p->>'memberId'; v_into text := p->>'intoMemberId';
  v_occurred timestamptz := (p->>'occurredAt')::timestamptz; v_actor text := p->>'actor';
  v_prior jsonb; f members; s members; v_out bigint; v_in bigint; c record; v_key text; v_exp timestamptz; v_body jsonb;
  v_request uuid := (p->>'mergeRequestId')::uuid; v_gate jsonb; v_id uuid;
begin
  if v_request is null then
    v_prior := ll_idem_claim(v_program, p->>'idemKey', p->>'requestHash');
    if v_prior is not null then return v_prior; end if;
  else
    -- skipping the gate takes an approved request for exactly these members, still to run
    perform 1 from manual_adjustments where adjustment_id = v_request and program_id = v_program and kind = 'merge'
       and status = 'pending_approval' and member_id = v_from and into_member_id = v_into
       and approved_by is null and p->>'approvedBy' is not null and p->>'approvedBy' <> requested_by;
    if not found then
      perform ll_raise('validation_failed', 400, 'no merge request waiting for these members', jsonb_build_object('mergeRequestId', v_request));
    end if;
  end if;
  if v_from = v_into then
    perform ll_raise('merge_into_self', 422, 'a member cannot be merged into itself', jsonb_build_object('memberId', v_from));
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

  if v_request is null and f.balance <> 0 then
    v_gate := ll_approval_gate(v_program, array[v_from, v_into], v_actor, f.balance,
      (p->>'defaultThresholdPoints')::bigint, p->>'defaultWindow');
    if (v_gate->>'needsApproval')::boolean then
      insert into manual_adjustments (program_id, adjustment_id, kind, member_id, into_member_id, points, reason_code,
                                      requested_by, status, idempotency_key, needs_approval)
      values (v_program, gen_random_uuid(), 'merge', v_from, v_into, f.balance, 'merge', v_actor, 'pending_approval',
              'merge:' || (p->>'idemKey'), true)
      returning adjustment_id into v_id;
      v_body := jsonb_build_object('memberId', v_from, 'intoMemberId', v_into, 'status', 'pending_approval',
        'pointsToMove', f.balance, 'adjustmentId', v_id) || (v_gate - 'needsApproval');
      return ll_idem_store(v_program, p->>'idemKey', 202, v_body);
    end if;
  end if;

  v_key := 'merge:' || jsonb_build_array(v_from, v_into)::text;
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
  values (v_program, v_from, 'merge_out', -f.balance, v_occurred, 'merge:into:' || v_into || coalesce(':approved-by:' || (p->>'approvedBy'), ''), v_actor, v_key || ':out')
  returning entry_id into v_out;
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
  values (v_program, v_into, 'merge_in', f.balance, v_occurred, 'merge:from:' || v_from || coalesce(':approved-by:' || (p->>'approvedBy'), ''), v_actor, v_key || ':in')
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
  -- Chains stay one hop long (issue 14, item 7): the members merged into v_from before now point at
  -- the survivor, in this transaction, so a → b → c → … resolves in one step however long it grew.
  update members set merged_into = v_into
   where program_id = v_program and merged_into = v_from and status = 'merged';
  perform ll_request_wake(v_program, v_from);
  if v_exp is not null and (s.armed_deadline is null or v_exp < s.armed_deadline) then
    perform ll_request_wake(v_program, v_into);
  end if;

  v_body := jsonb_build_object('memberId', v_from, 'intoMemberId', v_into, 'status', 'merged', 'pointsMoved', f.balance,
    'survivor', jsonb_build_object('memberId', v_into, 'balance', s.balance + f.balance, 'expiresAt', ll_ts(v_exp)));
  perform ll_emit_event(v_program, 'member.merged', v_from, v_occurred, v_body);
  if v_request is not null then return v_body || jsonb_build_object('entryId', v_out); end if;
  -- under the threshold: the window counts what this merge moved on the requester's word alone
  if f.balance <> 0 then
    insert into manual_adjustments (program_id, adjustment_id, kind, member_id, into_member_id, points, reason_code,
                                    requested_by, status, decided_at, entry_id, idempotency_key, needs_approval)
    values (v_program, gen_random_uuid(), 'merge', v_from, v_into, f.balance, 'merge', v_actor, 'applied', now(), v_out,
            'merge:' || (p->>'idemKey'), false);
  end if;
  return ll_idem_store(v_program, p->>'idemKey', 201, v_body);
end $$;
