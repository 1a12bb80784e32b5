-- The one place that keeps a frozen or locked quarter closed to new ledger entries.
create or replace function ll_refuse_locked_period() returns trigger language plpgsql as $$
declare v_until timestamptz;
begin
  select locked_until into v_until from programs where program_id = new.program_id;
  if v_until is not null and new.occurred_at < v_until then
    perform ll_raise('period_locked', 409, 'occurredAt falls in a closed (frozen or locked) period; corrections go in the open period',
      jsonb_build_object('occurredAt', ll_ts(new.occurred_at), 'openFrom', ll_ts(v_until)));
  end if;
  return new;
end $$;

create or replace trigger ledger_entries_period_open before insert on ledger_entries for each row execute function ll_refuse_locked_period();
