-- A decision request (migration 011) is evidence of who asked: it is never changed or deleted.
create or replace function ll_decision_request_final() returns trigger language plpgsql as $$
begin
  raise exception 'append_only: % on % is not allowed', tg_op, tg_table_name using errcode = 'LL900';
end $$;

create or replace trigger decision_requests_append_only before update or delete on decision_requests for each row execute function ll_decision_request_final();
create or replace trigger decision_requests_no_truncate before truncate on decision_requests for each statement execute function ll_decision_request_final();
