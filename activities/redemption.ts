import { createHash } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import { markJournalPostedToGl, recordGlPosting } from '../db/gl-postings';
import { journalLines } from '../db/journal';
import { recordedTaxTreatment, recordRedemptionTax, redemptionTaxRules } from '../db/redemption-tax';
import { taxQuestion } from '../domain/tax';
import { chargebackClawbackKey, invoiceAdjustmentKey } from '../domain/ledger-keys';
import { redemptionRequestOnRecord } from '../db/idempotency';
import { verifyDecisionRequest } from '../db/approval-requests';
import { ApiError } from '../domain/errors';
import { RESERVED_REFUND_ID_PREFIX } from '../domain/schemas';
import { accrualLeftToRefund, callWriteFunction, getMember } from '../db/ledger';
import {
  adjustRedemption,
  commitRedemption,
  holdRedemption,
  markCreditRequested,
  releaseRedemption,
  reverseRedemption,
  wasCreditRequested,
  type AdjustmentView,
  type HoldRequest,
  type HoldRequestBase,
  type RedemptionView,
} from '../db/redemptions';
import type { BillingClient } from './services/billing';
import type { GlClient } from './services/gl';
import { ServiceError } from './services/http';
import type { TaxClient, TaxTreatment } from './services/tax';

export interface SagaRef {
  programId: string;
  invoiceId: string;
  redemptionId: string;
}

/** Attempts a forward step of the saga gives another team's service before the saga compensates. */
export const SERVICE_ATTEMPTS = 5;

/**
 * The attempt of the saga's forward step running now, or null in a compensation or a reversal (those
 * are activities that retry until they succeed) or outside a worker. The forward steps are the
 * saga's local activities; their retry policy has no attempt limit, so that our own database is
 * retried until it answers, and the services' limit is kept here instead (workflows/redemption.ts).
 */
function forwardStepAttempt(): number | null {
  try {
    const info = Context.current().info;
    return info.isLocal ? info.attempt : null;
  } catch {
    return null;
  }
}

/**
 * A service's "no" is final; anything else is retried, by a forward step SERVICE_ATTEMPTS times. A
 * "no" after attempts that got no answer is marked in doubt: one of those may still land (the saga's
 * compensation then settles it, workflows/redemption.ts).
 */
async function service<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ServiceError && !e.retryable) {
      const inDoubt = (forwardStepAttempt() ?? 1) > 1;
      throw ApplicationFailure.create({
        message: e.message,
        type: e.code,
        nonRetryable: true,
        details: inDoubt ? [{ inDoubt }] : undefined,
      });
    }
    if (e instanceof ServiceError && (forwardStepAttempt() ?? 0) >= SERVICE_ATTEMPTS)
      throw ApplicationFailure.nonRetryable(e.message, 'service_unavailable');
    throw e;
  }
}

/** The ledger's own refusal (a business rule) is final; a database that does not answer is retried. */
async function ledger<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ApiError) throw ApplicationFailure.nonRetryable(e.message, e.code);
    throw e;
  }
}

/**
 * Runs a write to a service until it has a definite answer: true when it took effect (or already had:
 * one of `alreadyDone`, the service's "this exists"), false on any other refusal. Anything not
 * definite (a timeout, a 5xx) is thrown, so the activity retries it.
 */
async function definite(fn: () => Promise<unknown>, alreadyDone: string[]): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (e) {
    if (!(e instanceof ServiceError) || e.retryable) throw e;
    return alreadyDone.includes(e.code);
  }
}

const day = (iso: string) => iso.slice(0, 10);

/** Who billing shows as the source of the ledger's credits. */
export const billingSource = (programId: string) => `loyalty:${programId}`;
/** The subledger journal a GL entry carries: the redemption, its reversal, or an adjustment's give-back. */
export const glJournalKey = (invoiceId: string, reversal: boolean, adjustmentId?: string) =>
  adjustmentId
    ? `redeem-adjust:${invoiceAdjustmentKey(invoiceId, adjustmentId)}`
    : `${reversal ? 'redeem-reversal' : 'redeem'}:${invoiceId}`;
/** The GL's limit on an entry id (docs/service-contracts.md). */
export const MAX_GL_ENTRY_ID_LENGTH = 128;
/**
 * The GL entry id of a journal: `loyalty:<program>:<journal key>`, or, when that is longer than the
 * GL takes (a long invoice id), `loyalty:<program>:h:<digest of the journal key>`.
 */
