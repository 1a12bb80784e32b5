-- A rule change that ended stays as it ended (issue 14, item 9): once active, rejected, expired,
-- withdrawn or superseded, its status, decisions, rules and base never change again, whatever
-- writes (a late workflow step, a second run under the same id, a hand-written UPDATE). A new
-- proposal needs a new change id. In every status its terms (rules, base version, effective date,
-- proposer) are as proposed. Deleting a change is refused outright: its audit rows would point at
-- nothing.
create or replace function ll_rule_change_final() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then
    perform ll_raise('rule_change_final', 409, 'a rule change is never deleted', jsonb_build_object('changeId', old.change_id));
  end if;
  -- what was proposed (and assessed, and approved) is what activates: the terms never change, in
  -- any status; a different proposal is a new change id
  if new.rules <> old.rules or new.base_version <> old.base_version or new.effective_at <> old.effective_at
     or new.proposed_by <> old.proposed_by or new.proposed_at <> old.proposed_at or new.program_id <> old.program_id
     or new.change_id <> old.change_id then
    perform ll_raise('rule_change_final', 409, 'a rule change''s terms never change: propose a new change',
      jsonb_build_object('changeId', old.change_id));
  end if;
  if old.status in ('active', 'rejected', 'expired', 'withdrawn', 'superseded')
     and (new.status <> old.status or new.approvals <> old.approvals or new.rules <> old.rules or new.base_version <> old.base_version
          or new.version is distinct from old.version) then
    perform ll_raise('rule_change_final', 409, 'the rule change is ' || old.status || ': it cannot change',
      jsonb_build_object('changeId', old.change_id, 'status', old.status));
  end if;
  return new;
end $$;

create or replace trigger rule_changes_final before update or delete on rule_changes for each row execute function ll_rule_change_final();
