-- The write paths, as functions so that each operation is one round trip and one transaction.
-- Business errors are raised with SQLSTATE 'LL4xx'-style codes: MESSAGE is the API error code,
-- DETAIL a JSON object, HINT the HTTP status. api/ maps them 1:1 (db/errors.ts).

create function ll_raise(p_code text, p_status int, p_message text, p_details jsonb default '{}')
returns void language plpgsql as $$
begin
  raise exception using errcode = 'LL400', message = p_code, detail = jsonb_build_object('message', p_message, 'details', p_details)::text, hint = p_status::text;
end $$;

create function ll_ts(p timestamptz) returns text language sql immutable as $$
  select to_char(p at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

create function ll_quarter(p timestamptz) returns text language sql immutable as $$
  select to_char(p at time zone 'UTC', 'YYYY') || '-Q' || to_char(p at time zone 'UTC', 'Q')
$$;

-- The stripe of a member: the low 4 bits of the 4th byte of md5(member id). domain/stripe.ts
-- computes the same, so the API can send accruals of disjoint stripes down separate lanes.
create function ll_stripe(p_member text) returns smallint language sql immutable as $$
  select (get_byte(decode(md5(p_member), 'hex'), 3) & 15)::smallint
$$;

-- Adds to a cohort's figures in the member's stripe (rows appear on first use).
create function ll_stripe_add(p_program text, p_cohort text, p_member text, d_issued bigint default 0,
  d_alloc bigint default 0, d_revoked bigint default 0, d_alloc_rev bigint default 0,
  d_redeemed bigint default 0, d_expired bigint default 0, d_alloc_micro numeric default 0,
  d_alloc_rev_micro numeric default 0) returns void language sql as $$
  insert into cohort_stripes as cs (program_id, cohort, stripe, points_issued, allocated_minor, points_revoked,
                                    allocated_reversed_minor, points_redeemed, points_expired, allocated_micro, allocated_reversed_micro)
  values (p_program, p_cohort, ll_stripe(p_member), d_issued, d_alloc, d_revoked, d_alloc_rev, d_redeemed, d_expired,
          d_alloc_micro, d_alloc_rev_micro)
  on conflict (program_id, cohort, stripe) do update set
    allocated_micro = cs.allocated_micro + d_alloc_micro, allocated_reversed_micro = cs.allocated_reversed_micro + d_alloc_rev_micro,
    points_issued = cs.points_issued + d_issued, allocated_minor = cs.allocated_minor + d_alloc,
    points_revoked = cs.points_revoked + d_revoked, allocated_reversed_minor = cs.allocated_reversed_minor + d_alloc_rev,
    points_redeemed = cs.points_redeemed + d_redeemed, points_expired = cs.points_expired + d_expired
$$;

-- Claims an idempotency key. Returns null when the caller should do the work, else the stored
-- {status, body, replayed}. A concurrent claim of the same key waits here for the first to commit.
create function ll_idem_claim(p_scope text, p_key text, p_hash text) returns jsonb language plpgsql as $$
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

create function ll_idem_store(p_scope text, p_key text, p_status int, p_body jsonb) returns jsonb language plpgsql as $$
begin
  update idempotency_keys set status_code = p_status, response = p_body where scope = p_scope and idem_key = p_key;
  return jsonb_build_object('status', p_status, 'body', p_body, 'replayed', false);
end $$;

-- Follows merges to the member that holds the points now. Bounded: a merge chain longer than
-- 32 is a corruption, not a use case.
create function ll_resolve_member(p_program text, p_member text) returns text language plpgsql as $$
declare v_id text := p_member; v_into text; hops int := 0;
begin
  loop
    select merged_into into v_into from members where program_id = p_program and member_id = v_id;
    if v_into is null then return v_id; end if;
    v_id := v_into; hops := hops + 1;
    if hops > 32 then perform ll_raise('merge_chain_too_long', 500, 'merge chain longer than 32', jsonb_build_object('memberId', p_member)); end if;
  end loop;
end $$;

-- Locks the member that holds the points now: follows merges, and follows again if a merge
-- committed while we waited for the lock. Returns null if the member does not exist.
create function ll_lock_current_member(p_program text, p_member text) returns members language plpgsql as $$
declare m members; v_id text := p_member; hops int := 0;
begin
  loop
    v_id := ll_resolve_member(p_program, v_id);
    select * into m from members where program_id = p_program and member_id = v_id for update;
    if not found or m.status <> 'merged' then return m; end if;
    hops := hops + 1;
    if hops > 32 then perform ll_raise('merge_chain_too_long', 500, 'merge chain longer than 32', jsonb_build_object('memberId', p_member)); end if;
  end loop;
end $$;

-- The accounts a cohort's allocation is released between (see cohorts.liability_account).
create function ll_release_account(p_liability text, p_default text) returns text language sql immutable as $$
  select case when p_liability = 'loyalty_provision' then 'loyalty_expense' else p_default end
$$;

-- Posts a balanced journal entry. p_lines: [{account, debitMinor, creditMinor, cohort}].
create function ll_post_journal(p_program text, p_kind text, p_occurred timestamptz, p_reference text,
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

-- Brings a cohort's recognised revenue to A * min(1, R / (N * u)) with A exact (micro), rounded
-- once; or, when every point is redeemed or expired, to all that was posted to the liability.
-- Posts the difference of the two rounded cumulative figures.
-- Mirrors domain/recognition.ts (test/integration/recognition-sql.test.ts checks they agree).
create function ll_recognize_cohort(p_program text, p_cohort text, p_occurred timestamptz, p_actor text,
                                    p_key text, p_revenue_account text) returns bigint language plpgsql as $$
declare
  c cohorts; v_n bigint; v_a bigint; v_am numeric; v_r bigint; v_x bigint; v_target bigint; v_delta bigint; v_num numeric; v_den numeric;
begin
  select * into c from cohorts where program_id = p_program and cohort = p_cohort for update;
  if not found then return null; end if;
  select coalesce(sum(points_issued - points_revoked), 0), coalesce(sum(allocated_minor - allocated_reversed_minor), 0),
         coalesce(sum(points_redeemed), 0), coalesce(sum(points_expired), 0),
         coalesce(sum(allocated_micro - allocated_reversed_micro), 0)
    into v_n, v_a, v_r, v_x, v_am from cohort_stripes where program_id = p_program and cohort = p_cohort;
  if v_n <= 0 or v_r + v_x >= v_n then
    v_target := greatest(v_a, 0);
  else
    -- exact integer arithmetic, halves away from zero (as domain/money.ts divRound)
    -- target = A_micro * R / (N * u) / 10^6, capped at A_micro / 10^6
    v_am := greatest(v_am, 0);
    v_num := v_am * least(v_r::numeric * 1000000, v_n::numeric * (c.ultimate_redemption_rate * 1000000));
    v_den := v_n::numeric * (c.ultimate_redemption_rate * 1000000) * 1000000;
    v_target := div(2 * v_num + v_den, 2 * v_den);
  end if;
  v_delta := v_target - c.recognized_minor;
  if v_delta = 0 then return null; end if;
  update cohorts set recognized_minor = v_target where program_id = p_program and cohort = p_cohort;
  return ll_post_journal(p_program, 'recognition', p_occurred, 'cohort:' || p_cohort, p_actor, p_key,
    case when v_delta > 0 then jsonb_build_array(
      jsonb_build_object('account', c.liability_account, 'debitMinor', v_delta, 'cohort', p_cohort),
      jsonb_build_object('account', ll_release_account(c.liability_account, p_revenue_account), 'creditMinor', v_delta, 'cohort', p_cohort))
    else jsonb_build_array(
      jsonb_build_object('account', ll_release_account(c.liability_account, p_revenue_account), 'debitMinor', -v_delta, 'cohort', p_cohort),
      jsonb_build_object('account', c.liability_account, 'creditMinor', -v_delta, 'cohort', p_cohort)) end);
end $$;

-- Expires a member's whole available balance if their deadline is at or before p_as_of.
-- Never more than the balance: the amount is read under the row lock, in this transaction.
create function ll_expire_member(p_program text, p_member text, p_as_of timestamptz, p_actor text)
returns jsonb language plpgsql as $$
declare
  m members; v_points bigint; v_deadline timestamptz; v_entry bigint; v_key text; r record; v_journal bigint;
  v_left bigint; v_take bigint; v_last bigint;
begin
  select * into m from members where program_id = p_program and member_id = p_member for update;
  if not found or m.status <> 'active' or m.expires_at is null or m.expires_at > p_as_of then
    return jsonb_build_object('expiredPoints', 0, 'expiresAt', ll_ts(m.expires_at));
  end if;
  v_deadline := m.expires_at;
  v_points := m.balance - m.held;
  -- Unique per expiry event: a backdated purchase can set the same deadline again later.
  select coalesce(max(entry_id), 0) into v_last from ledger_entries where program_id = p_program and member_id = p_member;
  v_key := 'expire:' || jsonb_build_array(p_member, ll_ts(v_deadline), v_last)::text;
  if v_points > 0 then
    insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key)
    values (p_program, p_member, 'expire', -v_points, v_deadline, 'expiry:' || ll_ts(v_deadline), p_actor, v_key)
    returning entry_id into v_entry;
    -- Held points (a redemption in progress) stay; the oldest cohorts expire first.
    v_left := v_points;
    -- per cohort, what the member's holds have not taken (ll_member_cohorts_available, 005)
    for r in select a.cohort, a.available as points from ll_member_cohorts_available(p_program, p_member) a
             where a.available > 0 loop
      exit when v_left = 0;
      v_take := least(v_left, r.points);
      insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, r.cohort, -v_take);
      update member_cohorts set points = points - v_take where program_id = p_program and member_id = p_member and cohort = r.cohort;
      perform ll_stripe_add(p_program, r.cohort, p_member, d_expired => v_take);
      v_journal := ll_recognize_cohort(p_program, r.cohort, v_deadline, p_actor, v_key || ':' || r.cohort, 'breakage_revenue');
      v_left := v_left - v_take;
    end loop;
    update members set balance = balance - v_points where program_id = p_program and member_id = p_member;
  end if;
  update members set expires_at = null, armed_deadline = null where program_id = p_program and member_id = p_member;
  return jsonb_build_object('expiredPoints', greatest(v_points, 0), 'deadline', ll_ts(v_deadline), 'entryId', v_entry);
