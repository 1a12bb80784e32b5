import { callService, type ServiceClientOptions } from './http';

export interface GlLine {
  account: string;
  debitMinor: number;
  creditMinor: number;
  cohort?: string;
}

export interface GlEntry {
  entryId: string;
  date: string;
  description: string;
  lines: GlLine[];
  reverses: string | null;
  reversedBy: string | null;
  postedAt: string;
}

/** Typed client of the general ledger (docs/service-contracts.md). */
export function glClient(o: Omit<ServiceClientOptions, 'service'>) {
  const opts = { ...o, service: 'gl' };
  return {
    postEntry: (entry: { entryId: string; date: string; description: string; lines: GlLine[] }, key: string) =>
      callService<GlEntry>(opts, 'post_entry', 'POST', '/journal-entries', entry, key),
    reverseEntry: (entryId: string, reversalId: string, date: string, key: string) =>
      callService<GlEntry>(
        opts,
        'reverse_entry',
        'POST',
        `/journal-entries/${encodeURIComponent(entryId)}/reverse`,
        { reversalId, date },
        key,
      ),
    getEntry: (entryId: string) =>
      callService<GlEntry>(
        opts,
        'get_entry',
        'GET',
        `/journal-entries/${encodeURIComponent(entryId)}`,
        undefined,
        null,
      ),
    entriesOn: (date: string, account?: string) =>
      callService<{ date: string; entries: GlEntry[] }>(
        opts,
        'list_entries',
        'GET',
        `/journal-entries?date=${date}${account ? `&account=${encodeURIComponent(account)}` : ''}`,
        undefined,
        null,
      ),
    /** Per account, the entries dated `from`..`to` (inclusive; no `from`: all up to `to`) whose id starts with `entryPrefix`. */
    balances: (q: { to: string; from?: string; entryPrefix: string }) =>
      callService<{ from: string | null; to: string; entryPrefix: string | null; balances: GlBalance[] }>(
        opts,
        'get_balances',
        'GET',
        `/balances?to=${q.to}${q.from ? `&from=${q.from}` : ''}&entryPrefix=${encodeURIComponent(q.entryPrefix)}`,
        undefined,
        null,
      ),
  };
}
export interface GlBalance {
  account: string;
  debitMinor: number;
  creditMinor: number;
  /** debits less credits */
  balanceMinor: number;
}
export type GlClient = ReturnType<typeof glClient>;
