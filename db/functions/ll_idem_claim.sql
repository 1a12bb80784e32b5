-- Claims an idempotency key. Returns null when the caller should do the work, else the stored
-- {status, body, replayed}. A concurrent claim of the same key waits here for the first to commit.
create or replace function ll_idem_claim(p_scope text, p_key text, p_hash text) returns jsonb language plpgsql as $$
declare k idempotency_keys;
begin
  insert into idempotency_keys (scope, idem_key, request_hash, status_code, response)
  values (p_scope, p_key, p_hash, 0, 'null') on conflict do nothing;
  if found then return null; end if;
  select * into k from idempotency_keys where scope = p_scope and idem_key = p_key;
  if k.request_hash <> p_hash then
    perform ll_raise('idempotency_key_reused', 409, 'this Idempotency-Key was used with a different request body', jsonb_build_object('idempotencyKey', p_key));
  end if;
  return jsonb_build_object('status', k.status_code, 'body', k.response, 'replayed', true);
end $$;
