-- Audit completeness (issue 14, item 2; docs/audit.md): manual adjustments' requests and decisions
-- become rows of the audit chain (db/functions/ll_audit_adjustment.sql), so `loyalty verify` can
-- require a row for each. Adjustments made before have none: their request and the decision they
-- reached go into the chain now, marked `backfilled` (the time is the migration's, the actor the
-- requester's or approver's). On a new database there are none, and no db/functions are called
-- (they do not exist yet there); on an existing one ll_audit does.
do $$
declare a record;
begin
  if not exists (select 1 from manual_adjustments) then return; end if;
  for a in select * from manual_adjustments order by requested_at, adjustment_id loop
    perform ll_audit((ll_stripe(a.member_id) % 16)::smallint, a.requested_by, 'adjustment_requested', a.program_id, a.member_id,
      'adjustment:' || a.program_id || ':' || a.adjustment_id, null,
      jsonb_build_object('kind', to_jsonb(a)->'kind', 'points', a.points, 'reasonCode', a.reason_code, 'comment', a.comment,
        'intoMemberId', to_jsonb(a)->'into_member_id', 'status', 'pending_approval', 'backfilled', true), a.idempotency_key);
    if a.status <> 'pending_approval' then
      perform ll_audit((ll_stripe(a.member_id) % 16)::smallint,
        coalesce(a.approved_by, case when a.status = 'applied' then a.requested_by end, 'migration:010'),
        'adjustment_' || a.status, a.program_id, a.member_id, 'adjustment:' || a.program_id || ':' || a.adjustment_id,
        jsonb_build_object('status', 'pending_approval'),
        jsonb_build_object('status', a.status, 'approvedBy', a.approved_by, 'decidedAt', to_char(a.decided_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'comment', a.decision_comment, 'entryId', a.entry_id, 'backfilled', true), a.idempotency_key);
    end if;
  end loop;
end $$;
