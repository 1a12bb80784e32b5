-- Points came back to a member (a redemption given back: lost chargeback, lowered invoice; a hold
-- released; points added by hand, ll_apply_adjustment) who has no deadline: it had already passed
-- and been expired (expires_at null), or the member never purchased (goodwill to a member with no
-- purchase on record). Without a deadline they would never expire, and a rolling program gives every
-- point one. The deadline re-arms by the program's rule: the member's last purchase plus the window
-- in force at p_at for their jurisdiction, but never before p_at (the points were not there
-- earlier). That deadline has normally passed, so it is p_at and the points expire at once, dated
-- then, through the member workflow, which a wake-up makes read it (see docs/member-lifecycle.md).
-- A member with no purchase: the window runs from p_at, as it would from a purchase made then
-- (nothing else starts it, and expiring a gift at once would make it no gift). No rule window
-- (policy none, a jurisdiction without expiry) or a deadline still set: nothing changes. The
-- caller holds the member's row lock.
create or replace function ll_rearm_returned_points(p_program text, p_member text, p_at timestamptz) returns void language plpgsql as $$
declare m members; v_window interval; v_deadline timestamptz;
begin
  select * into m from members where program_id = p_program and member_id = p_member;
  if not found or m.status <> 'active' or m.expires_at is not null or m.balance - m.held <= 0 then
    return;
  end if;
  select ll_expiry_window(v.rules->'expiry', m.jurisdiction) into v_window from program_rule_versions v
   where v.program_id = p_program and v.version = ll_rule_version_at(p_program, p_at);
  if v_window is null then return; end if;
  v_deadline := greatest(p_at, ll_add_duration(coalesce(m.last_purchase_at, p_at), v_window));
  update members set expires_at = v_deadline where program_id = p_program and member_id = p_member;
  perform ll_request_wake(p_program, p_member);
end $$;
