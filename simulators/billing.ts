import { z } from 'zod';
import { SimError, simService } from './service';

const id = z.string().regex(/^[\x21-\x7e]{1,128}$/);
const money = z.number().int().min(0).max(1e15);

interface Credit {
  creditId: string;
  invoiceId: string;
  description: string;
  amountMinor: number;
  points: number;
  appliedAt: string;
  reversedAt: string | null;
}

interface Invoice {
  invoiceId: string;
  customerId: string;
  currency: string;
  lines: Array<{ description: string; amountMinor: number }>;
  createdAt: string;
}

/**
 * Billing simulator: invoices with lines; loyalty credit lines applied and reversed; the credits
 * applied on a day. Contract: docs/service-contracts.md.
 */
export function billingSimulator(seed = 1) {
  const svc = simService('billing', seed);
  const invoices = new Map<string, Invoice>();
  const credits = new Map<string, Credit>();
  const creditsOf = (invoiceId: string) => [...credits.values()].filter((c) => c.invoiceId === invoiceId);
  const view = (inv: Invoice) => {
    const total = inv.lines.reduce((s, l) => s + l.amountMinor, 0);
    const applied = creditsOf(inv.invoiceId).filter((c) => !c.reversedAt).reduce((s, c) => s + c.amountMinor, 0);
    return { ...inv, totalMinor: total, creditsMinor: applied, amountDueMinor: total - applied, credits: creditsOf(inv.invoiceId) };
  };
  const find = (invoiceId: string) => {
    const inv = invoices.get(invoiceId);
    if (!inv) throw new SimError(404, 'invoice_not_found', `no invoice ${invoiceId}`);
    return inv;
  };

  svc.route('POST', '/invoices', 'create_invoice',
    z.object({ invoiceId: id, customerId: id, currency: z.string().regex(/^[A-Z]{3}$/),
      lines: z.array(z.object({ description: z.string().min(1).max(200), amountMinor: money }).strict()).min(1).max(100) }).strict(),
    (b) => {
      if (invoices.has(b.invoiceId)) throw new SimError(409, 'invoice_exists', `invoice ${b.invoiceId} exists`);
      const inv = { ...b, createdAt: new Date().toISOString() };
      invoices.set(b.invoiceId, inv);
      return view(inv);
    });

  svc.route('GET', '/invoices/:invoiceId', 'get_invoice', z.object({ invoiceId: id }), (q) => view(find(q.invoiceId)));

  svc.route('POST', '/invoices/:invoiceId/credits', 'apply_credit',
    z.object({ invoiceId: id, creditId: id, description: z.string().min(1).max(200), amountMinor: money.min(1), points: z.number().int().min(1) }).strict(),
    (b) => {
      const inv = find(b.invoiceId);
      const existing = credits.get(b.creditId);
      if (existing) throw new SimError(409, 'credit_exists', `credit ${b.creditId} exists`);
      const due = view(inv).amountDueMinor;
      if (b.amountMinor > due) throw new SimError(422, 'credit_exceeds_amount_due', `credit ${b.amountMinor} exceeds the amount due ${due}`);
      const c: Credit = { ...b, appliedAt: new Date().toISOString(), reversedAt: null };
      credits.set(b.creditId, c);
      return { credit: c, invoice: view(inv) };
    });

  svc.route('POST', '/invoices/:invoiceId/credits/:creditId/reverse', 'reverse_credit',
    z.object({ invoiceId: id, creditId: id, reason: z.string().max(200).optional() }).strict(),
    (b) => {
      const c = credits.get(b.creditId);
      if (!c || c.invoiceId !== b.invoiceId) throw new SimError(404, 'credit_not_found', `no credit ${b.creditId} on ${b.invoiceId}`);
      c.reversedAt ??= new Date().toISOString(); // reversing twice is a no-op, not an error
      return { credit: c, invoice: view(find(b.invoiceId)) };
    });

  svc.route('GET', '/credits', 'list_credits', z.object({ date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/) }).strict(),
    (q) => ({ date: q.date, credits: [...credits.values()].filter((c) => c.appliedAt.startsWith(q.date)) }));

  return svc;
}
