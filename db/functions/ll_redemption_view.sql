-- A redemption as the API and the saga answer it, with the points it took from each cohort and its
-- tax treatment (null: no jurisdiction known, or a redemption from before it was recorded).
create or replace function ll_redemption_view(r redemptions) returns jsonb language sql stable as $$
  select jsonb_build_object('redemptionId', r.redemption_id, 'invoiceId', r.invoice_id, 'memberId', r.member_id,
    'status', r.status, 'reason', r.reason, 'pointsRequested', r.points_requested, 'pointsApplied', r.points_applied,
    'creditMinor', r.credit_minor, 'pointsReversed', r.points_reversed, 'creditReversedMinor', r.credit_reversed_minor,
    'ruleVersion', r.rule_version,
    'tax', (select jsonb_build_object('jurisdiction', t.jurisdiction, 'currency', t.currency, 'treatment', t.treatment,
                                      'basis', t.basis, 'scheme', t.scheme, 'rateMillionths', t.rate_millionths,
                                      'taxableBaseMinor', t.taxable_base_minor, 'totalTaxMinor', t.total_tax_minor,
                                      'taxOnCreditMinor', t.tax_on_credit_minor,
                                      'taxReversedMinor', t.tax_reversed_minor,
                                      'taxOnCreditOutMinor', t.tax_on_credit_minor - t.tax_reversed_minor,
                                      'taxLines', t.tax_lines)
              from redemption_taxes t where t.program_id = r.program_id and t.invoice_id = r.invoice_id),
    'cohorts', coalesce((select jsonb_object_agg(rc.cohort, rc.points) from redemption_cohorts rc
                          where rc.program_id = r.program_id and rc.invoice_id = r.invoice_id), '{}'))
$$;
