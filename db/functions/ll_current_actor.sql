-- Who is acting, when a write does not carry it itself (the CLI sets ll.actor).
create or replace function ll_current_actor() returns text language sql stable as $$
  select coalesce(nullif(current_setting('ll.actor', true), ''), 'db:' || current_user)
$$;