end $$;

-- The member workflow arms its timer: records what it sleeps until, under the row lock, so an
-- accrual knows whether it must wake the workflow (see docs/member-lifecycle.md).
create function ll_arm_member(p_program text, p_member text) returns jsonb language plpgsql as $$
declare m members;
begin
  update members set armed_deadline = case when status = 'active' then expires_at end
   where program_id = p_program and member_id = p_member returning * into m;
  if not found then return jsonb_build_object('status', 'unknown'); end if;
  return jsonb_build_object('status', m.status, 'mergedInto', m.merged_into, 'expiresAt', ll_ts(m.expires_at), 'balance', m.balance);
end $$;

create function ll_request_wake(p_program text, p_member text) returns void language sql as $$
  insert into member_wakeups (program_id, member_id) values (p_program, p_member)
  on conflict (program_id, member_id) do update set seq = member_wakeups.seq + 1, requested_at = now()
$$;

-- Effective expiry rule for a jurisdiction: {policy, window}; a jurisdiction entry overrides the default.
create function ll_expiry_window(p_expiry jsonb, p_jurisdiction text) returns interval language sql immutable as $$
  select case when coalesce(p_expiry->'jurisdictions'->p_jurisdiction->>'policy', p_expiry->>'policy') = 'rolling'
              then coalesce(p_expiry->'jurisdictions'->p_jurisdiction->>'window', p_expiry->>'window')::interval end
