-- Loyalty Ledger: the system of record. The tables, their constraints and indexes, and the rows
-- the ledger starts with. The functions, and the triggers that run them, are db/functions/<name>.sql,
-- applied after the numbered migrations (db/migrate.ts, docs/architecture.md "The database").
--
-- This baseline is migrations 001 to 016 squashed into one (no database had been deployed beyond
-- development machines); each later column stands at the end of its table, where those migrations
-- put it, so that a squashed database and one migrated step by step have the same columns in the
-- same order. Nothing here may name an ll_ function: on a fresh database they do not exist yet.
--
-- Invariants enforced here and by the triggers (the application checks them too, `loyalty verify`
-- re-checks them):
--   * ledger_entries, ledger_entry_cohorts, journal_entries, journal_lines are append-only
--     (db/functions/ll_forbid_change.sql);
--   * a member's balance and held points never go negative, held <= balance;
--   * a journal entry balances (debits = credits) before it is inserted;
--   * one accrual per (program, invoice); one effect per (scope, idempotency key).

create table programs (
  program_id      text primary key check (program_id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  name            text not null check (length(name) between 1 and 200),
  currency        char(3) not null check (currency ~ '^[A-Z]{3}$'),
  currency_digits smallint not null check (currency_digits between 0 and 4),
  created_at      timestamptz not null default now(),
  created_by      text not null,
  -- The end of the program's last frozen or locked quarter (the close moves it): nothing is dated
  -- before it (db/functions/ll_refuse_locked_period.sql).
  locked_until    timestamptz
);

-- Rules are versioned; every ledger entry records the version it used.
create table program_rule_versions (
  program_id   text not null references programs,
  version      int not null check (version >= 1),
  effective_at timestamptz not null,
  rules        jsonb not null,
  created_at   timestamptz not null default now(),
  created_by   text not null,
  primary key (program_id, version)
);

-- Idempotency-Key semantics of API.md: first response kept; same key + other body = 409.
create table idempotency_keys (
  scope        text not null,
  idem_key     text not null check (length(idem_key) between 1 and 255),
  request_hash text not null,
  status_code  int not null,
  response     jsonb not null,
  created_at   timestamptz not null default now(),
  primary key (scope, idem_key)
);

create table members (
  program_id       text not null references programs,
  member_id        text not null check (length(member_id) between 1 and 128),
  status           text not null default 'active' check (status in ('active', 'merged', 'archived')),
  merged_into      text,
  balance          bigint not null default 0 check (balance >= 0),
  held             bigint not null default 0 check (held >= 0 and held <= balance),
  last_purchase_at timestamptz,
  -- Purchase protection: the deadline lives here and moves with every qualifying purchase.
  expires_at       timestamptz,
  jurisdiction     text,
  -- The deadline the member workflow last armed its timer for (null: no timer, needs a wake).
  armed_deadline   timestamptz,
  created_at       timestamptz not null default now(),
  primary key (program_id, member_id),
  check ((status = 'merged') = (merged_into is not null)),
  check (status = 'active' or balance = 0)
);

-- Remaining points of a member per cohort (quarter of earn).
create table member_cohorts (
  program_id text not null,
  member_id  text not null,
  cohort     text not null check (cohort ~ '^[0-9]{4}-Q[1-4]$'),
  points     bigint not null check (points >= 0),
  primary key (program_id, member_id, cohort),
  foreign key (program_id, member_id) references members
);

-- Program-level cohort figures. Striped so concurrent accruals don't all lock one row;
-- a cohort's figure is the sum over its stripes. Allocations are kept twice: as posted (rounded
-- to the minor unit, what the journal holds) and exact at fixed scale (micro: millionths of a
-- minor unit), which the recognition formula uses so that rounding happens only at posting.
create table cohort_stripes (
  program_id               text not null references programs,
  cohort                   text not null check (cohort ~ '^[0-9]{4}-Q[1-4]$'),
  stripe                   smallint not null check (stripe between 0 and 63),
  points_issued            bigint not null default 0,
  allocated_minor          bigint not null default 0,
  points_revoked           bigint not null default 0,
  allocated_reversed_minor bigint not null default 0,
  allocated_micro          numeric(38, 0) not null default 0,
  allocated_reversed_micro numeric(38, 0) not null default 0,
  points_redeemed          bigint not null default 0,
  points_expired           bigint not null default 0,
  primary key (program_id, cohort, stripe)
);

