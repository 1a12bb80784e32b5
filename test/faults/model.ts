/**
 * The workload's own record of what it sent and what the ledger answered, and what the ledger must
 * therefore hold. Two programs:
 * - `keep` (no expiry): operations on one member group are serialised by the workload, so the model
 *   knows every balance exactly and predicts each answer (points earned, revoked, applied, moved);
 * - `roll` (a rolling expiry window of seconds): operations on a member run concurrently, expiries
 *   are timing-dependent, so the model predicts identities instead (earned points, refund
 *   revocations, redemption outcomes against billing) and the checks read the expiries back.
 */
import type { Answer, Verdict } from './http';

export interface ProgramSpec {
  id: string;
  kind: 'keep' | 'roll';
  body: Record<string, unknown>;
  pointValueMinor: number;
  earn: { points: number; perAmountMinor: number };
  shareMillionths: number;
  minPoints: number;
  /** rolling expiry window, seconds (null: no expiry) */
  windowSeconds: number | null;
  chargebackWindowSeconds: number;
  members: string[];
  /** relative frequency of each member in accruals and redemptions (sparse members expire) */
  weights: number[];
  jurisdictions: Record<string, string>;
}

export function programs(): ProgramSpec[] {
  const keepMembers = Array.from({ length: 12 }, (_, i) => `k-${i}`);
  const rollMembers = Array.from({ length: 16 }, (_, i) => `r-${i}`);
  // one member per program in a jurisdiction the tax service does not know: its redemptions are
  // refused by tax (a 422), compensated, and declined
  const jur = (members: string[]) =>
    Object.fromEntries(
      members.flatMap((m, i) => {
        const j = i === members.length - 1 ? 'US-ZZ' : ['US-CA', 'DE', 'US-NY', null, 'FR', 'US-TX'][i % 6];
        return j ? [[m, j]] : [];
      }),
    );
  return [
    {
      id: 'keep',
      kind: 'keep',
      pointValueMinor: 2,
      earn: { points: 1, perAmountMinor: 10 },
      shareMillionths: 500_000,
      minPoints: 50,
      windowSeconds: null,
      chargebackWindowSeconds: 8,
      members: keepMembers,
      weights: keepMembers.map(() => 1),
      jurisdictions: jur(keepMembers),
      body: {
        programId: 'keep',
        name: 'Faults: no expiry',
        currency: 'USD',
        pointValueMinor: 2,
        earn: { points: 1, perAmountMinor: 10 },
        expectedRedemptionRate: 0.8,
        expiry: { policy: 'none' },
        accounting: { method: 'relative_ssp' },
        redemption: { minPoints: 50, maxInvoiceShare: 0.5, cohortOrder: 'pro_rata' },
        chargebackWindow: 'PT8S',
        // merges and adjustments run at once: approvals are tested elsewhere (approval-splitting)
        adjustments: { approvalThresholdPoints: 1_000_000_000_000 },
      },
    },
    {
      id: 'roll',
      kind: 'roll',
      pointValueMinor: 1,
      earn: { points: 3, perAmountMinor: 7 },
      shareMillionths: 1_000_000,
      minPoints: 100,
      windowSeconds: 4,
      chargebackWindowSeconds: 8,
      members: rollMembers,
      // half the members buy often (their points rarely expire), half seldom (theirs do)
      weights: rollMembers.map((_, i) => (i < 8 ? 5 : 1)),
      jurisdictions: jur(rollMembers),
      body: {
        programId: 'roll',
        name: 'Faults: rolling 4 s',
        currency: 'USD',
        pointValueMinor: 1,
        earn: { points: 3, perAmountMinor: 7 },
        expectedRedemptionRate: 0.7,
        expiry: { policy: 'rolling', window: 'PT4S' },
        accounting: { method: 'relative_ssp' },
        redemption: { minPoints: 100, maxInvoiceShare: 1, cohortOrder: 'oldest_first' },
        chargebackWindow: 'PT8S',
        adjustments: { approvalThresholdPoints: 1_000_000_000_000 },
      },
    },
  ];
}

/** round(n * f / t), halves away from zero, as PostgreSQL's round(numeric) does (all inputs >= 0) */
export function roundShare(n: number, f: number, t: number): number {
  return Number((2n * BigInt(n) * BigInt(f) + BigInt(t)) / (2n * BigInt(t)));
}

export interface AccrualRec {
  p: ProgramSpec;
  invoiceId: string;
  memberId: string;
  amount: number;
  /** what the earn rule gives: floor(amount * points / perAmountMinor) */
  points: number;
  /** accrued on an invoice that is then paid with points (a lost chargeback claws these back) */
  forRedemption: boolean;
  answer: Answer | null;
  refundedAccepted: number;
  refundBusy: boolean;
  /** a refund of it never got a final answer: how much is refunded is not known */
  tainted: boolean;
}

export interface RefundRec {
  p: ProgramSpec;
  refundId: string;
  accrual: AccrualRec;
  amount: number;
  /** the cumulative pro-rata revocation this refund adds: revoked + shortfall */
  intended: number;
  answer: Answer | null;
}

