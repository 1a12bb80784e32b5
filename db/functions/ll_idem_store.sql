-- Stores the response of the work ll_idem_claim let through, under its key, and returns it as not replayed.
create or replace function ll_idem_store(p_scope text, p_key text, p_status int, p_body jsonb) returns jsonb language plpgsql as $$
begin
  update idempotency_keys set status_code = p_status, response = p_body where scope = p_scope and idem_key = p_key;
  return jsonb_build_object('status', p_status, 'body', p_body, 'replayed', false);
end $$;