$$;

-- One accrual. p: {programId, idemKey, requestHash, accrualId, memberId, invoiceId, amountMinor, points,
-- allocatedMinor, allocatedMicro, cohort, occurredAt, storeId, jurisdiction, expiry, expectedRedemptionRate,
-- ruleVersion, debitAccount, creditAccount, actor}. p_new: the member row was created by this batch.
-- Business errors are raised before anything is written.
create function ll_accrue(p jsonb, p_new boolean) returns jsonb language plpgsql as $$
declare
  v_program text := p->>'programId'; v_invoice text := p->>'invoiceId';
  v_occurred timestamptz := (p->>'occurredAt')::timestamptz;
  v_points bigint := (p->>'points')::bigint; v_alloc bigint := (p->>'allocatedMinor')::bigint;
  v_cohort text := p->>'cohort'; v_actor text := p->>'actor';
  a accruals; k idempotency_keys; m members; v_member text; v_jur text; v_exp timestamptz;
  v_journal bigint; v_entry bigint; v_body jsonb;
begin
  -- The Idempotency-Key, then the natural key: one accrual per invoice, whatever the key. Read
  -- only: the key is written with the result, at the end (a concurrent duplicate that commits
  -- first makes that insert fail, and the batch runs the item again, finding it).
  select * into k from idempotency_keys where scope = v_program and idem_key = p->>'idemKey';
  if found then
    if k.request_hash <> p->>'requestHash' then
      perform ll_raise('idempotency_key_reused', 409, 'this Idempotency-Key was used with a different request body', jsonb_build_object('idempotencyKey', p->>'idemKey'));
    end if;
    return jsonb_build_object('status', k.status_code, 'body', k.response, 'replayed', true);
  end if;
  select * into a from accruals where program_id = v_program and invoice_id = v_invoice;
  if found then
    if a.request_hash <> p->>'requestHash' then
      perform ll_raise('invoice_already_accrued', 409, 'this invoice already earned points with a different request', jsonb_build_object('invoiceId', v_invoice, 'accrualId', a.accrual_id));
    end if;
    return jsonb_build_object('status', 200, 'body', a.response, 'replayed', true);
  end if;

  m := ll_lock_current_member(v_program, p->>'memberId');
  if m.member_id is null then
    insert into members (program_id, member_id) values (v_program, p->>'memberId') on conflict do nothing;
    m := ll_lock_current_member(v_program, p->>'memberId');
  end if;
  v_member := m.member_id;
  if m.status <> 'active' then
    perform ll_raise('member_not_active', 409, 'member is ' || m.status, jsonb_build_object('memberId', v_member));
  end if;

  -- Purchase protection: a purchase after the deadline finds the points already expired.
  if m.expires_at is not null and v_occurred > m.expires_at then
    perform ll_expire_member(v_program, v_member, v_occurred, v_actor);
    select * into m from members where program_id = v_program and member_id = v_member;
  end if;

  v_jur := coalesce(p->>'jurisdiction', m.jurisdiction);
  v_exp := v_occurred + ll_expiry_window(p->'expiry', v_jur);
  if v_exp is not null then v_exp := greatest(v_exp, m.expires_at); end if;

  if v_alloc > 0 then
    v_journal := ll_post_journal(v_program, 'accrual', v_occurred, 'invoice:' || v_invoice, v_actor, 'accrual:' || v_invoice,
      jsonb_build_array(
        jsonb_build_object('account', coalesce(p->>'debitAccount', 'revenue'), 'debitMinor', v_alloc),
        jsonb_build_object('account', coalesce(p->>'creditAccount', 'loyalty_contract_liability'), 'creditMinor', v_alloc, 'cohort', v_cohort)));
  end if;
  insert into ledger_entries (program_id, member_id, type, points, occurred_at, reference, actor, idempotency_key, rule_version, journal_entry_id)
  values (v_program, v_member, 'earn', v_points, v_occurred, 'invoice:' || v_invoice, v_actor, 'accrual:' || v_invoice, (p->>'ruleVersion')::int, v_journal)
  returning entry_id into v_entry;
  if v_points > 0 then
    insert into ledger_entry_cohorts (entry_id, cohort, points) values (v_entry, v_cohort, v_points);
    insert into member_cohorts (program_id, member_id, cohort, points) values (v_program, v_member, v_cohort, v_points)
      on conflict (program_id, member_id, cohort) do update set points = member_cohorts.points + excluded.points;
  end if;
  insert into cohorts (program_id, cohort, ultimate_redemption_rate, liability_account)
    values (v_program, v_cohort, (p->>'expectedRedemptionRate')::numeric, coalesce(p->>'creditAccount', 'loyalty_contract_liability'))
    on conflict do nothing;
  perform ll_stripe_add(v_program, v_cohort, v_member, d_issued => v_points, d_alloc => v_alloc,
                        d_alloc_micro => (p->>'allocatedMicro')::numeric);

  update members set balance = balance + v_points, expires_at = v_exp, jurisdiction = v_jur,
         last_purchase_at = greatest(last_purchase_at, v_occurred)
   where program_id = v_program and member_id = v_member;
  -- Wake the workflow only if it has no timer that fires at or before the new deadline.
  if p_new or (v_exp is not null and (m.armed_deadline is null or v_exp < m.armed_deadline)) then
    perform ll_request_wake(v_program, v_member);
  end if;

  v_body := jsonb_build_object('accrualId', p->>'accrualId', 'memberId', v_member, 'points', v_points,
    'allocatedMinor', v_alloc, 'balance', m.balance + v_points, 'expiresAt', ll_ts(v_exp), 'cohort', v_cohort);
  insert into accruals (program_id, invoice_id, accrual_id, member_id, credited_member_id, amount_minor, points, allocated_minor,
                        allocated_micro, cohort, occurred_at, store_id, jurisdiction, rule_version, request_hash, response)
  values (v_program, v_invoice, (p->>'accrualId')::uuid, p->>'memberId', v_member, (p->>'amountMinor')::bigint, v_points, v_alloc,
          (p->>'allocatedMicro')::numeric, v_cohort, v_occurred, p->>'storeId', p->>'jurisdiction', (p->>'ruleVersion')::int,
          p->>'requestHash', v_body);
  insert into idempotency_keys (scope, idem_key, request_hash, status_code, response)
  values (v_program, p->>'idemKey', p->>'requestHash', 201, v_body);
  return jsonb_build_object('status', 201, 'body', v_body, 'replayed', false);
