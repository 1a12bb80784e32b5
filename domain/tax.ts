/**
 * How the part of an invoice paid with points is taxed (docs/accounting.md, "Sales tax and VAT on
 * redemptions"). `discount`: the credit lowers the taxable base (US-CA Regulation 1671.1, US-TN;
 * an EU own-store scheme's points: Tesco plc v C&E [2003] EWCA Civ 1367, discount vouchers are
 * outside Directive (EU) 2016/1065). `consideration`: tax is due on the full price, and the output
 * tax on the part paid with points comes out of the released liability (US-MN; an EU third-party
 * scheme's points: Loyalty Management UK / Baxi, C-53/09 and C-55/09).
 */
export const TAX_TREATMENTS = ['discount', 'consideration'] as const;
export type TaxTreatmentKind = (typeof TAX_TREATMENTS)[number];

/** Whose points they are: the seller's own scheme, or a third party's (decides EU VAT). */
export const TAX_SCHEMES = ['own_store', 'third_party'] as const;
export type TaxScheme = (typeof TAX_SCHEMES)[number];
export const DEFAULT_TAX_SCHEME: TaxScheme = 'own_store';

/** A program's tax setting: its scheme, and a treatment per jurisdiction where finance sets one (else the law's). */
export interface ProgramTaxRules {
  scheme?: TaxScheme;
  treatments?: Record<string, TaxTreatmentKind>;
}

/** The question the saga asks the tax service for a jurisdiction under a program's rules. */
export function taxQuestion(
  rules: ProgramTaxRules | undefined,
  jurisdiction: string,
): { scheme: TaxScheme; treatment?: TaxTreatmentKind } {
  const scheme = rules?.scheme ?? DEFAULT_TAX_SCHEME;
  const treatment = rules?.treatments?.[jurisdiction];
  return treatment ? { scheme, treatment } : { scheme };
}
