import { callService, type ServiceClientOptions } from './http';

export interface TaxTreatment {
  jurisdiction: string;
  currency: string;
  /** reduces_taxable_base: the credit is a discount; tender: the credit is a means of payment */
  treatment: 'reduces_taxable_base' | 'tender';
  rateBps: number;
  taxableBaseMinor: number;
  totalTaxMinor: number;
  taxLines: Array<{ lineId: string; taxableMinor: number; taxMinor: number }>;
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
      },
      key: string,
    ) => callService<TaxTreatment>(opts, 'get_treatment', 'POST', '/treatments', q, key),
  };
}
export type TaxClient = ReturnType<typeof taxClient>;
