import type { TaxTreatmentKind } from '../../domain/tax';
import { callService, type ServiceClientOptions } from './http';

/** The tax treatment a loyalty credit carries to billing. */
export interface CreditTaxTreatment {
  jurisdiction: string;
  treatment: TaxTreatmentKind;
}

export interface BillingCredit {
  creditId: string;
  invoiceId: string;
  description: string;
  amountMinor: number;
  points: number;
  source: string | null;
  /**
   * How the credit is taxed, as the ledger sent it: `discount` lowers the taxable base,
   * `consideration` is a payment with tax due on the full price (null: no treatment known)
   */
  taxTreatment: CreditTaxTreatment | null;
  appliedAt: string;
  reversedAt: string | null;
  reductions: Array<{ reductionId: string; amountMinor: number; points: number; reason: string | null; at: string }>;
}

export interface BillingInvoice {
  invoiceId: string;
  customerId: string;
  currency: string;
  lines: Array<{ description: string; amountMinor: number }>;
  totalMinor: number;
  creditsMinor: number;
  amountDueMinor: number;
  credits: BillingCredit[];
}

/** Typed client of the billing service (docs/service-contracts.md). */
export function billingClient(o: Omit<ServiceClientOptions, 'service'>) {
  const opts = { ...o, service: 'billing' };
  return {
    createInvoice: (
      inv: {
        invoiceId: string;
        customerId: string;
        currency: string;
        lines: Array<{ description: string; amountMinor: number }>;
      },
      key: string,
    ) => callService<BillingInvoice>(opts, 'create_invoice', 'POST', '/invoices', inv, key),
    getInvoice: (invoiceId: string) =>
      callService<BillingInvoice>(
        opts,
        'get_invoice',
        'GET',
        `/invoices/${encodeURIComponent(invoiceId)}`,
        undefined,
        null,
      ),
    applyCredit: (
      invoiceId: string,
      credit: {
        creditId: string;
        description: string;
        amountMinor: number;
        points: number;
        source?: string;
        taxTreatment?: CreditTaxTreatment;
      },
      key: string,
    ) =>
      callService<{ credit: BillingCredit; invoice: BillingInvoice }>(
        opts,
        'apply_credit',
        'POST',
        `/invoices/${encodeURIComponent(invoiceId)}/credits`,
        credit,
        key,
      ),
    reverseCredit: (invoiceId: string, creditId: string, reason: string, key: string) =>
      callService<{ credit: BillingCredit; invoice: BillingInvoice }>(
        opts,
        'reverse_credit',
        'POST',
        `/invoices/${encodeURIComponent(invoiceId)}/credits/${encodeURIComponent(creditId)}/reverse`,
        { reason },
        key,
      ),
    reduceCredit: (
      invoiceId: string,
      creditId: string,
      reduction: { reductionId: string; amountMinor: number; points: number; reason?: string },
      key: string,
    ) =>
      callService<{ credit: BillingCredit; invoice: BillingInvoice }>(
        opts,
        'reduce_credit',
        'POST',
        `/invoices/${encodeURIComponent(invoiceId)}/credits/${encodeURIComponent(creditId)}/reduce`,
        reduction,
        key,
      ),
    adjustInvoice: (invoiceId: string, lines: Array<{ description: string; amountMinor: number }>, key: string) =>
      callService<BillingInvoice>(
        opts,
        'adjust_invoice',
        'POST',
        `/invoices/${encodeURIComponent(invoiceId)}/adjust`,
        { lines },
        key,
      ),
    /** credits applied, reduced or reversed on a day (UTC), of one source if given */
    creditsOn: (date: string, source?: string) =>
      callService<{ date: string; credits: BillingCredit[] }>(
        opts,
        'list_credits',
        'GET',
        `/credits?date=${date}${source ? `&source=${encodeURIComponent(source)}` : ''}`,
        undefined,
        null,
      ),
  };
}
export type BillingClient = ReturnType<typeof billingClient>;
