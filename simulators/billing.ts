import { z } from 'zod';
import { SimError, simService } from './service';

const id = z.string().regex(/^[\x21-\x7e]{1,128}$/);
const money = z.number().int().min(0).max(1e15);

interface Credit {
  creditId: string;
  invoiceId: string;
  description: string;
  /** what is applied now: the amount first applied less its reductions */
  amountMinor: number;
  points: number;
  /** who applied it (the loyalty ledger says `loyalty:<programId>`) */
  source: string | null;
  /** how the credit is taxed, as its sender said: a discount, or consideration (a payment) */
  taxTreatment: { jurisdiction: string; treatment: 'discount' | 'consideration' } | null;
  appliedAt: string;
  reversedAt: string | null;
  reductions: Array<{ reductionId: string; amountMinor: number; points: number; reason: string | null; at: string }>;
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
    const applied = creditsOf(inv.invoiceId)
      .filter((c) => !c.reversedAt)
      .reduce((s, c) => s + c.amountMinor, 0);
    return {
      ...inv,
      totalMinor: total,
      creditsMinor: applied,
      amountDueMinor: total - applied,
      credits: creditsOf(inv.invoiceId),
    };
  };
  const find = (invoiceId: string) => {
    const inv = invoices.get(invoiceId);
    if (!inv) throw new SimError(404, 'invoice_not_found', `no invoice ${invoiceId}`);
    return inv;
  };

  svc.route(
    'POST',
    '/invoices',
    'create_invoice',
    z
      .object({
        invoiceId: id,
        customerId: id,
        currency: z.string().regex(/^[A-Z]{3}$/),
        lines: z
          .array(z.object({ description: z.string().min(1).max(200), amountMinor: money }).strict())
          .min(1)
          .max(100),
      })
      .strict(),
    (b) => {
      if (invoices.has(b.invoiceId)) throw new SimError(409, 'invoice_exists', `invoice ${b.invoiceId} exists`);
      const inv = { ...b, createdAt: new Date().toISOString() };
      invoices.set(b.invoiceId, inv);
      return view(inv);
    },
  );

  svc.route('GET', '/invoices/:invoiceId', 'get_invoice', z.object({ invoiceId: id }), (q) => view(find(q.invoiceId)));

  svc.route(
    'POST',
    '/invoices/:invoiceId/credits',
    'apply_credit',
    z
      .object({
        invoiceId: id,
        creditId: id,
        description: z.string().min(1).max(200),
        amountMinor: money.min(1),
        points: z.number().int().min(1),
        source: id.optional(),
        taxTreatment: z
          .object({
            jurisdiction: z.string().regex(/^[A-Z]{2}(-[A-Z0-9]{1,3})?$/),
            treatment: z.enum(['discount', 'consideration']),
          })
          .strict()
          .optional(),
      })
      .strict(),
    (b) => {
      const inv = find(b.invoiceId);
      const existing = credits.get(b.creditId);
      if (existing) throw new SimError(409, 'credit_exists', `credit ${b.creditId} exists`);
      const due = view(inv).amountDueMinor;
      if (b.amountMinor > due)
        throw new SimError(422, 'credit_exceeds_amount_due', `credit ${b.amountMinor} exceeds the amount due ${due}`);
      const c: Credit = {
        ...b,
        source: b.source ?? null,
        taxTreatment: b.taxTreatment ?? null,
        appliedAt: new Date().toISOString(),
        reversedAt: null,
        reductions: [],
      };
      credits.set(b.creditId, c);
      return { credit: c, invoice: view(inv) };
    },
  );

  svc.route(
    'POST',
    '/invoices/:invoiceId/credits/:creditId/reverse',
    'reverse_credit',
    z.object({ invoiceId: id, creditId: id, reason: z.string().max(200).optional() }).strict(),
    (b) => {
      const c = credits.get(b.creditId);
      if (!c || c.invoiceId !== b.invoiceId)
        throw new SimError(404, 'credit_not_found', `no credit ${b.creditId} on ${b.invoiceId}`);
      c.reversedAt ??= new Date().toISOString(); // reversing twice is a no-op, not an error
      return { credit: c, invoice: view(find(b.invoiceId)) };
    },
  );

  // Part of a credit taken back (the invoice was lowered): once per reductionId, never below zero.
  svc.route(
    'POST',
    '/invoices/:invoiceId/credits/:creditId/reduce',
    'reduce_credit',
    z
      .object({
        invoiceId: id,
        creditId: id,
        reductionId: id,
        amountMinor: money.min(1),
        points: z.number().int().min(0),
        reason: z.string().max(200).optional(),
      })
      .strict(),
    (b) => {
      const c = credits.get(b.creditId);
      if (!c || c.invoiceId !== b.invoiceId)
        throw new SimError(404, 'credit_not_found', `no credit ${b.creditId} on ${b.invoiceId}`);
      if (!c.reductions.some((r) => r.reductionId === b.reductionId)) {
        if (b.amountMinor > c.amountMinor)
          throw new SimError(
            422,
            'reduction_exceeds_credit',
            `reduction ${b.amountMinor} exceeds the credit ${c.amountMinor}`,
          );
        c.reductions.push({
          reductionId: b.reductionId,
          amountMinor: b.amountMinor,
          points: b.points,
          reason: b.reason ?? null,
          at: new Date().toISOString(),
        });
        c.amountMinor -= b.amountMinor;
        c.points -= Math.min(b.points, c.points);
      }
      return { credit: c, invoice: view(find(b.invoiceId)) };
    },
  );

  // The invoice's lines change (a downgrade, a partial refund): billing then tells the ledger.
  svc.route(
    'POST',
    '/invoices/:invoiceId/adjust',
    'adjust_invoice',
    z
      .object({
        invoiceId: id,
        lines: z
          .array(z.object({ description: z.string().min(1).max(200), amountMinor: money }).strict())
          .min(1)
          .max(100),
      })
      .strict(),
    (b) => {
      const inv = find(b.invoiceId);
      inv.lines = b.lines;
      return view(inv);
    },
  );

  // Credits applied, reduced or reversed on a day (UTC), optionally of one source.
  svc.route(
    'GET',
    '/credits',
    'list_credits',
    z.object({ date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/), source: id.optional() }).strict(),
    (q) => ({
      date: q.date,
      credits: [...credits.values()].filter(
        (c) =>
          (!q.source || c.source === q.source) &&
          (c.appliedAt.startsWith(q.date) ||
            c.reversedAt?.startsWith(q.date) ||
            c.reductions.some((r) => r.at.startsWith(q.date))),
      ),
    }),
  );

  return svc;
}