-- Per-cohort recognition state; changed only by redemption, expiry and close (not on the hot path).
create table cohorts (
  program_id               text not null references programs,
  cohort                   text not null check (cohort ~ '^[0-9]{4}-Q[1-4]$'),
  ultimate_redemption_rate numeric(7, 6) not null check (ultimate_redemption_rate > 0 and ultimate_redemption_rate <= 1),
  recognized_minor         bigint not null default 0,
  -- where the cohort's allocation sits, and where its release goes: the contract liability and
  -- revenue (relative SSP), or the provision and the expense (incremental cost)
  liability_account        text not null default 'loyalty_contract_liability' check (liability_account in ('loyalty_contract_liability', 'loyalty_provision')),
  primary key (program_id, cohort),
  -- Incremental-cost programs: the provision is the expected cost of the points still to be
  -- redeemed, cost x min(outstanding, N x u - R), re-measured whenever R or u changes (each
  -- redemption releases its cost; the close's new estimate trues it up). Relative-SSP cohorts keep
  -- the cohort formula A x min(1, R / (N x u)). A provision cohort records the cost per point of
  -- the rules it was created under (db/functions/ll_cohort_cost.sql).
  cost_per_point_minor     bigint check (cost_per_point_minor > 0)
);

create table accruals (
  program_id         text not null references programs,
  invoice_id         text not null check (length(invoice_id) between 1 and 128),
  accrual_id         uuid not null unique,
  member_id          text not null,
  credited_member_id text not null,
  amount_minor       bigint not null check (amount_minor > 0),
  points             bigint not null check (points >= 0),
  allocated_minor    bigint not null check (allocated_minor >= 0),
  allocated_micro    numeric(38, 0) not null check (allocated_micro >= 0),
  cohort             text not null,
  occurred_at        timestamptz not null,
  store_id           text,
  jurisdiction       text,
  rule_version       int not null,
  request_hash       text not null,
  response           jsonb not null,
  recorded_at        timestamptz not null default now(),
  primary key (program_id, invoice_id)
);

create table refunds (
  program_id               text not null references programs,
  refund_id                text not null check (length(refund_id) between 1 and 128),
  invoice_id               text not null,
  member_id                text not null,
  amount_minor             bigint not null check (amount_minor > 0),
  points_revoked           bigint not null check (points_revoked >= 0),
  shortfall_points         bigint not null check (shortfall_points >= 0),
  allocated_reversed_minor bigint not null check (allocated_reversed_minor >= 0),
  occurred_at              timestamptz not null,
  request_hash             text not null,
  response                 jsonb not null,
  recorded_at              timestamptz not null default now(),
  primary key (program_id, refund_id),
  foreign key (program_id, invoice_id) references accruals
);

create table journal_entries (
  journal_entry_id bigserial primary key,
  program_id       text not null references programs,
  kind             text not null,
  occurred_at      timestamptz not null,
  recorded_at      timestamptz not null default now(),
  reference        text not null,
  actor            text not null,
  idempotency_key  text not null,
  debit_minor      bigint not null check (debit_minor >= 0),
  credit_minor     bigint not null check (credit_minor >= 0),
  check (debit_minor = credit_minor),
  unique (program_id, idempotency_key)
);

create table journal_lines (
  journal_entry_id bigint not null references journal_entries,
  line_no          smallint not null,
  account          text not null check (account in ('revenue', 'loyalty_contract_liability', 'loyalty_revenue', 'breakage_revenue', 'loyalty_expense', 'loyalty_provision')),
  debit_minor      bigint not null check (debit_minor >= 0),
  credit_minor     bigint not null check (credit_minor >= 0),
  cohort           text,
  check ((debit_minor = 0) <> (credit_minor = 0)),
  primary key (journal_entry_id, line_no)
);
create index journal_lines_account on journal_lines (account);

-- Append-only (corrections are new entries), like ledger_entry_cohorts, journal_entries and
-- journal_lines. Every entry records the rule version it was made under (set by a trigger when the
-- write path does not, db/functions/ll_set_rule_version.sql).
create table ledger_entries (
  entry_id         bigserial primary key,
  program_id       text not null references programs,
  member_id        text not null,
  type             text not null check (type in ('earn', 'earn_reversal', 'redeem', 'redeem_reversal', 'expire', 'adjust', 'merge_in', 'merge_out')),
  points           bigint not null,
  occurred_at      timestamptz not null,
  recorded_at      timestamptz not null default now(),
  reference        text not null,
  actor            text not null,
  idempotency_key  text not null,
  rule_version     int,
  journal_entry_id bigint references journal_entries,
  unique (program_id, idempotency_key)
);
create index ledger_entries_member on ledger_entries (program_id, member_id, entry_id);

create table ledger_entry_cohorts (
  entry_id bigint not null references ledger_entries,
  cohort   text not null,
  points   bigint not null,
  primary key (entry_id, cohort)
);

-- Outbox: members whose workflow must be started or woken (new member, or no timer armed).
create table member_wakeups (
  program_id   text not null,
  member_id    text not null,
  seq          bigint not null default 1,
  requested_at timestamptz not null default now(),
  primary key (program_id, member_id),
  -- Several workers, each with its outbox relay: a relay leases the wake-ups it reads, so the
  -- others skip them (no member is signalled once per relay). A lease that runs out (its relay
  -- died) makes the wake-up visible again; a wake-up requested again while leased is visible at once.
  leased_until timestamptz
);

-- API keys: only a SHA-256 of the secret is stored. A principal holds roles.
create table api_keys (
  key_id       text primary key,
  key_hash     text not null unique check (key_hash ~ '^[0-9a-f]{64}$'),
  principal    text not null check (length(principal) between 1 and 128),
  roles        text[] not null check (roles <@ array['billing', 'finance', 'controller', 'legal', 'program_owner', 'support', 'admin']),
  created_at   timestamptz not null default now(),
  revoked_at   timestamptz,
  last_used_at timestamptz
);

-- Redemptions, the ledger side: hold, release (compensation), commit, reverse (chargeback); the
-- saga drives them through billing, tax and the GL (docs/redemption-saga.md).
-- Invariants: one redemption per (program, invoice); held points are never spent twice (a hold
-- takes, per cohort, only what other holds of the member have not taken); a reversal puts the
-- points back into the cohorts they came from; a redemption never reverses more points (or
-- credit) than it applied; each cohort of a redemption gets back at most what it gave; each
-- invoice adjustment acts once.
create table redemptions (
  program_id          text not null references programs,
  invoice_id          text not null check (length(invoice_id) between 1 and 128),
  redemption_id       uuid not null unique,
  member_id           text not null,
  points_requested    bigint not null check (points_requested > 0),
  points_applied      bigint not null check (points_applied > 0),
  credit_minor        bigint not null check (credit_minor > 0),
  invoice_total_minor bigint not null check (invoice_total_minor > 0),
  status              text not null check (status in ('held', 'applied', 'declined', 'reversed')),
  reason              text,
  occurred_at         timestamptz not null,
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  primary key (program_id, invoice_id),
  check (credit_minor <= invoice_total_minor),
  check (points_applied <= points_requested),
  -- what chargebacks and invoice adjustments gave back
  points_reversed     bigint not null default 0 check (points_reversed >= 0),
  credit_reversed_minor bigint not null default 0 check (credit_reversed_minor >= 0),
  check (points_reversed <= points_applied),
  check (credit_reversed_minor <= credit_minor),
  -- the rule version in force when it was held (set by a trigger, db/functions/ll_set_rule_version.sql)
  rule_version        int,
  -- When the redemption saga first sent its credit to billing. Set before the call, so that it
  -- survives a worker that dies during it: a saga that declines before its credit step is done then
  -- knows that billing may hold the credit all the same, and settles it (activities/redemption.ts,
  -- settleAndReverseCreditInBilling). Null: the credit was never sent, nothing to settle.
  credit_requested_at timestamptz
);

create table redemption_cohorts (
  program_id text not null,
  invoice_id text not null,
  cohort     text not null,
  points     bigint not null check (points > 0),
  primary key (program_id, invoice_id, cohort),
  foreign key (program_id, invoice_id) references redemptions,
  points_reversed bigint not null default 0 check (points_reversed >= 0),
  check (points_reversed <= points)
);

-- An invoice lowered after its redemption reverses the excess points (append-only).
create table redemption_adjustments (
  program_id          text not null,
  invoice_id          text not null,
  adjustment_id       text not null check (length(adjustment_id) between 1 and 128),
  invoice_total_minor bigint not null check (invoice_total_minor >= 0),
  points_reversed     bigint not null check (points_reversed >= 0),
  credit_reversed_minor bigint not null check (credit_reversed_minor >= 0),
  occurred_at         timestamptz not null,
  recorded_at         timestamptz not null default now(),
  actor               text not null,
  primary key (program_id, invoice_id, adjustment_id),
  foreign key (program_id, invoice_id) references redemptions
);

-- What the ledger posted to the GL: one row per GL entry, written once the GL accepted it. The
-- reconciliation compares these with the GL; the close posts only what is not here (append-only).
create table gl_postings (
  entry_id      text primary key check (length(entry_id) between 1 and 200),
  program_id    text not null references programs,
  journal_key   text not null,
  business_date date not null,
  lines         jsonb not null,
  posted_at     timestamptz not null default now()
);
create index gl_postings_day on gl_postings (program_id, posted_at);

-- Daily reconciliation runs: append-only, the latest run of a day is its report.
create table reconciliation_runs (
  run_id          bigserial primary key,
  program_id      text not null references programs,
  business_date   date not null,
  workflow_id     text not null,
  redemptions_checked int not null check (redemptions_checked >= 0),
  credits_checked int not null check (credits_checked >= 0),
  gl_entries_checked int not null check (gl_entries_checked >= 0),
  in_progress     jsonb not null default '[]',
  differences     jsonb not null default '[]',
  difference_count int not null check (difference_count >= 0),
  recorded_at     timestamptz not null default now()
);
create index reconciliation_runs_day on reconciliation_runs (program_id, business_date, run_id desc);

-- The quarterly close: frozen and locked periods, the close's record, and which journal entries
-- reached the GL. Invariants: quarters close in order; no ledger entry is dated before a program's
-- locked_until (the end of its last frozen or locked quarter): writes from the API into it are
-- refused, the system's own (expiry, reversals) land in the open period; a locked close's report
-- never changes (db/functions/ll_refuse_locked_close_change.sql).
create table closes (
  program_id      text not null references programs,
  period          text not null check (period ~ '^[0-9]{4}-Q[1-4]$'),
  status          text not null check (status in ('frozen', 'proposed', 'escalated', 'cancelled', 'locked')),
  workflow_id     text not null,
  started_by      text not null,
  started_at      timestamptz not null default now(),
  override_rate   numeric(7, 6) check (override_rate > 0 and override_rate <= 1),
  override_justification text check (length(override_justification) between 1 and 2000),
  proposal        jsonb,
  approved_by     text,
  approved_at     timestamptz,
  booked_at       timestamptz,
  gl_entry_id     text,
  report          jsonb,
  updated_at      timestamptz not null default now(),
  primary key (program_id, period),
  check ((override_rate is null) = (override_justification is null)),
  check (approved_by is null or approved_by <> started_by),
  check (status <> 'locked' or (report is not null and approved_by is not null))
);

-- Which subledger journal entries are in which GL entry (the saga's redemption postings and the
-- close's period entry): the close posts what is not here yet, so nothing reaches the GL twice.
create table gl_posted_journals (
  journal_entry_id bigint primary key references journal_entries,
  gl_entry_id      text not null
);

-- The audit trail: every change to points (ledger entries), rules (programs and rule versions),
-- keys and periods (closes) appends a row with its actor, time, before and after, and the
-- effect's idempotency key. Rows are hash-chained: each row's hash covers its content and the hash
-- of the row before it in its chain, so `loyalty verify` finds an edited, inserted or deleted row.
-- Points go to one of 16 chains by the member's stripe (the same stripes the accrual lanes use, so
-- concurrent writers do not queue on one chain); everything else to chain 16. The triggers that
-- write it are db/functions/ll_audit_*.sql.
create table audit_chain_heads (
  chain smallint primary key check (chain between 0 and 16),
  seq   bigint not null,
  hash  text not null
);
insert into audit_chain_heads (chain, seq, hash) select c, 0, '' from generate_series(0, 16) c;

create table audit_log (
  chain           smallint not null,
  seq             bigint not null,
  at              timestamptz not null default now(),
  actor           text not null,
  action          text not null,
  program_id      text,
  member_id       text,
  subject         text not null,
  before          jsonb,
  after           jsonb,
  idempotency_key text,
  -- sha256 of this row's content and the hash of the row before it in the chain
  hash            text not null,
  primary key (chain, seq)
);
create index audit_log_member on audit_log (program_id, member_id, at);

-- Manual point adjustments by support: an `adjust` ledger entry and its journal entry, applied at
-- once below the program's threshold, else after a finance approval by someone else (the workflow
-- `adjustment:<programId>:<adjustmentId>`). Invariants: an adjustment acts once; a negative one
-- never takes more than the member has available; the approver is never the requester; none is
-- ever deleted.
create table manual_adjustments (
  program_id    text not null references programs,
  adjustment_id uuid primary key,
  member_id     text not null,
  points        bigint not null check (points <> 0),
  reason_code   text not null check (reason_code in ('goodwill', 'service_recovery', 'correction', 'migration', 'fraud')),
  comment       text check (length(comment) <= 2000),
  requested_by  text not null,
  requested_at  timestamptz not null default now(),
  status        text not null check (status in ('pending_approval', 'applied', 'rejected', 'expired')),
  approved_by   text,
  decided_at    timestamptz,
  decision_comment text check (length(decision_comment) <= 2000),
  entry_id      bigint references ledger_entries,
  idempotency_key text not null,
  unique (program_id, idempotency_key),
  check (approved_by is null or approved_by <> requested_by)
);

-- Rule changes: a proposed rule version, its impact, its approvals and its activation (the
-- workflow `rule-change:<programId>:<changeId>` drives it). Invariants: the proposer never
-- approves; one person fills at most one required role; a change adverse to members takes effect
-- no sooner than the notice period after its approval.
create table rule_changes (
  program_id   text not null references programs,
  change_id    text not null check (change_id ~ '^[\x21-\x7e]{1,128}$'),
  proposed_by  text not null,
  proposed_at  timestamptz not null default now(),
  base_version int not null,
  rules        jsonb not null,
  effective_at timestamptz not null,
  comment      text check (length(comment) <= 2000),
  status       text not null check (status in ('assessing', 'awaiting_approvals', 'scheduled', 'active', 'rejected', 'expired', 'withdrawn')),
  impact       jsonb,
  approvals    jsonb not null default '[]',
  adverse      boolean,
  activates_at timestamptz,
  version      int,
  updated_at   timestamptz not null default now(),
  primary key (program_id, change_id),
  -- when the first reminder to the approvers it waits on went out (notifications)
  reminded_at  timestamptz
);

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
