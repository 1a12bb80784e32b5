-- Effective expiry rule for a jurisdiction: {policy, window}; a jurisdiction entry overrides the default.
create or replace function ll_expiry_window(p_expiry jsonb, p_jurisdiction text) returns interval language sql immutable as $$
  select case when coalesce(p_expiry->'jurisdictions'->p_jurisdiction->>'policy', p_expiry->>'policy') = 'rolling'
              then coalesce(p_expiry->'jurisdictions'->p_jurisdiction->>'window', p_expiry->>'window')::interval end
$$;
