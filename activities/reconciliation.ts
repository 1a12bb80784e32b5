import { heartbeat } from '@temporalio/activity';
import type { Pool } from 'pg';
import { batchJournalLines } from '../db/gl-daily';
import { notYetInGlByAccount, subledgerNetByAccount } from '../db/gl-balances';
import { journalLines } from '../db/journal';
import {
  MAX_REDEMPTIONS_PER_RUN,
  postedEntryIds,
  postingsOn,
  recordRun,
  redemptionsByIds,
  redemptionsTouchedOn,
  type LedgerRedemptionRow,
} from '../db/reconciliation';
import { programIds } from '../db/programs';
import {
  matchPosting,
  matchRedemption,
  type BillingCreditState,
  type Difference,
  type ReconciliationReport,
} from '../domain/reconciliation';
import {
  balanceCheck,
  endOfDay,
  monthsToDate,
  monthView,
  type AccountSums,
  type BalanceCheck,
  type MonthView,
} from '../domain/gl-balance';
import { billingSource, glEntryId, glJournalKey } from './redemption';
import type { BillingClient, BillingCredit } from './services/billing';
import type { GlClient, GlEntry } from './services/gl';
import { ServiceError } from './services/http';

/** Lookups in flight at once against billing and the GL (a limit, so a big day does not flood them). */
const LOOKUP_CONCURRENCY = 8;
/** The most programs one daily run reconciles. */
export const MAX_PROGRAMS_PER_RUN = 1_000;

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
        if (i % 100 === 0) heartbeat(i);
      }
    }),
  );
  return out;
}

const notFoundAsNull = async <T>(fn: () => Promise<T>): Promise<T | null> => {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ServiceError && e.status === 404) return null;
    throw e;
  }
};

const creditState = (c: BillingCredit): BillingCreditState => ({
  creditId: c.creditId,
  invoiceId: c.invoiceId,
  amountMinor: c.amountMinor,
  reversed: c.reversedAt !== null,
  taxTreatment: c.taxTreatment ?? null,
});

/**
 * The GL entries a redemption's journal should have reached, by its state in the ledger. A reversed
 * redemption whose own entry never reached the GL was compensated before it did (the GL refused
 * it): the GL expects neither. `posted` says which entries the ledger recorded posting.
 */
function expectedJournalKeys(r: LedgerRedemptionRow, redeemPosted: boolean): string[] {
  const keys = r.adjustmentIds.map((a) => glJournalKey(r.invoiceId, false, a));
  if (r.status === 'applied') keys.push(glJournalKey(r.invoiceId, false));
  if (r.status === 'reversed' && redeemPosted) keys.push(glJournalKey(r.invoiceId, true));
  return keys;
}

