import { z } from 'zod';
import { divRound } from '../domain/money';
import { SimError, simService } from './service';

/** Rates in basis points. US: the points credit is a discount (it reduces the taxable base). */
const US_SALES_TAX_BPS: Record<string, number> = {
  'US-CA': 725,
  'US-NY': 400,
  'US-TX': 625,
  'US-WA': 650,
  'US-FL': 600,
};
/** EU: points are a means of payment (a tender); VAT is due on the full price. */
const EU_VAT_BPS: Record<string, number> = { DE: 1900, FR: 2000, NL: 2100, IE: 2300, ES: 2100, IT: 2200 };

const id = z.string().regex(/^[\x21-\x7e]{1,128}$/);

/**
 * Tax simulator: how a loyalty points credit is treated in a jurisdiction, and the tax lines that
 * follow. Contract: docs/service-contracts.md.
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
      })
      .strict(),
    (b) => {
      const total = b.lines.reduce((s, l) => s + l.amountMinor, 0);
      if (b.pointsCreditMinor > total)
        throw new SimError(422, 'credit_exceeds_invoice', 'the points credit exceeds the invoice');
      const us = US_SALES_TAX_BPS[b.jurisdiction];
      const eu = EU_VAT_BPS[b.jurisdiction];
      if (us === undefined && eu === undefined)
        throw new SimError(422, 'unsupported_jurisdiction', `no tax rule for ${b.jurisdiction}`);
      const treatment = us !== undefined ? 'reduces_taxable_base' : 'tender';
      const rateBps = BigInt(us ?? eu!);
      // The credit is spread over the lines pro rata, cumulatively, so the shares add up exactly.
      let before = 0n;
      let cumulative = 0n;
      const taxLines = b.lines.map((l) => {
        cumulative += BigInt(l.amountMinor);
        const share =
          treatment === 'tender' || total === 0
            ? 0n
            : divRound(BigInt(b.pointsCreditMinor) * cumulative, BigInt(total)) - before;
        before += share;
        const taxable = BigInt(l.amountMinor) - share;
        return {
          lineId: l.lineId,
          taxableMinor: Number(taxable),
          taxMinor: Number(divRound(taxable * rateBps, 10_000n)),
        };
      });
      return {
        jurisdiction: b.jurisdiction,
        currency: b.currency,
        treatment,
        rateBps: Number(rateBps),
        taxableBaseMinor: taxLines.reduce((s, l) => s + l.taxableMinor, 0),
        totalTaxMinor: taxLines.reduce((s, l) => s + l.taxMinor, 0),
        taxLines,
      };
    },
  );
  return svc;
}
