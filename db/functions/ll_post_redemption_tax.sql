-- The output tax due on the part of an invoice paid with points, where the treatment is
-- `consideration` (tax on the full price): booked out of the released liability, so the revenue of
-- the redemption is net of tax (ASC 606-10-32-2A; IFRS 15.47): debit the account each cohort's
-- release went to (ll_release_account: loyalty_revenue for purchased points, revenue for goodwill
-- points under revenue_reduction, loyalty_expense for a provision, whose releases are never
-- revenue), split over the redemption's cohorts by their points, credit output_tax_payable. Points
-- given back later (a lost chargeback, an invoice lowered) take back their share of it, pro rata to
-- points, cumulatively (ll_prorate), so the shares of all give-backs add up to the whole tax.
-- p_points_before: points of the redemption given back before this part. Posted under
-- p_key || ':tax', beside the cohorts' `p_key:<cohort>` entries, so the redemption's GL entry carries
-- it (db/journal.ts journalLines). Returns the journal entry id, or null when there is no tax to book.
create or replace function ll_post_redemption_tax(p_program text, p_invoice text, p_points_before bigint, p_points bigint,
                                                  p_occurred timestamptz, p_actor text, p_key text, p_reversal boolean)
returns bigint language plpgsql as $$
declare
  r redemptions; t redemption_taxes; v_share bigint; v_lines jsonb := '[]'; c record; v_cum bigint := 0; v_part bigint;
  v_total bigint; v_account text;
begin
  select * into t from redemption_taxes where program_id = p_program and invoice_id = p_invoice;
  if not found or t.treatment <> 'consideration' or t.tax_on_credit_minor = 0 or p_points <= 0 then return null; end if;
  select * into r from redemptions where program_id = p_program and invoice_id = p_invoice;
  v_share := ll_prorate(t.tax_on_credit_minor, p_points_before, p_points, r.points_applied);
  if v_share = 0 then return null; end if;
  select sum(points) into v_total from redemption_cohorts where program_id = p_program and invoice_id = p_invoice;
  for c in select rc.cohort, rc.points, co.liability_account from redemption_cohorts rc
             join cohorts co on co.program_id = rc.program_id and co.cohort = rc.cohort
            where rc.program_id = p_program and rc.invoice_id = p_invoice and rc.points > 0 order by rc.cohort loop
    v_part := ll_prorate(v_share, v_cum, c.points, v_total);
    v_cum := v_cum + c.points;
    continue when v_part = 0;
    v_account := ll_release_account(c.liability_account, 'loyalty_revenue', c.cohort);
    -- no cohort on the line: the tax is no cohort figure (a cohort's lines are its liability's movements)
    v_lines := v_lines || jsonb_build_array(jsonb_build_object('account', v_account,
                 case when p_reversal then 'creditMinor' else 'debitMinor' end, v_part));
  end loop;
  v_lines := v_lines || jsonb_build_array(jsonb_build_object('account', 'output_tax_payable',
               case when p_reversal then 'debitMinor' else 'creditMinor' end, v_share));
  return ll_post_journal(p_program, 'redemption_tax', p_occurred, 'invoice:' || p_invoice || ':tax', p_actor, p_key || ':tax', v_lines);
end $$;
