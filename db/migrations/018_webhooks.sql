-- Webhooks (issue 15, item 4; docs/api.md, "Webhooks"). An outbox like member_wakeups: an event row
-- and its deliveries are written in the same transaction as the change that causes them
-- (db/functions/ll_emit_event.sql), and workers/webhook-relay.ts delivers them, leased so that
-- several workers' relays share the table.

-- A program's webhook endpoints. The secret is stored (the relay must compute the HMAC with it);
-- no GET answers it and no log line carries it. A deleted webhook is kept (its deliveries point at
-- it) with status 'deleted'. The previous secret signs too until previous_secret_until (rotation's
-- grace window).
create table webhooks (
  webhook_id            uuid primary key,
  program_id            text not null references programs (program_id),
  url                   text not null check (length(url) between 8 and 2048),
  events                text[] not null check (cardinality(events) between 1 and 32),
  description           text check (length(description) <= 500),
  secret                text not null check (length(secret) between 32 and 200),
  previous_secret       text check (length(previous_secret) between 32 and 200),
  previous_secret_until timestamptz,
  status                text not null default 'active' check (status in ('active', 'deleted')),
  created_at            timestamptz not null default now(),
  created_by            text not null,
  secret_rotated_at     timestamptz,
  deleted_at            timestamptz,
  deleted_by            text
);
-- the accrual hot path asks "does any active webhook of the program take this type?": one probe
create index webhooks_active on webhooks (program_id) where status = 'active';

-- One row per event, append-only (ll_forbid_change): the payload every delivery of it sends.
create table webhook_events (
  event_id    uuid primary key default gen_random_uuid(),
  program_id  text not null,
  type        text not null check (length(type) <= 64),
  member_id   text,
  occurred_at timestamptz not null,
  data        jsonb not null,
  recorded_at timestamptz not null default clock_timestamp()
);

-- One delivery per (event, webhook). queue_key is the member id (or the event id for an event of no
-- member): a webhook's deliveries of one queue go out one at a time in delivery_id order, the head
-- holding the rest while it is retried (docs/api.md, "Order per member").
-- No foreign key to webhooks, on purpose: its check takes a KEY SHARE lock on the webhook's row in
-- every accrual's transaction, and many concurrent transactions sharing one row's lock make a
-- MultiXact each time (bench/RESULTS.md, "Webhooks"). ll_emit_event writes only ids it read from
-- webhooks, whose rows are never deleted (status 'deleted'); nor a unique (event, webhook) index:
-- ll_emit_event inserts each pair once, in the transaction that makes the event.
create table webhook_deliveries (
  delivery_id       bigserial primary key,
  event_id          uuid not null references webhook_events (event_id),
  webhook_id        uuid not null,
  queue_key         text not null,
  status            text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
  attempts          int not null default 0 check (attempts >= 0),
  -- the retry horizon (24 h) counts from here; a redelivery starts a new series
  series_started_at timestamptz not null default now(),
  next_attempt_at   timestamptz not null default now(),
  leased_until      timestamptz,
  lease_token       uuid,
  last_attempt_at   timestamptz,
  last_status_code  int,
  last_error        text check (length(last_error) <= 1000),
  delivered_at      timestamptz
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_queue on webhook_deliveries (webhook_id, queue_key, delivery_id) where status = 'pending';
create index webhook_deliveries_by_webhook on webhook_deliveries (webhook_id, delivery_id);

-- Every attempt, append-only: what GET .../deliveries shows.
create table webhook_delivery_attempts (
  attempt_id   bigserial primary key,
  delivery_id  bigint not null references webhook_deliveries (delivery_id),
  started_at   timestamptz not null,
  duration_ms  int not null check (duration_ms >= 0),
  status_code  int,
  error        text check (length(error) <= 1000),
  ok           boolean not null
);
create index webhook_delivery_attempts_delivery on webhook_delivery_attempts (delivery_id, attempt_id);

-- points.expiring_soon once per (member, deadline): the scan (ll_emit_expiring_soon) inserts here
-- first, so a second scan, or a second relay, finds the row and sends nothing.
create table webhook_expiry_notices (
  program_id text not null,
  member_id  text not null,
  deadline   timestamptz not null,
  noticed_at timestamptz not null default now(),
  primary key (program_id, member_id, deadline)
);
