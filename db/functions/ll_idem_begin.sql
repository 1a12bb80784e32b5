-- Claims an idempotency key for a write that is not one transaction (it starts, signals or updates a
-- workflow): the claim is its own committed row, status_code 0 while the work is in progress.
-- Returns {state: 'proceed', claimId} when the caller does the work (a new key, or a claim left in
-- progress longer than p_lease_seconds, taken over: the work is idempotent by its workflow id);
-- {state: 'done', status, body} to replay the stored answer; {state: 'in_progress', retryAfter}
-- while another request with this key is working (otherBody: with another body). Another body
-- once the key answered: 409 idempotency_key_reused.
create or replace function ll_idem_begin(p_scope text, p_key text, p_hash text, p_lease_seconds int)
returns jsonb language plpgsql as $$
declare k idempotency_keys; v_claim uuid := gen_random_uuid();
begin
  insert into idempotency_keys (scope, idem_key, request_hash, status_code, response, claimed_at, claim_id)
  values (p_scope, p_key, p_hash, 0, 'null', now(), v_claim) on conflict do nothing;
  if found then return jsonb_build_object('state', 'proceed', 'claimId', v_claim); end if;
  select * into k from idempotency_keys where scope = p_scope and idem_key = p_key for update;
  if k.request_hash <> p_hash then
    -- another body while the first is still working: the caller waits, since the first may yet fail
    -- and be released (nothing done); once it answered, or its lease ran out, the key is the first's
    if k.status_code = 0 and k.claimed_at >= now() - make_interval(secs => p_lease_seconds) then
      return jsonb_build_object('state', 'in_progress', 'otherBody', true, 'retryAfter', 1);
    end if;
    perform ll_raise('idempotency_key_reused', 409, 'this Idempotency-Key was used with a different request body', '{}');
  end if;
  if k.status_code <> 0 then
    return jsonb_build_object('state', 'done', 'status', k.status_code, 'body', k.response);
  end if;
  if k.claimed_at < now() - make_interval(secs => p_lease_seconds) then
    update idempotency_keys set claimed_at = now(), claim_id = v_claim where scope = p_scope and idem_key = p_key;
    return jsonb_build_object('state', 'proceed', 'claimId', v_claim, 'tookOver', true);
  end if;
  return jsonb_build_object('state', 'in_progress',
    'retryAfter', greatest(1, ceil(extract(epoch from k.claimed_at + make_interval(secs => p_lease_seconds) - now())))::int);
end $$;
