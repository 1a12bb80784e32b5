-- The output tax due on the part of an invoice paid with points, where the treatment is
-- `consideration` (tax on the full price): booked out of the released liability, so the revenue of
-- the redemption is net of tax (ASC 606-10-32-2A; IFRS 15.47): debit the account the program's
-- releases go to (loyalty_revenue; loyalty_expense for the cost method, whose releases are never
-- revenue), credit output_tax_payable. Points given back later (a lost chargeback, an invoice
-- lowered) take back their share of it, pro rata to points, cumulatively (ll_prorate), so the
-- shares of all give-backs add up to the whole tax. p_points_before: points of the redemption
-- given back before this part. Posted under p_key || ':tax', beside the cohorts' `p_key:<cohort>`
-- entries, so the redemption's GL entry carries it (db/journal.ts journalLines). Returns the
-- journal entry id, or null when there is no tax to book.
create or replace function ll_post_redemption_tax(p_program text, p_invoice text, p_points_before bigint, p_points bigint,
                                                  p_occurred timestamptz, p_actor text, p_key text, p_reversal boolean)
returns bigint language plpgsql as $$
declare r redemptions; t redemption_taxes; v_share bigint; v_account text;
begin
  select * into t from redemption_taxes where program_id = p_program and invoice_id = p_invoice;
  if not found or t.treatment <> 'consideration' or t.tax_on_credit_minor = 0 or p_points <= 0 then return null; end if;
  select * into r from redemptions where program_id = p_program and invoice_id = p_invoice;
  v_share := ll_prorate(t.tax_on_credit_minor, p_points_before, p_points, r.points_applied);
  if v_share = 0 then return null; end if;
  select case when v.rules->'accounting'->>'method' = 'incremental_cost' then 'loyalty_expense' else 'loyalty_revenue' end
    into v_account from program_rule_versions v where v.program_id = p_program and v.version = r.rule_version;
  v_account := coalesce(v_account, 'loyalty_revenue');
  return ll_post_journal(p_program, 'redemption_tax', p_occurred, 'invoice:' || p_invoice || ':tax', p_actor, p_key || ':tax',
    case when p_reversal
      then jsonb_build_array(jsonb_build_object('account', 'output_tax_payable', 'debitMinor', v_share),
                             jsonb_build_object('account', v_account, 'creditMinor', v_share))
      else jsonb_build_array(jsonb_build_object('account', v_account, 'debitMinor', v_share),
                             jsonb_build_object('account', 'output_tax_payable', 'creditMinor', v_share)) end);
end $$;
