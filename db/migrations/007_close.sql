-- The quarterly close: frozen and locked periods, the close's record, and which journal entries
-- reached the GL. Invariants: quarters close in order; no ledger entry is dated before a program's
-- locked_until (the end of its last frozen or locked quarter): writes from the API into it are
-- refused, the system's own (expiry, reversals) land in the open period; a locked close's report
-- never changes.

-- programs.locked_until and ll_locked_until come from 006 (the give-back there respects them).

-- The one place that keeps a frozen or locked quarter closed to new ledger entries.
create function ll_refuse_locked_period() returns trigger language plpgsql as $$
declare v_until timestamptz;
begin
  select locked_until into v_until from programs where program_id = new.program_id;
  if v_until is not null and new.occurred_at < v_until then
    perform ll_raise('period_locked', 409, 'occurredAt falls in a closed (frozen or locked) period; corrections go in the open period',
      jsonb_build_object('occurredAt', ll_ts(new.occurred_at), 'openFrom', ll_ts(v_until)));
  end if;
  return new;
end $$;
create trigger ledger_entries_period_open before insert on ledger_entries for each row execute function ll_refuse_locked_period();

-- Expiry as before, dated at the deadline, or at the start of the open period if the deadline fell
-- in a closed one (a late expiry is a correction).
create or replace function ll_expire_member(p_program text, p_member text, p_as_of timestamptz, p_actor text)
returns jsonb language plpgsql as $$
declare
  m members; v_points bigint; v_deadline timestamptz; v_occurred timestamptz; v_entry bigint; v_key text; r record; v_journal bigint;
  v_left bigint; v_take bigint; v_last bigint;
begin
  select * into m from members where program_id = p_program and member_id = p_member for update;
  if not found or m.status <> 'active' or m.expires_at is null or m.expires_at > p_as_of then
    return jsonb_build_object('expiredPoints', 0, 'expiresAt', ll_ts(m.expires_at));
  end if;
  v_deadline := m.expires_at;
  v_occurred := greatest(v_deadline, coalesce(ll_locked_until(p_program), v_deadline));
  v_points := m.balance - m.held;
  select coalesce(max(entry_id), 0) into v_last from ledger_entries where program_id = p_program and member_id = p_member;
  v_key := 'expire:' || jsonb_build_array(p_member, ll_ts(v_deadline), v_last)::text;
  if v_points > 0 then
    insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
    values (p_program, p_member, 'expire', -v_points, v_occurred, 'expiry:' || ll_ts(v_deadline), p_actor, v_key)
    returning entry_id into v_entry;
    v_left := v_points;
    for r in select a.cohort, a.available as points from ll_member_cohorts_available(p_program, p_member) a
             where a.available > 0 loop
      exit when v_left = 0;
      v_take := least(v_left, r.points);
      insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, r.cohort, -v_take);
      update member_cohorts set points = points - v_take where program_id = p_program and member_id = p_member and cohort = r.cohort;
      perform ll_stripe_add(p_program, r.cohort, p_member, d_expired => v_take);
      v_journal := ll_recognize_cohort(p_program, r.cohort, v_occurred, p_actor, v_key || ':' || r.cohort, 'breakage_revenue');
      v_left := v_left - v_take;
    end loop;
    update members set balance = balance - v_points where program_id = p_program and member_id = p_member;
  end if;
  update members set expires_at = null, armed_deadline = null where program_id = p_program and member_id = p_member;
  return jsonb_build_object('expiredPoints', greatest(v_points, 0), 'deadline', ll_ts(v_deadline), 'entryId', v_entry);
end $$;

create table closes (
  program_id      text not null references programs,
  period          text not null check (period ~ '^[0-9]{4}-Q[1-4]$'),
  status          text not null check (status in ('frozen', 'proposed', 'escalated', 'cancelled', 'locked')),
  workflow_id     text not null,
  started_by      text not null,
  started_at      timestamptz not null default now(),
  override_rate   numeric(7, 6) check (override_rate > 0 and override_rate <= 1),
  override_justification text check (length(override_justification) between 1 and 2000),
  proposal        jsonb,
  approved_by     text,
  approved_at     timestamptz,
  booked_at       timestamptz,
  gl_entry_id     text,
  report          jsonb,
  updated_at      timestamptz not null default now(),
  primary key (program_id, period),
  check ((override_rate is null) = (override_justification is null)),
  check (approved_by is null or approved_by <> started_by),
  check (status <> 'locked' or (report is not null and approved_by is not null))
);

