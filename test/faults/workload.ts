/**
 * The seeded workload: agents that act as billing and support would, through the real HTTP API,
 * each request retried with its own Idempotency-Key until accepted or refused (see http.ts). Every
 * answer is recorded in the model and compared with what the model expects of it.
 */
import type { Client as TemporalClient } from '@temporalio/client';
import type { Pool } from 'pg';
import { redemptionWorkflowId } from '../../domain/workflow-ids';
import { REDEMPTION_BUDGET, simCall, type Answer, type LedgerClient } from './http';
import {
  CONTRACT_BREACH_REASONS,
  LEDGER_DECLINE_REASONS,
  roundShare,
  type AccrualRec,
  type ChargebackRec,
  type ChargebackStep,
  type Model,
  type OpKind,
  type ProgramSpec,
  type RedemptionRec,
} from './model';
import { sleep, type Rng } from './rng';

export interface WorkloadDeps {
  api: LedgerClient;
  billingUrl: string;
  pool: Pool;
  temporal: TemporalClient;
  model: Model;
  programs: ProgramSpec[];
}

type Role = 'billing' | 'support' | 'admin';

/** A lost or refused connection (a restart), not an error of the query itself. */
function connectionError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code) || code.startsWith('08') || code.startsWith('57');
}

/** A query against the ledger database that waits out a PostgreSQL restart (bounded). */
export async function dbQuery<R extends Record<string, unknown>>(
  pool: Pool,
  sql: string,
  params: unknown[] = [],
  totalMs = 60_000,
): Promise<R[]> {
  const started = Date.now();
  for (;;) {
    try {
      return (await pool.query<R>(sql, params)).rows;
    } catch (e) {
      if (!connectionError(e) || Date.now() - started > totalMs) throw e;
      await sleep(500);
    }
  }
}

/** The latest run of a workflow once it is no longer running (its status name), or null after the budget. */
export async function awaitWorkflowEnd(
  temporal: TemporalClient,
  workflowId: string,
  totalMs: number,
): Promise<string | null> {
  const deadline = Date.now() + totalMs;
  while (Date.now() < deadline) {
    try {
      const d = await temporal.workflow.getHandle(workflowId).describe();
      if (d.status.name !== 'RUNNING') return d.status.name;
    } catch {
      /* Temporal restarting */
    }
    await sleep(300);
  }
  return null;
}

export class Workload {
  private seq = 0;
  private readonly mergeBusy = new Set<string>();
  private readonly mergesPerProgram = new Map<string, number>();

  constructor(private readonly d: WorkloadDeps) {}

  private get m(): Model {
    return this.d.model;
  }

  private next(): number {
    return this.seq++;
  }

  async createPrograms(rng: Rng): Promise<void> {
    for (const p of this.d.programs) {
      const a = await this.d.api.post('/v1/programs', { role: 'admin', idem: `program:${p.id}`, body: p.body, rng });
      if (a.verdict !== 'accepted')
        throw new Error(`program ${p.id} not created: ${a.status} ${JSON.stringify(a.body)}`);
    }
  }

  async run(rng: Rng, agents: number, endAt: number): Promise<void> {
    await Promise.all(Array.from({ length: agents }, (_, i) => this.agent(rng.fork(`agent-${i}`), endAt)));
  }

  private async agent(rng: Rng, endAt: number): Promise<void> {
    while (Date.now() < endAt) {
      const p = rng.pick(this.d.programs);
      const kind = rng.weighted({ accrual: 42, redemption: 22, refund: 14, chargeback: 12, merge: 3, ghost: 2 });
      let did = false;
      try {
        if (kind === 'accrual') did = (await this.accrual(p, rng, this.member(p, rng))) !== null;
        else if (kind === 'redemption') did = await this.redemption(p, rng, this.member(p, rng));
        else if (kind === 'ghost') did = await this.redemption(p, rng, `${p.id}-ghost-${this.next()}`);
        else if (kind === 'refund') did = await this.refund(p, rng);
        else if (kind === 'chargeback') did = await this.chargeback(p, rng);
        else did = await this.merge(p, rng);
      } catch (e) {
        this.m.mismatches.push(`workload error in ${kind} (${p.id}): ${(e as Error).stack ?? (e as Error).message}`);
      }
      await sleep(did ? rng.int(10, 200) : 25);
    }
  }