export function glEntryId(programId: string, journalKey: string): string {
  const id = `loyalty:${programId}:${journalKey}`;
  if (id.length <= MAX_GL_ENTRY_ID_LENGTH) return id;
  return `loyalty:${programId}:h:${createHash('sha256').update(journalKey).digest('hex').slice(0, 40)}`;
}

/** The redemption saga's steps and compensations, bound to the ledger and the three services. */
export function createRedemptionActivities(deps: { pool: Pool; billing: BillingClient; gl: GlClient; tax: TaxClient }) {
  const { pool, billing, gl, tax } = deps;

  // One body and key per credit: the saga's step and the compensation of an apply in doubt send the
  // same. The credit carries the tax treatment recorded on the redemption, which is frozen once the
  // credit is first sent (db/functions/ll_record_redemption_tax.sql), so every attempt sends one body.
  const applyCredit = async (q: SagaRef & { points: number; creditMinor: number }) => {
    const taxTreatment = await recordedTaxTreatment(pool, q.programId, q.invoiceId);
    return billing.applyCredit(
      q.invoiceId,
      {
        creditId: q.redemptionId,
        amountMinor: q.creditMinor,
        points: q.points,
        source: billingSource(q.programId),
        description: `Loyalty points: ${q.points.toLocaleString('en-US')} pts`,
        ...(taxTreatment ? { taxTreatment } : {}),
      },
      `credit:${q.redemptionId}`,
    );
  };
  // One key per credit's reversal, whether a compensation or a lost chargeback asks for it.
  const reverseCredit = (q: SagaRef & { reason: string }) =>
    service(() => billing.reverseCredit(q.invoiceId, q.redemptionId, q.reason, `credit-reversal:${q.redemptionId}`));

  // The same for the GL: the entry of a journal, posted by the step, the reversal, or the settling below.
  async function postJournal(
    q: SagaRef & { reversal: boolean; adjustmentId?: string; occurredAt: string },
    call: typeof service,
  ): Promise<string | null> {
    const journalKey = glJournalKey(q.invoiceId, q.reversal, q.adjustmentId);
    const lines = await journalLines(pool, q.programId, journalKey);
    if (lines.length === 0) return null; // nothing recognised: nothing to post
    const entryId = glEntryId(q.programId, journalKey);
    // `entry_exists`: the GL holds our entry id already (only we post it), taken by an earlier call.
    await call(() =>
      gl
        .postEntry(
          { entryId, date: day(q.occurredAt), description: `${journalKey} (${q.redemptionId})`, lines },
          `gl:${entryId}`,
        )
        .catch((e) => {
          if (!(e instanceof ServiceError && e.code === 'entry_exists')) throw e;
        }),
    );
    await recordGlPosting(pool, {
      entryId,
      programId: q.programId,
      journalKey,
      businessDate: day(q.occurredAt),
      lines,
    });
    await markJournalPostedToGl(pool, q.programId, journalKey, entryId); // the close will not post these again
    return entryId;
  }

  return {
    /**
     * Holds the points on the terms of the program's rule version in force (the one the redemption
     * records), never on terms in the request: runs started before patch `redemption-rules-from-ledger`
     * still send the API's copy of them, and anyone who can reach Temporal can start a saga with any
     * (issue 14, item 1). The answer carries the terms used (`rules`), the chargeback window with them.
     */
    /**
     * Holds the points. With `verifyRequest` (runs since `redemption-request-verified`), only the
     * terms the API recorded for this invoice (its natural key: member, points, invoice total, by a
     * principal who may redeem) are held; anything else refuses (redemption_request_unverified),
     * nothing held.
     */
    async holdPoints(
      req: HoldRequestBase & Partial<HoldRequest> & { verifyRequest?: boolean },
    ): Promise<RedemptionView> {
      const { programId, invoiceId, redemptionId, memberId, points, invoiceTotalMinor, occurredAt } = req;
      if (
        req.verifyRequest &&
        !(await redemptionRequestOnRecord(pool, { programId, invoiceId, memberId, points, invoiceTotalMinor }))
      )
        throw ApplicationFailure.nonRetryable(
          `no redemption of ${points} pts for ${memberId} on ${invoiceId} was asked for through the API`,
          'redemption_request_unverified',
        );
      return ledger(() =>
        holdRedemption(pool, {
          programId,
          invoiceId,
          redemptionId,
          memberId,
          points,
          invoiceTotalMinor,
          occurredAt,
          rulesFrom: 'ledger',
        }),
      );
    },

    /**
     * Whether the chargeback signal `chargeback` is one billing reported through the API: its
     * request (kind chargeback) exists for this program, invoice and workflow, of an active key and
     * principal holding billing (or admin), and carries this chargeback's id and status. Refused
     * otherwise (non-retryable): the saga then ignores the signal.
     */
    async verifyChargeback(
      q: SagaRef & { workflowId: string; chargeback: { chargebackId: string; status: string; requestId?: string } },
    ): Promise<void> {
      const verdict = await verifyDecisionRequest(
        pool,
        q.chargeback.requestId,
        { kind: 'chargeback', programId: q.programId, subject: q.invoiceId, workflowId: q.workflowId },
        ['billing'],
        null,
      );
      if (!verdict.ok) throw ApplicationFailure.nonRetryable(verdict.reason, verdict.code);
      const d = verdict.decision.detail as { chargebackId?: unknown; status?: unknown } | null;
      if (d?.chargebackId !== q.chargeback.chargebackId || d?.status !== q.chargeback.status)
        throw ApplicationFailure.nonRetryable('the request is for another chargeback', 'decision_request_mismatch');
    },

    async releaseHeldPoints(ref: SagaRef & { reason: string }): Promise<RedemptionView> {
      return releaseRedemption(pool, ref.programId, ref.invoiceId, ref.reason);
    },

    async getTaxTreatment(
      q: SagaRef & { memberId: string; jurisdiction: string | null; creditMinor: number },
    ): Promise<TaxTreatment | null> {
      const jurisdiction = q.jurisdiction ?? (await getMember(pool, q.programId, q.memberId))?.jurisdiction ?? null;
      if (!jurisdiction) return null; // no jurisdiction known: no tax treatment to ask for
      const invoice = await service(() => billing.getInvoice(q.invoiceId));
      const request = {
        jurisdiction,
        currency: invoice.currency,
        pointsCreditMinor: q.creditMinor,
        lines: invoice.lines.map((l, i) => ({ lineId: String(i + 1), amountMinor: l.amountMinor })),
        // the program's scheme, and its own treatment for the jurisdiction where finance set one
        ...taxQuestion(await redemptionTaxRules(pool, q.programId, q.invoiceId), jurisdiction),
      };
      // The key names the question, not just the saga: the member's jurisdiction is read when the step
      // runs, and a step run again (a worker died before its result was recorded) can find another one
      // (an accrual of a merged member reported it since). Under the saga's key alone, tax answered
      // that 409 idempotency_key_reused, the run declined, and the credit the earlier attempt had
      // applied stayed in billing (found by test/faults). A treatment changes nothing, so a new
      // question may well have a new key.
      const digest = createHash('sha256').update(JSON.stringify(request)).digest('hex').slice(0, 16);
      const treatment = await service(() => tax.treatment(request, `tax:${q.redemptionId}:${digest}`));
      // stored on the redemption: billing's credit carries it, and the commit books the output tax it names
      await ledger(() => recordRedemptionTax(pool, q.programId, q.invoiceId, treatment));
      return treatment;
    },

    async applyCreditInBilling(q: SagaRef & { points: number; creditMinor: number }): Promise<void> {
      // recorded before the call: a worker that dies during it leaves the mark for the compensation
      await markCreditRequested(pool, q.programId, q.invoiceId);
      await service(() => applyCredit(q));
    },

    async reverseCreditInBilling(q: SagaRef & { reason: string }): Promise<void> {
      await reverseCredit(q);
    },

    /**
     * The compensation of a credit that may be in billing though no run of the saga saw billing say
     * yes: its call timed out or failed on billing's side, or a worker died during it. Nothing to do
     * if the credit was never sent (`credit_requested_at`, set before the call). Otherwise billing
     * may have applied it, or may still apply it when a call it is still working on lands: asking
     * again with the same key and body turns the doubt into an answer (a replay, `credit_exists`, or
     * a first apply now), then an applied credit is reversed. A later landing of an earlier call
     * finds the credit and changes nothing. A refusal means billing has none. Retried until billing
     * answers (a compensation).
     */
    async settleAndReverseCreditInBilling(
      q: SagaRef & { points: number; creditMinor: number; reason: string },
    ): Promise<{ sent: boolean; applied: boolean }> {
      if (!(await wasCreditRequested(pool, q.programId, q.invoiceId))) return { sent: false, applied: false };
      const applied = await definite(() => applyCredit(q), ['credit_exists']);
      if (applied) await reverseCredit(q);
      return { sent: true, applied };
    },

    /** Spends the held points; the subledger books the revenue the cohort formula recognises. */
    async commitPointsAndJournal(ref: SagaRef): Promise<RedemptionView> {
      return ledger(() => commitRedemption(pool, ref.programId, ref.invoiceId, 'system:redemption-saga'));
    },

    async reversePointsAndJournal(ref: SagaRef & { reason: string; occurredAt: string }): Promise<RedemptionView> {
      return reverseRedemption(
        pool,
        ref.programId,
        ref.invoiceId,
        ref.occurredAt,
        'system:redemption-saga',
        ref.reason,
      );
    },

    /**
     * Posts the subledger's entry for this redemption, its reversal, or an adjustment's give-back to
     * the GL (idempotent per entry id), then records the posting for the reconciliation and the close.
     */
    async postJournalToGl(
      q: SagaRef & { reversal: boolean; adjustmentId?: string; occurredAt: string },
    ): Promise<string | null> {
      return postJournal(q, service);
    },

    /**
     * The compensation of a GL posting in doubt, run after the subledger's reversal: the redemption's
     * entry is posted again with the same key and lines until the GL answers. If the GL has it (taken
     * now, or by a call that landed after the saga gave up), the reversal journal follows it, so the
     * GL nets to zero as the subledger does and the reconciliation finds both entries recorded. A
     * definite refusal means the GL has neither; the close posts the pair, net zero, with its period.
     */
    async settleAndReverseJournalInGl(
      q: SagaRef & { occurredAt: string },
    ): Promise<{ posted: boolean; reversalPosted: boolean }> {
      let entryId: string | null = null;
      const taken = await definite(async () => {
        entryId = await postJournal({ ...q, reversal: false }, (fn) => fn());
      }, []);
      const posted = taken && entryId !== null;
      // A refusal of the reversal must not fail the saga in the middle of its compensations: the
      // journal stays unposted, and the close posts it with its period.
      const reversalPosted = posted && (await definite(() => postJournal({ ...q, reversal: true }, (fn) => fn()), []));
      return { posted, reversalPosted };
    },

    /** An invoice lowered below its credit: the excess points go back to the member (db: ll_adjust_redemption). */
    async givePointsBackForInvoiceAdjustment(
      q: SagaRef & {
        adjustmentId: string;
        invoiceTotalMinor: number;
        maxInvoiceShareMillionths: string;
        occurredAt: string;
      },
    ): Promise<AdjustmentView> {
      try {
        return await adjustRedemption(pool, { ...q, actor: 'system:invoice-adjustment' });
      } catch (e) {
        // no redemption for the invoice will not change by retrying; one still being decided will
        if (e instanceof ApiError && e.statusCode === 404) throw ApplicationFailure.nonRetryable(e.message, e.code);
        throw e;
      }
    },

    /** Takes the given-back points' value off the invoice's loyalty credit; once per adjustment. */
    async reduceCreditInBilling(
      q: SagaRef & { adjustmentId: string; creditMinor: number; points: number },
    ): Promise<void> {
      await service(() =>
        billing.reduceCredit(
          q.invoiceId,
          q.redemptionId,
          {
            reductionId: q.adjustmentId,
            amountMinor: q.creditMinor,
            points: q.points,
            reason: `invoice adjustment ${q.adjustmentId}`,
          },
          `credit-reduction:${q.redemptionId}:${q.adjustmentId}`,
        ),
      );
    },

    /** A lost chargeback takes back the points earned on the invoice: never below zero. */
    async clawBackEarnedPoints(
      q: SagaRef & { chargebackId: string; occurredAt: string },
    ): Promise<{ pointsRevoked: number; shortfallPoints: number } | null> {
      const accrual = await accrualLeftToRefund(pool, q.programId, q.invoiceId);
      if (!accrual || Number(accrual.leftMinor) <= 0) return null;
      // The refund id is in a namespace no client refund may take (RESERVED_REFUND_ID_PREFIX); its key
      // and hash name the invoice, so a chargebackId seen on another invoice (the API refuses that:
      // chargeback_id_reused) is refused by ll_refund (refund_already_recorded), never a replay of the other's.
      const body = {
        memberId: accrual.memberId,
        invoiceId: q.invoiceId,
        refundId: `${RESERVED_REFUND_ID_PREFIX}${q.chargebackId}`,
        amountMinor: Number(accrual.leftMinor),
        occurredAt: q.occurredAt,
      };
      const r = await callWriteFunction(pool, 'll_refund', {
        ...body,
        programId: q.programId,
        idemKey: chargebackClawbackKey(q.invoiceId, q.chargebackId),
        requestHash: chargebackClawbackKey(q.invoiceId, q.chargebackId),
        actor: 'system:redemption-saga',
      });
      return { pointsRevoked: Number(r.body.pointsRevoked), shortfallPoints: Number(r.body.shortfallPoints) };
    },
  };
}

export type RedemptionActivities = ReturnType<typeof createRedemptionActivities>;
