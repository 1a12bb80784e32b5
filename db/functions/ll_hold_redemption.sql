-- Hold points for an invoice. p: {programId, invoiceId, redemptionId, memberId, points, invoiceTotalMinor,
-- pointValueMinor, minPoints, maxInvoiceShareMillionths, cohortOrder, occurredAt}.
-- A request that cannot be held answers {status: 'declined', reason} and writes nothing. A merged
-- member's id holds the points of the member it was merged into (through any chain of merges).
-- The program's maximum share of an invoice, in whole points, rounds down. A numeric cast to bigint
-- rounds half away from zero, so `(total * share / value)::bigint` let a redemption go up to one
-- point past the share: 5,610 at 50% and 2 per point allowed 1,403 points, a 2,806 credit on an
-- invoice whose half is 2,805. Found by the fault suite's model (test/faults, docs/faults.md).
-- p.rulesFrom = 'ledger' (the saga's hold, issue 14, item 1): the point value, minimum, share and
-- cohort order are the rule version's in force now (the version the row records, ll_set_rule_version),
-- whatever p says: a workflow's input is writable by anyone who can reach Temporal. The answer then
-- carries those rules (`rules`, with the chargeback window the saga waits for); a hold found again,
-- the rules of the version it recorded.
create or replace function ll_hold_redemption(p jsonb) returns jsonb language plpgsql as $$
declare
  v_program text := p->>'programId'; v_invoice text := p->>'invoiceId';
  v_requested bigint := (p->>'points')::bigint; v_total bigint := (p->>'invoiceTotalMinor')::bigint;
  v_value bigint := (p->>'pointValueMinor')::bigint; v_min bigint := (p->>'minPoints')::bigint;
  r redemptions; m members; v_cap bigint; v_applied bigint; v_avail_total bigint; v_left bigint; v_take bigint;
  v_cum bigint := 0; c record;
  v_ledger boolean := coalesce(p->>'rulesFrom' = 'ledger', false); v_version int; v_rules jsonb;
  v_share bigint := (p->>'maxInvoiceShareMillionths')::bigint; v_order text := p->>'cohortOrder';
  v_occurred timestamptz := (p->>'occurredAt')::timestamptz; v_first timestamptz;
begin
  select * into r from redemptions where program_id = v_program and invoice_id = v_invoice;
  if found then
    if v_ledger then
      return ll_redemption_view(r) || jsonb_build_object('existing', true, 'rules',
        ll_redemption_rules(v_program, coalesce(r.rule_version, ll_rule_version_at(v_program, r.occurred_at))));
    end if;
    return ll_redemption_view(r) || jsonb_build_object('existing', true);
  end if;
  if v_ledger then
    v_version := ll_rule_version_at(v_program, now());
    v_rules := ll_redemption_rules(v_program, v_version);
    if v_rules is null then return jsonb_build_object('status', 'declined', 'reason', 'unknown_program'); end if;
    v_value := (v_rules->>'pointValueMinor')::bigint; v_min := (v_rules->>'minPoints')::bigint;
    v_share := (v_rules->>'maxInvoiceShareMillionths')::bigint; v_order := v_rules->>'cohortOrder';
  end if;

  -- the same clock-skew bound as accruals (LIMITS.maxClockSkewMs): the API refuses it first, this
  -- guards a saga started straight on Temporal
  if v_occurred > now() + interval '5 minutes' then
    return jsonb_build_object('status', 'declined', 'reason', 'occurred_at_in_future', 'occurredAt', ll_ts(v_occurred));
  end if;
  -- a merged member's id redeems the survivor's points, as an accrual earns them (issue 14, item 7):
  -- the chain followed whatever its length (and compressed), the member holding the points locked;
  -- the redemption row, and so its view, names that member
  m := ll_lock_current_member(v_program, p->>'memberId');
  if m.member_id is null then return jsonb_build_object('status', 'declined', 'reason', 'unknown_member'); end if;
  if m.status <> 'active' then return jsonb_build_object('status', 'declined', 'reason', 'member_not_active', 'mergedInto', m.merged_into); end if;
  -- never before the member's first earn (issue 14, item 7): the earliest accrual's entry of the
  -- member or of a member merged into it (one hop: ll_merge keeps chains compressed). Goodwill and
  -- merges are dated when recorded, not when the points were bought: they set no bound, and a member
  -- holding goodwill only has none.
  select min(e.occurred_at) into v_first from ledger_entries e
   where e.program_id = v_program and e.type = 'earn'
     and (e.member_id = m.member_id
          or e.member_id in (select x.member_id from members x where x.program_id = v_program and x.merged_into = m.member_id));
  if v_first is not null and v_occurred < v_first then
    return jsonb_build_object('status', 'declined', 'reason', 'redemption_before_first_earn',
      'occurredAt', ll_ts(v_occurred), 'firstEarnAt', ll_ts(v_first));
  end if;
  -- a redemption after the deadline finds the points already expired
  if m.expires_at is not null and (p->>'occurredAt')::timestamptz > m.expires_at then
    return jsonb_build_object('status', 'declined', 'reason', 'points_expired');
  end if;

  select coalesce(sum(available), 0) into v_avail_total from ll_member_cohorts_available(v_program, m.member_id);
  -- at most the program's share of the invoice, in whole points
  v_cap := ll_invoice_share_cap(v_total, v_share, v_value);
  v_applied := least(v_requested, v_avail_total, v_cap);
  if v_applied < v_min or v_applied <= 0 then
    return jsonb_build_object('status', 'declined',
      'reason', case when v_avail_total < least(v_requested, v_min) or v_avail_total = 0 then 'insufficient_points' else 'below_minimum' end,
      'available', v_avail_total, 'maxPointsForInvoice', v_cap, 'minPoints', v_min)
      || case when v_ledger then jsonb_build_object('rules', v_rules) else '{}' end;
  end if;

  insert into redemptions (program_id, invoice_id, redemption_id, member_id, points_requested, points_applied, credit_minor,
                           invoice_total_minor, status, occurred_at, rule_version)
  values (v_program, v_invoice, (p->>'redemptionId')::uuid, m.member_id, v_requested, v_applied, v_applied * v_value,
          v_total, 'held', (p->>'occurredAt')::timestamptz, v_version)
  returning * into r;

  v_left := v_applied;
  for c in select * from ll_member_cohorts_available(v_program, m.member_id) a where a.available > 0 loop
    if v_order = 'pro_rata' then
      -- cumulative shares so the cohorts add up to exactly the points applied
      v_take := ll_prorate(v_applied, v_cum, c.available, v_avail_total);
      v_cum := v_cum + c.available;
    else
      v_take := least(v_left, c.available);
    end if;
    if v_take > 0 then
      insert into redemption_cohorts (program_id, invoice_id, cohort, points) values (v_program, v_invoice, c.cohort, v_take);
      v_left := v_left - v_take;
    end if;
    exit when v_left = 0 and v_order <> 'pro_rata';
  end loop;
  if v_left <> 0 then raise exception 'hold of % did not cover % points', v_invoice, v_applied using errcode = 'LL903'; end if;
  update members set held = held + v_applied where program_id = v_program and member_id = m.member_id;
  if v_ledger then return ll_redemption_view(r) || jsonb_build_object('rules', v_rules); end if;
  return ll_redemption_view(r);
end $$;
