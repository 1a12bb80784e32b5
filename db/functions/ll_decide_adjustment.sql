-- A decision that applies nothing (rejected, expired). Idempotent; an applied adjustment stays applied.
create or replace function ll_decide_adjustment(p_adjustment uuid, p_status text, p_by text, p_comment text) returns jsonb language plpgsql as $$
declare a manual_adjustments;
begin
  update manual_adjustments set status = p_status, approved_by = case when p_status = 'rejected' then p_by end, decided_at = now(), decision_comment = p_comment
   where adjustment_id = p_adjustment and status = 'pending_approval' returning * into a;
  if not found then select * into a from manual_adjustments where adjustment_id = p_adjustment; end if;
  return jsonb_build_object('status', a.status);
end $$;
