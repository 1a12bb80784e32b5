/**
 * The reconciliation's balance check and monthly view (docs/reconciliation.md): the subledger's
 * balance per loyalty account against the GL's, and each month's movement against the GL's. Pure:
 * the figures come in, the comparison goes out. Balances are debits less credits, in minor units,
 * added as bigint (exact whatever the number of lines) and answered as numbers (the GL's unit).
 */

export interface AccountSums {
  account: string;
  /** debits less credits */
  netMinor: bigint;
}

export interface BalanceRow {
  account: string;
  subledgerMinor: number;
  glMinor: number;
  /** subledger less GL */
  differenceMinor: number;
  /** of the subledger's balance, journal entries dated up to the day that no GL entry dated up to it carries yet (a back-dated entry waits for the next daily run) */
  notYetInGlMinor: number;
}

export interface BalanceCheck {
  asOf: string;
  accounts: BalanceRow[];
  /** the accounts whose difference is not what is not yet in the GL: the GL and the subledger disagree */
  differences: BalanceRow[];
  differenceCount: number;
}

export interface MonthRow {
  account: string;
  subledgerMovementMinor: number;
  glMovementMinor: number;
  differenceMinor: number;
}

export interface MonthView {
  /** YYYY-MM */
  month: string;
  /** the last day the month's movement runs to (the check's date in its own month) */
  through: string;
  accounts: MonthRow[];
  differenceCount: number;
}

const byAccount = (rows: AccountSums[]) => {
  const m = new Map<string, bigint>();
  for (const r of rows) m.set(r.account, (m.get(r.account) ?? 0n) + r.netMinor);
  return m;
};
const accountsOf = (...maps: Array<Map<string, bigint>>) => [...new Set(maps.flatMap((m) => [...m.keys()]))].sort();

/** Subledger against GL per account as of the end of `asOf`. */
export function balanceCheck(
  asOf: string,
  subledger: AccountSums[],
  gl: AccountSums[],
  notYetInGl: AccountSums[],
): BalanceCheck {
  const s = byAccount(subledger);
  const g = byAccount(gl);
  const n = byAccount(notYetInGl);
  const accounts = accountsOf(s, g, n)
    .map((account) => {
      const sub = s.get(account) ?? 0n;
      const glMinor = g.get(account) ?? 0n;
      return {
        account,
        subledgerMinor: Number(sub),
        glMinor: Number(glMinor),
        differenceMinor: Number(sub - glMinor),
        notYetInGlMinor: Number(n.get(account) ?? 0n),
      };
    })
    .filter((r) => r.subledgerMinor !== 0 || r.glMinor !== 0 || r.notYetInGlMinor !== 0);
  const differences = accounts.filter((r) => r.differenceMinor !== r.notYetInGlMinor);
  return { asOf, accounts, differences, differenceCount: differences.length };
}

/** One month's movement per account, subledger against GL. */
export function monthView(month: string, through: string, subledger: AccountSums[], gl: AccountSums[]): MonthView {
  const s = byAccount(subledger);
  const g = byAccount(gl);
  const accounts = accountsOf(s, g)
    .map((account) => {
      const sub = s.get(account) ?? 0n;
      const glMinor = g.get(account) ?? 0n;
      return {
        account,
        subledgerMovementMinor: Number(sub),
        glMovementMinor: Number(glMinor),
        differenceMinor: Number(sub - glMinor),
      };
    })
    .filter((r) => r.subledgerMovementMinor !== 0 || r.glMovementMinor !== 0);
  return { month, through, accounts, differenceCount: accounts.filter((r) => r.differenceMinor !== 0).length };
}

/** The months of `date`'s year up to its own, each with the first day and the last day it runs to (`date` in its month). */
export function monthsToDate(date: string): Array<{ month: string; from: string; to: string }> {
  const [y, m] = [Number(date.slice(0, 4)), Number(date.slice(5, 7))];
  const out: Array<{ month: string; from: string; to: string }> = [];
  for (let i = 1; i <= m; i++) {
    const month = `${y}-${String(i).padStart(2, '0')}`;
    const last = new Date(Date.UTC(y, i, 0)).toISOString().slice(0, 10);
    out.push({ month, from: `${month}-01`, to: i === m ? date : last });
  }
  return out;
}

/** The instant a UTC business day ends (the next day's midnight). */
export const endOfDay = (date: string): Date => new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000);
