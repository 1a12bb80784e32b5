import { z } from 'zod';
import { divRound } from '../domain/money';
import { TAX_SCHEMES, TAX_TREATMENTS, type TaxScheme, type TaxTreatmentKind } from '../domain/tax';
import { SimError, simService } from './service';

/**
 * US sales tax: the state rate in millionths, and how a store's own points credit is taxed there.
 * California (Regulation 1671.1) and Tennessee treat store points as a discount: the credit lowers
 * the taxable base. Minnesota taxes the full price: the part paid with points is consideration.
 */
const US_SALES_TAX: Record<string, { rateMillionths: number; points: TaxTreatmentKind }> = {
  'US-CA': { rateMillionths: 72_500, points: 'discount' },
  'US-TN': { rateMillionths: 70_000, points: 'discount' },
  'US-MN': { rateMillionths: 68_750, points: 'consideration' },
  'US-NY': { rateMillionths: 40_000, points: 'discount' },
  'US-TX': { rateMillionths: 62_500, points: 'discount' },
  'US-WA': { rateMillionths: 65_000, points: 'discount' },
  'US-FL': { rateMillionths: 60_000, points: 'discount' },
};
/**
 * EU VAT rates in millionths. An own-store scheme's points are a discount (Tesco plc v C&E [2003]
 * EWCA Civ 1367; discount vouchers are outside Directive (EU) 2016/1065); a third-party scheme's
 * points are consideration for the supply (Loyalty Management UK / Baxi, C-53/09 and C-55/09).
 */
const EU_VAT: Record<string, number> = {
  DE: 190_000,
  FR: 200_000,
  NL: 210_000,
  IE: 230_000,
  ES: 210_000,
  IT: 220_000,
};

const id = z.string().regex(/^[\x21-\x7e]{1,128}$/);

/** The law's treatment of a points credit in a jurisdiction, or null: no rule for it. */
export function lawfulTreatment(
  jurisdiction: string,
  scheme: TaxScheme,
): { rateMillionths: number; treatment: TaxTreatmentKind } | null {
  const us = US_SALES_TAX[jurisdiction];
  if (us) return { rateMillionths: us.rateMillionths, treatment: us.points };
  const eu = EU_VAT[jurisdiction];
  if (eu !== undefined) return { rateMillionths: eu, treatment: scheme === 'own_store' ? 'discount' : 'consideration' };
  return null;
}

/**
 * Tax simulator: how a loyalty points credit is treated in a jurisdiction, and the tax lines that
 * follow. The caller names its scheme and may set the treatment (a program's own setting); else
 * the law's applies. Contract: docs/service-contracts.md.
 */
export function taxSimulator(seed = 3) {
  const svc = simService('tax', seed);
  svc.route(
    'POST',
    '/treatments',
    'get_treatment',
    z
      .object({
        jurisdiction: z.string().regex(/^[A-Z]{2}(-[A-Z0-9]{1,3})?$/),
        currency: z.string().regex(/^[A-Z]{3}$/),
        lines: z
          .array(z.object({ lineId: id, amountMinor: z.number().int().min(0).max(1e15) }).strict())
          .min(1)
          .max(100),
        pointsCreditMinor: z.number().int().min(0).max(1e15),
        scheme: z.enum(TAX_SCHEMES),
        treatment: z.enum(TAX_TREATMENTS).optional(),
      })
      .strict(),
    (b) => {
      const total = b.lines.reduce((s, l) => s + l.amountMinor, 0);
      if (b.pointsCreditMinor > total)
        throw new SimError(422, 'credit_exceeds_invoice', 'the points credit exceeds the invoice');
      const law = lawfulTreatment(b.jurisdiction, b.scheme);
      if (!law) throw new SimError(422, 'unsupported_jurisdiction', `no tax rule for ${b.jurisdiction}`);
      const treatment = b.treatment ?? law.treatment;
      const rate = BigInt(law.rateMillionths);
      const taxOf = (minor: bigint) => divRound(minor * rate, 1_000_000n);
      // The credit is spread over the lines pro rata, cumulatively, so the shares add up exactly.
      let before = 0n;
      let cumulative = 0n;
      const taxLines = b.lines.map((l) => {
        cumulative += BigInt(l.amountMinor);
        const share = total === 0 ? 0n : divRound(BigInt(b.pointsCreditMinor) * cumulative, BigInt(total)) - before;
        before += share;
        const taxable = treatment === 'discount' ? BigInt(l.amountMinor) - share : BigInt(l.amountMinor);
        return {
          lineId: l.lineId,
          amountMinor: l.amountMinor,
          pointsShareMinor: Number(share),
          taxableMinor: Number(taxable),
          taxMinor: Number(taxOf(taxable)),
          // the output tax on the line's part paid with points: due only where the points are consideration
          taxOnPointsMinor: treatment === 'consideration' ? Number(taxOf(share)) : 0,
        };
      });
      return {
        jurisdiction: b.jurisdiction,
        currency: b.currency,
        treatment,
        basis: b.treatment ? 'program' : 'law',
        scheme: b.scheme,
        rateMillionths: law.rateMillionths,
        taxableBaseMinor: taxLines.reduce((s, l) => s + l.taxableMinor, 0),
        totalTaxMinor: taxLines.reduce((s, l) => s + l.taxMinor, 0),
        taxOnCreditMinor: taxLines.reduce((s, l) => s + l.taxOnPointsMinor, 0),
        taxLines,
      };
    },
  );
  return svc;
}
