-- Redemptions, the ledger side: hold, release (compensation), commit, reverse (chargeback).
-- The saga that drives them through billing, tax and the GL is issue 3's workflow.
-- Invariants: one redemption per (program, invoice); held points are never spent twice (a hold
-- takes, per cohort, only what other holds of the member have not taken); a reversal puts the
-- points back into the cohorts they came from.

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
  check (points_applied <= points_requested)
);

create table redemption_cohorts (
  program_id text not null,
  invoice_id text not null,
  cohort     text not null,
  points     bigint not null check (points > 0),
  primary key (program_id, invoice_id, cohort),
  foreign key (program_id, invoice_id) references redemptions
);

-- What a member can still spend or expire, per cohort: their points less what their holds took.
create function ll_member_cohorts_available(p_program text, p_member text)
returns table (cohort text, available bigint) language sql stable as $$
  select mc.cohort, mc.points - coalesce((
      select sum(rc.points) from redemptions r join redemption_cohorts rc using (program_id, invoice_id)
       where r.program_id = p_program and r.member_id = p_member and r.status = 'held' and rc.cohort = mc.cohort), 0)
    from member_cohorts mc
   where mc.program_id = p_program and mc.member_id = p_member
   order by mc.cohort
$$;

-- Hold points for an invoice. p: {programId, invoiceId, redemptionId, memberId, points, invoiceTotalMinor,
-- pointValueMinor, minPoints, maxInvoiceShareMillionths, cohortOrder, occurredAt}.
-- A request that cannot be held answers {status: 'declined', reason} and writes nothing.
create function ll_hold_redemption(p jsonb) returns jsonb language plpgsql as $$
declare
  v_program text := p->>'programId'; v_invoice text := p->>'invoiceId';
  v_requested bigint := (p->>'points')::bigint; v_total bigint := (p->>'invoiceTotalMinor')::bigint;
  v_value bigint := (p->>'pointValueMinor')::bigint; v_min bigint := (p->>'minPoints')::bigint;
  r redemptions; m members; v_cap bigint; v_applied bigint; v_avail_total bigint; v_left bigint; v_take bigint;
  v_before bigint := 0; v_cum bigint := 0; c record;
begin
  select * into r from redemptions where program_id = v_program and invoice_id = v_invoice;
  if found then return ll_redemption_view(r) || jsonb_build_object('existing', true); end if;

  select * into m from members where program_id = v_program and member_id = p->>'memberId' for update;
  if not found then return jsonb_build_object('status', 'declined', 'reason', 'unknown_member'); end if;
  if m.status <> 'active' then return jsonb_build_object('status', 'declined', 'reason', 'member_not_active', 'mergedInto', m.merged_into); end if;
  -- a redemption after the deadline finds the points already expired
  if m.expires_at is not null and (p->>'occurredAt')::timestamptz > m.expires_at then
    return jsonb_build_object('status', 'declined', 'reason', 'points_expired');
  end if;

  select coalesce(sum(available), 0) into v_avail_total from ll_member_cohorts_available(v_program, m.member_id);
  -- at most the program's share of the invoice, in whole points
  v_cap := (v_total::numeric * (p->>'maxInvoiceShareMillionths')::bigint / 1000000 / v_value)::bigint;
  v_cap := least(v_cap, (v_total / v_value));
  v_applied := least(v_requested, v_avail_total, v_cap);
  if v_applied < v_min or v_applied <= 0 then
    return jsonb_build_object('status', 'declined',
      'reason', case when v_avail_total < least(v_requested, v_min) or v_avail_total = 0 then 'insufficient_points' else 'below_minimum' end,
      'available', v_avail_total, 'maxPointsForInvoice', v_cap, 'minPoints', v_min);
  end if;

  insert into redemptions (program_id, invoice_id, redemption_id, member_id, points_requested, points_applied, credit_minor,
                           invoice_total_minor, status, occurred_at)
  values (v_program, v_invoice, (p->>'redemptionId')::uuid, m.member_id, v_requested, v_applied, v_applied * v_value,
          v_total, 'held', (p->>'occurredAt')::timestamptz)
  returning * into r;

  v_left := v_applied;
  for c in select * from ll_member_cohorts_available(v_program, m.member_id) a where a.available > 0 loop
    if p->>'cohortOrder' = 'pro_rata' then
      -- cumulative shares so the cohorts add up to exactly the points applied
      v_cum := v_cum + c.available;
      v_take := (v_applied::numeric * v_cum / v_avail_total)::bigint - v_before;
      v_before := v_before + v_take;
    else
      v_take := least(v_left, c.available);
    end if;
    if v_take > 0 then
      insert into redemption_cohorts (program_id, invoice_id, cohort, points) values (v_program, v_invoice, c.cohort, v_take);
      v_left := v_left - v_take;
    end if;
    exit when v_left = 0 and p->>'cohortOrder' <> 'pro_rata';
  end loop;
  if v_left <> 0 then raise exception 'hold of % did not cover % points', v_invoice, v_applied using errcode = 'LL903'; end if;
  update members set held = held + v_applied where program_id = v_program and member_id = m.member_id;
  return ll_redemption_view(r);
end $$;

create function ll_redemption_view(r redemptions) returns jsonb language sql stable as $$
  select jsonb_build_object('redemptionId', r.redemption_id, 'invoiceId', r.invoice_id, 'memberId', r.member_id,
    'status', r.status, 'reason', r.reason, 'pointsRequested', r.points_requested, 'pointsApplied', r.points_applied,
    'creditMinor', r.credit_minor,
    'cohorts', coalesce((select jsonb_object_agg(rc.cohort, rc.points) from redemption_cohorts rc
                          where rc.program_id = r.program_id and rc.invoice_id = r.invoice_id), '{}'))