end $$;

-- A batch's first step: create the members it names that do not exist yet, then lock every one
-- of them in key order. Returns the ids it created.
create function ll_lock_batch_members(p_items jsonb) returns text[] language plpgsql as $$
declare v_new text[];
begin
  with wanted as (
    select distinct i->>'programId' as program_id, i->>'memberId' as member_id from jsonb_array_elements(p_items) i
  ), ins as (
    insert into members (program_id, member_id) select program_id, member_id from wanted order by 1, 2
    on conflict do nothing returning member_id
  ) select coalesce(array_agg(member_id), '{}') into v_new from ins;
  perform 1 from members m join (select distinct i->>'programId' as p, i->>'memberId' as mid from jsonb_array_elements(p_items) i) w
    on m.program_id = w.p and m.member_id = w.mid order by m.program_id, m.member_id for update of m;
  return v_new;
end $$;

-- Many accruals in one transaction (group commit). Lock order, the same in every batch so that
-- batches in flight together cannot deadlock: every member row of the batch first (created if
-- new), in key order; then the items in (stripe, member) order, so shared stripe rows are taken in
-- ascending order. Each item runs in its own subtransaction: a rejected item writes nothing and
-- does not disturb the others. A unique violation means a concurrent duplicate committed first:
-- run the item again and it finds that first result. Results come back in the items' order.
create function ll_accrue_batch(p_items jsonb) returns jsonb language plpgsql as $$
declare
  r record; v_res jsonb; v_try int; v_out jsonb[]; v_new text[];
  v_state text; v_msg text; v_detail text; v_hint text;
