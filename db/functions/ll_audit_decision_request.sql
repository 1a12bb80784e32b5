-- Each decision request (migration 011: an approval, a rejection or a withdrawal asked for through
-- the API) goes into the audit chain in the transaction that writes it (issue 14, item 2): who asked,
-- with which key, for what. `loyalty verify` requires the row (db/verify.ts).
create or replace function ll_audit_decision_request() returns trigger language plpgsql as $$
begin
  perform ll_audit(16::smallint, new.principal, 'decision_requested', new.program_id, null, 'decision_request:' || new.request_id,
    null, jsonb_build_object('kind', new.kind, 'subject', new.subject, 'workflowId', new.workflow_id, 'keyId', new.key_id,
      'decision', new.decision, 'comment', new.comment), null);
  return null;
end $$;

create or replace trigger decision_requests_audit after insert on decision_requests for each row execute function ll_audit_decision_request();
