-- Applies an adjustment. +points are goodwill, consideration payable to a customer (ASC
-- 606-10-32-25; IFRS 15.70), in the quarter's goodwill cohort ('2026-Q4-goodwill'), a cohort of their
-- own so they never change the per-point allocation of purchased points, at their expected value
-- (points x point value x u, u the estimate that prices new points; cost per point on
-- incremental-cost programs under marketing). By the
-- program's adjustments.goodwillTreatment: revenue_reduction (the default) debits revenue and credits
-- the cohort's contract liability, released back to revenue (ll_release_account); marketing debits
-- loyalty_expense and credits loyalty_provision, released to loyalty_expense. -points come out of the
-- oldest available cohorts and reverse their share of the allocation (of what the liability carries
-- as posted, never more: the last points take exactly that): debit the liability, credit
-- breakage_revenue (a purchased cohort: the right lapses unexercised), revenue (a goodwill cohort:
-- the reduction undone) or loyalty_expense (a provision: the cost accrual undone); never expense for
-- a contract liability. Idempotent.
create or replace function ll_apply_adjustment(p_adjustment uuid, p_approver text) returns jsonb language plpgsql as $$
declare
  a manual_adjustments; m members; v_rules jsonb; v_cohort text; v_u numeric; v_account text; v_unit bigint;
  v_micro numeric; v_minor bigint; v_entry bigint; v_key text; v_left bigint; v_take bigint; r record;
  v_n bigint; v_am numeric; v_carried bigint; v_rev_micro numeric; v_rev_minor bigint; v_cost bigint;
