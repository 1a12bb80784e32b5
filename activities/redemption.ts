import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import { callWriteFunction, getMember } from '../db/ledger';
import { commitRedemption, holdRedemption, releaseRedemption, reverseRedemption, type HoldRequest, type RedemptionView } from '../db/redemptions';
import type { BillingClient } from './services/billing';
import type { GlClient } from './services/gl';
import { ServiceError } from './services/http';
import type { TaxClient, TaxTreatment } from './services/tax';

export interface SagaRef {
  programId: string;
  invoiceId: string;
  redemptionId: string;
}

/** A service's "no" is final; anything else is retried by the activity's retry policy. */
async function service<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ServiceError && !e.retryable) throw ApplicationFailure.nonRetryable(e.message, e.code);
    throw e;
  }
}

const day = (iso: string) => iso.slice(0, 10);

/** The redemption saga's steps and compensations, bound to the ledger and the three services. */
export function createRedemptionActivities(deps: { pool: Pool; billing: BillingClient; gl: GlClient; tax: TaxClient }) {
  const { pool, billing, gl, tax } = deps;

  /** The subledger's recognition lines of this redemption (or of its reversal), summed per account. */
  async function journalLines(programId: string, keyPrefix: string) {
    const { rows } = await pool.query(
      `select l.account, sum(l.debit_minor)::bigint as d, sum(l.credit_minor)::bigint as c
         from journal_entries j join journal_lines l using (journal_entry_id)
        where j.program_id = $1 and j.idempotency_key like $2 group by l.account order by l.account`,
      [programId, `${keyPrefix}:%`],
    );
    return rows.map((r) => {
      const net = Number(r.d) - Number(r.c);
      return { account: r.account as string, debitMinor: Math.max(net, 0), creditMinor: Math.max(-net, 0) };
    }).filter((l) => l.debitMinor + l.creditMinor > 0);
  }

  return {
    async holdPoints(req: HoldRequest): Promise<RedemptionView> {
      return holdRedemption(pool, req);
    },

    async releaseHeldPoints(ref: SagaRef & { reason: string }): Promise<RedemptionView> {
      return releaseRedemption(pool, ref.programId, ref.invoiceId, ref.reason);
    },

    async getTaxTreatment(q: SagaRef & { memberId: string; jurisdiction: string | null; creditMinor: number }): Promise<TaxTreatment | null> {
      const jurisdiction = q.jurisdiction ?? (await getMember(pool, q.programId, q.memberId))?.jurisdiction ?? null;
      if (!jurisdiction) return null; // no jurisdiction known: no tax treatment to ask for
      const invoice = await service(() => billing.getInvoice(q.invoiceId));
      return service(() => tax.treatment({
        jurisdiction, currency: invoice.currency, pointsCreditMinor: q.creditMinor,
        lines: invoice.lines.map((l, i) => ({ lineId: String(i + 1), amountMinor: l.amountMinor })),
      }, `tax:${q.redemptionId}`));
    },

    async applyCreditInBilling(q: SagaRef & { points: number; creditMinor: number }): Promise<void> {
      await service(() => billing.applyCredit(q.invoiceId, {
        creditId: q.redemptionId, amountMinor: q.creditMinor, points: q.points,
        description: `Loyalty points: ${q.points.toLocaleString('en-US')} pts`,
      }, `credit:${q.redemptionId}`));
    },

    async reverseCreditInBilling(q: SagaRef & { reason: string }): Promise<void> {
      await service(() => billing.reverseCredit(q.invoiceId, q.redemptionId, q.reason, `credit-reversal:${q.redemptionId}`));
    },

    /** Spends the held points; the subledger books the revenue the cohort formula recognises. */
    async commitPointsAndJournal(ref: SagaRef): Promise<RedemptionView> {
      return commitRedemption(pool, ref.programId, ref.invoiceId, 'system:redemption-saga');
    },

    async reversePointsAndJournal(ref: SagaRef & { reason: string; occurredAt: string }): Promise<RedemptionView> {
      return reverseRedemption(pool, ref.programId, ref.invoiceId, ref.occurredAt, 'system:redemption-saga', ref.reason);
    },

    /** Posts the subledger's entry for this redemption (or its reversal) to the GL; idempotent per entry id. */
    async postJournalToGl(q: SagaRef & { reversal: boolean; occurredAt: string }): Promise<string | null> {
      const prefix = `${q.reversal ? 'redeem-reversal' : 'redeem'}:${q.invoiceId}`;
      const lines = await journalLines(q.programId, prefix);
      if (lines.length === 0) return null; // nothing recognised: nothing to post
      const entryId = `loyalty:${q.programId}:${prefix}`;
      await service(() => gl.postEntry({ entryId, date: day(q.occurredAt), description: `${prefix} (${q.redemptionId})`, lines }, `gl:${entryId}`));
      return entryId;
    },

    async reverseGlEntry(q: SagaRef & { occurredAt: string }): Promise<void> {
      const entryId = `loyalty:${q.programId}:redeem:${q.invoiceId}`;
      try {
        await gl.reverseEntry(entryId, `${entryId}:reversal`, day(q.occurredAt), `gl-reversal:${entryId}`);
      } catch (e) {
        if (e instanceof ServiceError && e.status === 404) return; // never posted: nothing to reverse
        throw e;
      }
    },

    /** A lost chargeback takes back the points earned on the invoice: never below zero. */
    async clawBackEarnedPoints(q: SagaRef & { chargebackId: string; occurredAt: string }): Promise<{ pointsRevoked: number; shortfallPoints: number } | null> {
      const { rows } = await pool.query('select member_id, amount_minor::bigint - coalesce((select sum(amount_minor) from refunds r where r.program_id = a.program_id and r.invoice_id = a.invoice_id), 0) as left_minor from accruals a where program_id = $1 and invoice_id = $2', [q.programId, q.invoiceId]);
      const accrual = rows[0];
      if (!accrual || Number(accrual.left_minor) <= 0) return null;
      const body = { memberId: accrual.member_id, invoiceId: q.invoiceId, refundId: `chargeback:${q.chargebackId}`, amountMinor: Number(accrual.left_minor), occurredAt: q.occurredAt };
      const r = await callWriteFunction(pool, 'll_refund', { ...body, programId: q.programId, idemKey: `chargeback:${q.chargebackId}`, requestHash: `chargeback:${q.chargebackId}`, actor: 'system:redemption-saga' });
      return { pointsRevoked: Number(r.body.pointsRevoked), shortfallPoints: Number(r.body.shortfallPoints) };
    },
  };
}

export type RedemptionActivities = ReturnType<typeof createRedemptionActivities>;
