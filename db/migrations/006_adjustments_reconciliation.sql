-- Invoice adjustments (a lowered invoice reverses the excess points of its redemption), what the
-- ledger posted to the GL, the daily reconciliation reports, and held points released after expiry.
-- Invariants: a redemption never reverses more points (or credit) than it applied; each cohort of
-- a redemption gets back at most what it gave; each adjustment acts once.

-- The end of a program's last frozen or locked quarter (the close, 007, moves it): nothing is dated before it.
alter table programs add column locked_until timestamptz;

create function ll_locked_until(p_program text) returns timestamptz language sql stable as $$
  select locked_until from programs where program_id = p_program
$$;

alter table redemptions
  add column points_reversed bigint not null default 0 check (points_reversed >= 0),
  add column credit_reversed_minor bigint not null default 0 check (credit_reversed_minor >= 0),
  add check (points_reversed <= points_applied),
  add check (credit_reversed_minor <= credit_minor),
  add column rule_version int; -- the rule version in force when it was held (set by a trigger, 012)

alter table redemption_cohorts
  add column points_reversed bigint not null default 0 check (points_reversed >= 0),
  add check (points_reversed <= points);

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

create or replace function ll_redemption_view(r redemptions) returns jsonb language sql stable as $$
  select jsonb_build_object('redemptionId', r.redemption_id, 'invoiceId', r.invoice_id, 'memberId', r.member_id,
    'status', r.status, 'reason', r.reason, 'pointsRequested', r.points_requested, 'pointsApplied', r.points_applied,
    'creditMinor', r.credit_minor, 'pointsReversed', r.points_reversed, 'creditReversedMinor', r.credit_reversed_minor,
    'ruleVersion', r.rule_version,
    'cohorts', coalesce((select jsonb_object_agg(rc.cohort, rc.points) from redemption_cohorts rc
                          where rc.program_id = r.program_id and rc.invoice_id = r.invoice_id), '{}'))
$$;

-- Gives back p_points of an applied redemption to the cohorts they came from, in proportion to what
-- each cohort still has out (cumulative shares, so the parts add up exactly), on the member who holds
-- the points now; the revenue is recomputed per cohort. Dated in a closed period (the close, 007), it
-- lands in the open one. Returns the ledger entry id.
create function ll_give_back_redemption(r redemptions, p_points bigint, p_occurred timestamptz, p_actor text,
                                        p_key text, p_reference text) returns bigint language plpgsql as $$
declare m members; v_entry bigint; c record; v_out bigint; v_cum bigint := 0; v_before bigint := 0; v_take bigint; v_occurred timestamptz;
begin
  v_occurred := greatest(p_occurred, coalesce(ll_locked_until(r.program_id), p_occurred));
  m := ll_lock_current_member(r.program_id, r.member_id);
  select sum(points - points_reversed) into v_out from redemption_cohorts where program_id = r.program_id and invoice_id = r.invoice_id;
  if p_points <= 0 or p_points > v_out then
    raise exception 'give back % of % points out on %', p_points, v_out, r.invoice_id using errcode = 'LL904';
  end if;
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
  values (r.program_id, m.member_id, 'redeem_reversal', p_points, v_occurred, p_reference, p_actor, p_key)
  returning entry_id into v_entry;
  for c in select rc.cohort, rc.points - rc.points_reversed as out from redemption_cohorts rc
            where rc.program_id = r.program_id and rc.invoice_id = r.invoice_id and rc.points > rc.points_reversed
            order by rc.cohort loop
    v_cum := v_cum + c.out;
    v_take := (p_points::numeric * v_cum / v_out)::bigint - v_before;
    v_before := v_before + v_take;
    continue when v_take = 0;
    update redemption_cohorts set points_reversed = points_reversed + v_take
     where program_id = r.program_id and invoice_id = r.invoice_id and cohort = c.cohort;
    insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, c.cohort, v_take);
    insert into member_cohorts (program_id, member_id, cohort, points) values (r.program_id, m.member_id, c.cohort, v_take)
      on conflict (program_id, member_id, cohort) do update set points = member_cohorts.points + excluded.points;
    perform ll_stripe_add(r.program_id, c.cohort, m.member_id, d_redeemed => -v_take);
    perform ll_recognize_cohort(r.program_id, c.cohort, v_occurred, p_actor, p_key || ':' || c.cohort, 'loyalty_revenue');
  end loop;
  update members set balance = balance + p_points where program_id = r.program_id and member_id = m.member_id;
  return v_entry;
