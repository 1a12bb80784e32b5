-- Rule changes against a base (issue 14, item 9): a change is proposed against the program's rule
-- version in force (base_version, already recorded); activation refuses when another version became
-- active since, and the change ends `superseded` (db/rule-changes.ts activateRuleChange). A change
-- that ended (active, rejected, expired, withdrawn, superseded) never moves again
-- (db/functions/ll_rule_change_final.sql), and its proposal, decisions and status steps are rows of
-- the audit chain (db/functions/ll_audit_rule_change.sql), not only the mutable `approvals` column.
alter table rule_changes drop constraint rule_changes_status_check;
alter table rule_changes add constraint rule_changes_status_check
  check (status in ('assessing', 'awaiting_approvals', 'scheduled', 'active', 'rejected', 'expired', 'withdrawn', 'superseded'));

-- Changes proposed before their decisions were audited: their proposal, each decision recorded so
-- far and the status it reached go into the chain now (chain 16, as ll_audit_rule_change writes
-- them), marked `backfilled` (the time is the migration's, the actor the proposer's or decider's),
-- so `loyalty verify` finds every decision in the chain. A migration runs before db/functions on a
-- new database and calls none of them: the row's hash is computed here as ll_audit_hash computes it
-- (verify recomputes it, so a difference would show).
do $$
declare r record; v_seq bigint; v_prev text; v_hash text; v_at timestamptz := now();
begin
  for r in
    with steps as (
      select c.proposed_at as t, c.program_id, c.change_id, 0 as k, 0::bigint as i, c.proposed_by as actor,
             'rule_change_proposed' as action, null::jsonb as before,
             jsonb_build_object('baseVersion', c.base_version, 'effectiveAt', to_char(c.effective_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'rules', c.rules, 'comment', c.comment, 'backfilled', true) as after
        from rule_changes c
      union all
      select c.proposed_at, c.program_id, c.change_id, 1, e.i, e.a->>'by', 'rule_change_' || (e.a->>'decision'), null,
             jsonb_build_object('role', e.a->>'role', 'decision', e.a->>'decision', 'comment', e.a->'comment', 'backfilled', true)
        from rule_changes c cross join lateral jsonb_array_elements(c.approvals) with ordinality e(a, i)
      union all
      select c.proposed_at, c.program_id, c.change_id, 2, 0, 'migration:007_rule_change_base', 'rule_change_' || c.status,
             jsonb_build_object('status', 'assessing'), jsonb_build_object('status', c.status, 'version', c.version, 'baseVersion', c.base_version, 'backfilled', true)
        from rule_changes c where c.status <> 'assessing')
    select * from steps order by t, program_id, change_id, k, i
  loop
    select h.seq + 1, h.hash into v_seq, v_prev from audit_chain_heads h where h.chain = 16 for update;
    v_hash := encode(sha256(convert_to(jsonb_build_array(16, v_seq, to_char(v_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
      r.actor, r.action, r.program_id, null::text, 'rule_change:' || r.program_id || ':' || r.change_id, r.before, r.after, null::text, v_prev)::text, 'UTF8')), 'hex');
    insert into audit_log (chain, seq, at, actor, action, program_id, member_id, subject, before, after, idempotency_key, hash)
    values (16, v_seq, v_at, r.actor, r.action, r.program_id, null, 'rule_change:' || r.program_id || ':' || r.change_id, r.before, r.after, null, v_hash);
    update audit_chain_heads set seq = v_seq, hash = v_hash where chain = 16;
  end loop;
end $$;
