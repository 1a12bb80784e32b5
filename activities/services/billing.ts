import { callService, type ServiceClientOptions } from './http';

export interface BillingCredit {
  creditId: string;
  invoiceId: string;
  description: string;
  amountMinor: number;
  points: number;
  appliedAt: string;
  reversedAt: string | null;
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
    createInvoice: (inv: { invoiceId: string; customerId: string; currency: string; lines: Array<{ description: string; amountMinor: number }> }, key: string) =>
      callService<BillingInvoice>(opts, 'create_invoice', 'POST', '/invoices', inv, key),
    getInvoice: (invoiceId: string) =>
      callService<BillingInvoice>(opts, 'get_invoice', 'GET', `/invoices/${encodeURIComponent(invoiceId)}`, undefined, null),
    applyCredit: (invoiceId: string, credit: { creditId: string; description: string; amountMinor: number; points: number }, key: string) =>
      callService<{ credit: BillingCredit; invoice: BillingInvoice }>(opts, 'apply_credit', 'POST', `/invoices/${encodeURIComponent(invoiceId)}/credits`, credit, key),
    reverseCredit: (invoiceId: string, creditId: string, reason: string, key: string) =>
      callService<{ credit: BillingCredit; invoice: BillingInvoice }>(opts, 'reverse_credit', 'POST',
        `/invoices/${encodeURIComponent(invoiceId)}/credits/${encodeURIComponent(creditId)}/reverse`, { reason }, key),
    creditsOn: (date: string) =>
      callService<{ date: string; credits: BillingCredit[] }>(opts, 'list_credits', 'GET', `/credits?date=${date}`, undefined, null),
  };
}
export type BillingClient = ReturnType<typeof billingClient>;