end $$;

-- The compensating reversal of an applied redemption (a lost chargeback): what is still out goes back.
create or replace function ll_reverse_redemption(p_program text, p_invoice text, p_occurred timestamptz, p_actor text, p_reason text)
returns jsonb language plpgsql as $$
declare r redemptions;
begin
  select * into r from redemptions where program_id = p_program and invoice_id = p_invoice for update;
  if not found then perform ll_raise('not_found', 404, 'no redemption for this invoice', jsonb_build_object('invoiceId', p_invoice)); end if;
  if r.status = 'reversed' then return ll_redemption_view(r); end if;
  if r.status <> 'applied' then
    perform ll_raise('redemption_not_applied', 409, 'the redemption is ' || r.status, jsonb_build_object('invoiceId', p_invoice));
  end if;
  if r.points_applied > r.points_reversed then
    perform ll_give_back_redemption(r, r.points_applied - r.points_reversed, p_occurred, p_actor,
                                    'redeem-reversal:' || p_invoice, 'invoice:' || p_invoice || ':' || p_reason);
  end if;
  update redemptions set status = 'reversed', reason = p_reason, points_reversed = points_applied, credit_reversed_minor = credit_minor,
                         updated_at = now()
   where program_id = p_program and invoice_id = p_invoice returning * into r;
  return ll_redemption_view(r);
end $$;

