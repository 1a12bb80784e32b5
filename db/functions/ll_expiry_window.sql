-- Effective expiry rule for a jurisdiction: {policy, window}; a jurisdiction entry overrides the default.
-- Stable, as its body is (to_char and a text-to-interval cast are): so the planner inlines it into the
-- query that calls it; declared immutable it could not be, and each query ran it as a function call.
create or replace function ll_expiry_window(p_expiry jsonb, p_jurisdiction text) returns interval language sql stable as $$
  select case when coalesce(p_expiry->'jurisdictions'->p_jurisdiction->>'policy', p_expiry->>'policy') = 'rolling'
              then coalesce(p_expiry->'jurisdictions'->p_jurisdiction->>'window', p_expiry->>'window')::interval end
$$;
