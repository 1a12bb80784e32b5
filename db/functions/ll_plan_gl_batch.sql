-- Fixes a GL batch (db/migrations/019_gl_daily.sql): claims every journal entry of the program dated
-- before p_through that no GL entry carries and no batch has claimed, except the close's own
-- catch-ups (reference `close:<period>`, posted by their close alone) and, unless p_with_saga, the
-- redemption saga's journals (`redeem:`, `redeem-reversal:`, `redeem-adjust:`, which the saga posts
-- per redemption), and records the batch with its lines net per account. A batch that exists is
-- answered as it is: a retry or a second run of the same day claims nothing new, and sends the GL
-- the body it was first sent. One planner per program at a time (an advisory lock), so two
-- batches never see the same unclaimed entry. Answers {entryId, lines, journalCount, created}.
--
-- A daily batch reads only what can be new since the program's last daily batch, not the whole
-- history: the entries recorded since a day before it was planned (a writer's transaction that
-- began before the plan and committed after it is minutes, not a day, old: the statement timeouts)
-- or dated on or after the instant it carried up to (a catch-up run for a later day). Everything
-- else was there for the last batch to claim, and it claimed every entry it could.
--
-- A daily batch claims only entries dated in its own day's quarter: one dated in an earlier
-- quarter (a purchase of Mar 31 23:58 reported at 00:12 on Apr 1, after Mar 31's run) is left to
-- that quarter's close (its `close-rest` batch), so that the GL's accounts at the quarter's end
-- hold every entry of the quarter. Once that quarter is locked nothing can be dated in it.
create or replace function ll_plan_gl_batch(p_entry text, p_program text, p_kind text, p_date date, p_through timestamptz,
                                            p_with_saga boolean, p_actor text) returns jsonb language plpgsql as $$
declare b gl_batches; v_lines jsonb; v_count int; v_prev gl_batches;
  v_from timestamptz := case when p_kind = 'daily' then date_trunc('quarter', p_date::timestamp) at time zone 'UTC' else '-infinity' end;
begin
  perform pg_advisory_xact_lock(hashtextextended('ll.gl-batch:' || p_program, 0));
  select * into b from gl_batches where entry_id = p_entry;
  if found then
    if b.program_id <> p_program or b.kind <> p_kind or b.business_date <> p_date then
      perform ll_raise('validation_failed', 409, 'the GL entry id belongs to another batch', jsonb_build_object('entryId', p_entry));
    end if;
    return jsonb_build_object('entryId', b.entry_id, 'lines', b.lines, 'journalCount', b.journal_count, 'created', false);
  end if;
  if p_kind = 'daily' then
    select * into v_prev from gl_batches where program_id = p_program and kind = 'daily' order by created_at desc limit 1;
  end if;
  if v_prev.entry_id is null then
    insert into gl_batch_journals (journal_entry_id, entry_id)
    select j.journal_entry_id, p_entry from journal_entries j
     where j.program_id = p_program and j.occurred_at < p_through and j.occurred_at >= v_from
       and j.reference !~ '^close:'
       and (p_with_saga or j.idempotency_key !~ '^redeem(-reversal|-adjust)?:')
       and not exists (select 1 from gl_posted_journals g where g.journal_entry_id = j.journal_entry_id)
       and not exists (select 1 from gl_batch_journals c where c.journal_entry_id = j.journal_entry_id);
  else
    insert into gl_batch_journals (journal_entry_id, entry_id)
    select j.journal_entry_id, p_entry
      from (select journal_entry_id from journal_entries
             where program_id = p_program and recorded_at >= v_prev.created_at - interval '1 day' and occurred_at < p_through
            union
            select journal_entry_id from journal_entries
             where program_id = p_program and occurred_at >= v_prev.through and occurred_at < p_through) n
      join journal_entries j on j.journal_entry_id = n.journal_entry_id
     where j.occurred_at >= v_from
       and j.reference !~ '^close:'
       and (p_with_saga or j.idempotency_key !~ '^redeem(-reversal|-adjust)?:')
       and not exists (select 1 from gl_posted_journals g where g.journal_entry_id = j.journal_entry_id)
       and not exists (select 1 from gl_batch_journals c where c.journal_entry_id = j.journal_entry_id);
  end if;
  get diagnostics v_count = row_count;
  select coalesce(jsonb_agg(jsonb_build_object('account', x.account, 'debitMinor', greatest(x.net, 0), 'creditMinor', greatest(-x.net, 0))
                            order by x.account), '[]'::jsonb)
    into v_lines
    from (select l.account, sum(l.debit_minor) - sum(l.credit_minor) as net
            from gl_batch_journals c join journal_lines l on l.journal_entry_id = c.journal_entry_id
           where c.entry_id = p_entry group by l.account) x
   where x.net <> 0;
  insert into gl_batches (entry_id, program_id, kind, business_date, through, lines, journal_count, actor)
  values (p_entry, p_program, p_kind, p_date, p_through, v_lines, v_count, p_actor);
  return jsonb_build_object('entryId', p_entry, 'lines', v_lines, 'journalCount', v_count, 'created', true);
end $$;
