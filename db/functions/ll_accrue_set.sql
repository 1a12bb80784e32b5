-- A batch of accruals written set-based (issue 17, item 1): the items are parsed and checked in one
-- statement, then each table is written once for the whole batch (unnest of the parsed rows,
-- INSERT ... SELECT, ON CONFLICT), where ll_accrue runs about fifteen statements per item.
-- The same rules as ll_accrue, item for item; the members are locked already (ll_lock_batch_members).
--
-- Only the common case comes this way: every item is new (neither its Idempotency-Key nor its
-- invoice known, in the database or twice in the batch), its member active and not merged, its
-- price made with the estimate in force, no purchase after its member's deadline (that one expires
-- the points first), one jurisdiction and one kind of expiry (a window or none) among a member's
-- items. Otherwise it returns null before writing anything, and the caller runs ll_accrue item by
-- item, which answers replays, refusals and expiries. Any error (a concurrent duplicate's unique
-- violation, a closed period) aborts the whole batch, which the caller then runs item by item too.
-- p_new: the members ll_lock_batch_members created. Results come back in the items' order.
-- Every access here is by key, a batch's (at most 1,000) keys into tables of millions: the function
-- turns seq scans and hash joins off for its statements, whose plans PL/pgSQL caches per session.
-- A plan made while a table was small (or its statistics stale) would otherwise keep scanning it
-- whole once it has grown: members, hashed for the batch's update, did.
create or replace function ll_accrue_set(p_items jsonb, p_new text[]) returns jsonb language plpgsql
set enable_seqscan = off set enable_hashjoin = off as $$
declare
  v_rows accrual_batch_row[]; v_simple boolean; v_n int := jsonb_array_length(p_items);
  v_jids bigint[]; v_eids bigint[]; v_events uuid[]; v_out jsonb;
