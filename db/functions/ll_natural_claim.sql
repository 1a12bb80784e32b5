-- Records the natural key of a request whose effect is one per business id, whatever its
-- Idempotency-Key (table request_natural_keys, migration 008). Returns 'new' (first request for the
-- id), 'same' (the same request by the same principal: answer the existing outcome) or 'other'
-- (another body, or another principal: the caller decides, usually 409). A chargebackId recorded
-- for another invoice (p_subject) raises 409 chargeback_id_reused. A concurrent first request for
-- the id waits here for the other to commit.
create or replace function ll_natural_claim(p_program text, p_kind text, p_id text, p_subject text, p_hash text,
                                            p_principal text, p_request jsonb) returns text language plpgsql as $$
declare n request_natural_keys;
begin
  insert into request_natural_keys (program_id, kind, natural_id, subject, request_hash, principal, request)
  values (p_program, p_kind, p_id, p_subject, p_hash, p_principal, p_request) on conflict do nothing;
  if found then return 'new'; end if;
  select * into n from request_natural_keys where program_id = p_program and kind = p_kind and natural_id = p_id;
  if p_kind = 'chargeback' then
    if n.subject <> p_subject then
      perform ll_raise('chargeback_id_reused', 409, 'this chargebackId was recorded for another invoice',
        jsonb_build_object('chargebackId', p_id, 'invoiceId', p_subject));
    end if;
    return 'same';
  end if;
  if n.request_hash is null then
    -- recorded before request hashes (migration 008): the fields that make the redemption
    if n.request = p_request and n.principal is null then return 'same'; end if;
    return 'other';
  end if;
  if n.request_hash = p_hash and n.principal = p_principal then return 'same'; end if;
  return 'other';
end $$;