  private member(p: ProgramSpec, rng: Rng): string {
    const total = p.weights.reduce((s, w) => s + w, 0);
    let r = rng.next() * total;
    for (const [i, w] of p.weights.entries()) {
      r -= w;
      if (r < 0) return p.members[i]!;
    }
    return p.members[p.members.length - 1]!;
  }

  private async post(
    kind: OpKind,
    path: string,
    role: Role,
    idem: string,
    body: unknown,
    rng: Rng,
    budget?: typeof REDEMPTION_BUDGET,
  ): Promise<Answer> {
    const stats = this.m.stats[kind];
    const a = await this.d.api.post(path, { role, idem, body, rng, budget, onRetry: () => stats.retries++ });
    this.m.record(kind, a);
    if (a.verdict === 'unresolved')
      this.m.mismatches.push(`${kind} ${idem}: no final answer after ${a.attempts} attempts (last: ${a.lastError})`);
    return a;
  }

  /** keep: lock the member groups; roll: nothing to lock. Null when a group is busy. */
  private lock(p: ProgramSpec, members: string[]): (() => void) | null {
    return p.kind === 'keep' ? this.m.keep.tryLock(members) : () => undefined;
  }

  // ---- accruals ----

  async accrual(
    p: ProgramSpec,
    rng: Rng,
    memberId: string,
    o: { invoiceId?: string; amount?: number; forRedemption?: boolean; locked?: boolean } = {},
  ): Promise<AccrualRec | null> {
    const release = o.locked ? () => undefined : this.lock(p, [memberId]);
    if (!release) return null;
    try {
      const invoiceId = o.invoiceId ?? `${p.id}-a-${this.next()}`;
      const amount = o.amount ?? rng.int(100, 20_000);
      const rec: AccrualRec = {
        p,
        invoiceId,
        memberId,
        amount,
        points: Math.floor((amount * p.earn.points) / p.earn.perAmountMinor),
        forRedemption: o.forRedemption ?? false,
        answer: null,
        refundedAccepted: 0,
        refundBusy: false,
        tainted: false,
      };
      this.m.accruals.push(rec);
      const jurisdiction = p.jurisdictions[memberId];
      const body = {
        memberId,
        invoiceId,
        amountMinor: amount,
        occurredAt: new Date().toISOString(),
        ...(jurisdiction ? { jurisdiction } : {}),
      };
      const book = this.m.keep;
      const keep = p.kind === 'keep';
      const exact = keep && book.exact(memberId);
      const before = keep ? book.bal(memberId) : 0;
      const a = await this.post(
        'accrual',
        `/v1/programs/${p.id}/accruals`,
        'billing',
        `accrual:${invoiceId}`,
        body,
        rng,
      );
      rec.answer = a;
      const what = () =>
        `accrual ${p.id}/${invoiceId} for ${memberId} (${amount}): ${a.status} ${JSON.stringify(a.body)}`;
      this.m.expect(a.verdict !== 'refused', () => `refused: ${what()}`);
      if (a.verdict === 'accepted') {
        this.m.expect(a.body.points === rec.points, () => `points ${a.body.points}, model ${rec.points}: ${what()}`);
        if (keep) {
          if (exact) {
            this.m.expect(
              a.body.memberId === book.root(memberId),
              () => `credited to ${a.body.memberId}, model ${book.root(memberId)}: ${what()}`,
            );
            this.m.expect(
              a.body.balance === before + rec.points,
              () => `balance ${a.body.balance}, model ${before + rec.points}: ${what()}`,
            );
          }
          book.exists.add(memberId);
          book.add(memberId, rec.points);
          if (jurisdiction) book.jurisdiction.set(book.root(memberId), jurisdiction);
        }
      } else if (a.verdict === 'unresolved' && keep) {
        book.taint(memberId);
      }
      return rec;
    } finally {
      release();
    }
  }