/** The daily reconciliation: the ledger's redemptions against billing's credits, its GL postings against the GL. */
export function createReconciliationActivities(deps: { pool: Pool; billing: BillingClient; gl: GlClient }) {
  const { pool, billing, gl } = deps;

  async function billingDifferences(programId: string, date: string, ledger: LedgerRedemptionRow[]) {
    const credits = (await billing.creditsOn(date, billingSource(programId))).credits;
    const creditById = new Map(credits.map((c) => [c.creditId, creditState(c)]));
    const ledgerById = new Map(ledger.map((r) => [r.redemptionId, r]));
    // billing's credits of the day the ledger touched on another day (a saga across midnight)
    for (const r of await redemptionsByIds(
      pool,
      programId,
      credits.map((c) => c.creditId).filter((id) => !ledgerById.has(id)),
    )) {
      ledgerById.set(r.redemptionId, r);
    }
    // the ledger's redemptions whose credit billing changed on another day (or never applied)
    const toLookUp = [...ledgerById.values()].filter((r) => !creditById.has(r.redemptionId) && r.status !== 'held');
    await mapLimit(toLookUp, LOOKUP_CONCURRENCY, async (r) => {
      const invoice = await notFoundAsNull(() => billing.getInvoice(r.invoiceId));
      const c = invoice?.credits.find((x) => x.creditId === r.redemptionId);
      if (c) creditById.set(c.creditId, creditState(c));
    });
    const differences: Difference[] = [];
    const inProgress: string[] = [];
    const ids = new Set([...ledgerById.keys(), ...creditById.keys()]);
    for (const id of ids) {
      const r = ledgerById.get(id) ?? null;
      const m = matchRedemption(r, creditById.get(id) ?? null);
      if (m === 'in_progress') inProgress.push(r!.invoiceId);
      else if (m) differences.push(m);
    }
    return { differences, inProgress, credits: credits.length, ledger: [...ledgerById.values()] };
  }

  async function glDifferences(programId: string, date: string, ledger: LedgerRedemptionRow[]) {
    const differences: Difference[] = [];
    const postings = await postingsOn(pool, programId, date);
    const checks = await mapLimit(postings, LOOKUP_CONCURRENCY, async (p) => {
      const entry = await notFoundAsNull(() => gl.getEntry(p.entryId));
      const invoiceId = p.journalKey.split(':')[1] ?? '';
      return matchPosting(
        { entryId: p.entryId, invoiceId, lines: p.lines },
        entry?.lines ?? null,
        // a day's or a close's batch: the journal entries it claimed; a redemption's: its journal
        (await batchJournalLines(pool, p.entryId)) ?? (await journalLines(pool, programId, p.journalKey)),
      );
    });
    for (const d of checks) if (d) differences.push(d);

    // journals that should have reached the GL but were never recorded as posted
    const redeemPosted = await postedEntryIds(
      pool,
      ledger.map((r) => glEntryId(programId, glJournalKey(r.invoiceId, false))),
    );
    const expected = ledger.flatMap((r) =>
      expectedJournalKeys(r, redeemPosted.has(glEntryId(programId, glJournalKey(r.invoiceId, false)))).map((key) => ({
        r,
        key,
        entryId: glEntryId(programId, key),
      })),
    );
    const posted = await postedEntryIds(
      pool,
      expected.map((e) => e.entryId),
    );
    for (const e of expected.filter((x) => !posted.has(x.entryId))) {
      const lines = await journalLines(pool, programId, e.key);
      if (lines.length > 0)
        differences.push({
          check: 'gl',
          reason: 'not_posted_to_gl',
          invoiceId: e.r.invoiceId,
          redemptionId: e.r.redemptionId,
          entryId: e.entryId,
          ledger: lines,
        });
    }

    // the GL's loyalty entries of the day that the ledger never recorded posting
    const prefix = glEntryId(programId, '');
    const glEntries: GlEntry[] = (await gl.entriesOn(date)).entries.filter(
      (x) => x.entryId.startsWith(prefix) && !x.reverses,
    );
    const known = await postedEntryIds(
      pool,
      glEntries.map((x) => x.entryId),
    );
    for (const x of glEntries.filter((y) => !known.has(y.entryId))) {
      differences.push({
        check: 'gl',
        reason: 'unknown_in_subledger',
        invoiceId: x.entryId.slice(prefix.length).split(':')[1] ?? '',
        entryId: x.entryId,
        external: x.lines,
      });
    }
    return { differences, checked: postings.length + glEntries.length };
  }

  const glSums = (r: { balances: Array<{ account: string; balanceMinor: number }> }): AccountSums[] =>
    r.balances.map((b) => ({ account: b.account, netMinor: BigInt(b.balanceMinor) }));

  /** The subledger's balance per account at the end of `date` against the GL's entries of the program dated up to it. */
  async function checkBalances(programId: string, date: string): Promise<BalanceCheck> {
    const through = endOfDay(date);
    const entryPrefix = glEntryId(programId, '');
    const [subledger, notYet, glBalances] = await Promise.all([
      subledgerNetByAccount(pool, programId, through),
      notYetInGlByAccount(pool, programId, through, date),
      gl.balances({ to: date, entryPrefix }),
    ]);
    return balanceCheck(date, subledger, glSums(glBalances), notYet);
  }

  /** Each month of the day's year up to the day: movement per account, subledger against GL. */
  async function monthly(programId: string, date: string): Promise<MonthView[]> {
    const entryPrefix = glEntryId(programId, '');
    return mapLimit(monthsToDate(date), LOOKUP_CONCURRENCY, async (m) => {
      const [subledger, glBalances] = await Promise.all([
        subledgerNetByAccount(pool, programId, endOfDay(m.to), new Date(`${m.from}T00:00:00Z`)),
        gl.balances({ from: m.from, to: m.to, entryPrefix }),
      ]);
      return monthView(m.month, m.to, subledger, glSums(glBalances));
    });
  }

  return {
    async listProgramsToReconcile(): Promise<string[]> {
      return programIds(pool, MAX_PROGRAMS_PER_RUN);
    },

    /**
     * Matches one program's day (UTC) and records the report; a later run of the same day supersedes
     * it. With it, the balance check at the day's end and the year's monthly view against the GL.
     */
    async reconcileRedemptionsOfDay(q: {
      programId: string;
      date: string;
      workflowId: string;
    }): Promise<ReconciliationReport> {
      const ledger = await redemptionsTouchedOn(pool, q.programId, q.date, MAX_REDEMPTIONS_PER_RUN + 1);
      if (ledger.length > MAX_REDEMPTIONS_PER_RUN) {
        throw new Error(
          `more than ${MAX_REDEMPTIONS_PER_RUN} redemptions on ${q.date}: raise MAX_REDEMPTIONS_PER_RUN or split the day`,
        );
      }
      const b = await billingDifferences(q.programId, q.date, ledger);
      const g = await glDifferences(q.programId, q.date, b.ledger);
      const differences = [...b.differences, ...g.differences];
      const balances = await checkBalances(q.programId, q.date);
      const months = await monthly(q.programId, q.date);
      return recordRun(pool, {
        programId: q.programId,
        date: q.date,
        workflowId: q.workflowId,
        redemptionsChecked: b.ledger.length,
        creditsChecked: b.credits,
        glEntriesChecked: g.checked,
        inProgress: b.inProgress.sort(),
        differenceCount: differences.length,
        differences,
        balanceCheck: balances,
        monthly: months,
      });
    },
  };
}

export type ReconciliationActivities = ReturnType<typeof createReconciliationActivities>;
