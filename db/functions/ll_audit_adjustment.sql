-- The audit trail of manual adjustments and merge requests (audit_log, ll_audit): the request, and
-- its decision as it is taken (applied, with its approver when one was needed; rejected, with who
-- rejected it; expired). Written on the member's points chain, the chain its ledger entry goes to,
-- so the transaction that applies it takes no other chain's lock. The row is the record of the
-- decision: `loyalty verify` checks that every request and decision has its row (db/verify.ts).
create or replace function ll_audit_adjustment() returns trigger language plpgsql as $$
declare v_chain smallint := (ll_stripe(new.member_id) % 16)::smallint; v_subject text := 'adjustment:' || new.program_id || ':' || new.adjustment_id;
begin
  if tg_op = 'INSERT' then
    perform ll_audit(v_chain, new.requested_by, 'adjustment_requested', new.program_id, new.member_id, v_subject, null,
      jsonb_build_object('kind', to_jsonb(new)->'kind', 'points', new.points, 'reasonCode', new.reason_code, 'comment', new.comment,
        'intoMemberId', to_jsonb(new)->'into_member_id', 'status', new.status), new.idempotency_key);
  end if;
  if new.status <> 'pending_approval' and (tg_op = 'INSERT' or old.status is distinct from new.status) then
    perform ll_audit(v_chain, coalesce(new.approved_by, case when new.status = 'applied' then new.requested_by end, ll_current_actor()),
      'adjustment_' || new.status, new.program_id, new.member_id, v_subject,
      case when tg_op = 'UPDATE' then jsonb_build_object('status', old.status) end,
      jsonb_build_object('status', new.status, 'approvedBy', new.approved_by, 'decidedAt', ll_ts(new.decided_at),
        'comment', new.decision_comment, 'entryId', new.entry_id), new.idempotency_key);
  end if;
  return null;
end $$;

create or replace trigger manual_adjustments_audit after insert or update on manual_adjustments for each row execute function ll_audit_adjustment();
