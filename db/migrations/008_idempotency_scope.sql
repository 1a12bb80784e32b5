-- Exact idempotency on every state-changing request (issue 14, item 6; docs/access.md "Idempotency").
--
-- A key is scoped by the principal that sent it and the route it was sent to: the API stores it as
-- the JSON array [principal, route, Idempotency-Key] (api/validate.ts scopedIdempotencyKey), so one
-- principal's key never finds another's stored response. That is longer than the 255 characters a
-- client key may have, hence the wider check. Keys stored before this migration were not scoped;
-- they stay as they were and no request finds them any more (each write route has its natural key
-- too: the invoice, the refundId, the program, the changeId, the close's period).
alter table idempotency_keys drop constraint idempotency_keys_idem_key_check;
alter table idempotency_keys add constraint idempotency_keys_idem_key_check check (length(idem_key) between 1 and 1200);

-- Writes that are not one transaction (they start, signal or update workflows) claim their key in a
-- committed row first, status_code 0 meaning in progress (db/functions/ll_idem_begin.sql): claimed_at
-- is when, claim_id whose claim it is. A claim left in progress longer than its lease (a crashed API)
-- is taken over by the next request with the same key and body; the work itself is idempotent by
-- its workflow id.
alter table idempotency_keys add column claimed_at timestamptz not null default now();
alter table idempotency_keys add column claim_id uuid;

-- The natural key of a request whose effect is one per business id, whatever the Idempotency-Key:
--   kind 'redemption': one redemption per invoice (natural_id the invoice); request_hash the body's,
--     principal who asked: another body (or another principal) for the same invoice is 409
--     redemption_exists unless that redemption ended declined (db/functions/ll_natural_claim.sql);
--   kind 'chargeback': a chargebackId belongs to one invoice (subject): reused on another invoice
--     it is 409 chargeback_id_reused.
create table request_natural_keys (
  program_id   text not null references programs,
  kind         text not null check (kind in ('redemption', 'chargeback')),
  natural_id   text not null check (length(natural_id) between 1 and 128),
  subject      text,
  request_hash text,
  principal    text,
  -- a redemption's request before this table (backfilled): no hash, its fields compared instead
  request      jsonb,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  primary key (program_id, kind, natural_id),
  check (kind <> 'chargeback' or subject is not null)
);

-- Redemptions recorded before: their member, points and invoice total are what a new request for
-- the invoice is compared with.
insert into request_natural_keys (program_id, kind, natural_id, request)
select program_id, 'redemption', invoice_id,
       jsonb_build_object('memberId', member_id, 'points', points_requested, 'invoiceTotalMinor', invoice_total_minor)
from redemptions;

-- Lost chargebacks clawed back before (their refund is `chargeback:<chargebackId>`): the
-- chargebackId stays with its invoice. Opened or won ones left no row to learn them from.
insert into request_natural_keys (program_id, kind, natural_id, subject)
select distinct on (program_id, substr(refund_id, 12)) program_id, 'chargeback', substr(refund_id, 12), invoice_id
from refunds where refund_id like 'chargeback:%' and length(refund_id) > 11
order by program_id, substr(refund_id, 12), recorded_at;
