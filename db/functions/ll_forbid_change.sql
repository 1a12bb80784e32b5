-- Append-only tables: corrections are new entries. No UPDATE or DELETE of a row, no TRUNCATE. Each
-- table is listed here by its triggers; gl_posted_journals and notifications refuse only row changes,
-- manual_adjustments only deletion (its status moves as the adjustment is decided).
create or replace function ll_forbid_change() returns trigger language plpgsql as $$
begin
  raise exception 'append_only: % on % is not allowed', tg_op, tg_table_name using errcode = 'LL900';
end $$;

create or replace trigger ledger_entries_append_only before update or delete on ledger_entries for each row execute function ll_forbid_change();
create or replace trigger ledger_entries_no_truncate before truncate on ledger_entries for each statement execute function ll_forbid_change();
create or replace trigger ledger_entry_cohorts_append_only before update or delete on ledger_entry_cohorts for each row execute function ll_forbid_change();
create or replace trigger ledger_entry_cohorts_no_truncate before truncate on ledger_entry_cohorts for each statement execute function ll_forbid_change();
create or replace trigger journal_entries_append_only before update or delete on journal_entries for each row execute function ll_forbid_change();
create or replace trigger journal_entries_no_truncate before truncate on journal_entries for each statement execute function ll_forbid_change();
create or replace trigger journal_lines_append_only before update or delete on journal_lines for each row execute function ll_forbid_change();
create or replace trigger journal_lines_no_truncate before truncate on journal_lines for each statement execute function ll_forbid_change();
create or replace trigger redemption_adjustments_append_only before update or delete on redemption_adjustments for each row execute function ll_forbid_change();
create or replace trigger redemption_adjustments_no_truncate before truncate on redemption_adjustments for each statement execute function ll_forbid_change();
create or replace trigger gl_postings_append_only before update or delete on gl_postings for each row execute function ll_forbid_change();
create or replace trigger gl_postings_no_truncate before truncate on gl_postings for each statement execute function ll_forbid_change();
create or replace trigger reconciliation_runs_append_only before update or delete on reconciliation_runs for each row execute function ll_forbid_change();
create or replace trigger reconciliation_runs_no_truncate before truncate on reconciliation_runs for each statement execute function ll_forbid_change();
create or replace trigger audit_log_append_only before update or delete on audit_log for each row execute function ll_forbid_change();
create or replace trigger audit_log_no_truncate before truncate on audit_log for each statement execute function ll_forbid_change();
create or replace trigger gl_posted_journals_append_only before update or delete on gl_posted_journals for each row execute function ll_forbid_change();
create or replace trigger notifications_append_only before update or delete on notifications for each row execute function ll_forbid_change();
create or replace trigger manual_adjustments_no_delete before delete or truncate on manual_adjustments for each statement execute function ll_forbid_change();
-- a rule version is what every accrual and redemption under it was priced by: never changed (a new
-- version is a rule change: docs/rule-changes.md)
create or replace trigger program_rule_versions_append_only before update or delete on program_rule_versions for each row execute function ll_forbid_change();
create or replace trigger program_rule_versions_no_truncate before truncate on program_rule_versions for each statement execute function ll_forbid_change();
-- a GL batch's lines and the journal entries it claimed are what the GL was sent under its id (db/gl-daily.ts)
create or replace trigger gl_batches_append_only before update or delete on gl_batches for each row execute function ll_forbid_change();
create or replace trigger gl_batches_no_truncate before truncate on gl_batches for each statement execute function ll_forbid_change();
create or replace trigger gl_batch_journals_append_only before update or delete on gl_batch_journals for each row execute function ll_forbid_change();
create or replace trigger gl_batch_journals_no_truncate before truncate on gl_batch_journals for each statement execute function ll_forbid_change();
-- webhook events and delivery attempts (migration 018): what was sent, as it was
create or replace trigger webhook_events_append_only before update or delete on webhook_events for each row execute function ll_forbid_change();
create or replace trigger webhook_events_no_truncate before truncate on webhook_events for each statement execute function ll_forbid_change();
create or replace trigger webhook_delivery_attempts_append_only before update or delete on webhook_delivery_attempts for each row execute function ll_forbid_change();
create or replace trigger webhook_delivery_attempts_no_truncate before truncate on webhook_delivery_attempts for each statement execute function ll_forbid_change();
