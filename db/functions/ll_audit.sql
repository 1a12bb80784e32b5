-- Appends a row to audit chain p_chain (0-15: points, by the member's stripe; 16: the rest).
create or replace function ll_audit(p_chain smallint, p_actor text, p_action text, p_program text, p_member text, p_subject text,
                         p_before jsonb, p_after jsonb, p_idem text) returns void language plpgsql as $$
declare v_seq bigint; v_hash text; v_at timestamptz := now();
begin
  -- one statement moves the chain's head (its row lock orders the chain) and hashes the new row
  update audit_chain_heads h set seq = h.seq + 1,
         hash = ll_audit_hash(p_chain, h.seq + 1, v_at, p_actor, p_action, p_program, p_member, p_subject, p_before, p_after, p_idem, h.hash)
   where h.chain = p_chain returning h.seq, h.hash into v_seq, v_hash;
  insert into audit_log (chain, seq, at, actor, action, program_id, member_id, subject, before, after, idempotency_key, hash)
  values (p_chain, v_seq, v_at, p_actor, p_action, p_program, p_member, p_subject, p_before, p_after, p_idem, v_hash);
end $$;
