-- The subledger in the GL every day (issue 15, item 5; docs/accounting.md, "The GL every day").
-- A batch is one GL entry that carries many journal entries: a program's day (`daily`) or what a
-- close found no daily run had carried (`close_rest`). Its journal entries are claimed here, in the
-- transaction that fixes its lines, before the GL is called: a retry posts the same body under the
-- same id, and no other batch can take the same journal entry (the primary key), so nothing reaches
-- the GL twice. Once the GL took it, gl_postings and gl_posted_journals record it as for any posting.
create table gl_batches (
  entry_id      text primary key check (length(entry_id) between 1 and 128),
  program_id    text not null references programs,
  kind          text not null check (kind in ('daily', 'close_rest')),
  business_date date not null,
  -- the batch carries journal entries dated before this instant (the end of business_date, UTC)
  through       timestamptz not null,
  lines         jsonb not null,
  journal_count int not null check (journal_count >= 0),
  created_at    timestamptz not null default now(),
  actor         text not null
);
-- the program's last daily batch (the next one looks only at what was recorded or dated after it)
create index gl_batches_latest on gl_batches (program_id, kind, created_at);

create table gl_batch_journals (
  journal_entry_id bigint primary key references journal_entries,
  entry_id         text not null references gl_batches deferrable initially deferred
);
create index gl_batch_journals_by_entry on gl_batch_journals (entry_id);

-- The daily balance check and monthly view of a reconciliation run (null on runs made before them).
alter table reconciliation_runs add column balance_check jsonb, add column monthly jsonb;

-- The balance check reads a program's journal by date; the daily batch reads what was recorded
-- since the last one, or dated after it.
create index journal_entries_by_time on journal_entries (program_id, occurred_at);
create index journal_entries_by_recorded on journal_entries (program_id, recorded_at);
