-- Records the tax treatment the saga got for a held redemption (activities/redemption.ts
-- getTaxTreatment). A step run again may ask again and get another answer (the member's
-- jurisdiction changed meanwhile): the latest answer stands until the credit is sent to billing,
-- which carries the treatment; from then on it is what billing holds and never changes.
-- p: {programId, invoiceId, jurisdiction, currency, treatment, basis, scheme, rateMillionths,
-- taxableBaseMinor, totalTaxMinor, taxOnCreditMinor, taxLines}. Returns the redemption's view.
create or replace function ll_record_redemption_tax(p jsonb) returns jsonb language plpgsql as $$
declare r redemptions;
begin
  select * into r from redemptions where program_id = p->>'programId' and invoice_id = p->>'invoiceId' for update;
  if not found then
    perform ll_raise('not_found', 404, 'no redemption for this invoice', jsonb_build_object('invoiceId', p->>'invoiceId'));
  end if;
  if (p->>'taxOnCreditMinor')::bigint > r.credit_minor then
    perform ll_raise('tax_exceeds_credit', 422, 'the tax on the points credit exceeds the credit',
                     jsonb_build_object('invoiceId', r.invoice_id, 'taxOnCreditMinor', (p->>'taxOnCreditMinor')::bigint));
  end if;
  if r.status = 'held' and r.credit_requested_at is null then
    insert into redemption_taxes (program_id, invoice_id, jurisdiction, currency, treatment, basis, scheme, rate_millionths,
                                  taxable_base_minor, total_tax_minor, tax_on_credit_minor, tax_lines)
    values (r.program_id, r.invoice_id, p->>'jurisdiction', p->>'currency', p->>'treatment', p->>'basis', p->>'scheme',
            (p->>'rateMillionths')::bigint, (p->>'taxableBaseMinor')::bigint, (p->>'totalTaxMinor')::bigint,
            (p->>'taxOnCreditMinor')::bigint, p->'taxLines')
    on conflict (program_id, invoice_id) do update
      set jurisdiction = excluded.jurisdiction, currency = excluded.currency, treatment = excluded.treatment,
          basis = excluded.basis, scheme = excluded.scheme, rate_millionths = excluded.rate_millionths,
          taxable_base_minor = excluded.taxable_base_minor, total_tax_minor = excluded.total_tax_minor,
          tax_on_credit_minor = excluded.tax_on_credit_minor, tax_lines = excluded.tax_lines, recorded_at = now();
  end if;
  return ll_redemption_view(r);
end $$;
