-- Issue 14 loose ends. (1) A rule change's withdrawal is a decision request too (kind
-- `rule_change_withdrawal`, decision `withdraw`): the API records who asked, the workflow counts the
-- withdrawal only after an activity verified the row (workflows/rule-change.ts, patch
-- `rule-change-withdrawal-verified`). A withdrawal row is never an approval and an approval row
-- never a withdrawal. A chargeback billing reports (kind `chargeback`, decision `request`, its id and
-- status in `detail`) is one too: the saga acts on a chargeback signal only once it verified the
-- row (workflows/redemption.ts, patch `chargeback-verified`). (2) Every decision request gets its row in the audit chain when written
-- (db/functions/ll_audit_decision_request.sql), and `loyalty verify` requires one for each.
alter table decision_requests drop constraint decision_requests_kind_check;
alter table decision_requests add constraint decision_requests_kind_check
  check (kind in ('close_approval', 'rule_change_decision', 'adjustment_approval', 'close_start', 'rule_change_withdrawal', 'chargeback'));
alter table decision_requests drop constraint decision_requests_decision_check;
alter table decision_requests add constraint decision_requests_decision_check
  check (decision in ('approve', 'reject', 'request', 'withdraw')
         and (decision = 'withdraw') = (kind = 'rule_change_withdrawal')
         and (decision = 'request') = (kind in ('close_start', 'chargeback')));

-- Requests written before have no audit row: they get one now on chain 16, as
-- ll_audit_decision_request writes it, marked `backfilled` (the time is the migration's, the actor the
-- requester's). A migration runs before db/functions on a new database and calls none of them: the
-- row's hash is computed here as ll_audit_hash computes it (verify recomputes it, so a difference
-- would show).
do $$
declare r record; v_seq bigint; v_prev text; v_hash text; v_at timestamptz := now(); v_after jsonb; v_subject text;
begin
  for r in select * from decision_requests d
            -- one anti-join over chain 16's decision_requested rows (none exist before this migration;
            -- the test runs it twice)
            where not exists (select 1 from audit_log a where a.chain = 16 and a.action = 'decision_requested'
                                and a.subject = 'decision_request:' || d.request_id)
            order by created_at, request_id loop
    v_subject := 'decision_request:' || r.request_id;
    v_after := jsonb_build_object('kind', r.kind, 'subject', r.subject, 'workflowId', r.workflow_id, 'keyId', r.key_id,
      'decision', r.decision, 'comment', r.comment, 'backfilled', true);
    select h.seq + 1, h.hash into v_seq, v_prev from audit_chain_heads h where h.chain = 16 for update;
    v_hash := encode(sha256(convert_to(jsonb_build_array(16, v_seq, to_char(v_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
      r.principal, 'decision_requested', r.program_id, null::text, v_subject, null::jsonb, v_after, null::text, v_prev)::text, 'UTF8')), 'hex');
    insert into audit_log (chain, seq, at, actor, action, program_id, member_id, subject, before, after, idempotency_key, hash)
    values (16, v_seq, v_at, r.principal, 'decision_requested', r.program_id, null, v_subject, null, v_after, null, v_hash);
    update audit_chain_heads set seq = v_seq, hash = v_hash where chain = 16;
  end loop;
end $$;
