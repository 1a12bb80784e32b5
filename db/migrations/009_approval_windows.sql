-- Approvals that cannot be split or skipped (issue 14, item 4; docs/adjustments.md). A manual
-- adjustment, and now a merge, waits for a finance approval when the points moved without one, per
-- member and per requester over the program's rolling window (adjustments.approvalWindow), would
-- pass the threshold with it. So each request records whether it needed an approval when it was
-- made (needs_approval, decided under a lock: db/functions/ll_approval_gate.sql): the ones that did
-- not are what the window adds up. A merge is a row of its own kind here, so it shares the
-- adjustments' window, their approval path (the workflow `adjustment:<programId>:<adjustmentId>`,
-- POST .../adjustments/{id}/approvals) and their invariants (acts once, never deleted, the approver
-- is never the requester).
alter table manual_adjustments
  add column kind text not null default 'adjustment' check (kind in ('adjustment', 'merge')),
  add column into_member_id text,
  add column needs_approval boolean;

-- Rows from before: one applied without an approver went without one; every other one was (or is)
-- before finance. An undecided one whose apply failed below the threshold is counted as before
-- finance: it moved nothing.
update manual_adjustments set needs_approval = not (status = 'applied' and approved_by is null);
alter table manual_adjustments alter column needs_approval set not null;

alter table manual_adjustments drop constraint manual_adjustments_reason_code_check;
alter table manual_adjustments add constraint manual_adjustments_reason_code_check
  check (reason_code in ('goodwill', 'service_recovery', 'correction', 'migration', 'fraud', 'merge'));
-- a merge names its survivor and only a merge has the reason `merge`; its points are the member's
-- balance when it was requested
alter table manual_adjustments add constraint manual_adjustments_merge_check
  check ((kind = 'merge') = (into_member_id is not null) and (kind = 'merge') = (reason_code = 'merge'));
-- an approval was needed: it is applied only with an approver (a merge or an adjustment alike)
alter table manual_adjustments add constraint manual_adjustments_approved_check
  check (not (needs_approval and status = 'applied' and approved_by is null));

-- the window's sums: per member (either side of a merge) and per requester
create index manual_adjustments_member_window on manual_adjustments (program_id, member_id, requested_at) where not needs_approval;
create index manual_adjustments_into_window on manual_adjustments (program_id, into_member_id, requested_at) where not needs_approval and into_member_id is not null;
create index manual_adjustments_requester_window on manual_adjustments (program_id, requested_by, requested_at) where not needs_approval;
