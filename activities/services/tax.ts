import type { TaxScheme, TaxTreatmentKind } from '../../domain/tax';
import { callService, type ServiceClientOptions } from './http';

/** The tax service's answer: the treatment of a points credit and the invoice's tax lines (docs/service-contracts.md). */
export interface TaxTreatment {
  jurisdiction: string;
  currency: string;
  /** discount: the credit lowers the taxable base; consideration: tax is due on the full price */
  treatment: TaxTreatmentKind;
  /** law: the jurisdiction's rule; program: the program's own setting, as the question named it */
  basis: 'law' | 'program';
  scheme: TaxScheme;
  rateMillionths: number;
  taxableBaseMinor: number;
  totalTaxMinor: number;
  /** the output tax on the part paid with points (0 under discount) */
  taxOnCreditMinor: number;
  taxLines: Array<{
    lineId: string;
    amountMinor: number;
    pointsShareMinor: number;
    taxableMinor: number;
    taxMinor: number;
    taxOnPointsMinor: number;
  }>;
}

/** Typed client of the tax service (docs/service-contracts.md). */
export function taxClient(o: Omit<ServiceClientOptions, 'service'>) {
  const opts = { ...o, service: 'tax' };
  return {
    treatment: (
      q: {
        jurisdiction: string;
        currency: string;
        lines: Array<{ lineId: string; amountMinor: number }>;
        pointsCreditMinor: number;
        scheme: TaxScheme;
        treatment?: TaxTreatmentKind;
      },
      key: string,
    ) => callService<TaxTreatment>(opts, 'get_treatment', 'POST', '/treatments', q, key),
  };
}
export type TaxClient = ReturnType<typeof taxClient>;
