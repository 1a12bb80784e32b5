-- After the GL took a batch's entry (or when its lines net to nothing and there is nothing to send):
-- records the posting and marks every journal entry the batch claimed as carried by it, in one
-- transaction. Idempotent: a second call changes nothing.
create or replace function ll_record_gl_batch(p_entry text) returns void language plpgsql as $$
declare b gl_batches;
begin
  select * into b from gl_batches where entry_id = p_entry;
  if not found then perform ll_raise('not_found', 404, 'no GL batch of this id', jsonb_build_object('entryId', p_entry)); end if;
  if jsonb_array_length(b.lines) > 0 then
    insert into gl_postings (entry_id, program_id, journal_key, business_date, lines)
    values (b.entry_id, b.program_id, replace(b.kind, '_', '-') || ':' || b.business_date::text, b.business_date, b.lines)
    on conflict (entry_id) do nothing;
  end if;
  insert into gl_posted_journals (journal_entry_id, gl_entry_id)
  select c.journal_entry_id, c.entry_id from gl_batch_journals c where c.entry_id = p_entry
  on conflict (journal_entry_id) do nothing;
end $$;
