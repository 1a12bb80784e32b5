-- Records a requested manual adjustment and decides, under the approval lock, whether it waits for
-- finance (ll_approval_gate: the window's points moved without an approval, per member and per
-- requester, plus this one's, against the threshold). The same Idempotency-Key returns the first
-- request and its decision; with another body it is refused. The member must be active and, for a
-- negative one, have the points. Returns {adjustmentId, existing, needsApproval, approvalThresholdPoints,
-- approvalWindow, memberPointsInWindow, requesterPointsInWindow}; the caller applies it at once or
-- starts its approval.
create or replace function ll_request_adjustment(p jsonb) returns jsonb language plpgsql as $$
declare
  v_program text := p->>'programId'; v_member text := p->>'memberId'; v_points bigint := (p->>'points')::bigint;
  v_by text := p->>'requestedBy'; v_key text := p->>'idempotencyKey'; a manual_adjustments; m members; v_gate jsonb;
begin
  select * into a from manual_adjustments where program_id = v_program and idempotency_key = v_key;
  if not found then
    select * into m from members where program_id = v_program and member_id = v_member;
    if not found then perform ll_raise('not_found', 404, 'no such member', jsonb_build_object('memberId', v_member)); end if;
    if m.status <> 'active' then
      perform ll_raise('member_not_active', 409, 'member is ' || m.status, jsonb_build_object('memberId', v_member));
    end if;
    if v_points < 0 and m.balance - m.held < -v_points then
      perform ll_raise('insufficient_points', 422, 'the member has fewer points available than the adjustment takes',
        jsonb_build_object('available', m.balance - m.held, 'points', v_points));
    end if;
    v_gate := ll_approval_gate(v_program, array[v_member], v_by, v_points,
      (p->>'defaultThresholdPoints')::bigint, p->>'defaultWindow');
    insert into manual_adjustments (program_id, adjustment_id, member_id, points, reason_code, comment, requested_by, status,
                                    idempotency_key, needs_approval)
    values (v_program, (p->>'adjustmentId')::uuid, v_member, v_points, p->>'reasonCode', p->>'comment', v_by, 'pending_approval',
            v_key, (v_gate->>'needsApproval')::boolean)
    on conflict (program_id, idempotency_key) do nothing returning * into a;
    if found then
      if a.needs_approval then
        perform ll_emit_event(v_program, 'adjustment.awaiting_approval', v_member, now(), jsonb_build_object(
          'adjustmentId', a.adjustment_id, 'memberId', v_member, 'points', v_points, 'reasonCode', a.reason_code,
          'requestedBy', v_by, 'approvalThresholdPoints', v_gate->'approvalThresholdPoints'));
      end if;
      return v_gate || jsonb_build_object('adjustmentId', a.adjustment_id, 'existing', false);
    end if;
    -- a concurrent request under the same key committed first: answer as it did
    select * into a from manual_adjustments where program_id = v_program and idempotency_key = v_key;
  end if;
  if a.kind <> 'adjustment' or a.member_id <> v_member or a.points <> v_points or a.reason_code <> p->>'reasonCode'
     or a.comment is distinct from p->>'comment' then
    perform ll_raise('idempotency_key_reused', 409, 'this Idempotency-Key was used with a different request body',
      jsonb_build_object('idempotencyKey', v_key));
  end if;
  return jsonb_build_object('adjustmentId', a.adjustment_id, 'existing', true, 'needsApproval', a.needs_approval);
end $$;
