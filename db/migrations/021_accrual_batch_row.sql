-- One accrual of a set-based batch (db/functions/ll_accrue_set.sql, issue 17): the items parsed and
-- checked once, then every table written once for the batch from unnest() of an array of these.
-- pos is the batch's processing order, (stripe, member, item order), so every table's rows are
-- locked in the order the item-by-item path takes them. The member's figures are after the item.
create type accrual_batch_row as (
  ord int,
  pos int,
  jpos int,
  program_id text,
  member_id text,
  stripe smallint,
  invoice_id text,
  idem_key text,
  request_hash text,
  accrual_id text,
  amount_minor bigint,
  points bigint,
  allocated_minor bigint,
  allocated_micro numeric,
  cohort text,
  occurred_at timestamptz,
  store_id text,
  jurisdiction text,
  member_jurisdiction text,
  expires_at timestamptz,
  balance bigint,
  redemption_rate numeric,
  rate_close text,
  rule_version int,
  debit_account text,
  credit_account text,
  actor text,
  last_of_member boolean,
  latest_purchase_at timestamptz,
  wake boolean,
  body jsonb
);
