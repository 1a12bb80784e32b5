-- Audit completeness (issue 14, item 2; docs/audit.md): manual adjustments' requests and decisions
-- become rows of the audit chain (db/functions/ll_audit_adjustment.sql), so `loyalty verify` can
-- require a row for each. Adjustments made before have none: their request and the decision they
-- reached go into the chain now, on the member's points chain as ll_audit_adjustment writes them,
-- marked `backfilled` (the time is the migration's, the actor the requester's or approver's). A
-- migration runs before db/functions on a new database and calls none of them: the chain is the
-- member's stripe as ll_stripe computes it, the row's hash as ll_audit_hash computes it (verify
-- recomputes it, so a difference would show).
do $$
declare r record; v_chain smallint; v_seq bigint; v_prev text; v_hash text; v_at timestamptz := now();
begin
  for r in
    with steps as (
      select a.requested_at as t, a.adjustment_id, 0 as k, a.program_id, a.member_id, a.requested_by as actor,
             'adjustment_requested' as action, null::jsonb as before,
             jsonb_build_object('kind', to_jsonb(a)->'kind', 'points', a.points, 'reasonCode', a.reason_code, 'comment', a.comment,
               'intoMemberId', to_jsonb(a)->'into_member_id', 'status', 'pending_approval', 'backfilled', true) as after,
             a.idempotency_key
        from manual_adjustments a
      union all
      select a.requested_at, a.adjustment_id, 1, a.program_id, a.member_id,
             coalesce(a.approved_by, case when a.status = 'applied' then a.requested_by end, 'migration:010_audit_anchors'),
             'adjustment_' || a.status, jsonb_build_object('status', 'pending_approval'),
             jsonb_build_object('status', a.status, 'approvedBy', a.approved_by,
               'decidedAt', to_char(a.decided_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'comment', a.decision_comment, 'entryId', a.entry_id, 'backfilled', true),
             a.idempotency_key
        from manual_adjustments a where a.status <> 'pending_approval')
    select * from steps order by t, adjustment_id, k
  loop
    v_chain := (get_byte(decode(md5(r.member_id), 'hex'), 3) & 15)::smallint;
    select h.seq + 1, h.hash into v_seq, v_prev from audit_chain_heads h where h.chain = v_chain for update;
    v_hash := encode(sha256(convert_to(jsonb_build_array(v_chain, v_seq, to_char(v_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
      r.actor, r.action, r.program_id, r.member_id, 'adjustment:' || r.program_id || ':' || r.adjustment_id, r.before, r.after,
      r.idempotency_key, v_prev)::text, 'UTF8')), 'hex');
    insert into audit_log (chain, seq, at, actor, action, program_id, member_id, subject, before, after, idempotency_key, hash)
    values (v_chain, v_seq, v_at, r.actor, r.action, r.program_id, r.member_id, 'adjustment:' || r.program_id || ':' || r.adjustment_id,
            r.before, r.after, r.idempotency_key, v_hash);
    update audit_chain_heads set seq = v_seq, hash = v_hash where chain = v_chain;
  end loop;
end $$;
