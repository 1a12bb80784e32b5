-- Gives up a claim ll_idem_begin granted, when its work answered an error: nothing is stored, so
-- the same key may be sent again (with this body or, since nothing was done, another). Only the
-- claim's own holder releases it (a claim taken over after its lease belongs to the new holder).
create or replace function ll_idem_release(p_scope text, p_key text, p_claim uuid) returns void language sql as $$
  delete from idempotency_keys where scope = p_scope and idem_key = p_key and status_code = 0 and claim_id = p_claim;
$$;
