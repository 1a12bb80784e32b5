-- The part of a ledger or journal key that names an invoice's adjustment: `<invoice>:<adjustment>`,
-- or `<length of invoice>:<invoice>:<adjustment>` when either id holds a colon, so that no two
-- (invoice, adjustment) pairs share a key. Mirrors domain/ledger-keys.ts invoiceAdjustmentKey (ids
-- are printable ASCII, so length() counts what JavaScript's length counts).
create or replace function ll_adjustment_key(p_invoice text, p_adjustment text) returns text language sql immutable as $$
  select case when position(':' in p_invoice) > 0 or position(':' in p_adjustment) > 0
              then length(p_invoice)::text || ':' || p_invoice || ':' || p_adjustment
              else p_invoice || ':' || p_adjustment end
$$;
