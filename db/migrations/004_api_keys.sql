-- API keys: only a SHA-256 of the secret is stored. A principal holds roles.
create table api_keys (
  key_id       text primary key,
  key_hash     text not null unique check (key_hash ~ '^[0-9a-f]{64}$'),
  principal    text not null check (length(principal) between 1 and 128),
  roles        text[] not null check (roles <@ array['billing', 'finance', 'controller', 'legal', 'program_owner', 'support', 'admin']),
  created_at   timestamptz not null default now(),
  revoked_at   timestamptz,
  last_used_at timestamptz
);