  // ---- refunds ----

  private async refund(p: ProgramSpec, rng: Rng): Promise<boolean> {
    const candidates = this.m.accruals.filter(
      (a) =>
        a.p === p &&
        a.answer?.verdict === 'accepted' &&
        !a.forRedemption &&
        !a.refundBusy &&
        !a.tainted &&
        a.refundedAccepted < a.amount,
    );
    if (candidates.length === 0) return false;
    const accrual = rng.pick(candidates);
    const release = this.lock(p, [accrual.memberId]);
    if (!release) return false;
    accrual.refundBusy = true;
    try {
      const left = accrual.amount - accrual.refundedAccepted;
      const amount = rng.chance(0.3) ? left : rng.int(1, left);
      const refundId = `${p.id}-rf-${this.next()}`;
      // cumulative pro rata: after refunds F of an invoice T that earned n, round(n F / T) is revoked in all
      const before = accrual.refundedAccepted;
      const intended =
        roundShare(accrual.points, before + amount, accrual.amount) -
        roundShare(accrual.points, before, accrual.amount);
      const rec = { p, refundId, accrual, amount, intended, answer: null as Answer | null };
      this.m.refunds.push(rec);
      const book = this.m.keep;
      const exact = p.kind === 'keep' && book.exact(accrual.memberId);
      const available = p.kind === 'keep' ? book.bal(accrual.memberId) : 0;
      const body = {
        memberId: accrual.memberId,
        invoiceId: accrual.invoiceId,
        refundId,
        amountMinor: amount,
        occurredAt: new Date().toISOString(),
      };
      const a = await this.post('refund', `/v1/programs/${p.id}/refunds`, 'billing', `refund:${refundId}`, body, rng);
      rec.answer = a;
      const what = () =>
        `refund ${p.id}/${refundId} of ${amount} on ${accrual.invoiceId} (${accrual.amount}, ${accrual.points} pts, ${before} refunded before): ${a.status} ${JSON.stringify(a.body)}`;
      this.m.expect(a.verdict !== 'refused', () => `refused: ${what()}`);
      if (a.verdict === 'accepted') {
        accrual.refundedAccepted += amount;
        const revoked = Number(a.body.pointsRevoked);
        this.m.expect(
          revoked >= 0 && revoked + Number(a.body.shortfallPoints) === intended,
          () => `revoked + shortfall should be ${intended}: ${what()}`,
        );
        if (p.kind === 'keep') {
          if (exact)
            this.m.expect(
              revoked === Math.min(intended, available),
              () => `revoked should be ${Math.min(intended, available)} (balance ${available}): ${what()}`,
            );
          book.add(accrual.memberId, -revoked);
        }
      } else if (a.verdict === 'unresolved') {
        accrual.tainted = true;
        if (p.kind === 'keep') book.taint(accrual.memberId);
      }
      return true;
    } finally {
      accrual.refundBusy = false;
      release();
    }
  }

  // ---- redemptions ----

  private predictKeep(p: ProgramSpec, memberId: string, requested: number, total: number): RedemptionRec['predicted'] {
    const book = this.m.keep;
    if (!book.exact(memberId)) return null;
    // a merged member's id redeems its survivor's points (the book's balance is the root's)
    if (!book.exists.has(memberId)) return { status: 'declined', reason: 'unknown_member' };
    const available = book.bal(memberId);
    // "at most the program's share of the invoice, in whole points" (docs/redemption-saga.md)
    const cap = Number((BigInt(total) * BigInt(p.shareMillionths)) / (1_000_000n * BigInt(p.pointValueMinor)));
    const applied = Math.min(requested, available, cap, Math.floor(total / p.pointValueMinor));
    if (applied < p.minPoints || applied <= 0) {
      return {
        status: 'declined',
        reason:
          available < Math.min(requested, p.minPoints) || available === 0 ? 'insufficient_points' : 'below_minimum',
      };
    }
    if (book.jurisdiction.get(book.root(memberId)) === 'US-ZZ')
      return { status: 'declined', reason: 'unsupported_jurisdiction' };
    return { status: 'applied', points: applied };
  }

