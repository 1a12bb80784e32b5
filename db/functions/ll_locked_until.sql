-- The end of a program's last frozen or locked quarter (the close moves it): nothing is dated before it.
create or replace function ll_locked_until(p_program text) returns timestamptz language sql stable as $$
  select locked_until from programs where program_id = p_program
$$;
