-- Notifications: messages the processes send to people (a reminder to the approvers a rule change
-- still waits on). An outbox other systems read (mail, chat); append-only, one row per
-- idempotency key, so a retried activity never sends twice.

create table notifications (
  notification_id bigserial primary key,
  program_id      text not null references programs,
  kind            text not null check (kind in ('rule_change_reminder')),
  subject         text not null check (length(subject) between 1 and 300),
  recipients      text[] not null check (cardinality(recipients) between 1 and 10),
  message         text not null check (length(message) between 1 and 2000),
  idempotency_key text not null unique check (length(idempotency_key) between 1 and 300),
  created_at      timestamptz not null default now()
);
create index notifications_by_program on notifications (program_id, created_at);

create trigger notifications_append_only before update or delete on notifications
  for each row execute function ll_forbid_change();

alter table rule_changes add column reminded_at timestamptz;