begin
  v_out := array_fill(null::jsonb, array[jsonb_array_length(p_items)]);
  v_new := ll_lock_batch_members(p_items);

  for r in select value as item, ord from jsonb_array_elements(p_items) with ordinality t(value, ord)
           order by ll_stripe(value->>'memberId'), value->>'memberId', ord loop
    v_res := null;
    for v_try in 1..3 loop
      begin
        v_res := ll_accrue(r.item, r.item->>'memberId' = any(v_new));
        exit;
      exception when others then
        get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text, v_detail = pg_exception_detail, v_hint = pg_exception_hint;
        if v_state = '23505' and v_try < 3 then continue; end if;
        v_res := jsonb_build_object('error', jsonb_build_object('sqlstate', v_state, 'code', v_msg, 'detail', v_detail, 'hint', v_hint));
        exit;
      end;
    end loop;
    v_out[r.ord] := v_res;
  end loop;
  -- A member row made for an item that was then rejected must not stay behind.
  delete from members m where m.member_id = any(v_new) and m.balance = 0
     and not exists (select 1 from ledger_entries e where e.program_id = m.program_id and e.member_id = m.member_id);
  return to_jsonb(v_out);
end $$;

-- The same batch without a subtransaction per item: cheaper (no subtransaction XIDs, which past 64
-- per transaction also slow every other backend's snapshots). Any error aborts the whole batch,
-- which db/ledger.ts then runs again through ll_accrue_batch, where each item stands alone.
create function ll_accrue_batch_fast(p_items jsonb) returns jsonb language plpgsql as $$
declare
  r record; v_out jsonb[]; v_new text[];
begin
  v_out := array_fill(null::jsonb, array[jsonb_array_length(p_items)]);
  v_new := ll_lock_batch_members(p_items);
  for r in select value as item, ord from jsonb_array_elements(p_items) with ordinality t(value, ord)
           order by ll_stripe(value->>'memberId'), value->>'memberId', ord loop
    v_out[r.ord] := ll_accrue(r.item, r.item->>'memberId' = any(v_new));
  end loop;
  return to_jsonb(v_out);
end $$;