export type ChargebackStep = 'opened' | 'won' | 'lost';

export interface ChargebackRec {
  chargebackId: string;
  plan: ChargebackStep[];
  steps: Array<{ status: ChargebackStep; verdict: Verdict; ambiguous: boolean; code: string | null }>;
  /** did a `lost` reach the saga: yes (202), no (refused with nothing before it that may have), or not known */
  lost: 'accepted' | 'refused' | 'unknown' | 'not_sent';
}

export interface RedemptionRec {
  p: ProgramSpec;
  invoiceId: string;
  memberId: string;
  requested: number;
  total: number;
  accrual: AccrualRec | null;
  /** keep only: what the model expects (null: not predictable, e.g. its group was inexact) */
  predicted: { status: 'applied'; points: number } | { status: 'declined'; reason: string } | null;
  answer: Answer | null;
  appliedAt: number | null;
  chargeback: ChargebackRec | null;
}

export interface MergeRec {
  p: ProgramSpec;
  from: string;
  into: string;
  answer: Answer | null;
}

export type OpKind = 'accrual' | 'refund' | 'redemption' | 'chargeback' | 'merge';

export interface OpStats {
  sent: number;
  accepted: number;
  refused: number;
  unresolved: number;
  retries: number;
  /** accepted or refused after an attempt whose effect was not known */
  ambiguous: number;
}

/** The ledger's own reasons for declining a hold: a decline for one of these is a statement about the balance. */
export const LEDGER_DECLINE_REASONS = new Set([
  'insufficient_points',
  'below_minimum',
  'member_not_active',
  'unknown_member',
  'points_expired',
  'in_progress',
]);
/** Service refusals that mean the saga broke the services' contract (e.g. a retry with another body). */
export const CONTRACT_BREACH_REASONS = new Set([
  'credit_exists',
  'credit_exceeds_amount_due',
  'idempotency_key_reused',
  'invoice_not_found',
  'entry_exists',
  'unbalanced_entry',
  'credit_not_found',
  'credit_exceeds_invoice',
  'validation_failed',
  'idempotency_key_required',
]);

/** Member groups of the `keep` program: balances the model knows exactly, and who is busy. */
export class KeepBook {
  readonly balance = new Map<string, number>();
  readonly mergedInto = new Map<string, string>();
  /** the jurisdiction the ledger keeps per group: the latest one an accrual reported, else the merged member's */
  readonly jurisdiction = new Map<string, string>();
  /** members with a row in the ledger (an accepted accrual, directly or merged) */
  readonly exists = new Set<string>();
  private readonly locked = new Set<string>();
  /** groups whose balance the model lost track of (an operation on them never got a final answer) */
  readonly inexact = new Set<string>();

  root(m: string): string {
    let r = m;
    for (let i = 0; i < 64 && this.mergedInto.has(r); i++) r = this.mergedInto.get(r)!;
    return r;
  }

  bal(m: string): number {
    return this.balance.get(this.root(m)) ?? 0;
  }

  add(m: string, points: number): void {
    const r = this.root(m);
    this.balance.set(r, (this.balance.get(r) ?? 0) + points);
  }

  exact(m: string): boolean {
    return !this.inexact.has(this.root(m));
  }

  taint(m: string): void {
    this.inexact.add(this.root(m));
  }

  /** Locks the groups of these members, or null when one is busy (the caller does something else). */
  tryLock(members: string[]): (() => void) | null {
    const roots = [...new Set(members.map((m) => this.root(m)))];
    if (roots.some((r) => this.locked.has(r))) return null;
    for (const r of roots) this.locked.add(r);
    return () => {
      for (const r of roots) this.locked.delete(r);
    };
  }

  merge(from: string, into: string): void {
    const moved = this.balance.get(from) ?? 0;
    this.balance.set(from, 0);
    this.add(into, moved);
    if (this.inexact.has(from)) this.inexact.add(into);
    this.mergedInto.set(from, into);
  }
}

export class Model {
  readonly accruals: AccrualRec[] = [];
  readonly refunds: RefundRec[] = [];
  readonly redemptions: RedemptionRec[] = [];
  readonly merges: MergeRec[] = [];
  readonly keep = new KeepBook();
  /** roll: merges the ledger accepted (from -> into) */
  readonly rollMerged = new Map<string, string>();
  readonly stats: Record<OpKind, OpStats> = {
    accrual: blank(),
    refund: blank(),
    redemption: blank(),
    chargeback: blank(),
    merge: blank(),
  };
  /** answers that contradict the model, found while the workload runs */
  readonly mismatches: string[] = [];
  readonly declineReasons = new Map<string, number>();
  invoicesCreated = 0;

  record(kind: OpKind, a: Answer): void {
    const s = this.stats[kind];
    s.sent++;
    s[a.verdict]++;
    if (a.ambiguous && a.verdict !== 'unresolved') s.ambiguous++;
  }

  expect(ok: boolean, what: () => string): void {
    if (!ok) this.mismatches.push(what());
  }
}

const blank = (): OpStats => ({ sent: 0, accepted: 0, refused: 0, unresolved: 0, retries: 0, ambiguous: 0 });
