-- The webhook events of closes, rule changes and reconciliations (docs/api.md, "Webhooks"): a trigger
-- on the row's own change, so the event is in the transaction that makes it and fires once per
-- transition (a retried activity that writes the same status again changes nothing and sends
-- nothing). Events of no member: each is its own queue (ll_emit_event).
create or replace function ll_emit_status_event() returns trigger language plpgsql as $$
begin
  -- one branch per table, nested: a record's missing field is an error even behind a false test
  if tg_table_name = 'reconciliation_runs' then
    if new.difference_count > 0 then
      perform ll_emit_event(new.program_id, 'reconciliation.differences_found', null, now(),
        jsonb_build_object('runId', new.run_id, 'date', new.business_date::text, 'differenceCount', new.difference_count,
                           'differences', (select coalesce(jsonb_agg(x.value), '[]') from (select value from jsonb_array_elements(new.differences) limit 100) x)));
    end if;
    return null;
  end if;
  if tg_op = 'UPDATE' then
    if new.status is not distinct from old.status then return null; end if;
  end if;
  if tg_table_name = 'closes' then
    if new.status = 'proposed' then
      perform ll_emit_event(new.program_id, 'close.awaiting_approval', null, now(),
        jsonb_build_object('period', new.period, 'startedBy', new.started_by, 'proposal', new.proposal));
    elsif new.status = 'locked' then
      perform ll_emit_event(new.program_id, 'close.locked', null, now(),
        jsonb_build_object('period', new.period, 'approvedBy', new.approved_by));
    end if;
  elsif tg_table_name = 'rule_changes' then
    if new.status = 'awaiting_approvals' then
      perform ll_emit_event(new.program_id, 'rule_change.awaiting_approval', null, now(),
        jsonb_build_object('changeId', new.change_id, 'proposedBy', new.proposed_by, 'adverse', new.adverse, 'impact', new.impact));
    elsif new.status = 'active' then
      perform ll_emit_event(new.program_id, 'rule_change.activated', null, now(),
        jsonb_build_object('changeId', new.change_id, 'version', new.version, 'activatesAt', ll_ts(new.activates_at)));
    end if;
  end if;
  return null;
end $$;

create or replace trigger closes_webhook_events after insert or update of status on closes for each row execute function ll_emit_status_event();
create or replace trigger rule_changes_webhook_events after insert or update of status on rule_changes for each row execute function ll_emit_status_event();
create or replace trigger reconciliation_runs_webhook_events after insert on reconciliation_runs for each row execute function ll_emit_status_event();