  private async redemption(p: ProgramSpec, rng: Rng, memberId: string): Promise<boolean> {
    const release = this.lock(p, [memberId]);
    if (!release) return false;
    try {
      const invoiceId = `${p.id}-inv-${this.next()}`;
      const total = rng.int(1_000, p.kind === 'keep' ? 20_000 : 30_000);
      const cut1 = rng.int(1, total - 1);
      const lines = rng.chance(0.5)
        ? [{ description: 'Plan', amountMinor: total }]
        : [
            { description: 'Plan', amountMinor: cut1 },
            { description: 'Add-on', amountMinor: total - cut1 },
          ];
      // billing's own invoice, made before it asks the ledger to pay part of it with points
      await simCall(
        `${this.d.billingUrl}/invoices`,
        'POST',
        { invoiceId, customerId: memberId, currency: 'USD', lines },
        `invoice:${invoiceId}`,
        rng,
      );
      this.m.invoicesCreated++;
      let accrual: AccrualRec | null = null;
      if (!memberId.includes('-ghost-') && rng.chance(0.4)) {
        // the purchase on this invoice earns points too; a lost chargeback on it claws them back
        accrual = await this.accrual(p, rng, memberId, { invoiceId, amount: total, forRedemption: true, locked: true });
        if (accrual?.answer?.verdict !== 'accepted') return true;
      }
      const requested =
        p.kind === 'keep'
          ? rng.chance(0.15)
            ? rng.int(1, p.minPoints - 1)
            : rng.int(p.minPoints, 3_000)
          : rng.chance(0.1)
            ? rng.int(1, p.minPoints - 1)
            : rng.int(p.minPoints, 8_000);
      const predicted = p.kind === 'keep' ? this.predictKeep(p, memberId, requested, total) : null;
      const rec: RedemptionRec = {
        p,
        invoiceId,
        memberId,
        requested,
        total,
        accrual,
        predicted,
        answer: null,
        appliedAt: null,
        chargeback: null,
      };
      this.m.redemptions.push(rec);
      const body = {
        invoiceId,
        memberId,
        points: requested,
        invoiceTotalMinor: total,
        occurredAt: new Date().toISOString(),
      };
      const send = () =>
        this.post(
          'redemption',
          `/v1/programs/${p.id}/redemptions`,
          'billing',
          `redeem:${invoiceId}`,
          body,
          rng,
          REDEMPTION_BUDGET,
        );
      let a = await send();
      // a saga still at work past the API's deadline answers 202 with where to poll, not stored
      // under the key: the same request under its key answers the outcome once there is one
      for (let i = 0; i < 30 && a.status === 202 && a.body?.status === 'in_progress'; i++) {
        await sleep(1_000);
        a = await send();
      }
      // asked again after its saga ended, the redemption answers as the ledger keeps it: one the saga
      // compensated (it declined after spending the points) is `reversed`, reason `compensated`
      if (a.status === 201 && a.body?.status === 'reversed' && a.body?.reason === 'compensated')
        a = { ...a, body: { ...a.body, status: 'declined' } };
      rec.answer = a;
      this.checkRedemptionAnswer(rec, a);
      return true;
    } finally {
      release();
    }
  }

