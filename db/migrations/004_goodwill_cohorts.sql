-- Goodwill (manual) points live in cohorts of their own, named after the quarter with a suffix
-- ('2026-Q4-goodwill'), so they never change the per-point allocation of purchased points
-- (docs/adjustments.md). The quarter is always the name's first seven characters.
alter table cohorts drop constraint cohorts_cohort_check;
alter table cohorts add constraint cohorts_cohort_check check (cohort ~ '^[0-9]{4}-Q[1-4](-goodwill)?$');
alter table cohort_stripes drop constraint cohort_stripes_cohort_check;
alter table cohort_stripes add constraint cohort_stripes_cohort_check check (cohort ~ '^[0-9]{4}-Q[1-4](-goodwill)?$');
alter table member_cohorts drop constraint member_cohorts_cohort_check;
alter table member_cohorts add constraint member_cohorts_cohort_check check (cohort ~ '^[0-9]{4}-Q[1-4](-goodwill)?$');
