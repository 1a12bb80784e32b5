-- The audit trail of rule changes (audit_log, ll_audit), in the transaction that writes the change:
-- its proposal (with the base version it was proposed against), each decision as it is added to
-- `approvals` (actor: the decider; a decision already in the column is never written twice, so the
-- workflow rewriting the whole array adds nothing), and each step of its status. `loyalty verify`
-- checks the mutable columns against these rows (db/verify.ts).
create or replace function ll_audit_rule_change() returns trigger language plpgsql as $$
declare v_subject text := 'rule_change:' || new.program_id || ':' || new.change_id; e jsonb;
begin
  if tg_op = 'INSERT' then
    perform ll_audit(16::smallint, new.proposed_by, 'rule_change_proposed', new.program_id, null, v_subject, null,
      jsonb_build_object('baseVersion', new.base_version, 'effectiveAt', ll_ts(new.effective_at), 'rules', new.rules, 'comment', new.comment), null);
    return null;
  end if;
  for e in select n from jsonb_array_elements(new.approvals) n
            where not exists (select 1 from jsonb_array_elements(old.approvals) o
                               where o->>'by' = n->>'by' and o->>'role' = n->>'role' and o->>'decision' = n->>'decision') loop
    perform ll_audit(16::smallint, e->>'by', 'rule_change_' || (e->>'decision'), new.program_id, null, v_subject, null,
      jsonb_build_object('role', e->>'role', 'decision', e->>'decision', 'comment', e->'comment'), null);
  end loop;
  if new.status <> old.status then
    perform ll_audit(16::smallint, ll_current_actor(), 'rule_change_' || new.status, new.program_id, null, v_subject,
      jsonb_build_object('status', old.status),
      jsonb_build_object('status', new.status, 'activatesAt', ll_ts(new.activates_at), 'version', new.version, 'baseVersion', new.base_version), null);
  end if;
  return null;
end $$;

create or replace trigger rule_changes_audit after insert or update on rule_changes for each row execute function ll_audit_rule_change();
