-- The tax treatment of the part of an invoice paid with points, as the redemption saga got it
-- (activities/redemption.ts getTaxTreatment): stored on the redemption, returned with it, sent to
-- billing with the credit, and, where output tax is due on that part (`consideration`), booked out
-- of the released liability: revenue net of tax (ASC 606-10-32-2A; IFRS 15.47; docs/accounting.md).
create table redemption_taxes (
  program_id          text not null,
  invoice_id          text not null,
  jurisdiction        text not null check (jurisdiction ~ '^[A-Z]{2}(-[A-Z0-9]{1,3})?$'),
  currency            char(3) not null check (currency ~ '^[A-Z]{3}$'),
  -- discount: the credit lowers the taxable base; consideration: tax is due on the full price
  treatment           text not null check (treatment in ('discount', 'consideration')),
  -- who set it: the tax service by the law of the jurisdiction, or the program's own setting
  basis               text not null check (basis in ('law', 'program')),
  -- the program's scheme the question named (own-store points or a third party's)
  scheme              text not null check (scheme in ('own_store', 'third_party')),
  rate_millionths     bigint not null check (rate_millionths between 0 and 1000000),
  taxable_base_minor  bigint not null check (taxable_base_minor >= 0),
  total_tax_minor     bigint not null check (total_tax_minor >= 0),
  -- the output tax due on the part paid with points (0 under `discount`)
  tax_on_credit_minor bigint not null check (tax_on_credit_minor >= 0),
  tax_lines           jsonb not null check (jsonb_typeof(tax_lines) = 'array'),
  recorded_at         timestamptz not null default now(),
  primary key (program_id, invoice_id),
  foreign key (program_id, invoice_id) references redemptions,
  check (treatment = 'consideration' or tax_on_credit_minor = 0)
);

-- The output tax a `consideration` redemption books (db/functions/ll_post_redemption_tax.sql).
alter table journal_lines drop constraint journal_lines_account_check;
alter table journal_lines add constraint journal_lines_account_check
  check (account in ('revenue', 'loyalty_contract_liability', 'loyalty_revenue', 'breakage_revenue', 'loyalty_expense',
                     'loyalty_provision', 'output_tax_payable'));
