-- A redemption as the API and the saga answer it, with the points it took from each cohort.
create or replace function ll_redemption_view(r redemptions) returns jsonb language sql stable as $$
  select jsonb_build_object('redemptionId', r.redemption_id, 'invoiceId', r.invoice_id, 'memberId', r.member_id,
    'status', r.status, 'reason', r.reason, 'pointsRequested', r.points_requested, 'pointsApplied', r.points_applied,
    'creditMinor', r.credit_minor, 'pointsReversed', r.points_reversed, 'creditReversedMinor', r.credit_reversed_minor,
    'ruleVersion', r.rule_version,
    'cohorts', coalesce((select jsonb_object_agg(rc.cohort, rc.points) from redemption_cohorts rc
                          where rc.program_id = r.program_id and rc.invoice_id = r.invoice_id), '{}'))
$$;
