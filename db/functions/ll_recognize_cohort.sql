-- Brings a cohort's recognised revenue to A * min(1, R / (N * u)) with A exact (micro), rounded
-- once (exact integer arithmetic, halves away from zero as domain/money.ts divRound: the target is
-- A_micro * R / (N * u) / 10^6, capped at A_micro / 10^6), and never more than was posted to the
-- liability (allocated_minor less reversed: recognised to date never exceeds it); or, when every
-- point is redeemed or expired, to all that was posted to the liability. An incremental-cost
-- cohort instead releases the provision down to cost x the expected points still to be redeemed,
-- cost x min(outstanding, N x u - R) (halves away from zero). Posts the difference of the two
-- rounded cumulative figures; a decrease reverses the cohort's breakage revenue first (what its
-- completion released there), then p_revenue_account. A goodwill cohort releases to revenue
-- whatever the caller's account (ll_release_account).
-- Mirrors domain/recognition.ts (test/integration/recognition-sql.test.ts checks they agree).
create or replace function ll_recognize_cohort(p_program text, p_cohort text, p_occurred timestamptz, p_actor text,
                                               p_key text, p_revenue_account text) returns bigint language plpgsql as $$
declare
  c cohorts; v_n bigint; v_a bigint; v_am numeric; v_r bigint; v_x bigint; v_target bigint; v_delta bigint; v_num numeric; v_den numeric;
  v_expected numeric; v_lines jsonb; v_breakage bigint := 0;
begin
  select * into c from cohorts where program_id = p_program and cohort = p_cohort for update;
  if not found then return null; end if;
  select coalesce(sum(points_issued - points_revoked), 0), coalesce(sum(allocated_minor - allocated_reversed_minor), 0),
         coalesce(sum(points_redeemed), 0), coalesce(sum(points_expired), 0),
         coalesce(sum(allocated_micro - allocated_reversed_micro), 0)
    into v_n, v_a, v_r, v_x, v_am from cohort_stripes where program_id = p_program and cohort = p_cohort;
  if v_n <= 0 or v_r + v_x >= v_n then
    v_target := greatest(v_a, 0);
  elsif c.liability_account = 'loyalty_provision' and c.cost_per_point_minor is not null then
    -- released = provision - cost x expected points still to be redeemed (halves away from zero)
    v_expected := c.cost_per_point_minor * least((v_n - v_r - v_x)::numeric, greatest(0, v_n * c.ultimate_redemption_rate - v_r));
    v_target := v_a - round(v_expected);
  else
    v_am := greatest(v_am, 0);
    v_num := v_am * least(v_r::numeric * 1000000, v_n::numeric * (c.ultimate_redemption_rate * 1000000));
    v_den := v_n::numeric * (c.ultimate_redemption_rate * 1000000) * 1000000;
    -- never more than was posted: allocated_minor is the sum of the rounded allocations, which can
    -- fall short of round(A_micro) by up to half a minor unit per accrual
    v_target := least(div(2 * v_num + v_den, 2 * v_den), greatest(v_a, 0));
  end if;
  v_delta := v_target - c.recognized_minor;
  if v_delta = 0 then return null; end if;
  update cohorts set recognized_minor = v_target where program_id = p_program and cohort = p_cohort;
  if v_delta > 0 then
    return ll_post_journal(p_program, 'recognition', p_occurred, 'cohort:' || p_cohort, p_actor, p_key, jsonb_build_array(
      jsonb_build_object('account', c.liability_account, 'debitMinor', v_delta, 'cohort', p_cohort),
      jsonb_build_object('account', ll_release_account(c.liability_account, p_revenue_account, p_cohort), 'creditMinor', v_delta, 'cohort', p_cohort)));
  end if;
  -- A reversal takes back first what the cohort released to breakage when it completed (its net
  -- breakage revenue), then the caller's account: a cohort reopened (points given back) or whose
  -- allocation fell after it had completed reverses breakage, not loyalty revenue.
  v_lines := jsonb_build_array(jsonb_build_object('account', c.liability_account, 'creditMinor', -v_delta, 'cohort', p_cohort));
  if c.liability_account = 'loyalty_contract_liability' and p_revenue_account <> 'breakage_revenue' then
    select greatest(coalesce(sum(l.credit_minor - l.debit_minor), 0), 0) into v_breakage
      from journal_lines l join journal_entries j on j.journal_entry_id = l.journal_entry_id
     where j.program_id = p_program and l.account = 'breakage_revenue' and l.cohort = p_cohort;
    v_breakage := least(v_breakage, -v_delta);
    if v_breakage > 0 then
      v_lines := jsonb_build_array(jsonb_build_object('account', 'breakage_revenue', 'debitMinor', v_breakage, 'cohort', p_cohort)) || v_lines;
    end if;
  end if;
  if -v_delta > v_breakage then
    v_lines := jsonb_build_array(jsonb_build_object('account', ll_release_account(c.liability_account, p_revenue_account, p_cohort),
                                                    'debitMinor', -v_delta - v_breakage, 'cohort', p_cohort)) || v_lines;
  end if;
  return ll_post_journal(p_program, 'recognition', p_occurred, 'cohort:' || p_cohort, p_actor, p_key, v_lines);
end $$;