  private checkRedemptionAnswer(rec: RedemptionRec, a: Answer): void {
    const { p } = rec;
    const book = this.m.keep;
    const what = () =>
      `redemption ${p.id}/${rec.invoiceId} of ${rec.requested} pts for ${rec.memberId} (invoice ${rec.total}; model: ${JSON.stringify(rec.predicted)}): ${a.status} ${JSON.stringify(a.body)}`;
    if (a.verdict === 'unresolved') {
      if (p.kind === 'keep') book.taint(rec.memberId);
      return;
    }
    // a redemption dated before the member's first earn is refused, nothing held (issue 14, item 7):
    // in keep, whose members' accruals and redemptions are serialised, only for a member with none
    if (a.status === 422 && a.body?.error?.code === 'redemption_before_first_earn') {
      this.m.declineReasons.set(
        `${p.id}:before_first_earn`,
        (this.m.declineReasons.get(`${p.id}:before_first_earn`) ?? 0) + 1,
      );
      if (p.kind === 'keep')
        this.m.expect(
          !this.m.accruals.some((x) => x.p === p && x.memberId === rec.memberId && x.answer?.verdict === 'accepted'),
          () => `refused as before the first earn though the member earned: ${what()}`,
        );
      return;
    }
    this.m.expect(
      a.status === 201 && ['applied', 'declined'].includes(a.body?.status),
      () => `not applied or declined: ${what()}`,
    );
    if (a.status !== 201) return;
    const status = a.body.status as string;
    const reason = (a.body.reason ?? '') as string;
    if (status === 'declined')
      this.m.declineReasons.set(`${p.id}:${reason}`, (this.m.declineReasons.get(`${p.id}:${reason}`) ?? 0) + 1);
    this.m.expect(!CONTRACT_BREACH_REASONS.has(reason), () => `declined for a broken service contract: ${what()}`);
    if (status === 'applied') {
      rec.appliedAt = Date.now();
      const points = Number(a.body.pointsApplied);
      const cap = Number((BigInt(rec.total) * BigInt(p.shareMillionths)) / (1_000_000n * BigInt(p.pointValueMinor)));
      this.m.expect(
        points >= p.minPoints && points <= Math.min(rec.requested, cap),
        () => `points applied outside [minPoints, min(requested, share cap ${cap})]: ${what()}`,
      );
      this.m.expect(
        Number(a.body.creditMinor) === points * p.pointValueMinor,
        () => `credit is not points x point value: ${what()}`,
      );
      this.m.expect(
        rec.requested >= p.minPoints && !rec.memberId.includes('-ghost-'),
        () => `applied though it cannot be: ${what()}`,
      );
    } else {
      if (rec.requested < p.minPoints)
        this.m.expect(
          LEDGER_DECLINE_REASONS.has(reason) || reason === 'unsupported_jurisdiction',
          () => `below the minimum, declined for another reason: ${what()}`,
        );
      if (rec.memberId.includes('-ghost-'))
        this.m.expect(reason === 'unknown_member', () => `unknown member declined for another reason: ${what()}`);
    }
    if (p.kind !== 'keep' || !rec.predicted) return;
    const pr = rec.predicted;
    if (pr.status === 'applied') {
      if (status === 'applied') {
        this.m.expect(
          Number(a.body.pointsApplied) === pr.points,
          () => `points applied differ from the model: ${what()}`,
        );
        book.add(rec.memberId, -Number(a.body.pointsApplied));
      } else {
        // a saga may decline for a service that stayed down; never for the balance the model knows
        this.m.expect(
          !LEDGER_DECLINE_REASONS.has(reason) && reason !== 'unsupported_jurisdiction',
          () => `declined by the ledger though the model has the points: ${what()}`,
        );
      }
    } else if (status === 'applied') {
      this.m.expect(false, () => `applied though the model declines it: ${what()}`);
      book.add(rec.memberId, -Number(a.body.pointsApplied));
    } else if (LEDGER_DECLINE_REASONS.has(pr.reason)) {
      this.m.expect(reason === pr.reason, () => `declined for another reason than the model's: ${what()}`);
    } else {
      this.m.expect(
        !LEDGER_DECLINE_REASONS.has(reason),
        () => `declined by the ledger for a reason the model does not see: ${what()}`,
      );
    }
  }

  // ---- chargebacks ----

