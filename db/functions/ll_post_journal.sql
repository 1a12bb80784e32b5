-- Posts a balanced journal entry. p_lines: [{account, debitMinor, creditMinor, cohort}].
create or replace function ll_post_journal(p_program text, p_kind text, p_occurred timestamptz, p_reference text,
                                p_actor text, p_key text, p_lines jsonb) returns bigint language plpgsql as $$
declare v_id bigint; v_debit bigint; v_credit bigint;
begin
  select coalesce(sum((l->>'debitMinor')::bigint), 0), coalesce(sum((l->>'creditMinor')::bigint), 0)
    into v_debit, v_credit from jsonb_array_elements(p_lines) l;
  if v_debit <> v_credit or v_debit <= 0 then
    raise exception 'unbalanced journal entry % (debits %, credits %)', p_key, v_debit, v_credit using errcode = 'LL901';
  end if;
  insert into journal_entries (program_id, kind, occurred_at, reference, actor, idempotency_key, debit_minor, credit_minor)
  values (p_program, p_kind, p_occurred, p_reference, p_actor, p_key, v_debit, v_credit) returning journal_entry_id into v_id;
  insert into journal_lines (journal_entry_id, line_no, account, debit_minor, credit_minor, cohort)
  select v_id, ord, l->>'account', coalesce((l->>'debitMinor')::bigint, 0), coalesce((l->>'creditMinor')::bigint, 0), l->>'cohort'
    from jsonb_array_elements(p_lines) with ordinality as t(l, ord);
  return v_id;
end $$;
