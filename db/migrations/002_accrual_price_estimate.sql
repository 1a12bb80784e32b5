-- The estimate that prices new points (issue 13, defect 6): a close records, when it is booked,
-- the approved estimate from which new accruals and new cohorts start; each accrual records the
-- rate its allocation used and the close that set it (null: the rule's expectedRedemptionRate, the
-- prior before the first close). Accruals written before keep the rule's rate of their version.
alter table closes add column points_rate numeric(7,6)
  constraint closes_points_rate_check check (points_rate > 0 and points_rate <= 1);

alter table accruals add column redemption_rate numeric(7,6),
  add column rate_close text constraint accruals_rate_close_check check (rate_close ~ '^[0-9]{4}-Q[1-4]$');
update accruals a set redemption_rate = (v.rules->>'expectedRedemptionRate')::numeric
  from program_rule_versions v where v.program_id = a.program_id and v.version = a.rule_version;
alter table accruals alter column redemption_rate set not null,
  add constraint accruals_redemption_rate_check check (redemption_rate > 0 and redemption_rate <= 1);
