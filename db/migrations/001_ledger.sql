-- Loyalty Ledger: the system of record.
-- Invariants enforced here (the application checks them too, `loyalty verify` re-checks them):
--   * ledger_entries, ledger_entry_cohorts, journal_entries, journal_lines are append-only;
--   * a member's balance and held points never go negative, held <= balance;
--   * a journal entry balances (debits = credits) before it is inserted;
--   * one accrual per (program, invoice); one effect per (scope, idempotency key).

create table programs (
  program_id      text primary key check (program_id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  name            text not null check (length(name) between 1 and 200),
  currency        char(3) not null check (currency ~ '^[A-Z]{3}$'),
  currency_digits smallint not null check (currency_digits between 0 and 4),
  created_at      timestamptz not null default now(),
  created_by      text not null
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
  primary key (program_id, cohort)
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
  primary key (program_id, member_id)
);

-- Append-only: corrections are new entries.
create function ll_forbid_change() returns trigger language plpgsql as $$
begin
  raise exception 'append_only: % on % is not allowed', tg_op, tg_table_name using errcode = 'LL900';
end $$;

do $$
declare t text;
begin
  foreach t in array array['ledger_entries', 'ledger_entry_cohorts', 'journal_entries', 'journal_lines'] loop
    execute format('create trigger %I_append_only before update or delete on %I for each row execute function ll_forbid_change()', t, t);
    execute format('create trigger %I_no_truncate before truncate on %I for each statement execute function ll_forbid_change()', t, t);
  end loop;
end $$;