$$;

-- Compensation of a hold: the points are available again. Idempotent; refuses an applied redemption.
create function ll_release_redemption(p_program text, p_invoice text, p_reason text) returns jsonb language plpgsql as $$
declare r redemptions;
begin
  select * into r from redemptions where program_id = p_program and invoice_id = p_invoice for update;
  if not found then perform ll_raise('not_found', 404, 'no redemption for this invoice', jsonb_build_object('invoiceId', p_invoice)); end if;
  if r.status = 'held' then
    perform 1 from members where program_id = p_program and member_id = r.member_id for update;
    update members set held = held - r.points_applied where program_id = p_program and member_id = r.member_id;
    update redemptions set status = 'declined', reason = p_reason, updated_at = now()
     where program_id = p_program and invoice_id = p_invoice returning * into r;
  elsif r.status <> 'declined' then
    perform ll_raise('redemption_not_held', 409, 'the redemption is ' || r.status, jsonb_build_object('invoiceId', p_invoice));
  end if;
  return ll_redemption_view(r);
end $$;

-- Spend the held points: a redeem entry from the held cohorts, and the revenue the cohort formula
-- recognises for them. Idempotent.
create function ll_commit_redemption(p_program text, p_invoice text, p_actor text) returns jsonb language plpgsql as $$
declare r redemptions; v_entry bigint; c record; v_key text;
begin
  select * into r from redemptions where program_id = p_program and invoice_id = p_invoice for update;
  if not found then perform ll_raise('not_found', 404, 'no redemption for this invoice', jsonb_build_object('invoiceId', p_invoice)); end if;
  if r.status = 'applied' then return ll_redemption_view(r); end if;
  if r.status <> 'held' then
    perform ll_raise('redemption_not_held', 409, 'the redemption is ' || r.status, jsonb_build_object('invoiceId', p_invoice));
  end if;
  perform 1 from members where program_id = p_program and member_id = r.member_id for update;
  v_key := 'redeem:' || p_invoice;
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
  values (p_program, r.member_id, 'redeem', -r.points_applied, r.occurred_at, 'invoice:' || p_invoice, p_actor, v_key)
  returning entry_id into v_entry;
  for c in select rc.cohort, rc.points from redemption_cohorts rc where rc.program_id = p_program and rc.invoice_id = p_invoice order by rc.cohort loop
    insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, c.cohort, -c.points);
    update member_cohorts set points = points - c.points where program_id = p_program and member_id = r.member_id and cohort = c.cohort;
    perform ll_stripe_add(p_program, c.cohort, r.member_id, d_redeemed => c.points);
    perform ll_recognize_cohort(p_program, c.cohort, r.occurred_at, p_actor, v_key || ':' || c.cohort, 'loyalty_revenue');
  end loop;
  update members set balance = balance - r.points_applied, held = held - r.points_applied
   where program_id = p_program and member_id = r.member_id;
  update redemptions set status = 'applied', updated_at = now() where program_id = p_program and invoice_id = p_invoice returning * into r;
  return ll_redemption_view(r);
end $$;

-- The compensating reversal of an applied redemption (a lost chargeback): the points go back to
-- their cohorts, on the member who holds them now, and the recognised revenue is recomputed.
-- Idempotent.
create function ll_reverse_redemption(p_program text, p_invoice text, p_occurred timestamptz, p_actor text, p_reason text)
returns jsonb language plpgsql as $$
declare r redemptions; m members; v_entry bigint; c record; v_key text;
begin
  select * into r from redemptions where program_id = p_program and invoice_id = p_invoice for update;
  if not found then perform ll_raise('not_found', 404, 'no redemption for this invoice', jsonb_build_object('invoiceId', p_invoice)); end if;
  if r.status = 'reversed' then return ll_redemption_view(r); end if;
  if r.status <> 'applied' then
    perform ll_raise('redemption_not_applied', 409, 'the redemption is ' || r.status, jsonb_build_object('invoiceId', p_invoice));
  end if;
  m := ll_lock_current_member(p_program, r.member_id);
  v_key := 'redeem-reversal:' || p_invoice;
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
  values (p_program, m.member_id, 'redeem_reversal', r.points_applied, p_occurred, 'invoice:' || p_invoice || ':' || p_reason, p_actor, v_key)
  returning entry_id into v_entry;
  for c in select rc.cohort, rc.points from redemption_cohorts rc where rc.program_id = p_program and rc.invoice_id = p_invoice order by rc.cohort loop
    insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, c.cohort, c.points);
    insert into member_cohorts (program_id, member_id, cohort, points) values (p_program, m.member_id, c.cohort, c.points)
      on conflict (program_id, member_id, cohort) do update set points = member_cohorts.points + excluded.points;
    perform ll_stripe_add(p_program, c.cohort, m.member_id, d_redeemed => -c.points);
    perform ll_recognize_cohort(p_program, c.cohort, p_occurred, p_actor, v_key || ':' || c.cohort, 'loyalty_revenue');
  end loop;
  update members set balance = balance + r.points_applied where program_id = p_program and member_id = m.member_id;
  update redemptions set status = 'reversed', reason = p_reason, updated_at = now() where program_id = p_program and invoice_id = p_invoice returning * into r;
  return ll_redemption_view(r);
end $$;
