-- The audit trail of points (audit_log, ll_audit): a row for each ledger entry (an entry is new,
-- so nothing is before it).
create or replace function ll_audit_ledger_entry() returns trigger language plpgsql as $$
begin
  perform ll_audit((ll_stripe(new.member_id) % 16)::smallint, new.actor, new.type, new.program_id, new.member_id, 'ledger_entry:' || new.entry_id,
    null, jsonb_build_object('points', new.points, 'occurredAt', ll_ts(new.occurred_at), 'reference', new.reference), new.idempotency_key);
  return null;
end $$;

create or replace trigger ledger_entries_audit after insert on ledger_entries for each row execute function ll_audit_ledger_entry();
