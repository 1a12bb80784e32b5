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
-- far and the status it reached go into the chain now, marked `backfilled` (the time is the
-- migration's, the actor the decider's), so `loyalty verify` finds every decision in the chain.
-- PL/pgSQL resolves ll_audit and ll_ts only when there is something to write: a new database runs
-- this before db/functions is applied.
do $$
declare c rule_changes; e jsonb;
begin
  for c in select * from rule_changes order by proposed_at, program_id, change_id loop
    perform ll_audit(16::smallint, c.proposed_by, 'rule_change_proposed', c.program_id, null, 'rule_change:' || c.program_id || ':' || c.change_id,
      null, jsonb_build_object('baseVersion', c.base_version, 'effectiveAt', ll_ts(c.effective_at),
        'rules', c.rules, 'comment', c.comment, 'backfilled', true), null);
    for e in select * from jsonb_array_elements(c.approvals) loop
      perform ll_audit(16::smallint, e->>'by', 'rule_change_' || (e->>'decision'), c.program_id, null, 'rule_change:' || c.program_id || ':' || c.change_id,
        null, jsonb_build_object('role', e->>'role', 'decision', e->>'decision', 'comment', e->'comment', 'backfilled', true), null);
    end loop;
    if c.status <> 'assessing' then
      perform ll_audit(16::smallint, 'system:rule-change', 'rule_change_' || c.status, c.program_id, null, 'rule_change:' || c.program_id || ':' || c.change_id,
        jsonb_build_object('status', 'assessing'), jsonb_build_object('status', c.status, 'version', c.version, 'backfilled', true), null);
    end if;
  end loop;
end $$;
