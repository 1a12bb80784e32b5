-- Decisions asked for through the API (issue 14, item 1: Temporal is not a side door). Anyone who
-- can reach the Temporal frontend or UI can send a workflow an update naming any approver; so the
-- API records who asked, here, from the authenticated key, and passes the workflow only the row's
-- id. The workflow's activity then checks the row against this database (it exists, is for this
-- workflow's object, the key is active, its principal holds the role and is not the requester:
-- db/approval-requests.ts) before the decision counts. Rows are never changed or deleted
-- (db/functions/ll_decision_request_final.sql).
create table decision_requests (
  request_id  uuid primary key,
  kind        text not null check (kind in ('close_approval', 'rule_change_decision', 'adjustment_approval')),
  program_id  text not null references programs (program_id),
  -- the close's period, the rule change's id, the adjustment's id
  subject     text not null check (length(subject) between 1 and 200),
  workflow_id text not null check (length(workflow_id) between 1 and 400),
  -- the key that authenticated the request, and its principal then
  key_id      text not null references api_keys (key_id),
  principal   text not null,
  decision    text not null check (decision in ('approve', 'reject')),
  comment     text check (length(comment) <= 2000),
  created_at  timestamptz not null default now()
);
create index decision_requests_subject on decision_requests (program_id, kind, subject);