-- A locked close never changes.
create function ll_refuse_locked_close_change() returns trigger language plpgsql as $$
begin
  if old.status = 'locked' then
    raise exception 'append_only: the close of % % is locked', old.program_id, old.period using errcode = 'LL900';
  end if;
  return coalesce(new, old);
end $$;
create trigger closes_locked_never_change before update or delete on closes for each row execute function ll_refuse_locked_close_change();

-- Which subledger journal entries are in which GL entry (the saga's redemption postings and the
-- close's period entry): the close posts what is not here yet, so nothing reaches the GL twice.
create table gl_posted_journals (
  journal_entry_id bigint primary key references journal_entries,
  gl_entry_id      text not null
);
do $$
begin
  execute 'create trigger gl_posted_journals_append_only before update or delete on gl_posted_journals for each row execute function ll_forbid_change()';
end $$;

-- The journal entries a saga posting carried (written with the posting, see activities/redemption.ts).
create function ll_mark_gl_posted(p_program text, p_journal_key text, p_gl_entry text) returns void language sql as $$
  insert into gl_posted_journals (journal_entry_id, gl_entry_id)
  select j.journal_entry_id, p_gl_entry from journal_entries j
   where j.program_id = p_program and left(j.idempotency_key, length(p_journal_key) + 1) = p_journal_key || ':'
     and position(':' in substr(j.idempotency_key, length(p_journal_key) + 2)) = 0
  on conflict (journal_entry_id) do nothing
$$;

-- Books an approved close: per cohort, the catch-up of the change of estimate as of the period's
-- end (dated at its last instant), the new estimate, then the true-up of what happened after the
-- period with the new estimate (dated now, in the open period). p_rows: [{cohort, rate (decimal
-- string), catchUpMinor}]. Once per close (closes.booked_at).
create function ll_close_book(p_program text, p_period text, p_period_end timestamptz, p_rows jsonb, p_actor text)
returns jsonb language plpgsql as $$
declare x record; c cohorts; v_key text; v_booked int := 0; v_close closes;
begin
  select * into v_close from closes where program_id = p_program and period = p_period for update;
  if not found then perform ll_raise('not_found', 404, 'no close of this period', jsonb_build_object('period', p_period)); end if;
  if v_close.booked_at is not null then return jsonb_build_object('cohortsBooked', 0, 'alreadyBooked', true); end if;
  for x in select r->>'cohort' as cohort, (r->>'rate')::numeric as rate, (r->>'catchUpMinor')::bigint as catch_up
             from jsonb_array_elements(p_rows) r order by 1 loop
    v_key := 'close:' || p_period || ':' || x.cohort;
    select * into c from cohorts where program_id = p_program and cohort = x.cohort for update;
    if not found then continue; end if;
    if x.catch_up <> 0 then
      perform ll_post_journal(p_program, 'recognition', p_period_end - interval '1 millisecond', 'close:' || p_period, p_actor, v_key,
        case when x.catch_up > 0 then jsonb_build_array(
          jsonb_build_object('account', c.liability_account, 'debitMinor', x.catch_up, 'cohort', x.cohort),
          jsonb_build_object('account', ll_release_account(c.liability_account, 'loyalty_revenue'), 'creditMinor', x.catch_up, 'cohort', x.cohort))
        else jsonb_build_array(
          jsonb_build_object('account', ll_release_account(c.liability_account, 'loyalty_revenue'), 'debitMinor', -x.catch_up, 'cohort', x.cohort),
          jsonb_build_object('account', c.liability_account, 'creditMinor', -x.catch_up, 'cohort', x.cohort)) end);
    end if;
    update cohorts set ultimate_redemption_rate = x.rate, recognized_minor = recognized_minor + x.catch_up
     where program_id = p_program and cohort = x.cohort;
    perform ll_recognize_cohort(p_program, x.cohort, now(), p_actor, v_key || ':after-period', 'loyalty_revenue');
    v_booked := v_booked + 1;
  end loop;
  update closes set booked_at = now(), updated_at = now() where program_id = p_program and period = p_period;
  return jsonb_build_object('cohortsBooked', v_booked);
end $$;
