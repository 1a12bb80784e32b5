-- The audit trail of points (audit_log, as ll_audit writes it): a row for each ledger entry (an
-- entry is new, so nothing is before it). Once per statement, over the rows it inserted: a set-based
-- accrual batch (ll_accrue_set) moves each chain's head once and writes its audit rows in one
-- insert, where a trigger per row ran an update and an insert for each. Chains are taken in
-- ascending order (their head's row lock orders a chain), the entries of a chain in id order.
create or replace function ll_audit_ledger_entry() returns trigger language plpgsql as $$
declare
  r record; v_at timestamptz := now(); v_chain smallint; v_seq bigint; v_hash text; v_after jsonb;
  c_chain smallint[] := '{}'; c_seq bigint[] := '{}'; c_actor text[] := '{}'; c_action text[] := '{}';
  c_program text[] := '{}'; c_member text[] := '{}'; c_subject text[] := '{}'; c_after jsonb[] := '{}';
  c_idem text[] := '{}'; c_hash text[] := '{}';
begin
  for r in select (ll_stripe(i.member_id) % 16)::smallint as chain, i.* from inserted i order by 1, i.entry_id loop
    if v_chain is distinct from r.chain then
      if v_chain is not null then
        update audit_chain_heads set seq = v_seq, hash = v_hash where chain = v_chain;
      end if;
      v_chain := r.chain;
      select h.seq, h.hash into v_seq, v_hash from audit_chain_heads h where h.chain = v_chain for update;
    end if;
    v_seq := v_seq + 1;
    v_after := jsonb_build_object('points', r.points, 'occurredAt', ll_ts(r.occurred_at), 'reference', r.reference);
    v_hash := ll_audit_hash(v_chain, v_seq, v_at, r.actor, r.type, r.program_id, r.member_id, 'ledger_entry:' || r.entry_id,
                            null, v_after, r.idempotency_key, v_hash);
    c_chain := c_chain || v_chain; c_seq := c_seq || v_seq; c_actor := c_actor || r.actor; c_action := c_action || r.type;
    c_program := c_program || r.program_id; c_member := c_member || r.member_id;
    c_subject := c_subject || ('ledger_entry:' || r.entry_id); c_after := c_after || v_after;
    c_idem := c_idem || r.idempotency_key; c_hash := c_hash || v_hash;
  end loop;
  if v_chain is null then return null; end if;
  update audit_chain_heads set seq = v_seq, hash = v_hash where chain = v_chain;
  insert into audit_log (chain, seq, at, actor, action, program_id, member_id, subject, before, after, idempotency_key, hash)
  select a.chain, a.seq, v_at, a.actor, a.action, a.program_id, a.member_id, a.subject, null, a.after, a.idem, a.hash
    from unnest(c_chain, c_seq, c_actor, c_action, c_program, c_member, c_subject, c_after, c_idem, c_hash)
         a(chain, seq, actor, action, program_id, member_id, subject, after, idem, hash);
  return null;
end $$;

create or replace trigger ledger_entries_audit after insert on ledger_entries referencing new table as inserted
  for each statement execute function ll_audit_ledger_entry();
