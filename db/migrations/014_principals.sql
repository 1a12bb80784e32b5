-- Principals as entities (issue 14, item 5: keys scoped to programs; SoD between people).
--
-- Until now a key carried a free-text `principal` label: whoever could make a key could make one
-- in anyone's name, and segregation of duties compared labels. Now a principal is a row: a person
-- or a service, with the roles it may hold and whether it is active. Every key belongs to one
-- principal (a foreign key), holds a subset of the principal's roles (what it may use is the
-- intersection, read at authentication, so removing a role from a person or disabling them takes
-- effect on every key at once), and may be limited to a list of programs (null: every program).
-- Segregation of duties compares principal ids; an approval needs a person, never a service.
create table principals (
  principal_id text primary key check (principal_id ~ '^[\x21-\x7e]{1,128}$'),
  kind         text not null check (kind in ('person', 'service')),
  display_name text check (length(display_name) between 1 and 200),
  roles        text[] not null check (roles <@ array['billing', 'finance', 'controller', 'legal', 'program_owner', 'support', 'admin']),
  disabled_at  timestamptz,
  created_at   timestamptz not null default now()
);

-- A label the old check let through (it checked only the length) cannot be a principal id: say which,
-- rather than fail on the constraint below.
do $$
declare bad text;
begin
  select string_agg(distinct principal, ', ') into bad from api_keys where principal !~ '^[\x21-\x7e]{1,128}$';
  if bad is not null then
    raise exception 'api_keys name principals that are not ids (printable ASCII, no spaces): %; rename them (update api_keys set principal = ...) and migrate again', bad;
  end if;
end $$;

-- The labels keys carried become principals: one with only the billing role is the billing
-- system (a service); anything else a person. Their roles: every role their active keys hold (a
-- revoked key's roles are not given back); one whose keys are all revoked holds none.
insert into principals (principal_id, kind, roles)
select k.principal,
       case when array_agg(distinct r) <@ array['billing'] then 'service' else 'person' end,
       array_agg(distinct r order by r)
  from api_keys k cross join lateral unnest(k.roles) r
 where k.revoked_at is null
 group by k.principal
on conflict do nothing;
insert into principals (principal_id, kind, roles)
select distinct principal, 'person', '{}'::text[] from api_keys where principal not in (select principal_id from principals)
on conflict do nothing;

-- The principals made here have their audit rows like any other (db/verify.ts checks), as the
-- principals' audit trigger writes them (chain 16, action principal_created). A migration runs
-- before db/functions on a new database and calls none of them: the hash is computed here as the
-- audit chain's hash function does (verify recomputes it, so a difference would show). Only a
-- database that had keys has any principal here.
do $$
declare p record; v_seq bigint; v_prev text; v_hash text; v_at timestamptz := now(); v_after jsonb; v_subject text;
begin
  for p in select * from principals order by principal_id loop
    v_subject := 'principal:' || p.principal_id;
    v_after := jsonb_build_object('kind', p.kind, 'roles', p.roles, 'displayName', null, 'disabledAt', null);
    select h.seq + 1, h.hash into v_seq, v_prev from audit_chain_heads h where h.chain = 16 for update;
    v_hash := encode(sha256(convert_to(jsonb_build_array(16, v_seq, to_char(v_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
      'migration:014_principals', 'principal_created', null::text, null::text, v_subject, null::jsonb, v_after, null::text, v_prev)::text, 'UTF8')), 'hex');
    insert into audit_log (chain, seq, at, actor, action, program_id, member_id, subject, before, after, idempotency_key, hash)
    values (16, v_seq, v_at, 'migration:014_principals', 'principal_created', null, null, v_subject, null, v_after, null, v_hash);
    update audit_chain_heads set seq = v_seq, hash = v_hash where chain = 16;
  end loop;
end $$;

alter table api_keys add constraint api_keys_principal_fk foreign key (principal) references principals (principal_id);
-- null: every program; else the programs this key may touch
alter table api_keys add column programs text[] check (programs is null or cardinality(programs) between 1 and 1000);
create index api_keys_principal on api_keys (principal);

-- A close's start is asked for through the API like a decision (the starter cannot approve it, so
-- who started it must be as certain as who approves): kind close_start, decision 'request', and
-- the request's own terms (the override) in `detail`, which the workflow takes from here, not from
-- its input.
alter table decision_requests drop constraint decision_requests_kind_check;
alter table decision_requests add constraint decision_requests_kind_check
  check (kind in ('close_approval', 'rule_change_decision', 'adjustment_approval', 'close_start'));
alter table decision_requests drop constraint decision_requests_decision_check;
alter table decision_requests add constraint decision_requests_decision_check
  check (decision in ('approve', 'reject', 'request'));
alter table decision_requests add column detail jsonb check (detail is null or length(detail::text) <= 4000);
