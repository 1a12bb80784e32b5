-- Asks the outbox relay to start or wake the member's workflow. Asked again, the row's seq moves
-- and a relay's lease on it ends, so a wake-up requested while leased is visible at once.
create or replace function ll_request_wake(p_program text, p_member text) returns void language sql as $$
  insert into member_wakeups (program_id, member_id) values (p_program, p_member)
  on conflict (program_id, member_id) do update set seq = member_wakeups.seq + 1, requested_at = now(), leased_until = null
$$;
