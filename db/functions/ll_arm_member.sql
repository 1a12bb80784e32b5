-- The member workflow arms its timer: records what it sleeps until, under the row lock, so an
-- accrual knows whether it must wake the workflow (see docs/member-lifecycle.md).
create or replace function ll_arm_member(p_program text, p_member text) returns jsonb language plpgsql as $$
declare m members;
begin
  update members set armed_deadline = case when status = 'active' then expires_at end
   where program_id = p_program and member_id = p_member returning * into m;
  if not found then return jsonb_build_object('status', 'unknown'); end if;
  return jsonb_build_object('status', m.status, 'mergedInto', m.merged_into, 'expiresAt', ll_ts(m.expires_at), 'balance', m.balance);
end $$;
