-- A principal is never deleted: its id is the name on every record it made and what segregation of
-- duties compares, so a new principal of the same id would inherit them. Disable it instead.
create or replace function ll_principal_kept() returns trigger language plpgsql as $$
begin
  raise exception 'append_only: % on principals is not allowed (disable the principal instead)', tg_op using errcode = 'LL900';
end $$;

create or replace trigger principals_no_delete before delete or truncate on principals for each statement execute function ll_principal_kept();
