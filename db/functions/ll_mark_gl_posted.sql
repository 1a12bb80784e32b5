-- The journal entries a saga posting carried (written with the posting, see activities/redemption.ts).
create or replace function ll_mark_gl_posted(p_program text, p_journal_key text, p_gl_entry text) returns void language sql as $$
  insert into gl_posted_journals (journal_entry_id, gl_entry_id)
  select j.journal_entry_id, p_gl_entry from journal_entries j
   where j.program_id = p_program and left(j.idempotency_key, length(p_journal_key) + 1) = p_journal_key || ':'
     and position(':' in substr(j.idempotency_key, length(p_journal_key) + 2)) = 0
  on conflict (journal_entry_id) do nothing
$$;
