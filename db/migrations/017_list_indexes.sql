-- The lists' orders and filters (issue 15, item 3; docs/api.md, "Lists and pagination"): each list
-- is a keyset page in a stable order, and each filter with that order is an index range here, so
-- that a page reads its rows and no more, however deep the cursor. Closes need none (their primary
-- key is the order: program, period); the approval inbox reads the pending rows of the partial
-- index below, the proposed closes and the rule changes awaiting approvals (a few a program).

-- members by id with a status (the primary key serves the list without one), and by deadline
create index members_by_status on members (program_id, status, member_id);
create index members_by_deadline on members (program_id, expires_at, member_id) where expires_at is not null;

-- redemptions by business time, with or without a status
create index redemptions_by_time on redemptions (program_id, occurred_at, invoice_id);
create index redemptions_by_status_time on redemptions (program_id, status, occurred_at, invoice_id);

-- manual adjustments and merges by request time, with or without a status; the pending ones across programs
create index manual_adjustments_by_time on manual_adjustments (program_id, requested_at, adjustment_id);
create index manual_adjustments_by_status_time on manual_adjustments (program_id, status, requested_at, adjustment_id);
create index manual_adjustments_pending on manual_adjustments (requested_at, adjustment_id) where status = 'pending_approval';

-- rule changes by proposal time, with or without a status
create index rule_changes_by_time on rule_changes (program_id, proposed_at, change_id);
create index rule_changes_by_status_time on rule_changes (program_id, status, proposed_at, change_id);
