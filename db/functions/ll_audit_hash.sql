-- A row's hash: sha256 of its content and the previous row's hash (verify recomputes it the same way).
-- Stable, as its body is (to_char): so it is inlined into its callers' expressions; declared
-- immutable it ran as a query of its own for every row.
create or replace function ll_audit_hash(chain smallint, seq bigint, at timestamptz, actor text, action text, program_id text, member_id text,
                              subject text, before jsonb, after jsonb, idempotency_key text, prev_hash text) returns text
language sql stable as $$
  select encode(sha256(convert_to(jsonb_build_array(chain, seq, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    actor, action, program_id, member_id, subject, before, after, idempotency_key, prev_hash)::text, 'UTF8')), 'hex')
$$;
