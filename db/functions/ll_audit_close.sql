-- The audit trail of periods (audit_log, ll_audit): each step of a close.
create or replace function ll_audit_close() returns trigger language plpgsql as $$
begin
  if tg_op = 'UPDATE' and old.status = new.status and old.approved_by is not distinct from new.approved_by and old.booked_at is not distinct from new.booked_at then
    return null;
  end if;
  perform ll_audit(16::smallint, coalesce(case when new.status = 'locked' or new.approved_by is distinct from old.approved_by then new.approved_by end, new.started_by),
    'close_' || new.status, new.program_id, null, 'period:' || new.program_id || ':' || new.period,
    case when tg_op = 'UPDATE' then jsonb_build_object('status', old.status, 'approvedBy', old.approved_by) end,
    jsonb_build_object('status', new.status, 'approvedBy', new.approved_by, 'startedBy', new.started_by, 'bookedAt', ll_ts(new.booked_at)), null);
  return null;
end $$;

create or replace trigger closes_audit after insert or update on closes for each row execute function ll_audit_close();
