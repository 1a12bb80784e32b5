-- What give-backs (a lost chargeback, an invoice lowered) took back of a redemption's output tax,
-- kept beside the tax recorded on the credit so that GET …/redemptions/{invoiceId} answers the tax
-- still due (taxOnCreditMinor − taxReversedMinor) without reading the journal; the journal's
-- redemption_tax entries are the record (db/functions/ll_post_redemption_tax.sql keeps both).
alter table redemption_taxes add column tax_reversed_minor bigint not null default 0;
alter table redemption_taxes add constraint redemption_taxes_tax_reversed_check
  check (tax_reversed_minor between 0 and tax_on_credit_minor);

-- The part of the output tax booked as a cost (loyalty_expense) rather than out of revenue: what the
-- redemption's release did not cover (points redeemed after their cohort had recognised all it
-- carried, or a tax above the consideration allocated to the points). Revenue is never made
-- negative by tax (ll_post_redemption_tax); give-backs take the cost back in proportion.
alter table redemption_taxes add column tax_expensed_minor bigint not null default 0;
alter table redemption_taxes add constraint redemption_taxes_tax_expensed_check
  check (tax_expensed_minor between 0 and tax_on_credit_minor);
