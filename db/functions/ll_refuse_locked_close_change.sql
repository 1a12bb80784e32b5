-- A locked close never changes.
create or replace function ll_refuse_locked_close_change() returns trigger language plpgsql as $$
begin
  if old.status = 'locked' then
    raise exception 'append_only: the close of % % is locked', old.program_id, old.period using errcode = 'LL900';
  end if;
  return coalesce(new, old);
end $$;

create or replace trigger closes_locked_never_change before update or delete on closes for each row execute function ll_refuse_locked_close_change();