begin
  select * into a from manual_adjustments where adjustment_id = p_adjustment for update;
  if not found then perform ll_raise('not_found', 404, 'no such adjustment', jsonb_build_object('adjustmentId', p_adjustment)); end if;
  if a.status = 'applied' then return jsonb_build_object('status', 'applied', 'entryId', a.entry_id); end if;
  if a.status <> 'pending_approval' then perform ll_raise('adjustment_decided', 409, 'the adjustment is ' || a.status, '{}'); end if;
  m := ll_lock_current_member(a.program_id, a.member_id);
  if m.member_id is null then perform ll_raise('not_found', 404, 'no such member', jsonb_build_object('memberId', a.member_id)); end if;
  if m.status <> 'active' then perform ll_raise('member_not_active', 409, 'member is ' || m.status, jsonb_build_object('memberId', m.member_id)); end if;
  v_key := 'adjust:' || a.adjustment_id;
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
  values (a.program_id, m.member_id, 'adjust', a.points, greatest(now(), coalesce(ll_locked_until(a.program_id), now())),
          'adjustment:' || a.adjustment_id || ':' || a.reason_code || coalesce(':approved-by:' || p_approver, ''), a.requested_by, v_key)
  returning entry_id into v_entry;

  if a.points > 0 then
    select v.rules into v_rules from program_rule_versions v where v.program_id = a.program_id and v.effective_at <= now() order by v.version desc limit 1;
    v_cohort := ll_quarter_of(now()) || '-goodwill';
    -- valued at the estimate that prices new points (the latest booked close's, ll_points_estimate),
    -- as purchased points are; the rule's rate is the prior before the first close
    v_u := coalesce((select pe.rate from ll_points_estimate(a.program_id) pe), (v_rules->>'expectedRedemptionRate')::numeric);
    v_account := case when coalesce(v_rules->'adjustments'->>'goodwillTreatment', 'revenue_reduction') = 'marketing'
                      then 'loyalty_provision' else 'loyalty_contract_liability' end;
    -- The goodwill cohort's treatment is fixed when the quarter's first grant creates it: a cohort
    -- is measured on one account, so a goodwillTreatment changed mid-quarter applies from the next
    -- quarter's cohort on, and every later grant of this quarter follows the cohort, its account and
    -- the unit that goes with it (docs/adjustments.md).
    insert into cohorts (program_id, cohort, ultimate_redemption_rate, liability_account) values (a.program_id, v_cohort, v_u, v_account)
      on conflict do nothing;
    -- a provision cohort made on the cost method records its cost per point (ll_cohort_cost) and is
    -- measured by it (ll_recognize_cohort): that is its unit, whatever the rules say now; else the
    -- point value
    select liability_account, cost_per_point_minor into v_account, v_cost from cohorts where program_id = a.program_id and cohort = v_cohort;
    v_unit := case when v_account = 'loyalty_provision' and v_cost is not null then v_cost
                   else (v_rules->>'pointValueMinor')::bigint end;
    v_micro := a.points * v_unit * v_u * 1000000;
    v_minor := round(v_micro / 1000000);
    insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, v_cohort, a.points);
    insert into member_cohorts (program_id, member_id, cohort, points) values (a.program_id, m.member_id, v_cohort, a.points)
      on conflict (program_id, member_id, cohort) do update set points = member_cohorts.points + excluded.points;
    if v_minor > 0 then
      perform ll_post_journal(a.program_id, 'accrual', now(), 'adjustment:' || a.adjustment_id, a.requested_by, v_key, jsonb_build_array(
        jsonb_build_object('account', case when v_account = 'loyalty_provision' then 'loyalty_expense' else 'revenue' end, 'debitMinor', v_minor),
        jsonb_build_object('account', v_account, 'creditMinor', v_minor, 'cohort', v_cohort)));
    end if;
    perform ll_stripe_add(a.program_id, v_cohort, m.member_id, d_issued => a.points, d_alloc => v_minor, d_alloc_micro => v_micro);
    perform ll_recognize_cohort(a.program_id, v_cohort, now(), a.requested_by, v_key || ':' || v_cohort, 'loyalty_revenue');
  else
    if m.balance - m.held < -a.points then
      perform ll_raise('insufficient_points', 422, 'the member has fewer points available than the adjustment takes',
        jsonb_build_object('available', m.balance - m.held, 'points', a.points));
    end if;
    v_left := -a.points;
    for r in select x.cohort, x.available from ll_member_cohorts_available(a.program_id, m.member_id) x where x.available > 0 loop
      exit when v_left = 0;
      v_take := least(v_left, r.available);
      -- the taken points' share of the cohort's allocation, exact, then as posted
      select coalesce(sum(points_issued - points_revoked), 0), coalesce(sum(allocated_micro - allocated_reversed_micro), 0),
             greatest(coalesce(sum(allocated_minor - allocated_reversed_minor), 0), 0)
        into v_n, v_am, v_carried from cohort_stripes where program_id = a.program_id and cohort = r.cohort;
      v_rev_micro := case when v_n > 0 then trunc(v_am * v_take / v_n) else 0 end;
      -- as posted: the share of what the cohort's liability carries (the sum of the accruals' rounded
      -- allocations, which can fall short of round(A_micro) by half a minor unit per accrual), as the
      -- difference of two rounded cumulative figures so rounding never drifts; never more than it
      -- carries (taking the last points takes exactly that), so the liability never goes negative
      v_rev_minor := case when v_n > 0 then v_carried - round(v_carried::numeric * (v_n - v_take) / v_n) else 0 end;
      select liability_account into v_account from cohorts where program_id = a.program_id and cohort = r.cohort;
      insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, r.cohort, -v_take);
      update member_cohorts set points = points - v_take where program_id = a.program_id and member_id = m.member_id and cohort = r.cohort;
      if v_rev_minor > 0 then
        perform ll_post_journal(a.program_id, 'refund', now(), 'adjustment:' || a.adjustment_id, a.requested_by, v_key || ':' || r.cohort || ':reversal',
          jsonb_build_array(
            jsonb_build_object('account', v_account, 'debitMinor', v_rev_minor, 'cohort', r.cohort),
            jsonb_build_object('account', ll_release_account(v_account, 'breakage_revenue', r.cohort), 'creditMinor', v_rev_minor)));
      end if;
      perform ll_stripe_add(a.program_id, r.cohort, m.member_id, d_revoked => v_take, d_alloc_rev => v_rev_minor, d_alloc_rev_micro => v_rev_micro);
      perform ll_recognize_cohort(a.program_id, r.cohort, now(), a.requested_by, v_key || ':' || r.cohort, 'loyalty_revenue');
      v_left := v_left - v_take;
    end loop;
  end if;
  update members set balance = balance + a.points where program_id = a.program_id and member_id = m.member_id;
  -- points added to a member whose deadline had passed and been expired get one again (normally at once)
  if a.points > 0 then perform ll_rearm_returned_points(a.program_id, m.member_id, now()); end if;
  update manual_adjustments set status = 'applied', approved_by = p_approver, decided_at = now(), entry_id = v_entry
   where adjustment_id = p_adjustment;
  perform ll_emit_event(a.program_id, 'adjustment.applied', a.member_id, now(), jsonb_build_object(
    'adjustmentId', a.adjustment_id, 'memberId', a.member_id, 'points', a.points, 'reasonCode', a.reason_code,
    'requestedBy', a.requested_by, 'approvedBy', p_approver));
  return jsonb_build_object('status', 'applied', 'entryId', v_entry);
end $$;
