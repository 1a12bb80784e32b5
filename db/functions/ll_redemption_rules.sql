-- What a redemption is decided by, read from the program's rule version p_version (issue 14, item 1:
-- the saga never takes a point value, a cap or a window from its input, which anyone who can reach
-- Temporal can write): the point value, the minimum, the share of an invoice in millionths, the
-- cohort order and the chargeback window. Null when there is no such version.
create or replace function ll_redemption_rules(p_program text, p_version int) returns jsonb language sql stable as $$
  select jsonb_build_object('ruleVersion', v.version,
    'pointValueMinor', (v.rules->>'pointValueMinor')::bigint,
    'minPoints', (v.rules->'redemption'->>'minPoints')::bigint,
    -- the rule is a decimal of at most 6 places (domain/money.ts rateToMillionths): exact in numeric
    'maxInvoiceShareMillionths', round((v.rules->'redemption'->>'maxInvoiceShare')::numeric * 1000000)::bigint::text,
    'cohortOrder', v.rules->'redemption'->>'cohortOrder',
    'chargebackWindow', v.rules->>'chargebackWindow')
    from program_rule_versions v where v.program_id = p_program and v.version = p_version
$$;