  private async chargeback(p: ProgramSpec, rng: Rng): Promise<boolean> {
    const applied = this.m.redemptions.filter((r) => r.p === p && r.appliedAt !== null && r.chargeback === null);
    if (applied.length === 0) return false;
    // mostly inside the chargeback window (from the saga's start); some after it, to be refused
    const recent = applied.filter((r) => Date.now() - r.appliedAt! < (p.chargebackWindowSeconds - 2) * 1000);
    const rec = rng.chance(0.85) && recent.length > 0 ? rng.pick(recent) : rng.pick(applied);
    const release = this.lock(p, [rec.memberId, ...(rec.accrual ? [rec.accrual.memberId] : [])]);
    if (!release) return false;
    const plan: ChargebackStep[] = rng.pick([['lost'], ['lost'], ['opened', 'won'], ['opened', 'lost'], ['won']]);
    const cb: ChargebackRec = { chargebackId: `cb-${rec.invoiceId}`, plan, steps: [], lost: 'not_sent' };
    rec.chargeback = cb;
    try {
      for (const [i, status] of plan.entries()) {
        if (i > 0) await sleep(rng.int(300, 2_500));
        const a = await this.post(
          'chargeback',
          `/v1/programs/${p.id}/chargebacks`,
          'billing',
          `chargeback:${cb.chargebackId}:${status}`,
          { invoiceId: rec.invoiceId, chargebackId: cb.chargebackId, status },
          rng,
        );
        const code = (a.body?.error?.code ?? null) as string | null;
        cb.steps.push({ status, verdict: a.verdict, ambiguous: a.ambiguous, code });
        const what = () => `chargeback ${status} on ${p.id}/${rec.invoiceId}: ${a.status} ${JSON.stringify(a.body)}`;
        if (status === 'lost')
          cb.lost =
            a.verdict === 'accepted' ? 'accepted' : a.verdict === 'refused' && !a.ambiguous ? 'refused' : 'unknown';
        if (a.verdict === 'refused') {
          this.m.expect(
            a.status === 409 && code === 'chargeback_window_closed',
            () => `refused other than for the window: ${what()}`,
          );
          // a frozen saga waits for the outcome: it cannot have closed under an opened dispute
          this.m.expect(
            !(i > 0 && plan[0] === 'opened' && cb.steps[0]!.verdict === 'accepted'),
            () => `saga closed while frozen by an opened chargeback: ${what()}`,
          );
          break;
        }
        if (a.verdict === 'unresolved') break;
      }
      if (cb.lost === 'accepted' || cb.lost === 'unknown') await this.settleLost(rec);
      return true;
    } finally {
      release();
    }
  }

  /**
   * A lost chargeback reverses the redemption and claws back what the invoice earned, after the API
   * has answered: wait for the saga to end, then (keep) move the model by what the ledger must have
   * done, checking the claw-back against it.
   */
  private async settleLost(rec: RedemptionRec): Promise<void> {
    const { p } = rec;
    const cb = rec.chargeback!;
    const end = await awaitWorkflowEnd(this.d.temporal, redemptionWorkflowId(p.id, rec.invoiceId), 120_000);
    if (end === null) {
      this.m.mismatches.push(`saga ${p.id}/${rec.invoiceId} still running 120 s after a lost chargeback`);
      if (p.kind === 'keep') this.m.keep.taint(rec.memberId);
      return;
    }
    this.m.expect(end === 'COMPLETED', () => `saga ${p.id}/${rec.invoiceId} ended ${end} after a lost chargeback`);
    const [row] = await dbQuery<{ status: string; reason: string | null }>(
      this.d.pool,
      'select status, reason from redemptions where program_id = $1 and invoice_id = $2',
      [p.id, rec.invoiceId],
    );
    const reversedByUs = row?.status === 'reversed' && row.reason === `chargeback_lost:${cb.chargebackId}`;
    if (cb.lost === 'accepted')
      this.m.expect(
        reversedByUs,
        () => `lost chargeback accepted on ${p.id}/${rec.invoiceId}, but the redemption is ${JSON.stringify(row)}`,
      );
    if (cb.lost === 'unknown') cb.lost = reversedByUs ? 'accepted' : 'refused';
    if (!reversedByUs || p.kind !== 'keep') return;
    const book = this.m.keep;
    const exact = book.exact(rec.memberId);
    book.add(rec.memberId, Number(rec.answer!.body.pointsApplied));
    if (!rec.accrual) return;
    const [claw] = await dbQuery<{ points_revoked: string; shortfall_points: string }>(
      this.d.pool,
      'select points_revoked, shortfall_points from refunds where program_id = $1 and refund_id = $2',
      [p.id, `chargeback:${cb.chargebackId}`],
    );
    const n = rec.accrual.points;
    const expected = Math.min(n, book.bal(rec.accrual.memberId));
    const what = () =>
      `claw-back of ${p.id}/${rec.invoiceId} (${n} pts earned, balance ${book.bal(rec.accrual!.memberId)} after the reversal): ${JSON.stringify(claw)}`;
    this.m.expect(claw !== undefined, () => `no claw-back: ${what()}`);
    if (!claw) return;
    if (exact)
      this.m.expect(
        Number(claw.points_revoked) === expected && Number(claw.shortfall_points) === n - expected,
        () => `claw-back differs from the model: ${what()}`,
      );
    book.add(rec.accrual.memberId, -Number(claw.points_revoked));
  }

