-- The exports' order (issue 15, item 3; docs/api.md, "Export"): a program's ledger entries and its
-- journal entries by business time, then id, so that an export of a date range is an index range
-- read in the order it is streamed (no sort of millions of rows, no temporary file) and the same
-- range exports the same rows in the same order every time. A journal entry's lines come from its
-- primary key (journal_entry_id, line_no).
create index ledger_entries_by_time on ledger_entries (program_id, occurred_at, entry_id);
-- (019's index of the same name, without the id, for the daily GL run: this one serves both)
drop index journal_entries_by_time;
create index journal_entries_by_time on journal_entries (program_id, occurred_at, journal_entry_id);
