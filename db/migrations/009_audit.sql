-- The audit trail: every change to points (ledger entries), rules (programs and rule versions),
-- keys and periods (closes) appends a row with its actor, time, before and after, and the
-- effect's idempotency key. Rows are hash-chained: each row's hash covers its content and the hash
-- of the row before it in its chain, so `loyalty verify` finds an edited, inserted or deleted row.
-- Points go to one of 16 chains by the member's stripe (the same stripes the accrual lanes use, so
-- concurrent writers do not queue on one chain); everything else to chain 16.

create table audit_chain_heads (
  chain smallint primary key check (chain between 0 and 16),
  seq   bigint not null,
  hash  text not null
);
insert into audit_chain_heads (chain, seq, hash) select c, 0, '' from generate_series(0, 16) c;

create table audit_log (
  chain           smallint not null,
  seq             bigint not null,
  at              timestamptz not null default now(),
  actor           text not null,
  action          text not null,
  program_id      text,
  member_id       text,
  subject         text not null,
  before          jsonb,
  after           jsonb,
  idempotency_key text,
  -- sha256 of this row's content and the hash of the row before it in the chain
  hash            text not null,
  primary key (chain, seq)
);
create index audit_log_member on audit_log (program_id, member_id, at);

do $$
begin
  execute 'create trigger audit_log_append_only before update or delete on audit_log for each row execute function ll_forbid_change()';
  execute 'create trigger audit_log_no_truncate before truncate on audit_log for each statement execute function ll_forbid_change()';
end $$;

-- A row's hash: sha256 of its content and the previous row's hash (verify recomputes it the same way).
create function ll_audit_hash(chain smallint, seq bigint, at timestamptz, actor text, action text, program_id text, member_id text,
                              subject text, before jsonb, after jsonb, idempotency_key text, prev_hash text) returns text
language sql immutable as $$
  select encode(sha256(convert_to(jsonb_build_array(chain, seq, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    actor, action, program_id, member_id, subject, before, after, idempotency_key, prev_hash)::text, 'UTF8')), 'hex')
$$;

create function ll_audit(p_chain smallint, p_actor text, p_action text, p_program text, p_member text, p_subject text,
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

-- Who is acting, when a write does not carry it itself (the CLI sets ll.actor).
create function ll_current_actor() returns text language sql stable as $$
  select coalesce(nullif(current_setting('ll.actor', true), ''), 'db:' || current_user)
$$;

-- Points: each ledger entry (an entry is new, so nothing is before it).
create function ll_audit_ledger_entry() returns trigger language plpgsql as $$
begin
  perform ll_audit((ll_stripe(new.member_id) % 16)::smallint, new.actor, new.type, new.program_id, new.member_id, 'ledger_entry:' || new.entry_id,
    null, jsonb_build_object('points', new.points, 'occurredAt', ll_ts(new.occurred_at), 'reference', new.reference), new.idempotency_key);
  return null;
end $$;
create trigger ledger_entries_audit after insert on ledger_entries for each row execute function ll_audit_ledger_entry();

-- Rules: a program and each rule version.
create function ll_audit_rules() returns trigger language plpgsql as $$
begin
  if tg_table_name = 'programs' then
    perform ll_audit(16::smallint, case when tg_op = 'INSERT' then new.created_by else ll_current_actor() end, lower(tg_op) || '_program', new.program_id, null,
      'program:' || new.program_id,
      case when tg_op = 'UPDATE' then jsonb_build_object('name', old.name, 'lockedUntil', ll_ts(old.locked_until)) end,
      jsonb_build_object('name', new.name, 'currency', new.currency, 'lockedUntil', ll_ts(new.locked_until)), null);
  else
    perform ll_audit(16::smallint, new.created_by, 'rule_version', new.program_id, null, 'rules:' || new.program_id || ':' || new.version,
      (select v.rules from program_rule_versions v where v.program_id = new.program_id and v.version < new.version order by v.version desc limit 1),
      new.rules || jsonb_build_object('effectiveAt', ll_ts(new.effective_at)), null);
  end if;
  return null;
end $$;
create trigger programs_audit after insert or update on programs for each row execute function ll_audit_rules();
create trigger program_rule_versions_audit after insert on program_rule_versions for each row execute function ll_audit_rules();

-- Keys: created, rotated, revoked (never the secret or its hash).
create function ll_audit_key() returns trigger language plpgsql as $$
begin
  if tg_op = 'UPDATE' and old.revoked_at is not distinct from new.revoked_at and old.roles = new.roles and old.principal = new.principal
     and old.key_hash = new.key_hash then
    return null; -- only last_used_at moved: not a change to access
  end if;
  perform ll_audit(16::smallint, ll_current_actor(), case when tg_op = 'INSERT' then 'key_created' when new.revoked_at is not null and old.revoked_at is null then 'key_revoked' else 'key_changed' end,
    null, null, 'key:' || new.key_id,
    case when tg_op = 'UPDATE' then jsonb_build_object('principal', old.principal, 'roles', old.roles, 'revokedAt', ll_ts(old.revoked_at)) end,
    jsonb_build_object('principal', new.principal, 'roles', new.roles, 'revokedAt', ll_ts(new.revoked_at)), null);
  return null;
end $$;
create trigger api_keys_audit after insert or update on api_keys for each row execute function ll_audit_key();

-- Periods: each step of a close.
create function ll_audit_close() returns trigger language plpgsql as $$
begin
  if tg_op = 'UPDATE' and old.status = new.status and old.approved_by is not distinct from new.approved_by and old.booked_at is not distinct from new.booked_at then
    return null;
  end if;
  perform ll_audit(16::smallint, coalesce(case when new.status = 'locked' or new.approved_by is distinct from old.approved_by then new.approved_by end, new.started_by),
    'close_' || new.status, new.program_id, null, 'period:' || new.program_id || ':' || new.period,
    case when tg_op = 'UPDATE' then jsonb_build_object('status', old.status, 'approvedBy', old.approved_by) end,
    jsonb_build_object('status', new.status, 'approvedBy', new.approved_by, 'startedBy', new.started_by, 'bookedAt', ll_ts(new.booked_at)), null);
  return null;
end $$;
create trigger closes_audit after insert or update on closes for each row execute function ll_audit_close();