-- An invoice lowered after its redemption: the points beyond what the new total allows (the
-- program's share of it, in whole points, at the point value the redemption used) go back to the
-- member. p: {programId, invoiceId, adjustmentId, invoiceTotalMinor, maxInvoiceShareMillionths, occurredAt, actor}.
-- Idempotent per adjustment; an adjustment that leaves the credit within the invoice reverses nothing.
create function ll_adjust_redemption(p jsonb) returns jsonb language plpgsql as $$
declare
  v_program text := p->>'programId'; v_invoice text := p->>'invoiceId'; v_adj text := p->>'adjustmentId';
  v_total bigint := (p->>'invoiceTotalMinor')::bigint; v_value bigint;
  r redemptions; a redemption_adjustments; v_out bigint; v_allowed bigint; v_excess bigint := 0;
begin
  select * into r from redemptions where program_id = v_program and invoice_id = v_invoice for update;
  if not found then perform ll_raise('not_found', 404, 'no redemption for this invoice', jsonb_build_object('invoiceId', v_invoice)); end if;
  select * into a from redemption_adjustments where program_id = v_program and invoice_id = v_invoice and adjustment_id = v_adj;
  if found then
    return ll_redemption_view(r) || jsonb_build_object('adjustmentId', v_adj, 'adjustmentPoints', a.points_reversed,
      'adjustmentCreditMinor', a.credit_reversed_minor, 'existing', true);
  end if;
  if r.status = 'held' then -- the saga is still deciding: ask again shortly
    perform ll_raise('redemption_in_progress', 409, 'the redemption is being decided', jsonb_build_object('invoiceId', v_invoice));
  end if;
  if r.status <> 'applied' then -- declined or reversed: no points are out, nothing to give back
    return ll_redemption_view(r) || jsonb_build_object('adjustmentId', v_adj, 'adjustmentPoints', 0, 'adjustmentCreditMinor', 0);
  end if;
  v_value := r.credit_minor / r.points_applied; -- exact: the hold set credit = points x value
  v_out := r.points_applied - r.points_reversed;
  v_allowed := least(v_out, (v_total::numeric * (p->>'maxInvoiceShareMillionths')::bigint / 1000000 / v_value)::bigint, v_total / v_value);
  v_excess := v_out - v_allowed;
  if v_excess > 0 then
    perform ll_give_back_redemption(r, v_excess, (p->>'occurredAt')::timestamptz, p->>'actor',
                                    'redeem-adjust:' || v_invoice || ':' || v_adj, 'invoice:' || v_invoice || ':adjustment:' || v_adj);
    update redemptions set points_reversed = points_reversed + v_excess, credit_reversed_minor = credit_reversed_minor + v_excess * v_value,
                           updated_at = now()
     where program_id = v_program and invoice_id = v_invoice returning * into r;
  end if;
  insert into redemption_adjustments (program_id, invoice_id, adjustment_id, invoice_total_minor, points_reversed, credit_reversed_minor, occurred_at, actor)
  values (v_program, v_invoice, v_adj, v_total, v_excess, v_excess * v_value, (p->>'occurredAt')::timestamptz, p->>'actor');
  return ll_redemption_view(r) || jsonb_build_object('adjustmentId', v_adj, 'adjustmentPoints', v_excess, 'adjustmentCreditMinor', v_excess * v_value);
end $$;

-- Compensation of a hold: the points are available again. If the member's deadline passed while
-- they were held (an expiry ran since the hold), they expire now: expiry skipped them only because
-- they were held, and no purchase protected them. Idempotent; refuses an applied redemption.
create or replace function ll_release_redemption(p_program text, p_invoice text, p_reason text) returns jsonb language plpgsql as $$
declare r redemptions; v_deadline timestamptz; v_entry bigint; v_key text; c record;
begin
  select * into r from redemptions where program_id = p_program and invoice_id = p_invoice for update;
  if not found then perform ll_raise('not_found', 404, 'no redemption for this invoice', jsonb_build_object('invoiceId', p_invoice)); end if;
  if r.status = 'held' then
    perform 1 from members where program_id = p_program and member_id = r.member_id for update;
    update members set held = held - r.points_applied where program_id = p_program and member_id = r.member_id;
    update redemptions set status = 'declined', reason = p_reason, updated_at = now()
     where program_id = p_program and invoice_id = p_invoice returning * into r;
    select max(occurred_at) into v_deadline from ledger_entries
     where program_id = p_program and member_id = r.member_id and type = 'expire' and recorded_at >= r.created_at;
    if v_deadline is not null then
      v_key := 'expire-released:' || p_invoice;
      insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
      values (p_program, r.member_id, 'expire', -r.points_applied, now(), 'expiry:' || ll_ts(v_deadline) || ':released-hold:' || p_invoice,
              'system:redemption-saga', v_key)
      returning entry_id into v_entry;
      for c in select rc.cohort, rc.points from redemption_cohorts rc where rc.program_id = p_program and rc.invoice_id = p_invoice order by rc.cohort loop
        insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, c.cohort, -c.points);
        update member_cohorts set points = points - c.points where program_id = p_program and member_id = r.member_id and cohort = c.cohort;
        perform ll_stripe_add(p_program, c.cohort, r.member_id, d_expired => c.points);
        perform ll_recognize_cohort(p_program, c.cohort, now(), 'system:redemption-saga', v_key || ':' || c.cohort, 'breakage_revenue');
      end loop;
      update members set balance = balance - r.points_applied where program_id = p_program and member_id = r.member_id;
    end if;
  elsif r.status <> 'declined' then
    perform ll_raise('redemption_not_held', 409, 'the redemption is ' || r.status, jsonb_build_object('invoiceId', p_invoice));
  end if;
  return ll_redemption_view(r);
end $$;

-- What the ledger posted to the GL: one row per GL entry, written once the GL accepted it. The
-- reconciliation compares these with the GL; the close posts only what is not here.
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

do $$
declare t text;
begin
  foreach t in array array['redemption_adjustments', 'gl_postings', 'reconciliation_runs'] loop
    execute format('create trigger %I_append_only before update or delete on %I for each row execute function ll_forbid_change()', t, t);
    execute format('create trigger %I_no_truncate before truncate on %I for each statement execute function ll_forbid_change()', t, t);
  end loop;
end $$;
