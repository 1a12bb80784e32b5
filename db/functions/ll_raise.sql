-- Business errors are raised with SQLSTATE 'LL400': MESSAGE is the API error code, DETAIL a JSON
-- object, HINT the HTTP status. api/ maps them 1:1 (db/errors.ts).
create or replace function ll_raise(p_code text, p_status int, p_message text, p_details jsonb default '{}')
returns void language plpgsql as $$
begin
  raise exception using errcode = 'LL400', message = p_code, detail = jsonb_build_object('message', p_message, 'details', p_details)::text, hint = p_status::text;
end $$;
