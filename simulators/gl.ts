import { z } from 'zod';
import { SimError, simService } from './service';

const id = z.string().regex(/^[\x21-\x7e]{1,128}$/);
const line = z
  .object({
    account: z.string().min(1).max(64),
    debitMinor: z.number().int().min(0).max(1e15),
    creditMinor: z.number().int().min(0).max(1e15),
    cohort: z.string().max(16).optional(),
  })
  .strict()
  .refine((l) => (l.debitMinor === 0) !== (l.creditMinor === 0), 'a line is a debit or a credit');

interface Entry {
  entryId: string;
  date: string;
  description: string;
  lines: Array<z.infer<typeof line>>;
  reverses: string | null;
  reversedBy: string | null;
  postedAt: string;
}

/**
 * General-ledger simulator: balanced journal entries (an unbalanced one is refused), reversals
 * as new entries, entries by date and account. Contract: docs/service-contracts.md.
 */
export function glSimulator(seed = 2) {
  const svc = simService('gl', seed);
  const entries = new Map<string, Entry>();

  svc.route(
    'POST',
    '/journal-entries',
    'post_entry',
    z
      .object({
        entryId: id,
        date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
        description: z.string().min(1).max(200),
        lines: z.array(line).min(2).max(50),
      })
      .strict(),
    (b) => {
      const debit = b.lines.reduce((s, l) => s + l.debitMinor, 0);
      const credit = b.lines.reduce((s, l) => s + l.creditMinor, 0);
      if (debit !== credit) throw new SimError(422, 'unbalanced_entry', `debits ${debit} and credits ${credit} differ`);
      if (entries.has(b.entryId)) throw new SimError(409, 'entry_exists', `entry ${b.entryId} exists`);
      const e: Entry = { ...b, reverses: null, reversedBy: null, postedAt: new Date().toISOString() };
      entries.set(b.entryId, e);
      return e;
    },
  );

  svc.route(
    'POST',
    '/journal-entries/:entryId/reverse',
    'reverse_entry',
    z.object({ entryId: id, reversalId: id, date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/) }).strict(),
    (b) => {
      const e = entries.get(b.entryId);
      if (!e) throw new SimError(404, 'entry_not_found', `no entry ${b.entryId}`);
      if (e.reversedBy) return entries.get(e.reversedBy);
      const r: Entry = {
        entryId: b.reversalId,
        date: b.date,
        description: `reversal of ${e.entryId}`,
        reverses: e.entryId,
        reversedBy: null,
        lines: e.lines.map((l) => ({ ...l, debitMinor: l.creditMinor, creditMinor: l.debitMinor })),
        postedAt: new Date().toISOString(),
      };
      entries.set(r.entryId, r);
      e.reversedBy = r.entryId;
      return r;
    },
  );

  svc.route('GET', '/journal-entries/:entryId', 'get_entry', z.object({ entryId: id }).strict(), (q) => {
    const e = entries.get(q.entryId);
    if (!e) throw new SimError(404, 'entry_not_found', `no entry ${q.entryId}`);
    return e;
  });

  svc.route(
    'GET',
    '/journal-entries',
    'list_entries',
    z.object({ date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/), account: z.string().max(64).optional() }).strict(),
    (q) => ({
      date: q.date,
      entries: [...entries.values()].filter(
        (e) => e.date === q.date && (!q.account || e.lines.some((l) => l.account === q.account)),
      ),
    }),
  );

  // Balances per account over the entries dated from..to (inclusive; no `from`: from the first),
  // optionally only those whose id starts with `entryPrefix` (a source's entries, e.g. one
  // program's `loyalty:<programId>:`), reversals included: what a trial balance of the GL shows.
  const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
  svc.route(
    'GET',
    '/balances',
    'get_balances',
    z
      .object({
        to: day,
        from: day.optional(),
        entryPrefix: z
          .string()
          .regex(/^[\x21-\x7e]{1,128}$/)
          .optional(),
      })
      .strict(),
    (q) => {
      const sums = new Map<string, { debitMinor: number; creditMinor: number }>();
      for (const e of entries.values()) {
        if (e.date > q.to || (q.from && e.date < q.from)) continue;
        if (q.entryPrefix && !e.entryId.startsWith(q.entryPrefix)) continue;
        for (const l of e.lines) {
          const s = sums.get(l.account) ?? { debitMinor: 0, creditMinor: 0 };
          s.debitMinor += l.debitMinor;
          s.creditMinor += l.creditMinor;
          sums.set(l.account, s);
        }
      }
      return {
        from: q.from ?? null,
        to: q.to,
        entryPrefix: q.entryPrefix ?? null,
        balances: [...sums.entries()]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([account, s]) => ({ account, ...s, balanceMinor: s.debitMinor - s.creditMinor })),
      };
    },
  );

  return svc;
}
