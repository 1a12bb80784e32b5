import type { Pool } from 'pg';
import type { ProgramTaxRules, TaxTreatmentKind } from '../domain/tax';
import type { TaxTreatment } from '../activities/services/tax';
import { rethrowAsApiError } from './errors';

/**
 * The program's tax setting under the rules the redemption was held with (its rule version), so a
 * rule change after the hold does not change the treatment of a redemption already under way.
 */
export async function redemptionTaxRules(
  pool: Pool,
  programId: string,
  invoiceId: string,
): Promise<ProgramTaxRules | undefined> {
  const { rows } = await pool.query<{ tax: ProgramTaxRules | null }>(
    `select v.rules->'tax' as tax from redemptions r
       join program_rule_versions v on v.program_id = r.program_id
        and v.version = coalesce(r.rule_version, ll_rule_version_at(r.program_id, r.occurred_at))
      where r.program_id = $1 and r.invoice_id = $2`,
    [programId, invoiceId],
  );
  return rows[0]?.tax ?? undefined;
}

/** Stores the tax service's answer on the held redemption (db/functions/ll_record_redemption_tax.sql). */
export async function recordRedemptionTax(
  pool: Pool,
  programId: string,
  invoiceId: string,
  t: TaxTreatment,
): Promise<void> {
  try {
    await pool.query('select ll_record_redemption_tax($1::jsonb)', [JSON.stringify({ ...t, programId, invoiceId })]);
  } catch (e) {
    rethrowAsApiError(e);
  }
}

/** The treatment billing's credit must carry: the one recorded on the redemption, or null (none known). */
export async function recordedTaxTreatment(
  pool: Pool,
  programId: string,
  invoiceId: string,
): Promise<{ jurisdiction: string; treatment: TaxTreatmentKind } | null> {
  const { rows } = await pool.query<{ jurisdiction: string; treatment: TaxTreatmentKind }>(
    'select jurisdiction, treatment from redemption_taxes where program_id = $1 and invoice_id = $2',
    [programId, invoiceId],
  );
  return rows[0] ?? null;
}

/**
 * The tax effect of redemptions in a period by jurisdiction and treatment, for the close report:
 * the redemptions dated in it and their credits still applied (less what chargebacks and lowered
 * invoices took back), and the output tax booked in it out of the released liability (journals of
 * kind redemption_tax, net of what give-backs reversed, whenever the redemption was made), so that
 * credit x rate and the tax agree for the period's own redemptions.
 */
export async function redemptionTaxEffect(
  pool: Pool,
  programId: string,
  start: Date,
  end: Date,
): Promise<
  Array<{
    jurisdiction: string;
    treatment: TaxTreatmentKind;
    redemptions: number;
    creditMinor: number;
    outputTaxMinor: number;
  }>
> {
  const { rows } = await pool.query(
    `with moves as (
       select t.jurisdiction, t.treatment, 1 as redemptions, r.credit_minor - r.credit_reversed_minor as credit,
              0::bigint as output_tax
         from redemption_taxes t join redemptions r using (program_id, invoice_id)
        where t.program_id = $1 and r.status in ('applied', 'reversed') and r.occurred_at >= $2 and r.occurred_at < $3
       union all
       select t.jurisdiction, t.treatment, 0, 0, l.credit_minor - l.debit_minor
         from journal_entries j join journal_lines l using (journal_entry_id)
         join redemption_taxes t on t.program_id = j.program_id and j.reference = 'invoice:' || t.invoice_id || ':tax'
        where j.program_id = $1 and j.kind = 'redemption_tax' and l.account = 'output_tax_payable'
          and j.occurred_at >= $2 and j.occurred_at < $3)
     select jurisdiction, treatment, sum(redemptions)::int as redemptions, sum(credit)::bigint as credit,
            sum(output_tax)::bigint as output_tax
       from moves group by 1, 2 order by 1, 2`,
    [programId, start, end],
  );
  return rows.map((r) => ({
    jurisdiction: r.jurisdiction,
    treatment: r.treatment,
    redemptions: r.redemptions,
    creditMinor: Number(r.credit),
    outputTaxMinor: Number(r.output_tax),
  }));
}

/**
 * The output tax booked in the period out of the revenue of cohorts older than the period (their
 * liability was in the opening balance), net of give-backs: revenue from the opening contract
 * liability (ASC 606-10-50-8(b)) is net of it. The cost part (loyalty_expense) was never revenue.
 */
export async function outputTaxOnOpeningCohorts(
  pool: Pool,
  programId: string,
  start: Date,
  end: Date,
  period: string,
): Promise<string> {
  const { rows } = await pool.query<{ tax: string }>(
    `select coalesce(sum(l.debit_minor - l.credit_minor), 0)::text as tax
       from journal_lines l join journal_entries j using (journal_entry_id)
      where l.account in ('loyalty_revenue', 'revenue') and l.cohort is not null and l.cohort < $4
        and j.program_id = $1 and j.kind = 'redemption_tax' and j.occurred_at >= $2 and j.occurred_at < $3`,
    [programId, start, end, period],
  );
  return rows[0]!.tax;
}
