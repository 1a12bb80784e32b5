-- The webhook outbox's write (docs/api.md, "Webhooks"): an event of p_type and one pending delivery
-- per active webhook of the program subscribed to it, in the caller's transaction, so the event
-- exists exactly when the change that causes it committed. Nothing is written when no webhook takes
-- the type: the accrual hot path pays one index probe then, and a webhook created later sees only
-- the events recorded after it (documented). Returns the event id, or null when none was written.
-- p_member orders the deliveries (one queue per webhook and member); null: the event's own queue.
create or replace function ll_emit_event(p_program text, p_type text, p_member text, p_occurred timestamptz, p_data jsonb)
returns uuid language plpgsql as $$
declare v_event uuid;
begin
  if not exists (select 1 from webhooks where program_id = p_program and status = 'active' and p_type = any (events)) then
    return null;
  end if;
  insert into webhook_events (program_id, type, member_id, occurred_at, data)
  values (p_program, p_type, p_member, coalesce(p_occurred, now()), p_data)
  returning event_id into v_event;
  insert into webhook_deliveries (event_id, webhook_id, queue_key)
  select v_event, w.webhook_id, coalesce(p_member, v_event::text)
    from webhooks w where w.program_id = p_program and w.status = 'active' and p_type = any (w.events)
   order by w.webhook_id;
  return v_event;
end $$;
