-- A new request takes over the natural key of one whose effect ended without any (a redemption
-- declined): later requests are compared with it (ll_natural_claim).
create or replace function ll_natural_take(p_program text, p_kind text, p_id text, p_hash text, p_principal text,
                                           p_request jsonb) returns void language sql as $$
  update request_natural_keys set request_hash = p_hash, principal = p_principal, request = p_request, updated_at = now()
  where program_id = p_program and kind = p_kind and natural_id = p_id;
$$;