  // ---- merges ----

  private async merge(p: ProgramSpec, rng: Rng): Promise<boolean> {
    if (this.mergeBusy.has(p.id) || (this.mergesPerProgram.get(p.id) ?? 0) >= 3) return false;
    const book = this.m.keep;
    const merged = (x: string) => (p.kind === 'keep' ? book.mergedInto.has(x) : this.m.rollMerged.has(x));
    const withRows = new Set(
      this.m.accruals.filter((a) => a.p === p && a.answer?.verdict === 'accepted').map((a) => a.memberId),
    );
    const active = p.members.filter((x) => withRows.has(x) && !merged(x));
    if (active.length < 4) return false;
    const from = rng.pick(active);
    const into = rng.pick(active.filter((x) => x !== from));
    const release = this.lock(p, [from, into]);
    if (!release) return false;
    this.mergeBusy.add(p.id);
    try {
      const exact = p.kind === 'keep' && book.exact(from) && book.exact(into);
      const [fromBal, intoBal] = [book.bal(from), book.bal(into)];
      const a = await this.post(
        'merge',
        `/v1/programs/${p.id}/members/${from}/merge`,
        'support',
        `merge:${from}:${into}`,
        { intoMemberId: into },
        rng,
      );
      this.m.merges.push({ p, from, into, answer: a });
      const what = () =>
        `merge ${p.id}/${from} into ${into} (model ${fromBal} + ${intoBal}): ${a.status} ${JSON.stringify(a.body)}`;
      if (a.verdict === 'accepted') {
        this.mergesPerProgram.set(p.id, (this.mergesPerProgram.get(p.id) ?? 0) + 1);
        if (p.kind === 'keep') {
          if (exact) {
            this.m.expect(
              Number(a.body.pointsMoved) === fromBal && Number(a.body.survivor?.balance) === fromBal + intoBal,
              () => `points moved differ from the model: ${what()}`,
            );
          }
          const jf = book.jurisdiction.get(from);
          if (!book.jurisdiction.has(into) && jf) book.jurisdiction.set(into, jf);
          book.merge(from, into);
        } else {
          this.m.rollMerged.set(from, into);
        }
      } else if (a.verdict === 'refused') {
        // roll: a redemption in progress may hold the member's points; keep: the workload holds the group
        const holds = a.status === 409 && a.body?.error?.code === 'member_has_holds';
        this.m.expect(p.kind === 'roll' && holds, () => `merge refused: ${what()}`);
      } else if (p.kind === 'keep') {
        book.taint(from);
        book.taint(into);
      }
      return true;
    } finally {
      this.mergeBusy.delete(p.id);
      release();
    }
  }
}