begin
  if v_n = 0 then return null; end if;
  with it as (
    select t.ord::int as ord, i->>'programId' as program_id, i->>'memberId' as member_id, i->>'invoiceId' as invoice_id,
           i->>'idemKey' as idem_key, i->>'requestHash' as request_hash, i->>'accrualId' as accrual_id,
           (i->>'amountMinor')::bigint as amount_minor, (i->>'points')::bigint as points,
           (i->>'allocatedMinor')::bigint as allocated_minor, (i->>'allocatedMicro')::numeric as allocated_micro,
           i->>'cohort' as cohort, (i->>'occurredAt')::timestamptz as occurred_at, i->>'storeId' as store_id,
           i->>'jurisdiction' as jurisdiction, i->'expiry' as expiry, (i->>'expectedRedemptionRate')::numeric as redemption_rate,
           i->>'rateClose' as rate_close, (i->>'ruleVersion')::int as rule_version,
           coalesce(i->>'debitAccount', 'revenue') as debit_account,
           coalesce(i->>'creditAccount', 'loyalty_contract_liability') as credit_account, i->>'actor' as actor
      from jsonb_array_elements(p_items) with ordinality t(i, ord)
  ), withm as materialized (
    select it.*, ll_stripe(it.member_id) as stripe, m.status, m.balance as m_balance, m.expires_at as m_expires,
           m.jurisdiction as m_jur, m.armed_deadline, it.member_id = any(p_new) as is_new,
           count(*) over (partition by it.program_id, it.idem_key) as idem_twice,
           count(*) over (partition by it.program_id, it.invoice_id) as invoice_twice,
           min(it.jurisdiction) over mem as jur_min, max(it.jurisdiction) over mem as jur_max,
           -- ll_accrue: jurisdiction := coalesce(the item's, the member's as the items before left it)
           bool_or(it.jurisdiction is not null) over before as jur_before,
           -- probes of the primary keys, one per item: LIMIT keeps the planner from hashing the whole
           -- table for a batch it guesses at 100 rows (jsonb_array_elements has no row estimate)
           (select true from idempotency_keys k where k.scope = it.program_id and k.idem_key = it.idem_key limit 1) is not null as key_known,
           (select true from accruals a where a.program_id = it.program_id and a.invoice_id = it.invoice_id limit 1) is not null as invoice_known,
           (select e.period is not distinct from it.rate_close and (e.period is null or e.rate = it.redemption_rate)
              from (select null) x left join ll_points_estimate(it.program_id) e on true) as price_current
      from it left join lateral (select * from members m where m.program_id = it.program_id and m.member_id = it.member_id limit 1) m on true
    window mem as (partition by it.program_id, it.member_id),
           before as (partition by it.program_id, it.member_id order by it.ord rows between unbounded preceding and 1 preceding)
  ), jur as materialized (
    select w.*, coalesce(w.jurisdiction, case when w.jur_before then w.jur_max end, w.m_jur) as v_jur from withm w
  ), win as materialized (
    select j.*, ll_add_duration(j.occurred_at, ll_expiry_window(j.expiry, j.v_jur)) as until from jur j
  ), run as materialized (
    select w.*,
           bool_and(w.until is null) over mem as never, bool_or(w.until is null) over mem as some_never,
           -- the deadline before the item: the member's, moved by each earlier item (greatest skips nulls)
           greatest(w.m_expires, max(w.until) over before) as deadline_before,
           greatest(w.m_expires, max(w.until) over upto) as deadline_after,
           w.m_balance + sum(w.points) over upto as balance_after,
           row_number() over (order by w.stripe, w.member_id, w.ord)::int as pos,
           row_number() over (partition by w.program_id, w.member_id order by w.ord desc) = 1 as last_of_member,
           max(w.occurred_at) over mem as latest_purchase_at
      from win w
    window mem as (partition by w.program_id, w.member_id),
           before as (partition by w.program_id, w.member_id order by w.ord rows between unbounded preceding and 1 preceding),
           upto as (partition by w.program_id, w.member_id order by w.ord rows between unbounded preceding and current row)
  ), fin as materialized (
    select r.*, case when r.never then null else r.deadline_after end as v_exp,
           r.status = 'active' and r.idem_twice = 1 and r.invoice_twice = 1 and not r.key_known and not r.invoice_known
             and r.price_current and (r.jur_min is not distinct from r.jur_max) and r.never = r.some_never
             -- purchase protection: after the deadline, ll_accrue expires the points first
             and (case when r.never then r.m_expires is null or r.occurred_at <= r.m_expires
                       else r.deadline_before is null or r.occurred_at <= r.deadline_before end) as simple
      from run r
  ), wake as (
    -- ll_accrue wakes the workflow when the member is new or a deadline falls before its timer
    select f.*, bool_or(f.is_new or (f.v_exp is not null and (f.armed_deadline is null or f.v_exp < f.armed_deadline)))
                  over (partition by f.program_id, f.member_id) as v_wake,
           -- the item's place among those with a journal entry
           case when f.allocated_minor > 0 then (count(*) filter (where f.allocated_minor > 0) over (order by f.pos))::int end as jpos
      from fin f
  )
  select bool_and(coalesce(w.simple, false)),
         array_agg(row(w.ord, w.pos, w.jpos,
                       w.program_id, w.member_id, w.stripe, w.invoice_id, w.idem_key, w.request_hash, w.accrual_id,
                       w.amount_minor, w.points, w.allocated_minor, w.allocated_micro, w.cohort, w.occurred_at, w.store_id,
                       w.jurisdiction, w.v_jur, w.v_exp, w.balance_after, w.redemption_rate, w.rate_close, w.rule_version,
                       w.debit_account, w.credit_account, w.actor, w.last_of_member, w.latest_purchase_at, w.v_wake,
                       jsonb_build_object('accrualId', w.accrual_id, 'memberId', w.member_id, 'points', w.points,
                         'allocatedMinor', w.allocated_minor, 'balance', w.balance_after, 'expiresAt', ll_ts(w.v_exp),
                         'cohort', w.cohort, 'expectedRedemptionRate', w.redemption_rate, 'rateSetByClose', w.rate_close)
                   )::accrual_batch_row order by w.pos)
    into v_simple, v_rows from wake w;
  if not v_simple then return null; end if;

  -- ids in processing order, so the journal, the ledger and the audit chains read in it
  select (select coalesce(array_agg(nextval('journal_entries_journal_entry_id_seq') order by r.jpos), '{}')
            from unnest(v_rows) r where r.jpos is not null),
         (select array_agg(nextval('ledger_entries_entry_id_seq')) from generate_series(1, v_n))
    into v_jids, v_eids;

  -- one journal entry per invoice with an allocation (debit = credit = allocatedMinor > 0: balanced)
  insert into journal_entries (journal_entry_id, program_id, kind, occurred_at, reference, actor, idempotency_key, debit_minor, credit_minor)
  select v_jids[r.jpos], r.program_id, 'accrual', r.occurred_at, 'invoice:' || r.invoice_id, r.actor, 'accrual:' || r.invoice_id,
         r.allocated_minor, r.allocated_minor
    from unnest(v_rows) r where r.allocated_minor > 0 order by r.pos;
  insert into journal_lines (journal_entry_id, line_no, account, debit_minor, credit_minor, cohort)
  select v_jids[r.jpos], l.line_no, l.account, l.debit_minor, l.credit_minor, l.cohort
    from unnest(v_rows) r
   cross join lateral (values (1::smallint, r.debit_account, r.allocated_minor, 0::bigint, null::text),
                              (2::smallint, r.credit_account, 0::bigint, r.allocated_minor, r.cohort))
         l(line_no, account, debit_minor, credit_minor, cohort)
   where r.allocated_minor > 0 order by r.pos, l.line_no;

  insert into ledger_entries (entry_id, program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key,
                              rule_version, journal_entry_id)
  select v_eids[r.pos], r.program_id, r.member_id, 'earn', r.points, r.occurred_at, 'invoice:' || r.invoice_id, r.actor,
         'accrual:' || r.invoice_id, r.rule_version, v_jids[r.jpos]
    from unnest(v_rows) r order by r.pos;
  insert into ledger_entry_cohorts (entry_id, cohort, points)
  select v_eids[r.pos], r.cohort, r.points from unnest(v_rows) r where r.points > 0 order by r.pos;

  insert into member_cohorts as mc (program_id, member_id, cohort, points)
  select r.program_id, r.member_id, r.cohort, sum(r.points) from unnest(v_rows) r where r.points > 0
   group by r.program_id, r.member_id, r.cohort order by 1, 2, 3
  on conflict (program_id, member_id, cohort) do update set points = mc.points + excluded.points;
  -- a new cohort takes the rate and account of the batch's first item in it, as item by item
  insert into cohorts (program_id, cohort, ultimate_redemption_rate, liability_account)
  select distinct on (r.program_id, r.cohort) r.program_id, r.cohort, r.redemption_rate, r.credit_account
    from unnest(v_rows) r order by r.program_id, r.cohort, r.pos
  on conflict do nothing;
  insert into cohort_stripes as cs (program_id, cohort, stripe, points_issued, allocated_minor, allocated_micro)
  select r.program_id, r.cohort, r.stripe, sum(r.points), sum(r.allocated_minor), sum(r.allocated_micro)
    from unnest(v_rows) r group by r.program_id, r.cohort, r.stripe order by 1, 2, 3
  on conflict (program_id, cohort, stripe) do update set
    points_issued = cs.points_issued + excluded.points_issued, allocated_minor = cs.allocated_minor + excluded.allocated_minor,
    allocated_micro = cs.allocated_micro + excluded.allocated_micro;

  -- each member as its last item leaves it
  update members m set balance = r.balance, expires_at = r.expires_at, jurisdiction = r.member_jurisdiction,
         last_purchase_at = greatest(m.last_purchase_at, r.latest_purchase_at)
    from unnest(v_rows) r
   where r.last_of_member and m.program_id = r.program_id and m.member_id = r.member_id;
  insert into member_wakeups (program_id, member_id)
  select r.program_id, r.member_id from unnest(v_rows) r where r.last_of_member and r.wake order by 1, 2
  on conflict (program_id, member_id) do update set seq = member_wakeups.seq + 1, requested_at = now(), leased_until = null;

  insert into accruals (program_id, invoice_id, accrual_id, member_id, credited_member_id, amount_minor, points, allocated_minor,
                        allocated_micro, cohort, occurred_at, store_id, jurisdiction, rule_version, request_hash, response,
                        redemption_rate, rate_close)
  select r.program_id, r.invoice_id, r.accrual_id::uuid, r.member_id, r.member_id, r.amount_minor, r.points, r.allocated_minor,
         r.allocated_micro, r.cohort, r.occurred_at, r.store_id, r.jurisdiction, r.rule_version, r.request_hash, r.body,
         r.redemption_rate, r.rate_close
    from unnest(v_rows) r order by r.pos;
  insert into idempotency_keys (scope, idem_key, request_hash, status_code, response)
  select r.program_id, r.idem_key, r.request_hash, 201, r.body from unnest(v_rows) r order by r.pos;

  -- the webhook outbox (ll_emit_event, for the whole batch): nothing when no webhook takes the type
  if exists (select 1 from webhooks w where w.status = 'active' and 'points.earned' = any (w.events)
                and w.program_id in (select r.program_id from unnest(v_rows) r)) then
    select array_agg(gen_random_uuid()) into v_events from generate_series(1, v_n);
    insert into webhook_events (event_id, program_id, type, member_id, occurred_at, data)
    select v_events[r.pos], r.program_id, 'points.earned', r.member_id, r.occurred_at, r.body || jsonb_build_object('invoiceId', r.invoice_id)
      from unnest(v_rows) r
     where exists (select 1 from webhooks w where w.program_id = r.program_id and w.status = 'active' and 'points.earned' = any (w.events))
     order by r.pos;
    insert into webhook_deliveries (event_id, webhook_id, queue_key)
    select v_events[r.pos], w.webhook_id, r.member_id
      from unnest(v_rows) r join webhooks w on w.program_id = r.program_id and w.status = 'active' and 'points.earned' = any (w.events)
     order by r.pos, w.webhook_id;
  end if;

  select jsonb_agg(jsonb_build_object('status', 201, 'body', r.body, 'replayed', false) order by r.ord) into v_out
    from unnest(v_rows) r;
  return v_out;
end $$;
