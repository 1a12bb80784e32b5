-- The output tax due on the part of an invoice paid with points, where the treatment is
-- `consideration` (tax on the full price): booked out of the released liability, so the revenue of
-- the redemption is net of tax (ASC 606-10-32-2A; IFRS 15.47): debit the account each cohort's
-- release credited (ll_release_account: loyalty_revenue for purchased points, revenue for goodwill
-- points under revenue_reduction, loyalty_expense for a provision, whose releases are never
-- revenue), the tax split over the redemption's cohorts by their points but never more than the
-- cohort released for this redemption; what the release does not cover (points redeemed after
-- their cohort recognised all it carries, or a tax above what was allocated to the points) is a
-- cost, debit loyalty_expense, so tax never makes revenue negative (redemption_taxes.tax_expensed_minor).
-- Credit output_tax_payable. Points given back later (a lost chargeback, an invoice lowered) take
-- back their share, pro rata to points, cumulatively (ll_prorate), the cost part first in its
-- proportion, so the shares of all give-backs add up to what was booked. p_points_before: points of
-- the redemption given back before this part. Posted under p_key || ':tax', beside the cohorts'
-- `p_key:<cohort>` entries, so the redemption's GL entry carries it (db/journal.ts journalLines).
-- Returns the journal entry id, or null when there is no tax to book.
create or replace function ll_post_redemption_tax(p_program text, p_invoice text, p_points_before bigint, p_points bigint,
                                                  p_occurred timestamptz, p_actor text, p_key text, p_reversal boolean)
returns bigint language plpgsql as $$
declare
  r redemptions; t redemption_taxes; v_share bigint; v_lines jsonb := '[]'; c record; v_cum bigint := 0; v_part bigint;
  v_total bigint; v_released bigint; v_cost bigint := 0; v_revenue bigint;
begin
  select * into t from redemption_taxes where program_id = p_program and invoice_id = p_invoice;
  if not found or t.treatment <> 'consideration' or t.tax_on_credit_minor = 0 or p_points <= 0 then return null; end if;
  select * into r from redemptions where program_id = p_program and invoice_id = p_invoice;
  v_share := ll_prorate(t.tax_on_credit_minor, p_points_before, p_points, r.points_applied);
  if v_share = 0 then return null; end if;
  if p_reversal then
    -- the cost part goes back in its proportion, the rest back to the revenue accounts
    v_cost := case when t.tax_expensed_minor = 0 then 0
                   else ll_prorate(t.tax_expensed_minor, p_points_before, p_points, r.points_applied) end;
  end if;
  v_revenue := v_share - v_cost;
  select sum(points) into v_total from redemption_cohorts where program_id = p_program and invoice_id = p_invoice;
  for c in select rc.cohort, rc.points, co.liability_account from redemption_cohorts rc
             join cohorts co on co.program_id = rc.program_id and co.cohort = rc.cohort
            where rc.program_id = p_program and rc.invoice_id = p_invoice and rc.points > 0 order by rc.cohort loop
    v_part := case when v_revenue = 0 then 0 else ll_prorate(v_revenue, v_cum, c.points, v_total) end;
    v_cum := v_cum + c.points;
    if not p_reversal then
      -- never more than this redemption released from the cohort (its `p_key:<cohort>` recognition)
      select coalesce(sum(l.debit_minor - l.credit_minor), 0) into v_released
        from journal_entries j join journal_lines l using (journal_entry_id)
       where j.program_id = p_program and j.idempotency_key = p_key || ':' || c.cohort and l.account = c.liability_account;
      if v_part > greatest(v_released, 0) then
        v_cost := v_cost + v_part - greatest(v_released, 0);
        v_part := greatest(v_released, 0);
      end if;
    end if;
    continue when v_part = 0;
    -- the cohort on the revenue line: the close report's revenue from the opening liability is net
    -- of the tax on the opening cohorts' redemptions (db/close-report.ts)
    v_lines := v_lines || jsonb_build_array(jsonb_build_object('account', ll_release_account(c.liability_account, 'loyalty_revenue', c.cohort),
                 'cohort', c.cohort, case when p_reversal then 'creditMinor' else 'debitMinor' end, v_part));
  end loop;
  if v_cost > 0 then
    v_lines := v_lines || jsonb_build_array(jsonb_build_object('account', 'loyalty_expense',
                 case when p_reversal then 'creditMinor' else 'debitMinor' end, v_cost));
  end if;
  v_lines := v_lines || jsonb_build_array(jsonb_build_object('account', 'output_tax_payable',
               case when p_reversal then 'debitMinor' else 'creditMinor' end, v_share));
  if p_reversal then
    -- tax_expensed_minor stays what the commit booked: later give-backs prorate the same total
    update redemption_taxes set tax_reversed_minor = tax_reversed_minor + v_share
     where program_id = p_program and invoice_id = p_invoice;
  else
    update redemption_taxes set tax_expensed_minor = v_cost where program_id = p_program and invoice_id = p_invoice;
  end if;
  return ll_post_journal(p_program, 'redemption_tax', p_occurred, 'invoice:' || p_invoice || ':tax', p_actor, p_key || ':tax', v_lines);
end $$;
