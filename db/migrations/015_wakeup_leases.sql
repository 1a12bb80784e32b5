-- Several workers, each with its outbox relay: a relay leases the wake-ups it reads, so the others
-- skip them (no member is signalled once per relay). A lease that runs out (its relay died) makes
-- the wake-up visible again; a wake-up requested again while leased is visible at once.
alter table member_wakeups add column leased_until timestamptz;

create or replace function ll_request_wake(p_program text, p_member text) returns void language sql as $$
  insert into member_wakeups (program_id, member_id) values (p_program, p_member)
  on conflict (program_id, member_id) do update set seq = member_wakeups.seq + 1, requested_at = now(), leased_until = null
$$;
