-- Refunds: revoke the points earned on an invoice in proportion to the amount refunded.
-- Cumulative (ll_prorate): after refunds totalling F of an invoice of amount T that earned n points,
-- the revocation target is round(n * F / T); each refund revokes the increase. Never below zero
-- (ll_revocable): what the member no longer has available (spent, expired, held by a redemption in
-- progress) is recorded as a shortfall; goodwill points are never revoked by a refund.
-- The allocation moves only with the points revoked: the refund's share of the invoice's allocation
-- (in proportion to the points it should revoke of the invoice's, cumulatively) is split over those
-- points (ll_prorate, the shortfall the last part), and the invoice's own cohort gives up its
-- revoked points' part (never more than it still carries); another cohort gives up exactly the
-- share of what it carries that the points taken from it hold, so no other member's deferred
-- revenue there moves. The shortfall's
-- part stays where it is: those points were spent (redeemed or expired) from their cohorts, whose
-- revenue was recognised for them (docs/accounting.md, "Refunds after the points were spent"). Each
-- cohort touched is re-measured (ll_recognize_cohort) in the same transaction.
create or replace function ll_refund(p jsonb) returns jsonb language plpgsql as $$
declare
  v_program text := p->>'programId'; v_refund text := p->>'refundId'; v_invoice text := p->>'invoiceId';
  v_amount bigint := (p->>'amountMinor')::bigint; v_occurred timestamptz := (p->>'occurredAt')::timestamptz;
  v_actor text := p->>'actor';
  v_prior jsonb; a accruals; r refunds; m members; v_member text; v_before bigint; v_to_revoke bigint;
  v_alloc_rev bigint; v_alloc_rev_micro numeric; v_pts_before bigint; v_available bigint; v_revoked bigint; v_left bigint; v_take bigint; v_entry bigint;
  v_journal bigint; v_key text; c record; v_body jsonb; v_cum bigint := 0; v_part bigint; v_part_micro numeric;
  v_reversed bigint := 0; v_lines jsonb := '[]'; v_cohorts jsonb := '[]';
begin
  v_prior := ll_idem_claim(v_program, p->>'idemKey', p->>'requestHash');
  if v_prior is not null then return v_prior; end if;
  -- The invoice's accrual row serialises refunds of one invoice; the refundId check comes after it.
  select * into a from accruals where program_id = v_program and invoice_id = v_invoice for update;
  select * into r from refunds where program_id = v_program and refund_id = v_refund;
  if found then
    if r.request_hash <> p->>'requestHash' then
      perform ll_raise('refund_already_recorded', 409, 'this refundId was recorded with a different request', jsonb_build_object('refundId', v_refund));
    end if;
    perform ll_idem_store(v_program, p->>'idemKey', 200, r.response);
    return jsonb_build_object('status', 200, 'body', r.response, 'replayed', true);
  end if;
  if a.invoice_id is null then
    perform ll_raise('not_found', 404, 'no accrual for this invoice', jsonb_build_object('invoiceId', v_invoice));
  end if;
  if a.member_id <> p->>'memberId' then
    perform ll_raise('validation_failed', 400, 'memberId is not the member the invoice earned points for', jsonb_build_object('invoiceId', v_invoice, 'memberId', p->>'memberId'));
  end if;
  -- A refund is never dated before its sale (issue 14, item 7): its points and allocation would
  -- leave the books before they entered them.
  if v_occurred < a.occurred_at then
    perform ll_raise('refund_before_sale', 422, 'occurredAt is before the sale it refunds', jsonb_build_object('invoiceId', v_invoice, 'occurredAt', ll_ts(v_occurred), 'saleOccurredAt', ll_ts(a.occurred_at)));
  end if;
  select coalesce(sum(amount_minor), 0) into v_before from refunds where program_id = v_program and invoice_id = v_invoice;
  if v_before + v_amount > a.amount_minor then
    perform ll_raise('refund_exceeds_invoice', 422, 'refunds would exceed the invoice amount', jsonb_build_object('invoiceId', v_invoice, 'invoiceAmountMinor', a.amount_minor, 'alreadyRefundedMinor', v_before));
  end if;
  v_to_revoke := ll_prorate(a.points, v_before, v_amount, a.amount_minor);
  -- The allocation follows the points: the invoice's allocation in proportion to the points this
  -- refund should revoke (cumulatively over the invoice's points), so a refund whose points round to
  -- none moves none of it, and the refund that takes the last point takes all the invoice posted.
  -- (In proportion to the amount instead, a refund revoking no point lost its share for good: the
  -- invoice's points all revoked, the cohort kept part of their allocation for the other points.)
  v_pts_before := case when v_before > 0 then ll_prorate(a.points, 0, v_before, a.amount_minor) else 0 end;
  if v_to_revoke > 0 then
    v_alloc_rev := ll_prorate(a.allocated_minor, v_pts_before, v_to_revoke, a.points);
    v_alloc_rev_micro := ll_prorate(a.allocated_micro, v_pts_before, v_to_revoke, a.points);
  else
    v_alloc_rev := 0; v_alloc_rev_micro := 0;
  end if;

  m := ll_lock_current_member(v_program, a.credited_member_id);
  v_member := m.member_id;
  -- What the refund can revoke: the member's purchased points not held by a redemption in progress.
  -- Goodwill points (a '<quarter>-goodwill' cohort) were never bought with any invoice: a refund of a
  -- purchase never touches them (docs/accounting.md, "Goodwill points"), and held points belong to
  -- the redemption that holds them (its commit spends them from their cohorts).
  select coalesce(sum(x.available), 0) into v_available from ll_member_cohorts_available(v_program, v_member) x
   where x.available > 0 and x.cohort not like '%-goodwill';
  v_revoked := ll_revocable(v_to_revoke, v_available);
  v_key := 'refund:' || v_refund;

  -- Take the points from the invoice's own cohort first, then the oldest; each cohort gives up the
  -- revoked points' part of the refund's allocation.
  v_left := v_revoked;
  for c in select mc.cohort, mc.available as points, co.liability_account,
                  (select coalesce(sum(cs.allocated_minor - cs.allocated_reversed_minor), 0) from cohort_stripes cs
                    where cs.program_id = v_program and cs.cohort = mc.cohort) as carried,
                  (select coalesce(sum(cs.allocated_micro - cs.allocated_reversed_micro), 0) from cohort_stripes cs
                    where cs.program_id = v_program and cs.cohort = mc.cohort) as carried_micro,
                  (select coalesce(sum(cs.points_issued - cs.points_revoked), 0) from cohort_stripes cs
                    where cs.program_id = v_program and cs.cohort = mc.cohort) as n_net
             from ll_member_cohorts_available(v_program, v_member) mc
             join cohorts co on co.program_id = v_program and co.cohort = mc.cohort
           where mc.available > 0 and mc.cohort not like '%-goodwill'
           order by (mc.cohort = a.cohort) desc, mc.cohort loop
    exit when v_left = 0;
    v_take := least(v_left, c.points);
    v_part := least(ll_prorate(v_alloc_rev, v_cum, v_take, v_to_revoke), greatest(c.carried, 0));
    v_part_micro := least(ll_prorate(v_alloc_rev_micro, v_cum, v_take, v_to_revoke), greatest(c.carried_micro, 0));
    -- From another cohort (the invoice's own points were spent, so the member's points there are
    -- revoked instead), exactly what those points carry in it: their share of what the cohort
    -- holds, P - round(P (N - k) / N), as a negative adjustment takes it. The invoice's own share
    -- differs when its points were priced otherwise (another estimate, another rule version);
    -- taking it would move the deferred revenue of the other members' points there, up or down.
    if c.cohort <> a.cohort and c.n_net > 0 then
      v_part := greatest(c.carried, 0) - round(greatest(c.carried, 0) * (c.n_net - v_take)::numeric / c.n_net)::bigint;
      v_part_micro := round(greatest(c.carried_micro, 0) * v_take / c.n_net);
    end if;
    v_cum := v_cum + v_take;
    v_cohorts := v_cohorts || jsonb_build_object('cohort', c.cohort, 'points', v_take);
    update member_cohorts set points = points - v_take where program_id = v_program and member_id = v_member and cohort = c.cohort;
    perform ll_stripe_add(v_program, c.cohort, v_member, d_revoked => v_take, d_alloc_rev => v_part, d_alloc_rev_micro => v_part_micro);
    if v_part > 0 then
      v_lines := v_lines || jsonb_build_array(
        jsonb_build_object('account', coalesce(c.liability_account, 'loyalty_contract_liability'), 'debitMinor', v_part, 'cohort', c.cohort),
        jsonb_build_object('account', ll_release_account(c.liability_account, 'revenue'), 'creditMinor', v_part));
      v_reversed := v_reversed + v_part;
    end if;
    v_left := v_left - v_take;
  end loop;
  if v_left <> 0 then raise exception 'member cohorts do not cover the balance of %', v_member using errcode = 'LL902'; end if;
  if v_reversed > 0 then
    v_journal := ll_post_journal(v_program, 'refund', v_occurred, 'refund:' || v_refund, v_actor, v_key, v_lines);
  end if;
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key, rule_version, journal_entry_id)
  values (v_program, v_member, 'earn_reversal', -v_revoked, v_occurred, 'refund:' || v_refund || ':invoice:' || v_invoice, v_actor, v_key, a.rule_version, v_journal)
  returning entry_id into v_entry;
  for c in select x->>'cohort' as cohort, (x->>'points')::bigint as points from jsonb_array_elements(v_cohorts) x loop
    insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, c.cohort, -c.points);
    -- re-measured now: fewer points issued, less allocated
    perform ll_recognize_cohort(v_program, c.cohort, v_occurred, v_actor, v_key || ':' || c.cohort, 'loyalty_revenue');
  end loop;
  update members set balance = balance - v_revoked where program_id = v_program and member_id = v_member;

  v_body := jsonb_build_object('refundId', v_refund, 'invoiceId', v_invoice, 'memberId', v_member,
    'pointsRevoked', v_revoked, 'shortfallPoints', v_to_revoke - v_revoked, 'allocatedReversedMinor', v_reversed,
    'balance', m.balance - v_revoked);
  insert into refunds (program_id, refund_id, invoice_id, member_id, amount_minor, points_revoked, shortfall_points,
                       allocated_reversed_minor, occurred_at, request_hash, response)
  values (v_program, v_refund, v_invoice, v_member, v_amount, v_revoked, v_to_revoke - v_revoked, v_reversed,
          v_occurred, p->>'requestHash', v_body);
  perform ll_emit_event(v_program, 'points.revoked', v_member, v_occurred, v_body);
  return ll_idem_store(v_program, p->>'idemKey', 201, v_body);
end $$;
