-- Runs a merge finance approved (a `merge` row of manual_adjustments that waited: ll_merge). The
-- merge checks its members again (both still active, no points held) and moves what the member
-- holds now; the row becomes applied, with its approver and the merge_out entry. Idempotent; the
-- approver is never the requester (the table's check, as for adjustments).
create or replace function ll_apply_merge_request(p_adjustment uuid, p_approver text) returns jsonb language plpgsql as $$
declare a manual_adjustments; v_res jsonb;
begin
  select * into a from manual_adjustments where adjustment_id = p_adjustment for update;
  if not found then perform ll_raise('not_found', 404, 'no such adjustment', jsonb_build_object('adjustmentId', p_adjustment)); end if;
  if a.kind <> 'merge' then perform ll_raise('validation_failed', 400, 'not a merge', jsonb_build_object('adjustmentId', p_adjustment)); end if;
  if a.status = 'applied' then return jsonb_build_object('status', 'applied', 'entryId', a.entry_id); end if;
  if a.status <> 'pending_approval' then perform ll_raise('adjustment_decided', 409, 'the merge is ' || a.status, '{}'); end if;
  v_res := ll_merge(jsonb_build_object('programId', a.program_id, 'memberId', a.member_id, 'intoMemberId', a.into_member_id,
    'occurredAt', now(), 'actor', a.requested_by, 'mergeRequestId', a.adjustment_id, 'approvedBy', p_approver));
  update manual_adjustments set status = 'applied', approved_by = p_approver, decided_at = now(), entry_id = (v_res->>'entryId')::bigint
   where adjustment_id = p_adjustment;
  return jsonb_build_object('status', 'applied', 'entryId', (v_res->>'entryId')::bigint, 'pointsMoved', v_res->'pointsMoved');
end $$;
