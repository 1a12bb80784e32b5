-- The one place that keeps a frozen or locked quarter closed to new ledger entries. Once per
-- statement, over the rows it inserted (a set-based batch pays one join, not a lookup per row);
-- an entry refused aborts the statement, so nothing of it is written.
create or replace function ll_refuse_locked_period() returns trigger language plpgsql as $$
declare v_occurred timestamptz; v_until timestamptz;
begin
  select i.occurred_at, p.locked_until into v_occurred, v_until
    from inserted i join programs p on p.program_id = i.program_id
   where p.locked_until is not null and i.occurred_at < p.locked_until
   order by i.entry_id limit 1;
  if found then
    perform ll_raise('period_locked', 409, 'occurredAt falls in a closed (frozen or locked) period; corrections go in the open period',
      jsonb_build_object('occurredAt', ll_ts(v_occurred), 'openFrom', ll_ts(v_until)));
  end if;
  return null;
end $$;

create or replace trigger ledger_entries_period_open after insert on ledger_entries referencing new table as inserted
  for each statement execute function ll_refuse_locked_period();
